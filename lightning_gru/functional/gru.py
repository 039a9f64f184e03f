"""The functional GRU: ``gru()`` and the autograd Function around the Cython kernel.

``backend="auto"`` sends CPU float32/float64 tensors to the Cython kernel and everything else
(CUDA, half precision) to torch: its own GRU (cuDNN on GPUs) for ``reset_after=True``, the
pure-torch reference for ``reset_after=False``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd import forward_ad
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lightning_gru.functional._cython import cython_gru
from lightning_gru.functional._traceable import (
    _check_batch_sizes,
    dispatch_mode_active,
    kernel_available,
    kernel_fits,
    kernel_import_error,
)

BACKENDS = ("auto", "cython", "torch")
_KERNEL_DTYPES = (torch.float32, torch.float64)


def kernel_supports(tensor: Tensor) -> bool:
    """Whether the Cython kernel can run on this tensor (CPU, float32 or float64). Warns, once,
    when it could but the compiled kernel failed to import.

    Example:
        >>> import torch
        >>> from lightning_gru.functional import kernel_supports
        >>> [kernel_supports(torch.zeros(1, dtype=t)) for t in (torch.float32, torch.float64)]
        [True, True]
        >>> kernel_supports(torch.zeros(1, dtype=torch.bfloat16))  # torch's GRU runs it
        False
        >>> kernel_supports(torch.zeros(1, device="meta"))  # not a CPU tensor
        False
    """
    if tensor.is_cpu and tensor.dtype in _KERNEL_DTYPES:
        if kernel_available():
            return True
        _warn_kernel_missing()
    return False


@functools.cache
def _warn_kernel_missing() -> None:
    warnings.warn(
        f"lightning_gru's compiled kernel failed to import ({kernel_import_error()}): "
        "backend='auto' runs torch's GRU on the CPU instead; rebuild it (in a checkout: "
        "`pip install -e .`, or `make clean install`)",
        RuntimeWarning,
        stacklevel=4,
    )


# torch's flags, looked up once: they are read on every call
_is_tracing = torch._C._is_tracing
_interpreter_stack = torch._C._functorch.peek_interpreter_stack
_any_autocast = torch._C._is_any_autocast_enabled
_is_exporting = getattr(torch.compiler, "is_exporting", lambda: False)  # torch >= 2.6


def torch_only_mode(tensor: Tensor) -> str | None:
    """What, if anything, leaves torch's GRU the one to run on ``tensor`` now: a ``torch.func``
    transform, forward-mode AD, ``torch.jit.trace`` or ``torch.export`` (the kernel's autograd
    Function has no rules for the first two, a trace would keep it as a Python call, and an
    exported program has no graph break to run it in), a dispatch mode or a tensor
    subclass (fake tensors have no memory for the kernel to read, and the others see torch's
    operations only), or autocast on the tensor's device (torch's GRU runs in autocast's lower
    precision)."""
    if _is_exporting():  # first: strict export traces this function and allows no graph break
        return "torch.export"
    if _is_tracing():
        return "torch.jit.trace"
    if not torch.compiler.is_compiling():  # Dynamo traces with fake tensors, inside an
        # interpreter: the kernel's bypass (_gru_eagerly) takes care of both
        if dispatch_mode_active():
            return "a TorchDispatchMode (FakeTensorMode, FlopCounterMode, ...)"
        if type(tensor) is not torch.Tensor and type(tensor) is not torch.nn.Parameter:
            return f"a tensor subclass ({type(tensor).__name__})"
        if _interpreter_stack() is not None:
            return "a torch.func transform"
    if forward_ad._current_level >= 0:
        return "forward-mode AD"
    if _any_autocast() and autocast_enabled(tensor.device.type):  # (device: a new object)
        return "autocast"
    return None


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (``"cpu"``, ``"cuda"``, ...)."""
    if not _any_autocast():
        return False
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def resolve_backend(backend: str, tensor: Tensor) -> str:
    """The backend that will run: ``"cython"`` or ``"torch"``.

    ``"auto"`` takes torch's GRU under autocast, ``torch.func`` transforms, forward-mode AD,
    ``torch.jit.trace`` and ``torch.export`` (see ``torch_only_mode``); ``"cython"`` runs the
    kernel under autocast, in the input's dtype.

    Raises:
        ValueError: for an unknown backend name, ``"cython"`` on a tensor the kernel cannot
            take (CUDA, or a dtype other than float32/float64), or ``"cython"`` under a
            ``torch.func`` transform, forward-mode AD, ``torch.jit.trace`` or ``torch.export``.

    Example:
        >>> import torch
        >>> from lightning_gru.functional import resolve_backend
        >>> x = torch.zeros(1)
        >>> resolve_backend("auto", x), resolve_backend("auto", x.half())
        ('cython', 'torch')
        >>> with torch.autocast("cpu"):  # "auto" leaves autocast to torch's GRU
        ...     resolve_backend("auto", x), resolve_backend("cython", x)
        ('torch', 'cython')
        >>> resolve_backend("cython", x.half())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: backend='cython' runs on CPU float32/float64 tensors only, got a cpu tensor ...
        >>> resolve_backend("cuda", x)
        Traceback (most recent call last):
            ...
        ValueError: backend must be one of ('auto', 'cython', 'torch'), got 'cuda'
    """
    if (backend == "auto" or backend == "cython") and kernel_supports(tensor):
        mode = torch_only_mode(tensor)
        if mode is None or (mode == "autocast" and backend == "cython"):
            return "cython"
        if backend == "cython":
            raise ValueError(
                f"backend='cython' cannot run under {mode}: the kernel has no rule for it; use "
                "backend='auto' (torch's GRU there) or backend='torch'"
            )
        return "torch"
    if backend == "auto" or backend == "torch":
        return "torch"
    if backend == "cython":
        if not kernel_available():
            raise RuntimeError(
                "backend='cython' needs the compiled kernel, which failed to import "
                f"({kernel_import_error()}); rebuild it with `pip install -e .` or use "
                "backend='torch'"
            )
        raise ValueError(
            "backend='cython' runs on CPU float32/float64 tensors only, got a "
            f"{tensor.device.type} tensor of dtype {tensor.dtype}; use backend='auto' "
            "(cuDNN on CUDA) or backend='torch'"
        )
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
    for i, w in enumerate(weights):
        if not isinstance(w, Tensor):  # as torch's GRU (None would fail deep in the checks)
            raise TypeError(
                f"expected Tensor as element {i} in argument 2, but got {type(w).__name__}"
            )
    has_biases = len(weights) == 4 * num_layers * num_directions
    if not has_biases and len(weights) != 2 * num_layers * num_directions:
        raise ValueError(
            f"expected {4 * num_layers * num_directions} weights (or "
            f"{2 * num_layers * num_directions} without biases), got {len(weights)}"
        )
    # no sequences or no hidden units: nothing for the kernel to do, torch's GRU shapes the result
    no_work = hx.dim() == 3 and (hx.size(1) == 0 or hx.size(2) == 0)
    use_torch = resolve_backend(backend, input) == "torch" or no_work
    if not use_torch and not kernel_fits(input, hx, num_directions):
        if backend == "cython":
            raise ValueError(
                "backend='cython' takes calls of fewer than 2**31 elements per buffer (rows x "
                "max(3 * hidden_size, input_size)) and per weight (3 * hidden_size x "
                f"max(hidden_size, input_size)), got input {tuple(input.shape)} and h0 "
                f"{tuple(hx.shape)}; use backend='auto' (torch's GRU for such calls) or "
                "backend='torch'"
            )
        use_torch = True
    if use_torch:
        return _torch_gru(
            input, hx, weights, num_layers, bidirectional, batch_sizes, reset_after,
            has_biases, dropout, training,
        )  # fmt: skip
    if hx.dtype is not input.dtype and autocast_enabled(input.device.type):
        hx = hx.to(input.dtype)  # the kernel runs in the input's dtype: autocast's cast
    if torch.compiler.is_compiling():
        return _gru_eagerly(
            input, hx, weights, num_layers, bidirectional, batch_sizes=batch_sizes,
            reset_after=reset_after, dropout=dropout, training=training, backend=backend,
        )  # fmt: skip
    return cython_gru(
        input, hx, list(weights), num_layers, num_directions, batch_sizes, reset_after,
        has_biases, dropout, training,
    )  # fmt: skip


