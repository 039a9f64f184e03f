"""Fixtures shared by the tests of every folder."""

import importlib.util
import sys
from pathlib import Path

import lightning as L
import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session):
    """Stop before testing a build that does not load: one compiled from other sources than
    those in the tree (Python would import the old compiled glue and kernel, not the sources),
    for another CPU, or none at all."""
    try:
        import lightning_gru._ext  # noqa: F401
    except ImportError as error:
        pytest.exit(
            f"the compiled kernel does not load ({error}): build it (`make install`, or "
            "`python setup.py build_ext --inplace`) before testing",
            returncode=4,
        )


@pytest.fixture
def script(monkeypatch):
    """Load a script, ``"benchmarks/bench_gru"`` or ``"recipes/run_seeds"``, as when it runs as a
    script: its folder on ``sys.path`` (so that ``import bench_gru`` works) and itself in
    ``sys.modules`` (where dataclasses look their module up)."""

    def load(name: str):
        file = REPO / f"{name}.py"
        monkeypatch.syspath_prepend(str(file.parent))
        spec = importlib.util.spec_from_file_location(file.stem, file)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, file.stem, module)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def make_trainer(tmp_path):
    """``make_trainer(**overrides)``: a CPU Trainer with no logger, progress bar or summary."""

    def make(**overrides) -> L.Trainer:
        options = dict(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            default_root_dir=tmp_path,
            max_epochs=1,
        )
        options.update(overrides)
        return L.Trainer(**options)

    return make
