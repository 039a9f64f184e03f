"""Two builds of the compiled kernel against each other, in one process, on the same weights.

A kernel change is judged by the ratio of the old build's time to the new one's, measured the
way ``bench_gru.py`` measures (medians of interleaved repeats): the machine's speed drifts by
up to 25% within minutes, so timings of separate runs are not comparable. The baseline is
another build's ``_gru`` extension, for instance one built in a git worktree::

    git worktree add /tmp/baseline HEAD~1
    (cd /tmp/baseline && $OLDPWD/.venv/bin/python setup.py build_ext --inplace)
    .venv/bin/python benchmarks/compare_builds.py /tmp/baseline/lightning_gru/_ext/_gru.*.so \\
        --configs imdb,imdb-2l-bi --modes train,inference

For each configuration and mode it prints both times, the speed-up of the current build and
the largest difference between the two builds' outputs (rounding only, or a bug).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import statistics
from pathlib import Path
from types import ModuleType, SimpleNamespace

import torch
from bench_gru import (
    CONFIGS,
    build,
    calibrate,
    inference_step,
    make_input,
    time_per_call,
    training_step,  # benchmarks/ is on sys.path when run as a script
)

import lightning_gru.functional._cython as driver
from lightning_gru import _ext

MODES = {"train": training_step, "inference": inference_step}


def load_build(path: Path) -> SimpleNamespace:
    """The ``forward``/``backward`` of another build of ``_gru``, with this process's BLAS."""
    loader = importlib.machinery.ExtensionFileLoader("_gru", str(path))
    spec = importlib.util.spec_from_file_location("_gru", path, loader=loader)
    module: ModuleType = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    module.set_blas(*_ext._torch_blas())
    return SimpleNamespace(
        forward=module.forward,
        backward=module.backward,
        advise_huge_pages=module.advise_huge_pages,
    )


def compare(config_name: str, mode: str, builds: dict, repeats: int, min_time: float) -> dict:
    """Median seconds per call of each build, and the largest output difference."""
    config = CONFIGS[config_name]
    module, x = build(config, "ours"), make_input(config)
    step = MODES[mode](module, x)
    outputs, calls, samples = {}, {}, {name: [] for name in builds}
    for name, kernel in builds.items():
        driver._ext = kernel
        calls[name] = calibrate(step, min_time, warmup=2)
        with torch.no_grad():
            outputs[name] = module(x)[0]
    for r in range(repeats):
        for name in builds if r % 2 == 0 else list(builds)[::-1]:
            driver._ext = builds[name]
            samples[name].append(time_per_call(step, calls[name]))
    driver._ext = _ext
    baseline, current = (statistics.median(samples[name]) for name in builds)
    return {
        "baseline_s": baseline,
        "current_s": current,
        "speedup": baseline / current,
        "max_abs_diff": float((outputs["baseline"] - outputs["current"]).abs().max()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path, help="the other build's _gru extension (.so)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated")
    parser.add_argument("--modes", default="train,inference", help="train and/or inference")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per timed repeat")
    options = parser.parse_args(argv)

    builds = {"baseline": load_build(options.baseline), "current": _ext}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per call")
    for config in options.configs.split(","):
        for mode in options.modes.split(","):
            r = compare(config, mode, builds, options.repeats, options.min_time)
            print(
                f"{config} {mode}: baseline {r['baseline_s'] * 1e3:.3f}, current "
                f"{r['current_s'] * 1e3:.3f}, speed-up {r['speedup']:.3f}x, "
                f"max |difference| {r['max_abs_diff']:.2e}"
            )


if __name__ == "__main__":
    main()
