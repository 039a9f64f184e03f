"""The autograd Function around the Cython kernel, and the multi-layer driver (private).

Everything here runs once per layer, not per time step, but it is on the path of every call:
it keeps Python work to a few tensor allocations and passes raw addresses to the kernel. The
build compiles this module as it is (Cython, with Python's semantics: setup.py): at the sine
sizes inference 1.11-1.25x faster, training steps 1.035-1.05x (docs/gru.md); what torch.compile
or torch.export may trace is in ``_traceable.py``, Python source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lightning_gru.functional._traceable import _check_batch_sizes, _dense_batch_sizes, _ext


def cython_gru(
    input, hx, weights, num_layers, num_directions, batch_sizes, reset_after, has_biases,
    dropout, training,
):  # fmt: skip
    """Stacked layers on the kernel; same contract as ``lightning_gru.functional.gru``."""
    dense = batch_sizes is None
    if input.dim() != (3 if dense else 2):
        what = "(T, B, input_size)" if dense else "(rows, input_size) PackedSequence data"
        raise RuntimeError(f"GRU: expected a {what} input, got a {input.dim()}-D one")
    if dense:  # the layers take and give (T, B, features): no view nodes in the graph
        T, batch, _ = input.shape
        batch_sizes = _dense_batch_sizes(T, batch)
        x = _readable(input)
    else:
        if (
            batch_sizes.is_floating_point()
            or batch_sizes.is_complex()
            or batch_sizes.dtype is torch.bool
        ):
            raise RuntimeError(  # converted, 2.5 would silently read as 2
                f"GRU: batch_sizes must be an integer tensor, got dtype {batch_sizes.dtype}"
            )
        # (_readable before any operation: a slice or copy of a functional tensor kept from
        # inside torch.func.functionalize is no longer wrapped, but has no memory either)
        batch_sizes = _readable(batch_sizes).to(device="cpu", dtype=torch.int64)
        x = _readable(input)[: _check_batch_sizes(batch_sizes, input.size(0))]  # (N, I)
        batch = int(batch_sizes[0])
    hx = _readable(hx)
    weights = [_readable(w) for w in weights]
    if not has_biases:  # the kernel takes (w_ih, w_hh, b_ih, b_hh) per direction
        weights = [w for i in range(0, len(weights), 2) for w in (*weights[i : i + 2], None, None)]
    _check_kernel_args(x, hx, weights, num_layers, num_directions, batch)
    # The Function cannot tell no_grad from grad mode in its forward; decide here.
    save_for_backward = torch.is_grad_enabled() and (
        input.requires_grad
        or hx.requires_grad
        or any(w is not None and w.requires_grad for w in weights)
    )
    if training and num_layers > 1 and dropout != 0 and not 0 <= dropout <= 1:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {dropout}")
    D = num_directions
    apply = _apply_layer if save_for_backward and not _functorch_active() else _public_apply
    h_n = []
    for layer in range(num_layers):
        h0 = hx[layer * D : (layer + 1) * D] if num_layers > 1 else hx
        layer_weights = weights[4 * D * layer : 4 * D * (layer + 1)]
        if save_for_backward:
            x, h = apply(x, h0, batch_sizes, reset_after, True, *layer_weights)
        else:  # no graph to record: the kernel without the Function's ~15 us a call
            x, h, _ = _layer_forward(x, h0, batch_sizes, reset_after, layer_weights, False)
        h_n.append(h)
        if dropout > 0 and training and layer < num_layers - 1:
            x = torch.nn.functional.dropout(x, dropout, training=True)
    h_n = h_n[0] if num_layers == 1 else torch.cat(h_n)
    return x, h_n


def _readable(tensor: Tensor) -> Tensor:
    """``tensor`` as the kernel reads it, through its address: contiguous memory that holds its
    values (a lazily negated view such as ``z.conj().imag`` materialised, the wrappers of a
    finished ``torch.func`` transform removed). Every tensor the kernel reads passes here
    before the first layer runs (a later layer's weight found wrapped then would have cost the
    dropout between the layers a second draw).

    Raises:
        RuntimeError: for a tensor without memory of its own, which the kernel would read at
            address 0: one of a functionalized function (or computed from one outside it, which
            torch's operations refuse), or one of a ``torch.func`` transform still running.
    """
    tensor = tensor.contiguous()
    if tensor.is_neg():
        tensor = tensor.resolve_neg()
    try:
        if tensor.data_ptr() or not tensor.numel():  # (50 ns; numel only at address 0)
            return tensor
    except RuntimeError:  # no storage: the wrapper of a transform
        unwrapped = _unwrap_if_dead(tensor)
        if unwrapped is not tensor:  # the transform has finished: read what it wrapped
            return _readable(unwrapped)
    raise RuntimeError(
        "GRU: a tensor the kernel would read has no memory of its own: one of a functionalized "
        "function, or of a torch.func transform still running; use backend='torch' there"
    )


_WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _check_kernel_args(x, hx, weights, num_layers, D, batch):
    """Raise what torch's GRU raises, a RuntimeError, for arguments the kernel cannot take: it
    reads raw memory, where a wrong shape, dtype or device would read out of bounds instead of
    failing. ``x`` is dense ``(T, B, I)`` or packed ``(N, I)``; ``weights`` holds four per layer
    and direction (biases may be None); ``batch`` is the number of sequences. (On the path of
    every call: about 2 us for one layer.)"""
    x_shape = x.shape
    if x_shape[0] == 0:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
    hh_shape, hx_shape = weights[1].shape, hx.shape
    if len(hh_shape) == 2 and hh_shape[0] == 3 * hh_shape[1]:
        H = hh_shape[1]
    else:  # hx gives the hidden size when W_hh has not the shape (3H, H)
        H = hx_shape[-1] if hx_shape else 0
    if hx_shape != (num_layers * D, batch, H):
        raise RuntimeError(
            f"Expected hidden size {(num_layers * D, batch, H)}, got {list(hx_shape)}"
        )
    I = x_shape[-1]
    ih_shape = weights[0].shape
    if len(ih_shape) == 2 and ih_shape[1] != I:
        raise RuntimeError(
            f"input.size(-1) must be equal to input_size. Expected {ih_shape[1]}, got {I}"
        )
    dtype = x.dtype
    if hx.dtype != dtype or not hx.is_cpu:
        raise RuntimeError(
            f"GRU: hx is a {hx.device.type} {hx.dtype} tensor but the input a cpu {dtype} one"
        )
    first_layer = ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))
    later_layers = ((3 * H, D * H), *first_layer[1:])  # their input is the layer below's output
    for i, w in enumerate(weights):
        shape = (first_layer if i < 4 * D else later_layers)[i & 3]
        if w is None or (w.dtype is dtype and w.is_cpu and w.shape == shape):
            continue
        layer, k = divmod(i, 4 * D)
        d, k = divmod(k, 4)
        name = f"{_WEIGHT_KINDS[k]}_l{layer}{'_reverse' if d else ''}"
        raise RuntimeError(
            f"GRU: {name} must be a cpu {dtype} tensor of shape {list(shape)} like the "
            f"input, got a {w.device.type} {w.dtype} one of shape {list(w.shape)}"
        )


def _rows_of(grad: Tensor | None) -> tuple[Tensor | None, int]:
    """A gradient the kernel can read row by row, and its row stride, copying as little as
    possible. The stride is -1 when every element is the same value, as in the gradient of
    ``out.sum()``: the kernel reads that one value."""
    if grad is None:
        return None, 0
    if grad.is_neg():  # a lazily negated view: its memory holds the values un-negated
        grad = grad.resolve_neg()
    if not any(grad.stride()):
        return grad, -1
    if grad.dim() == 3:  # dense (T, B, D*H)
        grad = grad.reshape(-1, grad.size(2))
    if grad.stride(1) == 1:
        return grad, grad.stride(0)
    if grad.stride(0) == 0:  # every row the same: materialise one
        return grad[:1].contiguous(), 0
    grad = grad.contiguous()
    return grad, grad.stride(0)


# Buffers of at least this size are advised to use huge pages (lightning_gru/_ext/huge_pages.h).
HUGE_PAGE_MIN_BYTES = 4 << 20


def _new_buffer(like: Tensor, *size: int) -> Tensor:
    """``like.new_empty(*size)``; a large one on huge pages, which saves a page fault per 4 KiB
    at its first touch (a large buffer is a fresh mapping at every call). (The size as separate
    arguments: torch parses a tuple 0.7 us slower, a few of which a small call pays.)"""
    buffer = like.new_empty(*size)
    if buffer.nbytes >= HUGE_PAGE_MIN_BYTES:
        _ext.advise_huge_pages(buffer.data_ptr(), buffer.nbytes)
    return buffer


# A reset_after training call of at most this many floats per direction (N x H) keeps n for the
# backward, which then does not recompute it; larger ones keep a quarter less (3H floats per row
# instead of 4H) and pay for it with the n gate's input projection over again in the backward,
# 2-3% of a time-machine training step. (The kernel's backward walks time in chunks of at least
# as many.)
KEEP_N_MAX_FLOATS = 1 << 16


def keeps_n(rows: int, hidden_size: int, reset_after: bool) -> bool:
    """Whether a training forward of ``rows`` rows keeps n for the backward."""
    return reset_after and rows * hidden_size <= KEEP_N_MAX_FLOATS


def _direction_layout(N: int, H: int, n_kept: bool, history: bool, itemsize: int) -> tuple:
    """Bytes per direction of a training buffer, and the offsets of n and of the history in it:
    the gates ``(N, 3H)``, then n ``(N, H)`` when kept, then the states ``(N, H)`` when kept."""
    nh = N * H * itemsize  # one (N, H) block
    return (3 + n_kept + history) * nh, 3 * nh, (3 + n_kept) * nh


def _direction(weights: Sequence, d: int) -> Sequence:
    """Direction ``d``'s four weights (w_ih, w_hh, b_ih, b_hh) of a layer's. (A function: Cython
    3.3 crashes compiling the unpacking of a slice with bounds that are not constants.)"""
    return weights[4 * d : 4 * d + 4]


def _layer_forward(x, h0, batch_sizes, reset_after, weights, training, keep_history=False):
    """Run both directions of one layer on ``x``: ``(N, I)`` rows, or dense ``(T, B, I)``.

    Returns ``y``, ``(N, D*H)`` or ``(T, B, D*H)`` like ``x`` (not a view: it may be edited in
    place), ``h_n (D, B, H)`` and, when training, the flat buffer that holds per direction what
    the backward needs: the gates ``(N, 3H)``, for small reset_after calls n ``(N, H)`` (see
    ``keeps_n``) and, with ``keep_history``, a copy of the states ``(N, H)`` (the backward
    otherwise reads them from ``y``).
    """
    *rows, I = x.shape
    N = math.prod(rows)
    D, B, H = h0.shape
    T = batch_sizes.shape[0]  # (len() of a tensor is a Python call)
    itemsize = x.element_size()
    y = _new_buffer(x, *rows, D * H)
    h_n = x.new_empty(D, B, H)
    # per direction: gates (N, 3H)[, n (N, H)][, history (N, H)]; inference: one gates block
    n_kept = training and keeps_n(N, H, reset_after)
    block, n_offset, history_offset = _direction_layout(N, H, n_kept, keep_history, itemsize)
    blocks = D if training else 1  # inference: the directions take turns with one block
    buffer = _new_buffer(x, blocks * block // itemsize)
    x_address, y_address = x.data_ptr(), y.data_ptr()
    h0_address, h_n_address = h0.data_ptr(), h_n.data_ptr()
    gates = buffer.data_ptr()
    float64 = x.dtype is torch.float64
    threads = torch.get_num_threads()
    for d in range(D):
        w_ih, w_hh, b_ih, b_hh = _direction(weights, d)
        _ext.forward(
            x_address, I, I, batch_sizes.data_ptr(), T, B, H,
            w_ih.data_ptr(), w_hh.data_ptr(), 0 if b_ih is None else b_ih.data_ptr(),
            0 if b_hh is None else b_hh.data_ptr(), h0_address + d * B * H * itemsize,
            y_address + d * H * itemsize, D * H, h_n_address + d * B * H * itemsize, gates,
            d == 1, reset_after, training, float64, threads,
            gates + n_offset if n_kept else 0,
            gates + history_offset if keep_history else 0,
        )  # fmt: skip
        if training:
            gates += block
    return y, h_n, buffer if training else None


class GRULayerFunction(torch.autograd.Function):
    """Both directions of one GRU layer on the Cython kernel.

    Inputs: ``x``, the ``(N, I)`` rows of a PackedSequence or a contiguous dense ``(T, B, I)``,
    ``h0 (D, B, H)``, ``batch_sizes (T,)``, ``reset_after``, ``save_for_backward`` (False under
    no_grad/inference: nothing is kept), then ``w_ih, w_hh, b_ih, b_hh`` per direction (biases
    may be None). Outputs ``y``, ``(N, D*H)`` or ``(T, B, D*H)`` like ``x``, and ``h_n (D, B, H)``.

    The forward keeps what the backward needs of the gates (see ``_layer_forward``), which the
    backward overwrites in place with their gradients; the states it reads from the output. The
    gradient of an unused output arrives as None, and one that is a single value broadcast
    (``out.sum()``) is read in place: neither is materialised. When the output was edited in
    place since (its version counter moved), or for a second backward through the same graph
    (``retain_graph=True``), the backward recomputes all of it first, so it stays exact. A
    backward with ``create_graph=True`` (second-order gradients, e.g. a gradient penalty)
    differentiates the pure-torch reference instead, so that its result is differentiable too.

    Under saved-tensor hooks (``torch.utils.checkpoint(use_reentrant=False)``,
    ``torch.autograd.graph.saved_tensors_hooks``) the forward keeps nothing outside them: the
    buffer, with a copy of the states, goes through ``save_for_backward``, so that a checkpoint
    drops it and recomputes it for the backward.

    Not public: it checks none of its arguments (``cython_gru`` checks them, then calls it once
    per layer). Arguments that disagree, such as ``batch_sizes`` larger than ``B`` or a weight of
    another shape or dtype, make the kernel read and write out of bounds.

    Example:
        >>> import torch
        >>> ref = torch.nn.GRU(3, 4, bidirectional=True)  # its weights, direction by direction
        >>> x = torch.randn(5, 2, 3, requires_grad=True)  # dense (T, B, I)
        >>> h0 = torch.zeros(2, 2, 4)  # (D, B, H)
        >>> batch_sizes = torch.full((5,), 2)  # int64, B rows at each of the T steps
        >>> # x, h0, batch_sizes, reset_after, save_for_backward, then each direction's weights
        >>> y, h_n = GRULayerFunction.apply(x, h0, batch_sizes, True, True, *ref._flat_weights)
        >>> y.shape, h_n.shape
        (torch.Size([5, 2, 8]), torch.Size([2, 2, 4]))
        >>> expected, _ = ref(x, h0)
        >>> torch.allclose(y, expected, atol=1e-6)
        True
        >>> dx = torch.autograd.grad(y.sum(), x)[0]  # the kernel's backward
        >>> torch.allclose(dx, torch.autograd.grad(expected.sum(), x)[0], atol=1e-6)
        True
    """

    @staticmethod
    def forward(ctx, x, h0, batch_sizes, reset_after, save_for_backward, *weights):
        training = save_for_backward and any(ctx.needs_input_grad)
        hooked = training and _saved_tensors_hooks_active()
        y, h_n, buffer = _layer_forward(x, h0, batch_sizes, reset_after, weights, training, hooked)
        if training:
            ctx.set_materialize_grads(False)  # an unused output's gradient comes as None
            # (the caller's own tensor when it is int64 on the CPU: its version shows edits)
            if batch_sizes.is_inference():  # made under inference_mode: no version counter
                batch_sizes = batch_sizes.clone()
            ctx.batch_sizes, ctx.batch_sizes_version = batch_sizes, batch_sizes._version
            ctx.reset_after = reset_after
            ctx.hooked, ctx.consumed = hooked, False
            ctx.dtype = x.dtype
            if hooked:  # the hooks get everything, the states included (see the docstring)
                ctx.shapes = [None if t is None else t.shape for t in (x, h0, *weights, buffer)]
                ctx.save_for_backward(x, h0, *weights, buffer)
                return y, h_n
            ctx.save_for_backward(x, h0, *weights)
            # What the kernel computed with, for its backward: a cast or move of the module
            # (.double(), .to()) or a parameter's .data set since replaces what the saved
            # tensors hold (torch's GRU, too, differentiates at the forward's weights). (.data:
            # aliases half as costly as detach()'s; the saved tensors check the versions.)
            ctx.kernel_inputs = [None if t is None else t.data for t in (h0, *weights)]
            ctx.x_shape = x.shape
            ctx.buffer = buffer
            # Not saved for backward: that would forbid in-place edits of the output, which
            # torch.nn.GRU allows. A detached alias shares the version counter, so edits show.
            ctx.output = y.detach()
            ctx.output_version = ctx.output._version
        return y, h_n

    @staticmethod
    def backward(ctx, dy, dh_n):
        # create_graph=True, or gradients batched by vmap (is_grads_batched, jacobian and
        # hessian with vectorize=True), which hold no memory of their own for the kernel
        if torch.is_grad_enabled() or _batched(dy) or _batched(dh_n):
            return _differentiable_backward(ctx, dy, dh_n)
        return _kernel_backward(ctx, dy, dh_n)


# Function.apply less its Python wrapper, which costs 2.5 us of a 120-200 us training step at
# the sine sizes: the wrapper unwraps tensors that escaped a finished torch.func transform
# (_readable does, for every tensor) and hands active transforms to custom_function_call
# (cython_gru then takes the public apply; resolve_backend sends them to torch's GRU anyway).
_apply_layer = torch._C._FunctionBase.__dict__["apply"].__get__(None, GRULayerFunction)
_public_apply = GRULayerFunction.apply
_functorch_active = torch._C._are_functorch_transforms_active
_unwrap_if_dead = torch._C._functorch.unwrap_if_dead
_is_batched = torch._C._functorch.is_batchedtensor
_is_legacy_batched = getattr(torch._C._functorch, "is_legacy_batchedtensor", _is_batched)


def _batched(grad: Tensor | None) -> bool:
    """Whether ``grad`` is batched by ``torch.func.vmap`` or by autograd's own vmap."""
    return grad is not None and (_is_batched(grad) or _is_legacy_batched(grad))


def _saved(ctx, for_kernel: bool = True) -> tuple[Tensor, Tensor, list, Tensor | None]:
    """``x``, ``h0``, the weights and the forward's buffer (None once a backward consumed it).

    ``for_kernel``: ``h0`` and the weights the forward computed with (see ``forward``), which the
    kernel reads as raw memory; otherwise the saved inputs themselves, to differentiate through.
    A saved tensor that no longer has the dtype, shape or layout the kernel computed with is a
    RuntimeError: read as the forward's, it would be read past its end. So are batch sizes
    edited in place since the forward, as torch's saved tensors raise."""
    if ctx.batch_sizes._version != ctx.batch_sizes_version:
        raise RuntimeError(
            "GRU backward: the PackedSequence's batch_sizes, which the gradient computation "
            "needs, have been modified by an inplace operation: they are at version "
            f"{ctx.batch_sizes._version}; expected version {ctx.batch_sizes_version} instead"
        )
    if ctx.hooked:  # what the hooks' unpack gives back may be laid out otherwise
        saved = [None if t is None else _readable(t) for t in ctx.saved_tensors]
        x, h0, *weights, buffer = saved
        changed = [t.dtype for t in saved if t is not None and t.dtype is not x.dtype]
        if changed or x.dtype is not ctx.dtype:  # the kernel would read past their ends
            _refuse_hooked(f"a {(changed or [x.dtype])[0]} tensor", f"a {ctx.dtype} one")
        for tensor, shape in zip(saved, ctx.shapes, strict=True):
            if tensor is not None and tensor.shape != shape:
                _refuse_hooked(f"a tensor of shape {list(tensor.shape)}", f"one of {list(shape)}")
        return x, h0, weights, None if ctx.consumed else buffer
    x, h0, *weights = ctx.saved_tensors  # (raises if one was edited in place since)
    if x.dtype is not ctx.dtype or x.shape != ctx.x_shape or not x.is_contiguous():
        raise RuntimeError(
            f"GRU backward: the input the forward saved is now a {x.dtype} tensor of shape "
            f"{list(x.shape)}, not the contiguous {ctx.dtype} one of shape {list(ctx.x_shape)} "
            "the forward read: its .data was replaced since; run the forward again"
        )
    if for_kernel:
        h0, *weights = ctx.kernel_inputs
    else:
        h0, *weights = map(_at_forward_values, (h0, *weights), ctx.kernel_inputs)
    return x, h0, weights, None if ctx.consumed else ctx.buffer


def _at_forward_values(saved: Tensor | None, alias: Tensor | None) -> Tensor | None:
    """``saved``, an input to differentiate through, with the values the forward computed with
    (``alias``) where its ``.data`` was replaced since: its gradient still reaches it."""
    if saved is None or saved.data_ptr() == alias.data_ptr():
        return saved
    if saved.shape != alias.shape:
        raise RuntimeError(
            f"GRU backward: a tensor of shape {list(alias.shape)} that the forward read is now "
            f"one of shape {list(saved.shape)} (its .data replaced since)"
        )
    return alias + (saved - saved.detach()).to(alias.dtype)


def _refuse_hooked(found: str, saved: str) -> None:
    raise RuntimeError(
        f"GRU backward: the saved-tensor hooks gave back {found} for {saved} that the forward "
        "saved: their unpack must restore it, and the module must not be cast nor a "
        "parameter's .data replaced between the forward and the backward"
    )


def _saved_tensors_hooks_active() -> bool:
    """Whether saved-tensor hooks (a non-reentrant checkpoint, ...) take what is saved now."""
    return _top_saved_tensors_hooks is not None and _top_saved_tensors_hooks(False) is not None


_top_saved_tensors_hooks = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)


