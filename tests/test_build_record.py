"""setup.py compiles a source again when its contents differ from the build's record, whatever
its timestamp says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def build(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"],
        cwd=tree, capture_output=True, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_a_source_copied_with_an_older_timestamp_is_compiled_again(tmp_path):
    """A header replaced by a copy that kept an older timestamp (`cp -p`, `rsync -a`, `tar x`):
    by timestamps the build is up to date, by contents it is not. The copy does not compile
    (`#error`), so the build fails only if it compiles it."""
    tree = tmp_path / "tree"
    built = shutil.ignore_patterns("*.so", "*.c", "_built_from.py", "_native_cpu.py", "__pycache__")
    shutil.copytree(REPO / "lightning_gru", tree / "lightning_gru", ignore=built)
    shutil.copy2(REPO / "setup.py", tree)
    first = build(tree)
    assert first.returncode == 0, first.stderr
    header = tree / "lightning_gru" / "_ext" / "gru_math.h"
    before = header.stat()
    header.write_text(header.read_text() + '#error "compiled again"\n')
    os.utime(header, ns=(before.st_atime_ns, before.st_mtime_ns - 10**12))  # older than the build
    second = build(tree)
    assert second.returncode != 0
    assert "compiled again" in second.stderr + second.stdout
