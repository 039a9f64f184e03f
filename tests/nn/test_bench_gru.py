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
