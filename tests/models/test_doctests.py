"""The ``>>>`` examples of the model modules run as tests."""

import doctest
import importlib

import pytest

MODULES = [
    "lightning_gru.nn.baselines",
    "lightning_gru.models._common",
    "lightning_gru.models.figures",
    "lightning_gru.models.forecasting",
    "lightning_gru.models.language_model",
    "lightning_gru.models.sentiment",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
