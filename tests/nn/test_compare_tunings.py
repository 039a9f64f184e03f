"""The tuning comparison times the kernel under each setting, and leaves its tuning as found."""

import pytest

from lightning_gru._ext import _gru


def test_each_setting_is_the_one_timed(script, monkeypatch):
    """Every timing runs under its own setting (on top of the tuning found), and the tuning is
    restored afterwards."""
    module = script("benchmarks/compare_tunings")
    before = _gru.set_tuning()
    seen = []
    original = module.time_per_call

    def recording(step, calls):
        seen.append(_gru.set_tuning()[3])  # block_gemm
        return original(step, calls)

    monkeypatch.setattr(module, "time_per_call", recording)
    settings = {"blocks": {"block_gemm": 1}, "blas": {"block_gemm": 0}}
    times = module.compare(module.CONFIGS["sine-b1"], "train", settings, 3, 0.001)
    assert set(times) == {"blocks", "blas"} and all(t > 0 for t in times.values())
    assert seen == [1, 0, 0, 1, 1, 0]  # interleaved, the order reversed every other repeat
    assert _gru.set_tuning() == before


def test_main_prints_a_line_per_shape_and_mode(script, capsys):
    module = script("benchmarks/compare_tunings")
    module.main(["--shapes", "4,3,2,20", "--modes", "inference", "--repeats", "1",
                 "--min-time", "0.001"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("(4, 3, 2, 20) inference: blocks ")
    assert "tuned-mkl" in lines[1] and "blas" in lines[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--settings", "a:no_such_knob=1", "--settings", "b:"], "unexpected keyword"),
        (["--settings", "a:block_gemm=x", "--settings", "b:"], "expected knob=integer"),
        (["--settings", "a:block_gemm=1"], "at least two --settings"),
        (["--shapes", "1,2,3"], "expected T,B,I,H"),
        (["--shapes", "0,2,3,4"], "every size must be positive"),
        (["--configs", "nope"], "unknown config(s)"),
        (["--settings", "a:tuned_mkl=4294967296", "--settings", "b:"], "too large"),
        (
            ["--settings", "a:tuned_mkl=0", "--settings", "a:block_gemm=0", "--settings", "b:"],
            "names must differ",
        ),  # fmt: skip
    ],
)
def test_bad_arguments_are_usage_errors(script, capsys, argv, message):
    module = script("benchmarks/compare_tunings")
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
