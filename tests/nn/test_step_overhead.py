"""The step-overhead benchmark script runs and times every part it names."""


def test_measure_times_every_part(script) -> None:
    module = script("benchmarks/step_overhead")
    result = module.measure(3, 2, 1, 4, calls=5, repeats=1)
    parts = ["torch step", "ours step", "linear step", "ours forward", "kernel forward"]
    assert list(result) == parts
    assert all(value > 0 for value in result.values())
