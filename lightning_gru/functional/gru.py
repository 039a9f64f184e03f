"""The functional GRU: ``gru()`` and the autograd Function around the Cython kernel.

``backend="auto"`` sends CPU float32/float64 tensors to the Cython kernel and everything else
(CUDA, half precision) to torch: its own GRU (cuDNN on GPUs) for ``reset_after=True``, the
pure-torch reference for ``reset_after=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

BACKENDS = ("auto", "cython", "torch")
_KERNEL_DTYPES = (torch.float32, torch.float64)


def kernel_supports(tensor: Tensor) -> bool:
    """Whether the Cython kernel can run on this tensor (CPU, float32 or float64)."""
    return tensor.device.type == "cpu" and tensor.dtype in _KERNEL_DTYPES


def resolve_backend(backend: str, tensor: Tensor) -> str:
    """The backend that will run: ``"cython"`` or ``"torch"``.

    Raises:
        ValueError: for an unknown backend name, or ``"cython"`` on a tensor the kernel cannot
            take (CUDA, or a dtype other than float32/float64).
    """
    if backend == "auto":
        return "cython" if kernel_supports(tensor) else "torch"
    if backend == "cython":
        if not kernel_supports(tensor):
            raise ValueError(
                "backend='cython' runs on CPU float32/float64 tensors only, got a "
                f"{tensor.device.type} tensor of dtype {tensor.dtype}; use backend='auto' "
                "(cuDNN on CUDA) or backend='torch'"
            )
        return "cython"
    if backend == "torch":
        return "torch"
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def gru(
    input: Tensor,
    hx: Tensor,
    weights: Sequence[Tensor],
    num_layers: int = 1,
    bidirectional: bool = False,
    *,
    batch_sizes: Tensor | None = None,
    reset_after: bool = True,
    dropout: float = 0.0,
    training: bool = False,
    backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Run a (multi-layer, optionally bidirectional) GRU.

    Args:
        input: ``(T, B, I)`` time-major input, or the ``(N, I)`` data of a PackedSequence when
            ``batch_sizes`` is given.
        hx: initial state ``(num_layers * D, B, H)`` (D = 2 when bidirectional).
        weights: the parameters in ``torch.nn.GRU._flat_weights`` order: per layer and
            direction ``w_ih (3H, in)``, ``w_hh (3H, H)``, then ``b_ih``, ``b_hh`` if biased.
        num_layers: number of stacked layers.
        bidirectional: run a reverse direction too and concatenate the outputs.
        batch_sizes: the PackedSequence batch sizes (nonincreasing, int64, CPU), or None.
        reset_after: ``True`` for the cuDNN/PyTorch cell, ``False`` for Cho et al. (2014).
        dropout: dropout on the outputs of every layer but the last, in training only.
        training: whether dropout is active.
        backend: ``"auto"``, ``"cython"`` or ``"torch"``.

    Returns:
        ``(output, h_n)``: output ``(T, B, D * H)`` (or ``(N, D * H)`` packed), h_n like ``hx``.

    Example:
        >>> import torch
        >>> from lightning_gru.functional import gru
        >>> ref = torch.nn.GRU(3, 4)
        >>> x, h0 = torch.randn(5, 2, 3), torch.zeros(1, 2, 4)
        >>> out, h_n = gru(x, h0, ref._flat_weights)
        >>> torch.allclose(out, ref(x, h0)[0], atol=1e-6)
        True
    """
    num_directions = 2 if bidirectional else 1
    has_biases = len(weights) == 4 * num_layers * num_directions
    if not has_biases and len(weights) != 2 * num_layers * num_directions:
        raise ValueError(
            f"expected {4 * num_layers * num_directions} weights (or "
            f"{2 * num_layers * num_directions} without biases), got {len(weights)}"
        )
    if resolve_backend(backend, input) == "torch" or hx.size(1) == 0:
        return _torch_gru(
            input, hx, weights, num_layers, bidirectional, batch_sizes, reset_after,
            has_biases, dropout, training,
        )  # fmt: skip
    return _cython_gru(
        input, hx, weights, num_layers, num_directions, batch_sizes, reset_after, has_biases,
        dropout, training,
    )  # fmt: skip


