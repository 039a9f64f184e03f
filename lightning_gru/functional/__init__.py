"""Functional GRU: ``gru()`` runs the Cython kernel on CPU and torch's GRU elsewhere."""

from lightning_gru.functional.gru import BACKENDS, GRULayerFunction, gru, resolve_backend

__all__ = ["BACKENDS", "GRULayerFunction", "gru", "resolve_backend"]
