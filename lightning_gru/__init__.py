"""lightning-gru: fast recurrent models for PyTorch Lightning."""

__version__ = "0.1.0"