def _torch_gru(
    input, hx, weights, num_layers, bidirectional, batch_sizes, reset_after, has_biases,
    dropout, training,
):  # fmt: skip
    if reset_after:
        if batch_sizes is None:
            return torch._VF.gru(
                input, hx, list(weights), has_biases, num_layers, dropout, training,
                bidirectional, False,
            )  # fmt: skip
        return torch._VF.gru(
            input, batch_sizes, hx, list(weights), has_biases, num_layers, dropout, training,
            bidirectional,
        )  # fmt: skip

    from lightning_gru.functional.reference import reference_gru

    per_direction = _group_weights(weights, has_biases)
    if batch_sizes is None:
        return reference_gru(
            input, hx, per_direction, num_layers=num_layers, bidirectional=bidirectional,
            reset_after=False, dropout=dropout, training=training,
        )  # fmt: skip
    padded, lengths = pad_packed_sequence(PackedSequence(input, batch_sizes))  # (T, B, I)
    output, h_n = reference_gru(
        padded, hx, per_direction, num_layers=num_layers, bidirectional=bidirectional,
        reset_after=False, lengths=lengths, dropout=dropout, training=training,
    )  # fmt: skip
    return pack_padded_sequence(output, lengths).data, h_n


def _group_weights(weights, has_biases):
    """Flat weights -> one ``(w_ih, w_hh, b_ih, b_hh)`` tuple per layer and direction."""
    step = 4 if has_biases else 2
    groups = []
    for start in range(0, len(weights), step):
        w = list(weights[start : start + step])
        groups.append(tuple(w) if has_biases else (w[0], w[1], None, None))
    return groups


@lru_cache(maxsize=64)
def _dense_batch_sizes(T: int, B: int) -> Tensor:
    with torch.inference_mode(False):  # cached: must stay usable outside inference mode
        return torch.full((T,), B, dtype=torch.int64)


def _cython_gru(
    input, hx, weights, num_layers, num_directions, batch_sizes, reset_after, has_biases,
    dropout, training,
):  # fmt: skip
    dense = batch_sizes is None
    if dense:
        T, B, _ = input.shape
        batch_sizes = _dense_batch_sizes(T, B)
        x = input.contiguous().view(T * B, -1)  # (T*B, I)
    else:
        x = input.contiguous()  # (N, I)
        batch_sizes = batch_sizes.to(device="cpu", dtype=torch.int64).contiguous()
    hx = hx.contiguous()
    groups = _group_weights(weights, has_biases)
    D = num_directions
    # The Function cannot tell no_grad from grad mode in its forward; decide here.
    save_for_backward = torch.is_grad_enabled() and (
        input.requires_grad or hx.requires_grad or any(w.requires_grad for w in weights)
    )
    h_n = []
    for layer in range(num_layers):
        layer_weights = [
            None if w is None else w.contiguous()
            for group in groups[layer * D : (layer + 1) * D]
            for w in group
        ]
        x, h = GRULayerFunction.apply(
            x,
            hx[layer * D : (layer + 1) * D],
            batch_sizes,
            reset_after,
            save_for_backward,
            *layer_weights,
        )
        h_n.append(h)
        if dropout > 0 and training and layer < num_layers - 1:
            x = torch.nn.functional.dropout(x, dropout, training=True)
    h_n = h_n[0] if num_layers == 1 else torch.cat(h_n)
    if dense:
        x = x.view(T, B, -1)  # (T, B, D*H)
    return x, h_n


def _pointer(tensor: Tensor | None) -> int:
    return 0 if tensor is None else tensor.data_ptr()


