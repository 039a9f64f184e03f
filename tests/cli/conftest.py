"""Fixtures of the command's tests: one thread, W&B and Hugging Face offline in private
folders, and tiny IMDb and Time Machine files (``make_trainer``: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from models._fixtures import one_thread  # noqa: F401  (autouse)


@pytest.fixture(autouse=True)
def offline(tmp_path_factory, monkeypatch):
    """W&B offline with private folders; Hugging Face offline with a private cache."""
    import datasets.config
    import huggingface_hub.constants

    home = tmp_path_factory.mktemp("wandb-home")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf"))


@pytest.fixture
def imdb_dir(tmp_path) -> Path:
    """train/test parquet files: 'good great' reviews are positive, 'bad awful' negative."""
    rows = [(f"a good great film number {i}, I loved it", 1) for i in range(24)]
    rows += [(f"a bad awful film number {i}, I hated it", 0) for i in range(24)]
    folder = tmp_path / "imdb"
    folder.mkdir()
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame.to_parquet(folder / "train.parquet")
    frame.iloc[::3].to_parquet(folder / "test.parquet")
    return folder


@pytest.fixture
def text_file(tmp_path) -> Path:
    path = tmp_path / "timemachine.txt"
    path.write_text(
        "The Time Machine, by H. G. Wells [1898]\n\n"
        "The Time Traveller (for so it will be convenient to speak of him) was expounding a\n"
        "recondite matter to us. His grey eyes shone and twinkled.\n" * 12
    )
    return path
