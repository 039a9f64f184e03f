"""Two builds of the compiled kernel against each other, in one process, on the same weights.

A kernel change is judged by the ratio of the old build's time to the new one's, measured the
way ``bench_gru.py`` measures (medians of interleaved repeats): the machine's speed drifts by
up to 25% within minutes, so timings of separate runs are not comparable. The baseline is
another build, for instance one built in a git worktree: its ``_gru`` extension, run by this
checkout's Python glue, or the whole checkout, its glue (``lightning_gru/functional/_cython.py``)
with its extension, when the change touched how the two talk. Both sides run their glue as
Python source (the build compiles it; a kernel comparison leaves that out); a glue ``.py`` as
the baseline times instead this checkout's compiled glue against that source, on this
checkout's kernel::

    git worktree add /tmp/baseline HEAD~1
    (cd /tmp/baseline && $OLDPWD/.venv/bin/python setup.py build_ext --inplace)
    .venv/bin/python benchmarks/compare_builds.py /tmp/baseline/lightning_gru/_ext/_gru.*.so \\
        --configs imdb,imdb-2l-bi --modes train,inference
    .venv/bin/python benchmarks/compare_builds.py /tmp/baseline --configs time-machine
    .venv/bin/python benchmarks/compare_builds.py /tmp/baseline --reset-after-false  # Cho's cell
    .venv/bin/python benchmarks/compare_builds.py lightning_gru/functional/_cython.py
    .venv/bin/python benchmarks/compare_builds.py /tmp/baseline --shapes 10,1,4,512 50,2,8,512

For each configuration and mode it prints both times, the speed-up of the current build and
the largest difference between the two builds' results, relative to their largest magnitude:
the outputs, and in training the gradients too (rounding only, or a bug).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from bench_gru import (
    CONFIGS,
    Config,
    build,
    calibrate,
    choose,
    inference_step,
    interleaved,
    make_input,
    positive,
    shape_config,
    time_per_call,
    training_step,  # benchmarks/ is on sys.path when run as a script
)

import lightning_gru.functional._cython as driver
from lightning_gru import _ext

MODES = {"train": training_step, "inference": inference_step}
# where lightning_gru.nn.GRU finds the multi-layer driver: each build installs its own there
FUNCTIONAL = sys.modules["lightning_gru.functional.gru"]


def load_extension(path: Path) -> ModuleType:
    """Another build of ``_gru`` (a ``.so``), using this process's BLAS."""
    loader = importlib.machinery.ExtensionFileLoader("_gru", str(path))
    spec = importlib.util.spec_from_file_location("_gru", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    addresses = _ext._torch_blas()  # as lightning_gru/_ext/__init__.py installs it
    if _ext.BLAS_SOURCE == "torch" and addresses is not None:
        module.set_blas(*addresses)
    else:
        module.set_blas(*_ext._scipy_blas())
    return module


# this checkout's glue as source: what a build comparison runs on both sides (the installed
# one may be its compiled copy, which only a comparison of the glue itself should time)
SOURCE_GLUE = Path(driver.__file__).with_name("_cython.py")


def load_glue(glue: Path, extension: Path | None = None, name: str = "baseline_driver"):
    """The driver (``cython_gru``) of a glue ``.py`` run by Python, on another build's ``_gru``
    extension or, when ``extension`` is None, on this checkout's."""
    spec = importlib.util.spec_from_file_location(name, glue)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if extension is not None:
        module._ext = load_extension(extension)
    return module.cython_gru


def load_build(path: Path) -> Callable:
    """The baseline's driver: a ``_gru`` extension under this checkout's glue, a checkout's own
    glue and extension, or a glue ``.py`` on this checkout's extension (all run by Python)."""
    if not path.exists():
        raise SystemExit(f"{path}: no such extension, checkout or glue")
    if path.suffix == ".py":
        return load_glue(path)
    if path.is_dir():
        glue = path / "lightning_gru" / "functional" / "_cython.py"
        extensions = sorted((path / "lightning_gru" / "_ext").glob("_gru.*.so"))
        if not glue.is_file() or not extensions:
            raise SystemExit(f"{path}: no lightning_gru/functional/_cython.py or built _gru.*.so")
        return load_glue(glue, extensions[0])
    if not path.name.startswith("_gru.") or path.suffix != ".so":
        raise SystemExit(
            f"{path}: expected a _gru.*.so kernel extension, a checkout or a glue .py (a compiled "
            "glue .so cannot be a baseline: give its _cython.py)"
        )
    return load_glue(SOURCE_GLUE, path)


def current_build(baseline: Path) -> Callable:
    """This checkout's driver, to time against ``baseline``: its compiled glue against a glue
    ``.py`` (the gain of compiling it), otherwise its glue run by Python, as the baseline's is."""
    if baseline.suffix == ".py":
        return driver.cython_gru
    return load_glue(SOURCE_GLUE, name="current_driver")


def _results(module: torch.nn.Module, x: torch.Tensor, step: Callable, mode: str) -> list:
    if mode == "train":
        step()
        return [p.grad.clone() for p in module.parameters()] + [x.grad.clone()]
    with torch.no_grad():
        return [module(x)[0]]


def compare(
    config: Config | str,
    mode: str,
    builds: dict,
    repeats: int,
    min_time: float,
    reset_after: bool = True,
) -> dict:
    """Median seconds per call of each build, and the largest relative difference of results;
    ``config`` is a configuration or the name of one of ``bench_gru.CONFIGS``."""
    config = CONFIGS[config] if isinstance(config, str) else config
    module, x = build(config, "ours", reset_after=reset_after), make_input(config)
    step = MODES[mode](module, x)
    results, calls, samples = {}, {}, {name: [] for name in builds}
    try:
        for name, driver_function in builds.items():
            FUNCTIONAL.cython_gru = driver_function
            calls[name] = calibrate(step, min_time, warmup=2)
            results[name] = _results(module, x, step, mode)
        for name in interleaved(builds, repeats):
            FUNCTIONAL.cython_gru = builds[name]
            samples[name].append(time_per_call(step, calls[name]))
    finally:
        FUNCTIONAL.cython_gru = driver.cython_gru
    baseline, current = (statistics.median(samples[name]) for name in builds)
    difference = max(
        float((b - c).abs().max() / c.abs().max().clamp_min(1e-30))
        for b, c in zip(results["baseline"], results["current"], strict=True)
    )
    return {
        "baseline_s": baseline,
        "current_s": current,
        "speedup": baseline / current,
        "max_rel_diff": difference,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "baseline",
        type=Path,
        help="the other build: its _gru extension (.so), its checkout, or a glue .py",
    )
    parser.add_argument(
        "--configs", default="", help=f"comma-separated: {', '.join(CONFIGS)} (default: all)"
    )
    parser.add_argument("--shapes", nargs="*", type=shape_config, default=[], help="T,B,I,H ...")
    parser.add_argument("--modes", default="train,inference", help="train and/or inference")
    parser.add_argument("--repeats", type=positive(int), default=9)
    parser.add_argument(
        "--min-time", type=positive(float), default=0.3, help="seconds per timed repeat"
    )
    parser.add_argument(
        "--reset-after-false", action="store_true", help="time the Cho cell (reset_after=False)"
    )
    options = parser.parse_args(argv)
    if options.configs.strip():
        configs = [CONFIGS[name] for name in choose(parser, options.configs, CONFIGS, "config(s)")]
    else:  # every configuration of make bench, unless only shapes are given
        configs = [] if options.shapes else list(CONFIGS.values())
    configs += options.shapes
    modes = choose(parser, options.modes, MODES, "mode(s)")

    builds = {"baseline": load_build(options.baseline), "current": current_build(options.baseline)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per call")
    for config in configs:
        for mode in modes:
            r = compare(
                config, mode, builds, options.repeats, options.min_time,
                reset_after=not options.reset_after_false,
            )  # fmt: skip
            print(
                f"{config.name} {mode}: baseline {r['baseline_s'] * 1e3:.3f}, current "
                f"{r['current_s'] * 1e3:.3f}, speed-up {r['speedup']:.3f}x, "
                f"largest relative difference {r['max_rel_diff']:.2e}"
            )


if __name__ == "__main__":
    main()