def _layer_forward(x, h0, batch_sizes, reset_after, weights, training):
    """Run both directions of one layer; returns y, h_n and the buffers backward needs."""
    from lightning_gru import _ext

    N, I = x.shape
    D, B, H = h0.shape
    T = batch_sizes.numel()
    itemsize = x.element_size()
    y = x.new_empty(N, D * H)
    h_n = x.new_empty(D, B, H)
    gates = [x.new_empty(N, 3 * H) for _ in range(D if training else 1)]
    extra = [x.new_empty(N, H) for _ in range(D)] if training else [None] * D
    for d in range(D):
        w_ih, w_hh, b_ih, b_hh = weights[4 * d : 4 * d + 4]
        _ext.forward(
            x.data_ptr(), I, I, batch_sizes.data_ptr(), T, B, H,
            w_ih.data_ptr(), w_hh.data_ptr(), _pointer(b_ih), _pointer(b_hh),
            h0[d].data_ptr(), y.data_ptr() + d * H * itemsize, D * H, h_n[d].data_ptr(),
            gates[d if training else 0].data_ptr(), _pointer(extra[d]),
            d == 1, reset_after, training, x.dtype == torch.float64, torch.get_num_threads(),
        )  # fmt: skip
    return y, h_n, (gates, extra)


class GRULayerFunction(torch.autograd.Function):
    """Both directions of one GRU layer on the Cython kernel.

    Inputs: ``x (N, I)`` packed rows, ``h0 (D, B, H)``, ``batch_sizes (T,)``, ``reset_after``,
    ``save_for_backward`` (False under no_grad/inference: nothing is kept), then ``w_ih, w_hh,
    b_ih, b_hh`` per direction (biases may be None). Outputs ``y (N, D*H)``, ``h_n (D, B, H)``.

    The forward keeps the gate activations for the backward, which overwrites them in place
    with their gradients. A second backward through the same graph (``retain_graph=True``)
    recomputes them first, so it gives the same result.
    """

    @staticmethod
    def forward(ctx, x, h0, batch_sizes, reset_after, save_for_backward, *weights):
        training = save_for_backward and any(ctx.needs_input_grad)
        y, h_n, buffers = _layer_forward(x, h0, batch_sizes, reset_after, weights, training)
        if training:
            ctx.save_for_backward(x, h0, y, *weights)
            ctx.batch_sizes = batch_sizes  # never modified: no version tracking needed
            ctx.buffers = buffers
            ctx.reset_after = reset_after
        return y, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n):
        from lightning_gru import _ext

        x, h0, y, *weights = ctx.saved_tensors
        batch_sizes = ctx.batch_sizes
        reset_after = ctx.reset_after
        buffers, ctx.buffers = ctx.buffers, None
        if buffers is None:  # consumed by an earlier backward through this graph
            _, _, buffers = _layer_forward(x, h0, batch_sizes, reset_after, weights, True)
        gates, extra = buffers
        N, I = x.shape
        D, B, H = h0.shape
        T = batch_sizes.numel()
        itemsize = x.element_size()
        dy = None if dy is None else dy.contiguous()
        dh_n = None if dh_n is None else dh_n.contiguous()
        dx = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        dh0 = torch.empty_like(h0)
        dweights = [None if w is None else torch.empty_like(w) for w in weights]
        for d in range(D):
            w_ih, w_hh = weights[4 * d : 4 * d + 2]
            dw_ih, dw_hh, db_ih, db_hh = dweights[4 * d : 4 * d + 4]
            _ext.backward(
                x.data_ptr(), I, I, batch_sizes.data_ptr(), T, B, H,
                w_ih.data_ptr(), w_hh.data_ptr(), h0[d].data_ptr(),
                y.data_ptr() + d * H * itemsize, D * H,
                0 if dy is None else dy.data_ptr() + d * H * itemsize,
                0 if dh_n is None else dh_n[d].data_ptr(),
                gates[d].data_ptr(), extra[d].data_ptr(), d == 1, reset_after,
                _pointer(dx), d > 0, dh0[d].data_ptr(), dw_ih.data_ptr(), dw_hh.data_ptr(),
                _pointer(db_ih), _pointer(db_hh), x.dtype == torch.float64,
                torch.get_num_threads(),
            )  # fmt: skip
        needs = ctx.needs_input_grad
        dweights = [g if needs[5 + i] else None for i, g in enumerate(dweights)]
        return dx, dh0 if needs[1] else None, None, None, None, *dweights
