"""Speed and memory of ``lightning_gru.nn.GRU`` (Cython backend) against ``torch.nn.GRU`` on CPU.

Both run in the same process with the same thread count, float32, with identical weights. For
every configuration it measures

* inference: one forward pass under ``torch.inference_mode()``;
* a training step: zeroing the gradients, the forward pass and the backward pass of
  ``out.sum()`` (the input requires grad, as the output of an embedding does);
* the achieved GFLOP/s, counting only the matrix products: ``2 * T * B * 3H * (in + H)`` per
  layer and direction for the forward pass, three times that for a training step;
* the machine's GEMM rate (``torch.mm`` of two 2048 x 2048 matrices, the best call, before and
  after the configurations) and, at that rate, the time of a training step's products alone:
  a step can hardly be faster, so torch's step over it is about the largest speed-up any
  kernel could show;
* the peak memory of a training step (and of an inference call), each measured in a fresh
  subprocess as the rise of the resident set's high-water mark (see ``benchmarks/README.md``).

Timings are medians over interleaved repeats (torch, ours, ours, torch, ...), each repeat
timing enough calls to last ``--min-time`` seconds. Run ``python benchmarks/bench_gru.py -h``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import torch

from lightning_gru.nn import GRU

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    name: str
    T: int
    B: int
    I: int  # noqa: E741
    H: int
    num_layers: int = 1
    bidirectional: bool = False

    @property
    def D(self) -> int:
        return 2 if self.bidirectional else 1

    def forward_flops(self) -> float:
        """Multiply-adds of the input and recurrent projections, counted as 2 FLOPs each."""
        total = 0.0
        for layer in range(self.num_layers):
            in_size = self.I if layer == 0 else self.D * self.H
            total += self.D * 2 * self.T * self.B * 3 * self.H * (in_size + self.H)
        return total

    def shape(self) -> str:
        extra = ""
        if self.num_layers > 1 or self.bidirectional:
            extra = f", {self.num_layers}L{' bi' if self.bidirectional else ''}"
        return f"({self.T}, {self.B}, {self.I}, {self.H}{extra})"


CONFIGS = {
    c.name: c
    for c in [
        Config("time-machine", 35, 32, 28, 256),
        Config("time-machine-h100", 35, 32, 28, 100),  # H not a multiple of 16: masked vectors
        Config("imdb", 256, 64, 100, 256),
        Config("imdb-2l-bi", 256, 64, 100, 256, num_layers=2, bidirectional=True),
        Config("sine-b1", 20, 1, 1, 16),
        Config("sine-b38", 20, 38, 1, 16),
        Config("large", 100, 128, 512, 512),
        # few rows and a large recurrent weight (12 MiB): packing it does not repay
        Config("short-h1024", 10, 1, 4, 1024),
    ]
}
IMPLS = ("torch", "ours")
REPO = Path(__file__).resolve().parents[1]


def build(config: Config, impl: str, seed: int = 0, reset_after: bool = True) -> torch.nn.GRU:
    """The module of one implementation; both get the same weights for the same seed.

    ``reset_after=False`` changes our cell only: torch has no such cell, so its side stays the
    same and the comparison is of the same shapes, not of the same function.
    """
    torch.manual_seed(seed)
    kwargs = dict(num_layers=config.num_layers, bidirectional=config.bidirectional)
    reference = torch.nn.GRU(config.I, config.H, **kwargs)
    if impl == "torch":
        return reference
    ours = GRU(config.I, config.H, **kwargs, reset_after=reset_after, backend="cython")
    ours.load_state_dict(reference.state_dict())
    return ours


def make_input(config: Config, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(config.T, config.B, config.I, generator=gen).requires_grad_()  # (T, B, I)


def inference_step(module: torch.nn.GRU, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.inference_mode():
            module(x)

    return step


def training_step(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """Zero the gradients, forward, ``out.sum().backward()``; ``out`` is the module's output,
    or the first of its outputs (a GRU's, beside ``h_n``)."""

    def step() -> None:
        module.zero_grad()  # set_to_none, as optimizer.zero_grad() does
        x.grad = None
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()

    return step


def interleaved(names: Iterable[T], repeats: int) -> Iterator[T]:
    """Each of ``names`` once per repeat, in reversed order on every other repeat (A B, B A,
    ...): a drift of the machine's speed during the run hits every one alike."""
    names = list(names)
    for r in range(repeats):
        yield from names if r % 2 == 0 else names[::-1]


def time_per_call(step: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        step()
    return (time.perf_counter() - start) / calls


def calibrate(step: Callable[[], None], min_time: float, warmup: int) -> int:
    """Warm up, then the number of calls one timed repeat needs to last ``min_time``."""
    for _ in range(warmup):
        step()
    single = time_per_call(step, 1)
    return max(1, round(min_time / max(single, 1e-6)))


def measure_speed(
    config: Config, repeats: int, min_time: float, warmup: int, reset_after: bool = True
) -> dict:
    """Median seconds per call for each (impl, mode), over interleaved repeats."""
    x = make_input(config)
    steps = {}
    for impl in IMPLS:
        module = build(config, impl, reset_after=reset_after)
        steps[impl, "inference"] = inference_step(module, x)
        steps[impl, "train"] = training_step(module, x)
    calls = {key: calibrate(step, min_time, warmup) for key, step in steps.items()}
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in steps}
    for key in interleaved(steps, repeats):
        samples[key].append(time_per_call(steps[key], calls[key]))
    return {f"{impl}_{mode}_s": statistics.median(samples[impl, mode]) for impl, mode in samples}


def gemm_rate(n: int = 2048, calls: int = 5) -> float:
    """GFLOP/s of ``torch.mm`` on two ``n`` x ``n`` float32 matrices, the best of ``calls``
    after a warm-up, at torch's thread count: about the fastest this machine multiplies."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(time_per_call(lambda: torch.mm(a, b), 1) for _ in range(calls))
    return 2 * n**3 / best / 1e9


# --- memory, in a fresh subprocess per (config, impl, mode) -----------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def peak_rss_delta(step: Callable[[], None]) -> int:
    """Bytes by which one ``step()`` raises the resident set's high-water mark above its start."""
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    step()
    return (_status_kib("VmHWM") - before) * 1024


def memory_child(config: Config, impl: str, mode: str, reset_after: bool = True) -> int:
    """Peak extra memory of one call, after warm-up, gradients dropped.

    Runs in a fresh process started with a fixed glibc mmap threshold (see ``measure_memory``),
    so that freed buffers go back to the OS and the steady-state peak of a call is what it
    allocates, not what an earlier call left cached.
    """
    module = build(config, impl, reset_after=reset_after)
    x = make_input(config)
    step = training_step(module, x) if mode == "train" else inference_step(module, x)
    for _ in range(2):  # warm-up: lazy initialisation, thread pools, BLAS buffers, code pages
        step()
    module.zero_grad()
    x.grad = None
    return peak_rss_delta(step)


def measure_memory(config: Config, reset_after: bool = True) -> dict:
    env = dict(os.environ)
    # Allocations >= 4 KiB are their own mmap, returned to the OS on free (this also turns off
    # glibc's dynamic threshold, which would otherwise keep freed tensors resident). At 64 KiB,
    # torch's per-step tensors at the time-machine size (32 KiB) came from heap memory the
    # warm-up had left resident and went uncounted: its peak read 5.8-8.6 MiB, not ~10.7.
    env["MALLOC_MMAP_THRESHOLD_"] = str(4 * 1024)
    env["MALLOC_TRIM_THRESHOLD_"] = str(128 * 1024)
    result = {}
    for impl in IMPLS:
        for mode in ("inference", "train"):
            cmd = [sys.executable, __file__, "--memory-child", config.name, impl, mode]
            cmd += [] if reset_after else ["--reset-after-false"]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            result[f"{impl}_{mode}_peak_bytes"] = int(proc.stdout.strip().splitlines()[-1])
    return result


# --- report -----------------------------------------------------------------------------------


def cpu_pressure_us() -> int | None:
    """Total microseconds some task waited for a CPU (Linux PSI), or None where unavailable."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(re.search(r"^some .*total=(\d+)", f.read(), re.M).group(1))
    except (OSError, AttributeError):
        return None


def environment() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, cwd=REPO,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "lightning_gru", "benchmarks"],
            capture_output=True, text=True, check=True, cwd=REPO,
        ).stdout.strip()  # fmt: skip
        if changed:
            commit += " (+ uncommitted changes in lightning_gru/ or benchmarks/)"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "commit": commit,
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0],
    }


def _ms(seconds: float) -> str:
    """Three significant digits below 1 s (so that a ratio can be recomputed from the cells)."""
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f}" if n >= 10 * 2**20 else f"{n / 2**20:.2g}"


def markdown_table(rows: list[dict]) -> str:
    header = (
        "| config (T, B, I, H) | fwd GFLOP | inference ms torch / ours | speed-up "
        "| train step ms torch / ours | speed-up | train GFLOP/s torch / ours "
        "| train ms at the GEMM rate (torch's ceiling) | peak train MiB torch / ours "
        "| ratio ours / torch |"
    )
    lines = [header, "|" + "---|" * 10]
    for row in rows:
        cells = [
            f"{row['name']} {row['shape']}",
            f"{row['forward_flops'] / 1e9:.3g}",
            f"{_ms(row['torch_inference_s'])} / {_ms(row['ours_inference_s'])}",
            f"{row['torch_inference_s'] / row['ours_inference_s']:.2f}x",
            f"{_ms(row['torch_train_s'])} / {_ms(row['ours_train_s'])}",
            f"{row['torch_train_s'] / row['ours_train_s']:.2f}x",
            f"{row['torch_train_gflops']:.0f} / {row['ours_train_gflops']:.0f}",
        ]
        if "train_at_gemm_rate_s" in row:
            floor = row["train_at_gemm_rate_s"]
            cells.append(f"{_ms(floor)} ({row['torch_train_s'] / floor:.3g}x)")
        else:
            cells.append("not measured")
        if "torch_train_peak_bytes" in row:
            torch_peak, ours_peak = row["torch_train_peak_bytes"], row["ours_train_peak_bytes"]
            # below 1 MiB the step's buffers come from memory the allocator already holds
            ratio = f"{ours_peak / torch_peak:.2f}x" if torch_peak >= 2**20 else "n/a (< 1 MiB)"
            cells += [f"{_mib(torch_peak)} / {_mib(ours_peak)}", ratio]
        else:
            cells += ["not measured", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def positive(kind: type) -> Callable[[str], float]:
    """An argparse ``type``: a finite number of ``kind`` above zero, or a usage error."""

    def parse(text: str) -> float:
        value = kind(text)  # a ValueError reads "invalid int value: 'x'"
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def shape_config(text: str) -> Config:
    """An argparse ``type``: ``T,B,I,H`` as a one-layer configuration named by its shape."""
    try:
        T, B, I, H = (int(v) for v in text.split(","))  # noqa: E741
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected T,B,I,H") from None
    if min(T, B, I, H) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be positive")
    return Config(f"({T}, {B}, {I}, {H})", T, B, I, H)


def choose(parser: argparse.ArgumentParser, text: str, choices, what: str) -> list[str]:
    """The names of a comma-separated ``--option`` value, each one of ``choices``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in choices]
    if unknown or not names:
        parser.error(f"unknown {what} {unknown or repr(text)}; choose from {list(choices)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated subset of: {', '.join(CONFIGS)} (default: all)",
    )
    parser.add_argument(
        "--repeats", type=positive(int), default=None, help="timed repeats (default 15)"
    )
    parser.add_argument(
        "--min-time", type=positive(float), default=None, help="seconds per repeat (0.2)"
    )
    parser.add_argument("--quick", action="store_true", help="3 repeats of 0.05 s: a smoke run")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--reset-after-false",
        action="store_true",
        help="time our reset_after=False (Cho) cell against torch's (reset_after=True) one",
    )
    parser.add_argument("--memory-child", nargs=3, metavar=("CONFIG", "IMPL", "MODE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)

    if args.memory_child:
        name, impl, mode = args.memory_child
        print(memory_child(CONFIGS[name], impl, mode, reset_after=not args.reset_after_false))
        return 0

    names = choose(parser, args.configs, CONFIGS, "config(s)")
    if args.json and (Path(args.json).is_dir() or not Path(args.json).resolve().parent.is_dir()):
        parser.error(f"--json {args.json}: not a file in an existing folder")
    repeats = args.repeats or (3 if args.quick else 15)
    min_time = args.min_time or (0.05 if args.quick else 0.2)
    warmup = 1 if args.quick else 3

    env = environment()
    print(
        f"torch {env['torch']}, torch.get_num_threads() = {env['threads']}, "
        f"{env['cpus']} CPUs ({env['cpu']}), commit {env['commit']}; float32, "
        f"median of {repeats} interleaved repeats of >= {min_time} s"
        + ("; ours runs reset_after=False" if args.reset_after_false else ""),
        flush=True,
    )
    if env["load_average_1min"] > 0.5 * (env["cpus"] or 1):
        print(
            f"warning: load average {env['load_average_1min']:.1f} on {env['cpus']} CPUs: "
            "other processes compete for the cores, timings will be noisy",
            file=sys.stderr,
        )
    rows = []
    start, pressure_start = time.perf_counter(), cpu_pressure_us()
    gemm_size, gemm_calls = (1024, 3) if args.quick else (2048, 5)
    gemm_gflops = [gemm_rate(gemm_size, gemm_calls)]
    for name in names:
        config = CONFIGS[name]
        row = {**asdict(config), "shape": config.shape(), "forward_flops": config.forward_flops()}
        row["reset_after"] = not args.reset_after_false
        row |= measure_speed(config, repeats, min_time, warmup, not args.reset_after_false)
        for impl in IMPLS:
            row[f"{impl}_train_gflops"] = 3 * config.forward_flops() / row[f"{impl}_train_s"] / 1e9
            row[f"{impl}_inference_gflops"] = (
                config.forward_flops() / row[f"{impl}_inference_s"] / 1e9
            )
        if not args.no_memory:
            row |= measure_memory(config, not args.reset_after_false)
        rows.append(row)
        print(
            f"  {name}: train {row['torch_train_s'] * 1e3:.3g} ms (torch) vs "
            f"{row['ours_train_s'] * 1e3:.3g} ms (ours)",
            file=sys.stderr,
            flush=True,
        )
    gemm_gflops.append(gemm_rate(gemm_size, gemm_calls))
    env["gemm_gflops"] = [round(rate, 1) for rate in gemm_gflops]
    for row in rows:  # at the best rate read: the lower floor
        row["train_at_gemm_rate_s"] = 3 * row["forward_flops"] / max(gemm_gflops) / 1e9
    print(
        f"GEMM rate (torch.mm, {gemm_size}^3, best of {gemm_calls}): "
        f"{gemm_gflops[0]:.0f} GFLOP/s before the configurations, {gemm_gflops[1]:.0f} after"
    )
    env["load_average_1min_end"] = os.getloadavg()[0]
    pressure_end = cpu_pressure_us()
    if pressure_start is not None and pressure_end is not None:
        # the share of the run during which some task waited for a CPU: near 0 on a quiet
        # machine (our own threads fit the cores), high when other processes compete
        waited = (pressure_end - pressure_start) / 1e6 / (time.perf_counter() - start)
        env["cpu_pressure_some"] = round(waited, 3)
        print(f"CPU pressure during the run: {waited:.1%} of the time some task waited for a CPU")
    print()
    print(markdown_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "repeats": repeats, "results": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
