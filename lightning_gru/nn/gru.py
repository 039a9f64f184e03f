"""INTERIM placeholder (being replaced by the Cython-backed GRU): same signature as the final one."""

import torch


class GRU(torch.nn.GRU):
    def __init__(self, *args, reset_after: bool = True, backend: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.reset_after = reset_after
        self.backend = backend