def _kernel_backward(ctx, dy, dh_n):
    """The kernel's backward: fast, and its result is not differentiable again."""
    x, h0, weights, buffer = _saved(ctx)
    batch_sizes, reset_after = ctx.batch_sizes, ctx.reset_after
    *rows, I = x.shape
    N = math.prod(rows)
    D, B, H = h0.shape
    T = batch_sizes.shape[0]  # (len() of a tensor is a Python call)
    itemsize = x.element_size()
    # consumed by an earlier backward, or the output was edited since: recompute
    recompute = ctx.consumed or (not ctx.hooked and ctx.output._version != ctx.output_version)
    ctx.consumed, ctx.buffer = True, None  # (the backward writes its gradients over the gates)
    history = ctx.hooked or recompute
    if recompute:
        buffer = _layer_forward(x, h0, batch_sizes, reset_after, weights, True, True)[2]
    # the layout _layer_forward chose: per direction gates, [n,] [history]
    n_kept = buffer.numel() // (D * N * H) - 3 - history
    block, n_offset, history_offset = _direction_layout(N, H, n_kept, history, itemsize)
    if history:
        states, ld_states = buffer.data_ptr() + history_offset, H
        states_column = block  # direction d's history is in its own block
    else:
        states, ld_states = ctx.output.data_ptr(), D * H
        states_column = H * itemsize  # direction d's columns of the output
    # (the tensors stay referenced until the kernel has run: they may be fresh copies)
    dy, ld_dy = _rows_of(dy)
    dy_address = 0 if dy is None else dy.data_ptr()
    if dy is not None and not dy_address:  # (see _readable)
        raise RuntimeError("GRU backward: the output's gradient has no memory of its own")
    dy_column = 0 if ld_dy < 0 else H * itemsize  # where direction d's columns start
    dh_n = None if dh_n is None else _readable(dh_n)
    dh_n_address = 0 if dh_n is None else dh_n.data_ptr()
    needs = ctx.needs_input_grad
    dx = _new_buffer(x, *x.shape) if needs[0] else None
    dh0 = torch.empty_like(h0)
    dweights = [None if w is None else torch.empty_like(w) for w in weights]
    x_address, h0_address, dh0_address = x.data_ptr(), h0.data_ptr(), dh0.data_ptr()
    dx_address = 0 if dx is None else dx.data_ptr()
    gates = buffer.data_ptr()
    float64 = x.dtype is torch.float64
    threads = torch.get_num_threads()
    for d in range(D):
        w_ih, w_hh, b_ih, _ = _direction(weights, d)
        dw_ih, dw_hh, db_ih, db_hh = _direction(dweights, d)
        _ext.backward(
            x_address, I, I, batch_sizes.data_ptr(), T, B, H, w_ih.data_ptr(), w_hh.data_ptr(),
            0 if b_ih is None else b_ih.data_ptr(), h0_address + d * B * H * itemsize,
            states + d * states_column, ld_states,
            dy_address + d * dy_column if dy_address else 0, ld_dy,
            dh_n_address + d * B * H * itemsize if dh_n_address else 0,
            gates, gates + n_offset if n_kept else 0, d == 1, reset_after,
            dx_address, d > 0, dh0_address + d * B * H * itemsize,
            dw_ih.data_ptr(), dw_hh.data_ptr(), 0 if db_ih is None else db_ih.data_ptr(),
            0 if db_hh is None else db_hh.data_ptr(), float64, threads,
        )  # fmt: skip
        gates += block
    if not all(needs[5:]):
        dweights = [g if needed else None for g, needed in zip(dweights, needs[5:], strict=True)]
    return dx, dh0 if needs[1] else None, None, None, None, *dweights


