"""The kernel's choices of where a product runs, against each other, on one build.

Which products run on the register blocks of ``block_gemm.h`` and which on MKL is decided at
run time (``lightning_gru._ext._gru.set_tuning``; ``docs/gru.md``). This times our GRU under
several such settings in one process, interleaved as ``bench_gru.py`` does (medians of repeats,
the order reversed on every other one), and prints each setting's time and its speed-up over
the first::

    .venv/bin/python benchmarks/compare_tunings.py --configs imdb,large
    .venv/bin/python benchmarks/compare_tunings.py --shapes 35,4,28,256 35,32,28,512 \\
        --settings "blocks-steps:tuned_mkl=1,tuned_mkl_min_weight_floats=4611686018427387904" \\
        --settings "mkl-steps:tuned_mkl=1,tuned_mkl_min_weight_floats=0" --modes inference

A setting is ``name:knob=value,...`` with the keyword arguments of ``set_tuning``; the
defaults compare the register blocks everywhere (``tuned_mkl=0``, the choice on AMD CPUs),
MKL for large products (``tuned_mkl=1``, the choice on Intel's) and BLAS for every product
(``block_gemm=0``).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bench_gru import (  # benchmarks/ is on sys.path when run as a script
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
    training_step,
)

from lightning_gru._ext import _gru

MODES = {"train": training_step, "inference": inference_step}
DEFAULT_SETTINGS = ["blocks:tuned_mkl=0", "tuned-mkl:tuned_mkl=1", "blas:block_gemm=0"]


def setting(text: str) -> tuple[str, dict[str, int]]:
    """``name:knob=value,...`` as (name, keyword arguments of ``set_tuning``)."""
    name, _, knobs = text.partition(":")
    values = {}
    for item in filter(None, knobs.split(",")):
        knob, equals, value = item.partition("=")
        if not equals or not value.strip().lstrip("-").isdigit():
            raise argparse.ArgumentTypeError(f"{item!r} in {text!r}: expected knob=integer")
        values[knob.strip()] = int(value)
    if not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected name:knob=value,...")
    saved = _gru.set_tuning()
    try:  # checks the names and that each value fits the knob's C type
        _gru.set_tuning(**values)
    except (TypeError, OverflowError) as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None
    finally:
        _gru.set_tuning(*saved)
    return name.strip(), values


def compare(
    config: Config, mode: str, settings: dict[str, dict], repeats: int, min_time: float
) -> dict[str, float]:
    """Median seconds per call under each setting; the kernel's tuning is restored after."""
    module, x = build(config, "ours"), make_input(config)
    step = MODES[mode](module, x)
    saved = _gru.set_tuning()
    try:
        calls = {}
        for name, values in settings.items():
            _gru.set_tuning(*saved)
            _gru.set_tuning(**values)
            calls[name] = calibrate(step, min_time, warmup=2)
        samples: dict[str, list[float]] = {name: [] for name in settings}
        for name in interleaved(settings, repeats):
            _gru.set_tuning(*saved)
            _gru.set_tuning(**settings[name])
            samples[name].append(time_per_call(step, calls[name]))
    finally:
        _gru.set_tuning(*saved)
    return {name: statistics.median(times) for name, times in samples.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="", help=f"comma-separated: {', '.join(CONFIGS)}")
    parser.add_argument("--shapes", nargs="*", type=shape_config, default=[], help="T,B,I,H ...")
    parser.add_argument(
        "--settings", action="append", type=setting, help="name:knob=value,... (repeatable)"
    )
    parser.add_argument("--modes", default="train,inference", help="train and/or inference")
    parser.add_argument("--repeats", type=positive(int), default=7)
    parser.add_argument(
        "--min-time", type=positive(float), default=0.2, help="seconds per timed repeat"
    )
    options = parser.parse_args(argv)
    if options.configs.strip():
        names = choose(parser, options.configs, CONFIGS, "config(s)")
        configs = [CONFIGS[name] for name in names]
    else:  # every configuration of make bench, unless only shapes are given
        configs = [] if options.shapes else list(CONFIGS.values())
    configs += options.shapes
    modes = choose(parser, options.modes, MODES, "mode(s)")
    given = options.settings or [setting(text) for text in DEFAULT_SETTINGS]
    settings = dict(given)
    if len(settings) < len(given):  # a repeated name would silently replace the first's knobs
        names = [name for name, _ in given]
        parser.error(f"--settings names must differ, got {names}")
    if len(settings) < 2:
        parser.error("give at least two --settings to compare")
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads; tuning {_gru.set_tuning()}")
    first = next(iter(settings))
    for config in configs:
        for mode in modes:
            times = compare(config, mode, settings, options.repeats, options.min_time)
            cells = [
                f"{name} {t * 1e3:.3g} ms ({times[first] / t:.3f}x)" for name, t in times.items()
            ]
            print(f"{config.name} {mode}: " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
