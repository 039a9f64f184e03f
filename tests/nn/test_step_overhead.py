"""The step-overhead benchmark script runs and times every part it names."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "step_overhead.py"


def test_measure_times_every_part(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # as when run as a script: imports bench_gru
    spec = importlib.util.spec_from_file_location("step_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.measure(3, 2, 1, 4, calls=5, repeats=1)
    parts = ["torch step", "ours step", "linear step", "ours forward", "kernel forward"]
    assert list(result) == parts
    assert all(value > 0 for value in result.values())
