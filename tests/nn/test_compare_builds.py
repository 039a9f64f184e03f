"""The build-comparison benchmark loads a second copy of the kernel and times both."""

import shutil
from pathlib import Path

from lightning_gru._ext import _gru


def test_a_build_compared_with_a_copy_of_itself_gives_the_same_output(benchmark_script, tmp_path):
    module = benchmark_script("compare_builds")
    copy = tmp_path / Path(_gru.__file__).name  # another file: loaded as a separate library
    shutil.copy(_gru.__file__, copy)
    builds = {"baseline": module.load_build(copy), "current": module._ext}
    for mode in ("train", "inference"):
        result = module.compare("sine-b1", mode, builds, repeats=2, min_time=0.001)
        assert result["max_abs_diff"] == 0.0
        assert result["baseline_s"] > 0 and result["current_s"] > 0
    assert module.driver._ext is module._ext  # the driver is left on the current build
