"""The benchmark script: FLOP counts, the same weights on both sides, and a smoke run."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gru.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gru", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gru"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["bench_gru"]


@pytest.mark.parametrize(
    ("name", "gflop"),
    [("time-machine", 0.489), ("imdb", 8.96), ("imdb-2l-bi", 56.6), ("large", 40.3)],
)
def test_forward_flops_match_the_cpu_baseline_note(bench, name: str, gflop: float) -> None:
    assert bench.CONFIGS[name].forward_flops() / 1e9 == pytest.approx(gflop, rel=2e-3)


def test_both_implementations_compute_the_same(bench) -> None:
    config = bench.Config("tiny", 4, 3, 2, 5, num_layers=2, bidirectional=True)
    x = bench.make_input(config)
    outputs = [bench.build(config, impl)(x)[0] for impl in bench.IMPLS]
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)


def test_smoke_run_writes_json(bench, tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["--configs", "sine-b1", "--quick", "--repeats", "1", "--min-time", "0.001"]
    args.append("--no-memory")
    assert bench.main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "torch.get_num_threads()" in printed
    assert "| sine-b1 (20, 1, 1, 16) |" in printed
    result = json.loads(out.read_text())
    row = result["results"][0]
    assert row["name"] == "sine-b1"
    for key in ("torch_inference_s", "ours_inference_s", "torch_train_s", "ours_train_s"):
        assert row[key] > 0
    assert "GEMM rate (torch.mm, 1024^3, best of 3)" in printed
    assert len(result["environment"]["gemm_gflops"]) == 2
    # no step is faster than its products at the machine's best GEMM rate
    assert 0 < row["train_at_gemm_rate_s"] < min(row["torch_train_s"], row["ours_train_s"])


def test_peak_rss_delta_sees_a_known_allocation(bench) -> None:
    mib = 2**20
    peak = bench.peak_rss_delta(lambda: torch.ones(48 * mib // 4).sum())  # 48 MiB, touched
    assert 46 * mib <= peak <= 56 * mib


def test_memory_child_runs(bench) -> None:
    config = bench.Config("small", 8, 16, 32, 64)
    assert bench.memory_child(config, "ours", "train") >= 0


def test_table_ratios_and_rates_are_computed_from_the_times(bench, monkeypatch, capsys) -> None:
    """speed-ups are torch / ours, the memory ratio ours / torch, train GFLOP/s 3x forward."""
    times = {"torch_inference_s": 0.004, "ours_inference_s": 0.002}
    times |= {"torch_train_s": 0.0254, "ours_train_s": 0.0127}
    monkeypatch.setattr(bench, "measure_speed", lambda *args: dict(times))
    peaks = {"torch_train_peak_bytes": 10 * 2**20, "ours_train_peak_bytes": 5 * 2**20}
    monkeypatch.setattr(bench, "measure_memory", lambda *args: dict(peaks))
    monkeypatch.setattr(bench, "gemm_rate", lambda *args: 100.0)
    assert bench.main(["--configs", "time-machine", "--quick"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| time-machine" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    flops = bench.CONFIGS["time-machine"].forward_flops()
    assert cells[2:6] == ["4 / 2", "2.00x", "25.4 / 12.7", "2.00x"]
    assert cells[6] == f"{3 * flops / 0.0254 / 1e9:.0f} / {3 * flops / 0.0127 / 1e9:.0f}"
    assert cells[7].startswith(f"{3 * flops / 100e9 * 1e3:.3g} (")
    assert cells[8:] == ["10 / 5", "0.50x"]


@pytest.mark.slow
def test_memory_counts_what_a_training_step_holds(bench) -> None:
    """At the time-machine size both peaks hold at least the output and the gradients of the
    weights and input; ours also its (N, 3H) gate buffer (see benchmarks/README.md)."""
    config = bench.CONFIGS["time-machine"]
    peaks = bench.measure_memory(config)
    floats = config.T * config.B * config.H  # the output
    floats += 3 * config.H * (config.I + config.H + 2) + config.T * config.B * config.I
    assert peaks["torch_train_peak_bytes"] >= 4 * floats
    assert peaks["ours_train_peak_bytes"] >= 4 * (floats + config.T * config.B * 3 * config.H)


def test_interleaved_reverses_the_order_on_every_other_repeat(script):
    interleaved = script("benchmarks/bench_gru").interleaved
    assert list(interleaved({"a": 1, "b": 2, "c": 3}, 3)) == list("abccbaabc")
    assert list(interleaved(["a"], 0)) == []
