"""The shape-sweep benchmark script times both implementations on a shape it is given."""

import torch


def test_measure_times_both_implementations(script) -> None:
    module = script("benchmarks/shape_sweep")
    result = module.measure((3, 2, 4, 8, 2, True, torch.float64), repeats=1)
    assert list(result) == ["inference torch", "train torch", "inference ours", "train ours"]
    assert all(value > 0 for value in result.values())
