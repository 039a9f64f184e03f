"""Argument checks that the data modules and the models share (no heavy imports)."""

from __future__ import annotations

import numbers
from typing import Any


def check_type(name: str, value: Any, kind: type, words: str) -> None:
    """A ``TypeError`` naming ``name`` unless ``value`` is a ``kind`` (never a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {words}, got {value!r} ({type(value).__name__})")


def check_texts(name: str, value: Any) -> None:
    """A ``TypeError`` unless ``value`` is ``None`` or a list (or tuple) of strings: a single
    ``str`` would be taken character by character, each one a text."""
    if value is None:
        return
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        hint = f": pass [{value!r}]" if isinstance(value, str) else ""
        raise TypeError(f"{name} must be a list of str, got {type(value).__name__}{hint}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold str only, got {item!r} ({type(item).__name__})")


def check_at_least(minimum: int, **values: int) -> None:
    """``ValueError`` naming the first of ``values`` (name=value) below ``minimum``: a count
    that would otherwise be refused only when first used, deep inside ``fit``, or taken
    silently (``range`` of a negative count); a ``TypeError`` for what is not an integer
    (``2.5``, ``"8"``, ``None``)."""
    for name, value in values.items():
        check_type(name, value, numbers.Integral, "an integer")
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
