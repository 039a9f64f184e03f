"""The ``>>>`` examples: every one in the package runs, from any folder, leaving nothing behind,
and every public class and function has one."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import tempfile
from collections.abc import Iterator

import pytest

import lightning_gru

NOT_IMPORTED = {"lightning_gru.__main__"}  # importing it runs the command

MODULES = ["lightning_gru"] + sorted(
    info.name
    for info in pkgutil.walk_packages(lightning_gru.__path__, prefix="lightning_gru.")
    if info.name not in NOT_IMPORTED
)

PUBLIC_MODULES = [
    "lightning_gru.nn",
    "lightning_gru.functional",
    "lightning_gru.models",
    "lightning_gru.data",
    "lightning_gru.cli",
    "lightning_gru.recipes",
]


def public_api() -> Iterator[object]:
    """The classes and functions in the public modules' ``__all__`` (not errors or constants)."""
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield pytest.param(obj, id=f"{module_name}.{name}")


def has_example(obj: object) -> bool:
    docs = [inspect.getdoc(obj)]
    if inspect.isclass(obj) and "__init__" in vars(obj):
        docs.append(inspect.getdoc(vars(obj)["__init__"]))
    return any(">>>" in (doc or "") for doc in docs)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, tmp_path, monkeypatch):
    working, temporary = tmp_path / "working", tmp_path / "temporary"
    working.mkdir(), temporary.mkdir()
    monkeypatch.chdir(working)
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # what the examples make: pytest's
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed (above)"
    assert not list(working.iterdir()), "an example wrote to the current folder"


@pytest.mark.parametrize("obj", list(public_api()))
def test_public_api_has_an_example(obj):
    assert has_example(obj), f"{obj.__qualname__}: no >>> example in its docstring"


def test_the_modules_are_found():
    assert {"lightning_gru.nn.gru", "lightning_gru._ext._gru", "lightning_gru.cli"} <= set(MODULES)
