"""lightning-gru: fast recurrent models for PyTorch Lightning.

``lightning_gru.nn`` and ``lightning_gru.functional`` (the GRU) come with the package;
``lightning_gru.models`` and ``lightning_gru.data`` (which import Lightning and ``datasets``)
are imported when asked for.
"""

from lightning_gru import functional, nn

__all__ = ["__version__", "functional", "nn"]
__version__ = "0.1.0"
