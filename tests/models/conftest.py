"""Fixtures of the model tests: one thread, no network (``make_trainer``: tests/conftest.py)."""

from __future__ import annotations

import pytest
from _fixtures import one_thread  # noqa: F401  (autouse)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
