"""Where a training step at the sine sizes spends its time, in microseconds per call.

At (T, B, I, H) = (20, 1, 1, 16) and (20, 38, 1, 16) the arithmetic is negligible and a training
step is mostly fixed costs. For each configuration this prints, same process, same threads:

* ``torch step`` and ``ours step``: the training step of ``bench_gru.py`` (zero the gradients,
  forward, ``out.sum().backward()``) with ``torch.nn.GRU`` and with ours, and their ratio
  (torch / ours; torch's step timed over a tenth of ``--calls``, at least 50);
* ``linear step``: the same step with a single ``nn.Linear(I, H)`` instead of a GRU, the floor
  of any autograd training step on this machine (zeroing, a forward op, the sum, the engine);
* ``ours forward``: our module's forward with autograd recording, and ``kernel forward``: the
  kernel's training forward through ``_layer_forward`` (its buffers allocated, no module, no
  autograd), for the share of Python.

Medians over ``--repeats`` rounds that time every part in turn, the order reversed on every
other round.

Example::

    .venv/bin/python benchmarks/step_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
from bench_gru import (
    interleaved,  # benchmarks/ is on sys.path as a script
    positive,
    time_per_call,
    training_step,
)

from lightning_gru.functional._cython import _layer_forward
from lightning_gru.functional._traceable import _dense_batch_sizes
from lightning_gru.nn import GRU

CONFIGS = {"sine-b1": (20, 1, 1, 16), "sine-b38": (20, 38, 1, 16)}


def microseconds(fns: dict[str, tuple[Callable[[], None], int]], repeats: int) -> dict[str, float]:
    """Per name, the median over ``repeats`` of the mean time of its number of calls, after a
    warm-up of a tenth of them (at least 3). Each repeat times every function in turn, the
    order reversed on every other repeat, so that a slow spell of the machine hits all."""
    for fn, calls in fns.values():
        for _ in range(max(calls // 10, 3)):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for name in interleaved(fns, repeats):
        fn, calls = fns[name]
        samples[name].append(time_per_call(fn, calls) * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def measure(T: int, B: int, I: int, H: int, calls: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    ours = GRU(I, H, backend="cython")
    reference = torch.nn.GRU(I, H)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, I).requires_grad_()
    weights = [w.detach() for w in ours._flat_weights]
    rows, h0, batch_sizes = (
        x.detach().reshape(T * B, I),
        torch.zeros(1, B, H),
        _dense_batch_sizes(T, B),
    )
    # torch's step is ~10x slower: a tenth of the calls keeps its repeats as long as the others'
    return microseconds(
        {
            "torch step": (training_step(reference, x), max(calls // 10, 50)),
            "ours step": (training_step(ours, x), calls),
            "linear step": (training_step(torch.nn.Linear(I, H), x), calls),
            "ours forward": (lambda: ours(x), calls),
            "kernel forward": (
                lambda: _layer_forward(rows, h0, batch_sizes, True, weights, True),
                calls,
            ),
        },
        repeats,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=positive(int), default=2000, help="calls per timed repeat")
    parser.add_argument("--repeats", type=positive(int), default=7)
    options = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; microseconds per call")
    for name, (T, B, I, H) in CONFIGS.items():
        result = measure(T, B, I, H, options.calls, options.repeats)
        cells = ", ".join(f"{key} {value:.1f}" for key, value in result.items())
        speed_up = result["torch step"] / result["ours step"]
        print(f"{name} (T={T}, B={B}, I={I}, H={H}): {cells}; speed-up {speed_up:.2f}x")


if __name__ == "__main__":
    main()
