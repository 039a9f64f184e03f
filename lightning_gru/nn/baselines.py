"""Encoders the experiments compare: the recurrent ones by name, and two baselines without memory.

:func:`make_encoder` builds ``"gru"`` (our :class:`lightning_gru.nn.GRU`), ``"lstm"`` or ``"rnn"``
(torch's), ``batch_first`` by default. :class:`BagOfWords` (the mean of
the embeddings of a text) and :class:`MLP` (one value at a time, no state) are the baselines.
"""

from typing import Literal

import torch
from torch import Tensor, nn

from lightning_gru.nn.gru import GRU

__all__ = ["ENCODERS", "MLP", "Backend", "BagOfWords", "Encoder", "final_state", "make_encoder"]

Encoder = Literal["gru", "lstm", "rnn"]
Backend = Literal["auto", "cython", "torch"]
ENCODERS: tuple[str, ...] = ("gru", "lstm", "rnn")


def make_encoder(
    kind: Encoder,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    dropout: float = 0.0,
    bidirectional: bool = False,
    *,
    reset_after: bool = True,
    backend: Backend = "auto",
    batch_first: bool = True,
) -> nn.RNNBase:
    """A recurrent encoder by name, ``batch_first`` unless told otherwise.

    Args:
        kind: ``"gru"`` (:class:`lightning_gru.nn.GRU`), ``"lstm"`` or ``"rnn"`` (tanh; torch's).
        input_size: features per time step ``I``.
        hidden_size: hidden units ``H`` per direction.
        num_layers: stacked layers.
        dropout: dropout between layers (ignored by torch for one layer).
        bidirectional: also run right to left; outputs have ``2 H`` features.
        reset_after: GRU only: ``True`` for torch's cell, ``False`` for Cho et al. (2014)'s.
        backend: GRU only: which kernel :class:`lightning_gru.nn.GRU` uses.
        batch_first: ``(B, T, .)`` inputs and outputs; ``False`` for time-major ``(T, B, .)``.

    >>> enc = make_encoder("lstm", 3, 4, bidirectional=True)
    >>> out, (h_n, c_n) = enc(torch.randn(2, 5, 3))
    >>> out.shape, h_n.shape
    (torch.Size([2, 5, 8]), torch.Size([2, 2, 4]))
    """
    check_dropout(dropout)
    dropout = dropout if num_layers > 1 else 0.0  # torch warns about dropout with one layer
    common = dict(
        num_layers=num_layers, dropout=dropout, bidirectional=bidirectional, batch_first=batch_first
    )
    if kind == "gru":
        return GRU(input_size, hidden_size, reset_after=reset_after, backend=backend, **common)
    if kind == "lstm":
        return nn.LSTM(input_size, hidden_size, **common)
    if kind == "rnn":
        return nn.RNN(input_size, hidden_size, nonlinearity="tanh", **common)
    raise ValueError(f"unknown encoder {kind!r}; expected one of {ENCODERS}")


def check_dropout(p: float) -> None:
    """The ``ValueError`` of ``torch.nn.Dropout`` for a probability outside ``[0, 1]``."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def check_lengths(lengths: Tensor, batch_size: int, max_length: int) -> None:
    """A ``ValueError`` unless ``lengths`` holds one length from 0 to ``max_length`` (the padded
    length) for each of ``batch_size`` sequences."""
    if lengths.shape != (batch_size,):
        raise ValueError(
            f"expected {batch_size} lengths, one per sequence, got shape {tuple(lengths.shape)}"
        )
    low, high = (int(lengths.min()), int(lengths.max())) if batch_size else (0, 0)
    if low < 0 or high > max_length:
        raise ValueError(
            f"lengths must be 0 to {max_length} (the padded length), got {low} to {high}"
        )


def final_state(h_n: Tensor | tuple[Tensor, Tensor], bidirectional: bool) -> Tensor:
    """The last layer's final hidden state, both directions concatenated.

    Args:
        h_n: ``(L * D, B, H)`` from a GRU or RNN, or an LSTM's ``(h_n, c_n)``.
        bidirectional: whether ``D`` is 2.

    Returns:
        ``(B, D * H)``.
    """
    if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
        h_n = h_n[0]
    D = 2 if bidirectional else 1
    return torch.cat(list(h_n[-D:]), dim=-1)  # D x (B, H) -> (B, D * H)


class BagOfWords(nn.Module):
    """The mean of the embeddings of each sequence, padding left out: order is ignored.

    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])  # (B=1, T=3, E=1), the last step is padding
    >>> BagOfWords()(x, torch.tensor([2]))
    tensor([[2.]])
    """

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``(B, T, E)`` and ``(B,)`` lengths to ``(B, E)``."""
        T = x.shape[1]
        check_lengths(lengths, x.shape[0], T)
        lengths = lengths.to(x.device)
        mask = torch.arange(T, device=x.device)[None, :] < lengths[:, None]  # (B, T)
        total = (x * mask.unsqueeze(-1).to(x.dtype)).sum(dim=1)  # (B, E)
        return total / lengths.clamp(min=1).unsqueeze(-1).to(x.dtype)


class MLP(nn.Module):
    """Fully connected layers with ReLU between them, applied to the last dimension.

    As a forecaster it sees one value at a time and keeps no state, as the original sine-wave
    experiment's baseline did (hidden layers 32 and 16).

    Args:
        in_features: input features.
        hidden_sizes: the widths of the hidden layers.
        out_features: output features.
        dropout: dropout after each hidden layer.

    >>> MLP(1, (32, 16), 1)(torch.randn(4, 20, 1)).shape
    torch.Size([4, 20, 1])
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: tuple[int, ...] = (32, 16),
        out_features: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_dropout(dropout)
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_features)`` to ``(..., out_features)``."""
        return self.layers(x)
