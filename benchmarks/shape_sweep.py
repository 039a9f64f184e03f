"""Ours against ``torch.nn.GRU`` on shapes outside ``make bench``: the corners where a kernel
tuned on the recipes' sizes could lose (one sequence, short sequences with large weights,
wide inputs, many layers, float64).

For each shape it prints inference and training-step times of both (best of ``--repeats``
timings of ~0.2 s, same process, same threads; each repeat times all four in turn, the order
reversed on every other repeat, as ``bench_gru.py`` does) and their ratios (torch / ours), and
marks a shape where ours is slower. ``make bench`` stays the reference for the issue's
configurations::

    .venv/bin/python benchmarks/shape_sweep.py
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from bench_gru import (  # benchmarks/ is on sys.path as a script
    calibrate,
    inference_step,
    interleaved,
    positive,
    time_per_call,
    training_step,
)

from lightning_gru.nn import GRU

# (T, B, I, H, num_layers, bidirectional, dtype)
SHAPES = [
    (10, 1, 4, 1024, 1, False, torch.float32),
    (16, 1, 8, 1024, 1, False, torch.float32),
    (100, 1, 4, 1024, 1, False, torch.float32),
    (10, 4, 4, 1024, 1, False, torch.float32),
    (10, 16, 4, 1024, 1, False, torch.float32),
    (8, 2, 8, 1024, 2, True, torch.float32),
    (12, 2, 8, 768, 1, False, torch.float32),
    (10, 1, 4, 512, 1, False, torch.float32),
    (50, 1, 4, 512, 1, False, torch.float32),
    (3, 2, 8, 2048, 1, False, torch.float32),
    (1, 1, 8, 2048, 1, False, torch.float32),
    (5, 1024, 16, 16, 1, False, torch.float32),
    (20, 8, 4096, 16, 1, False, torch.float32),
    (1, 64, 32, 256, 1, True, torch.float32),
    (50, 32, 64, 128, 3, False, torch.float32),
    (500, 1, 1, 32, 1, False, torch.float32),
    (35, 32, 28, 256, 1, False, torch.float64),
    (10, 1, 4, 1024, 1, False, torch.float64),
]


def best_ms(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Best of ``repeats`` timings of about 0.2 s each, in ms per call, of every step; each
    repeat times them all, in reversed order on every other repeat (drifts hit both sides)."""
    calls = {key: max(3, calibrate(step, min_time=0.2, warmup=1)) for key, step in steps.items()}
    samples: dict[str, list[float]] = {key: [] for key in steps}
    for key in interleaved(steps, repeats):
        samples[key].append(time_per_call(steps[key], calls[key]))
    return {key: min(times) * 1e3 for key, times in samples.items()}


def measure(shape: tuple, repeats: int) -> dict[str, float]:
    T, B, I, H, num_layers, bidirectional, dtype = shape
    torch.manual_seed(0)
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, dtype=dtype)
    reference = torch.nn.GRU(I, H, **kwargs)
    ours = GRU(I, H, **kwargs, backend="cython")
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(T, B, I, dtype=dtype).requires_grad_()
    steps = {}
    for name, module in (("torch", reference), ("ours", ours)):
        steps[f"inference {name}"] = inference_step(module, x)
        steps[f"train {name}"] = training_step(module, x)
    return best_ms(steps, repeats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=positive(int), default=5)
    options = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per call")
    for shape in SHAPES:
        r = measure(shape, options.repeats)
        inference = r["inference torch"] / r["inference ours"]
        train = r["train torch"] / r["train ours"]
        T, B, I, H, layers, bi, dtype = shape
        name = f"({T}, {B}, {I}, {H}{f', {layers}L' if layers > 1 else ''}{' bi' if bi else ''})"
        slower = "  <- ours slower" if min(inference, train) < 1 else ""
        print(
            f"{name} {str(dtype).removeprefix('torch.')}: inference "
            f"{r['inference torch']:.3g} / {r['inference ours']:.3g} ({inference:.2f}x), train "
            f"{r['train torch']:.3g} / {r['train ours']:.3g} ({train:.2f}x){slower}"
        )


if __name__ == "__main__":
    main()
