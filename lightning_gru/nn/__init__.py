"""Plain ``nn.Module`` building blocks: the drop-in GRU, its reference oracle and baselines."""

from lightning_gru.nn.gru import GRU

__all__ = ["GRU"]
