"""The build-comparison benchmark loads a second copy of the kernel and times both."""

import shutil
from pathlib import Path

import pytest

from lightning_gru._ext import _gru


def test_a_build_compared_with_a_copy_of_itself_gives_the_same_output(script, tmp_path):
    module = script("benchmarks/compare_builds")
    copy = tmp_path / Path(_gru.__file__).name  # another file: loaded as a separate library
    shutil.copy(_gru.__file__, copy)
    builds = {"baseline": module.load_build(copy), "current": module.current_build(copy)}
    for mode in ("train", "inference"):
        result = module.compare("sine-b1", mode, builds, repeats=2, min_time=0.001)
        assert result["max_rel_diff"] == 0.0
        assert result["baseline_s"] > 0 and result["current_s"] > 0
    assert module.FUNCTIONAL.cython_gru is module.driver.cython_gru  # left on the current build


def test_a_checkout_brings_its_own_glue(script, tmp_path):
    """A baseline checkout runs its own functional/_cython.py with its own extension."""
    module = script("benchmarks/compare_builds")
    checkout = tmp_path / "checkout"
    (checkout / "lightning_gru" / "functional").mkdir(parents=True)
    (checkout / "lightning_gru" / "_ext").mkdir()
    shutil.copy(module.SOURCE_GLUE, checkout / "lightning_gru" / "functional" / "_cython.py")
    shutil.copy(_gru.__file__, checkout / "lightning_gru" / "_ext" / Path(_gru.__file__).name)
    baseline = module.load_build(checkout)
    assert baseline is not module.driver.cython_gru
    assert baseline.__module__ == "baseline_driver"
    builds = {"baseline": baseline, "current": module.driver.cython_gru}
    result = module.compare("sine-b1", "train", builds, repeats=2, min_time=0.001)
    assert result["max_rel_diff"] == 0.0


def test_reset_after_false_times_the_cho_cell(script, tmp_path, monkeypatch, capsys):
    module = script("benchmarks/compare_builds")
    copy = tmp_path / Path(_gru.__file__).name
    shutil.copy(_gru.__file__, copy)
    built = []
    original_build = module.build

    def recording_build(*args, **kwargs):
        gru = original_build(*args, **kwargs)
        built.append(gru.reset_after)
        return gru

    monkeypatch.setattr(module, "build", recording_build)
    argv = [str(copy), "--configs", "sine-b1", "--modes", "train", "--repeats", "1"]
    module.main([*argv, "--min-time", "0.001", "--reset-after-false"])
    assert built == [False]
    assert "sine-b1 train: baseline" in capsys.readouterr().out


def test_the_baseline_build_is_the_one_timed(script, tmp_path):
    """A baseline whose glue doubles the output differs from the current build by exactly its
    magnitude, in inference and in every gradient: the comparison runs the other build."""
    module = script("benchmarks/compare_builds")
    checkout = tmp_path / "checkout"
    (checkout / "lightning_gru" / "functional").mkdir(parents=True)
    (checkout / "lightning_gru" / "_ext").mkdir()
    glue = module.SOURCE_GLUE.read_text() + (
        "\n\n_original_cython_gru = cython_gru\n\n\n"
        "def cython_gru(*args):\n"
        "    output, h_n = _original_cython_gru(*args)\n"
        "    return output * 2, h_n\n"
    )
    (checkout / "lightning_gru" / "functional" / "_cython.py").write_text(glue)
    shutil.copy(_gru.__file__, checkout / "lightning_gru" / "_ext" / Path(_gru.__file__).name)
    builds = {"baseline": module.load_build(checkout), "current": module.current_build(checkout)}
    for mode in ("train", "inference"):
        result = module.compare("sine-b1", mode, builds, repeats=1, min_time=0.001)
        assert result["max_rel_diff"] == pytest.approx(1.0, rel=1e-6)


def test_both_sides_of_a_build_comparison_run_the_glue_as_python(script, tmp_path):
    """A kernel comparison leaves the compiled glue out: both sides run the glue's source."""
    module = script("benchmarks/compare_builds")
    copy = tmp_path / Path(_gru.__file__).name
    shutil.copy(_gru.__file__, copy)
    for build in (module.load_build(copy), module.current_build(copy)):
        assert build.__code__.co_filename == str(module.SOURCE_GLUE)  # a Python function


def test_a_glue_source_is_timed_against_its_compiled_copy(script):
    module = script("benchmarks/compare_builds")
    baseline = module.load_build(module.SOURCE_GLUE)
    current = module.current_build(module.SOURCE_GLUE)
    assert current is module.driver.cython_gru
    assert baseline.__module__ == "baseline_driver"
    result = module.compare("sine-b1", "train", {"baseline": baseline, "current": current}, 1,
                            0.001)  # fmt: skip
    assert result["max_rel_diff"] == 0.0


def test_shapes_are_compared_alone(script, tmp_path, capsys):
    """``--shapes`` times those shapes, and without ``--configs`` only those."""
    module = script("benchmarks/compare_builds")
    copy = tmp_path / Path(_gru.__file__).name
    shutil.copy(_gru.__file__, copy)
    module.main([str(copy), "--shapes", "3,2,2,20", "--modes", "inference", "--repeats", "1",
                 "--min-time", "0.001"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith("(3, 2, 2, 20) inference: baseline ")