@torch.compiler.disable
def _gru_eagerly(*args, **kwargs):
    """``gru`` run eagerly, out of Dynamo's graphs (a graph break): the kernel takes raw
    addresses, which the fake tensors of a trace do not have. Here a ``torch.func`` transform
    around the compiled function shows (Dynamo traces without it), and ``resolve_backend``
    sends the call to torch's GRU (or refuses ``"cython"``), as outside ``torch.compile``."""
    return gru(*args, **kwargs)


def _torch_gru(
    input, hx, weights, num_layers, bidirectional, batch_sizes, reset_after, has_biases,
    dropout, training,
):  # fmt: skip
    if batch_sizes is not None:  # torch's GRU trusts them (empty ones crash the interpreter)
        _check_batch_sizes(batch_sizes, input.size(0))
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
    if hx.size(1) == 0:  # no sequences (batch sizes all 0): pack_padded_sequence refuses those
        return output.reshape(0, output.size(-1)), h_n
    return pack_padded_sequence(output, lengths).data, h_n


def _group_weights(weights, has_biases):
    """Flat weights -> one ``(w_ih, w_hh, b_ih, b_hh)`` tuple per layer and direction."""
    step = 4 if has_biases else 2
    groups = []
    for start in range(0, len(weights), step):
        w = list(weights[start : start + step])
        groups.append(tuple(w) if has_biases else (w[0], w[1], None, None))
    return groups
