"""The shape-sweep benchmark script times both implementations on a shape it is given."""

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "shape_sweep.py"


def test_measure_times_both_implementations(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # as when run as a script: imports bench_gru
    spec = importlib.util.spec_from_file_location("shape_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.measure((3, 2, 4, 8, 2, True, torch.float64), repeats=1)
    assert list(result) == ["inference torch", "train torch", "inference ours", "train ours"]
    assert all(value > 0 for value in result.values())