def _differentiable_backward(ctx, dy, dh_n):
    """Backward by autograd through the reference GRU, so that it is differentiable itself."""
    from lightning_gru.functional.reference import reference_gru

    x, h0, weights, _ = _saved(ctx, for_kernel=False)
    batch_sizes = ctx.batch_sizes
    D = h0.size(0)
    if dy is None:  # the output was not used (the forward set materialize_grads=False)
        dy = x.new_zeros(*x.shape[:-1], D * h0.size(2))
    if dh_n is None:
        dh_n = torch.zeros_like(h0)
    inputs = [x, h0, *weights]
    wanted = [
        i for i, needed in enumerate(ctx.needs_input_grad[:2] + ctx.needs_input_grad[5:]) if needed
    ]
    with torch.enable_grad():
        rows = x.reshape(-1, x.size(-1))  # dense (T, B, I) -> (T*B, I)
        padded, lengths = pad_packed_sequence(PackedSequence(rows, batch_sizes))  # (T, B, I)
        per_direction = [tuple(_direction(weights, d)) for d in range(D)]
        out, h_n = reference_gru(
            padded, h0, per_direction, num_layers=1, bidirectional=D == 2,
            reset_after=ctx.reset_after, lengths=lengths,
        )  # fmt: skip
        y = pack_padded_sequence(out, lengths).data  # (N, D*H)
        y = y.view(*x.shape[:-1], y.size(1))
        grads = torch.autograd.grad(
            (y, h_n), [inputs[i] for i in wanted], (dy, dh_n), create_graph=True,
            allow_unused=True,
        )  # fmt: skip
    result = [None] * len(inputs)
    for i, grad in zip(wanted, grads, strict=True):
        result[i] = grad
    dx, dh0, *dweights = result
    return dx, dh0, None, None, None, *dweights
