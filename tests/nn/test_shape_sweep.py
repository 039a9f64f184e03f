"""The shape-sweep benchmark script times both implementations on a shape it is given."""

import torch


def test_measure_times_both_implementations(script) -> None:
    module = script("benchmarks/shape_sweep")
    result = module.measure((3, 2, 4, 8, 2, True, torch.float64), repeats=1)
    assert list(result) == ["inference torch", "train torch", "inference ours", "train ours"]
    assert all(value > 0 for value in result.values())


def test_repeats_alternate_the_order(script, monkeypatch) -> None:
    module = script("benchmarks/shape_sweep")
    monkeypatch.setattr(module, "calibrate", lambda step, min_time, warmup: 1)
    order = []
    steps = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    module.best_ms(steps, repeats=2)
    # at least 3 calls per timing
    assert order == [name for name in "abccba" for _ in range(3)]


def test_ratios_are_torch_over_ours_and_slower_shapes_marked(script, monkeypatch, capsys):
    module = script("benchmarks/shape_sweep")
    monkeypatch.setattr(module, "SHAPES", [(10, 1, 4, 1024, 1, False, torch.float32)] * 2)
    results = iter([
        {"inference torch": 4.0, "train torch": 9.0, "inference ours": 2.0, "train ours": 3.0},
        {"inference torch": 2.0, "train torch": 9.0, "inference ours": 4.0, "train ours": 3.0},
    ])  # fmt: skip
    monkeypatch.setattr(module, "measure", lambda shape, repeats: next(results))
    module.main(["--repeats", "1"])
    faster, slower = capsys.readouterr().out.splitlines()[1:]
    assert "(2.00x)" in faster and "(3.00x)" in faster and "ours slower" not in faster
    assert "(0.50x)" in slower and slower.endswith("<- ours slower")
