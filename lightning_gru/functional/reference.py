"""A readable pure-PyTorch GRU: the test oracle, and the slow CUDA path for ``reset_after=False``.

Both cells of the GRU are here, with the gates ``r, z, n`` in torch's order:

* ``reset_after=True`` (the cuDNN / ``torch.nn.GRU`` cell)::

      r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
      z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
      n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
      h' = (1 - z) * n + z * h

* ``reset_after=False`` (Cho et al., 2014; Keras with ``reset_after=False``): the same, except
  that the reset gate is applied *before* the recurrent matrix product of the candidate::

      n  = tanh(W_in x + b_in + W_hn (r * h) + b_hn)

Everything is plain differentiable torch operations, so autograd provides the backward pass and
the code runs on any device. It loops over time in Python: correct, not fast.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["reference_gru", "reference_gru_cell"]

LayerWeights = tuple[Tensor, Tensor, Tensor | None, Tensor | None]


def reference_gru_cell(
    gi: Tensor,
    h: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    *,
    reset_after: bool = True,
) -> Tensor:
    """One GRU step given the input projection ``gi = W_ih x + b_ih`` of this step.

    Args:
        gi: ``(B, 3H)`` input projection of the current step, bias included.
        h: ``(B, H)`` hidden state of the previous step.
        w_hh: ``(3H, H)`` recurrent weights, rows in the order ``r, z, n``.
        b_hh: ``(3H,)`` recurrent bias, or ``None``.
        reset_after: which candidate formula to use (see the module docstring).

    Returns:
        ``(B, H)`` the new hidden state.

    >>> H = 2
    >>> h = reference_gru_cell(torch.zeros(1, 3 * H), torch.ones(1, H), torch.zeros(3 * H, H), None)
    >>> h  # r = z = 1/2, n = 0: h' = z * h
    tensor([[0.5000, 0.5000]])
    """
    sizes = [h.shape[-1]] * 3  # (split(H) would give one piece for H = 0)
    gi_r, gi_z, gi_n = gi.split(sizes, dim=-1)  # 3 x (B, H)
    w_hr, w_hz, w_hn = w_hh.split(sizes, dim=0)  # 3 x (H, H)
    b_hr, b_hz, b_hn = b_hh.split(sizes) if b_hh is not None else (None, None, None)

    r = torch.sigmoid(gi_r + F.linear(h, w_hr, b_hr))  # (B, H)
    z = torch.sigmoid(gi_z + F.linear(h, w_hz, b_hz))  # (B, H)
    if reset_after:
        n = torch.tanh(gi_n + r * F.linear(h, w_hn, b_hn))  # (B, H)
    else:
        n = torch.tanh(gi_n + F.linear(r * h, w_hn, b_hn))  # (B, H)
    return (1 - z) * n + z * h


def _run_direction(
    x: Tensor,
    h0: Tensor,
    weights: LayerWeights,
    mask: Tensor | None,
    *,
    reverse: bool,
    reset_after: bool,
) -> tuple[Tensor, Tensor]:
    """One layer, one direction. ``x`` is ``(T, B, in)``, ``h0`` ``(B, H)``, ``mask`` ``(T, B, 1)``.

    Where ``mask[t, b]`` is false, step ``t`` does not exist for sequence ``b``: its output is zero
    and its hidden state passes through unchanged. The reverse direction therefore starts from
    ``h0`` at the last valid step of each sequence.
    """
    w_ih, w_hh, b_ih, b_hh = weights
    T = x.shape[0]
    gi_all = F.linear(x, w_ih, b_ih)  # (T, B, 3H): one projection for all time steps
    h = h0
    outputs: list[Tensor] = [h0] * T
    for t in reversed(range(T)) if reverse else range(T):
        h_new = reference_gru_cell(gi_all[t], h, w_hh, b_hh, reset_after=reset_after)  # (B, H)
        if mask is None:
            h = outputs[t] = h_new
        else:
            valid = mask[t]  # (B, 1)
            outputs[t] = torch.where(valid, h_new, torch.zeros_like(h_new))
            h = torch.where(valid, h_new, h)
    return torch.stack(outputs), h  # (T, B, H), (B, H)


def _check_shapes(
    input: Tensor, hx: Tensor, weights: Sequence[LayerWeights], lengths: Tensor | None
) -> None:
    """Raise a RuntimeError, as torch's GRU does, for shapes that would otherwise fail deep in a
    matrix product or, worse, broadcast (an ``hx`` of one sequence for a batch of several)."""
    if input.dim() != 3:
        raise RuntimeError(f"GRU: expected a (T, B, input_size) input, got a {input.dim()}-D one")
    T, B, I = input.shape
    if T == 0:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
    w_ih, w_hh = weights[0][:2]
    if w_ih.shape[-1] != I:
        raise RuntimeError(
            f"input.size(-1) must be equal to input_size. Expected {w_ih.shape[-1]}, got {I}"
        )
    expected = (len(weights), B, w_hh.shape[-1])
    if tuple(hx.shape) != expected:
        raise RuntimeError(f"Expected hidden size {expected}, got {list(hx.shape)}")
    if lengths is not None and tuple(lengths.shape) != (B,):
        raise RuntimeError(f"lengths must have shape ({B},), got {list(lengths.shape)}")


def reference_gru(
    input: Tensor,
    hx: Tensor,
    weights: Sequence[LayerWeights],
    *,
    num_layers: int,
    bidirectional: bool,
    reset_after: bool = True,
    lengths: Tensor | None = None,
    dropout: float = 0.0,
    training: bool = False,
) -> tuple[Tensor, Tensor]:
    """A multi-layer, optionally bidirectional GRU over a dense time-major batch.

    Args:
        input: ``(T, B, I)`` time-major input.
        hx: ``(num_layers * D, B, H)`` initial hidden state (``D = 2`` if bidirectional); pass
            zeros for the usual default.
        weights: one ``(w_ih (3H, in), w_hh (3H, H), b_ih (3H,) or None, b_hh (3H,) or None)``
            tuple per layer and direction, in torch's order: layer 0 forward, layer 0 reverse,
            layer 1 forward, ... (``torch.nn.GRU.all_weights`` has this layout).
        num_layers: number of stacked layers.
        bidirectional: whether each layer also runs a reverse direction.
        reset_after: ``True`` for the cuDNN / torch cell, ``False`` for Cho et al. (2014).
        lengths: optional ``(B,)`` integer tensor. Sequence ``b`` is valid for steps
            ``t < lengths[b]``; past its end its output is zero and its hidden state is frozen,
            and the reverse direction starts at step ``lengths[b] - 1`` from ``hx``. This is
            what ``torch.nn.GRU`` does with a ``PackedSequence``.
        dropout: probability of the dropout applied to the outputs of every layer but the last.
        training: dropout is applied only when true.

    Returns:
        ``output`` ``(T, B, D * H)``, the last layer's hidden state at every step (both
        directions concatenated), and ``h_n`` ``(num_layers * D, B, H)``, the final hidden state
        of every layer and direction.

    >>> gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    >>> x, h0 = torch.randn(5, 2, 3), torch.zeros(4, 2, 4)
    >>> out, h_n = reference_gru(x, h0, gru.all_weights, num_layers=2, bidirectional=True)
    >>> expected_out, expected_h_n = gru(x, h0)
    >>> torch.allclose(out, expected_out, atol=1e-6), torch.allclose(h_n, expected_h_n, atol=1e-6)
    (True, True)
    """
    D = 2 if bidirectional else 1
    if len(weights) != num_layers * D:
        raise ValueError(f"expected {num_layers * D} weight tuples, got {len(weights)}")
    _check_shapes(input, hx, weights, lengths)
    T = input.shape[0]
    mask = None
    if lengths is not None:
        steps = torch.arange(T, device=lengths.device).unsqueeze(1)  # (T, 1)
        mask = (steps < lengths.unsqueeze(0)).unsqueeze(-1).to(input.device)  # (T, B, 1)

    layer_input = input  # (T, B, in)
    h_n: list[Tensor] = []
    for layer in range(num_layers):
        if layer > 0 and dropout > 0 and training:
            layer_input = F.dropout(layer_input, p=dropout, training=True)
        outputs = []
        for direction in range(D):
            k = layer * D + direction
            out, h_last = _run_direction(
                layer_input,
                hx[k],
                weights[k],
                mask,
                reverse=direction == 1,
                reset_after=reset_after,
            )
            outputs.append(out)  # (T, B, H)
            h_n.append(h_last)  # (B, H)
        layer_input = torch.cat(outputs, dim=-1)  # (T, B, D * H)
    return layer_input, torch.stack(h_n)  # (T, B, D * H), (num_layers * D, B, H)
