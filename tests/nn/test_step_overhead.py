"""The step-overhead benchmark script runs and times every part it names."""


def test_measure_times_every_part(script) -> None:
    module = script("benchmarks/step_overhead")
    result = module.measure(3, 2, 1, 4, calls=5, repeats=1)
    parts = ["torch step", "ours step", "linear step", "ours forward", "kernel forward"]
    assert list(result) == parts
    assert all(value > 0 for value in result.values())


def test_parts_are_warmed_up_and_interleaved(script, monkeypatch) -> None:
    module = script("benchmarks/step_overhead")
    order = []
    fns = {name: ((lambda name=name: order.append(name)), 1) for name in ("a", "b")}
    module.microseconds(fns, repeats=2)
    assert order == ["a"] * 3 + ["b"] * 3 + ["a", "b", "b", "a"]  # 3 warm-up calls at least


def test_speed_up_is_torch_over_ours(script, monkeypatch, capsys) -> None:
    module = script("benchmarks/step_overhead")
    parts = {"torch step": 2000.0, "ours step": 200.0, "linear step": 90.0}
    parts |= {"ours forward": 70.0, "kernel forward": 40.0}
    monkeypatch.setattr(module, "measure", lambda *args: dict(parts))
    module.main(["--calls", "1", "--repeats", "1"])
    assert capsys.readouterr().out.count("speed-up 10.00x") == 2
