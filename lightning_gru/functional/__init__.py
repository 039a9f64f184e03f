"""Functional GRU: ``gru()`` runs the Cython kernel on CPU and torch's GRU elsewhere."""

from lightning_gru.functional.gru import BACKENDS, gru, kernel_supports, resolve_backend

__all__ = ["BACKENDS", "gru", "kernel_supports", "resolve_backend"]
