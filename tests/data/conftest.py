"""Fixtures for the data-module tests: an offline, private ``datasets`` cache and tiny datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from _data_fixtures import make_reviews, write_splits

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """``$LIGHTNING_GRU_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("LIGHTNING_GRU_SHARED_DATA", REPO / ".." / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The reference data folder; the test is skipped where it is absent."""
    path = shared_data_dir()
    if not (path / "imdb").is_dir() or not (path / "timemachine").is_dir():
        pytest.skip(f"no shared data at {path}")
    return path


@pytest.fixture(autouse=True)
def offline_datasets(tmp_path_factory, monkeypatch):
    """No test reaches the network, and none writes to the user's ``datasets`` cache."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(
        datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf-datasets-cache")
    )


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "cache")


@pytest.fixture
def imdb_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): 40 and 20 reviews; test has words the train split never uses."""
    return make_reviews(20), make_reviews(10, prefix="Unseenword ")


@pytest.fixture
def parquet_dir(tmp_path, imdb_frames) -> Path:
    return write_splits(tmp_path / "parquet", "parquet", *imdb_frames)


@pytest.fixture
def timemachine_file(tmp_path) -> Path:
    """A short text in the shape of the d2l file (title line, blank lines, punctuation)."""
    path = tmp_path / "tm.txt"
    path.write_text(
        "The Time Machine, by H. G. Wells [1898]\n\n\n"
        "I\n\nThe Time Traveller (for so it will be convenient to speak of him)\n"
        "was expounding a recondite matter to us. His grey eyes shone and\n"
        "twinkled, and his usually pale face was flushed and animated.\n" * 6
    )
    return path
