"""Fixtures of the model tests: a quiet CPU Trainer writing into ``tmp_path``, no network."""

from __future__ import annotations

import lightning as L
import pytest
from _fixtures import one_thread  # noqa: F401  (autouse)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


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
