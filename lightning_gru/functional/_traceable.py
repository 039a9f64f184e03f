"""What ``gru()`` and ``GRU.forward`` call before the kernel (private), kept as Python source:
torch.compile and torch.export trace these calls (Dynamo cannot trace a compiled function, and
a strict export allows no graph break), while the build compiles ``_cython.py``, the kernel's
driver, which they never trace.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

try:
    from lightning_gru import _ext
except ImportError as error:  # built without its extension: say so where it matters
    _ext = None
    _IMPORT_ERROR = error
else:
    _IMPORT_ERROR = None


def kernel_available() -> bool:
    """Whether the compiled kernel imported (it does in any installed build)."""
    return _ext is not None


def kernel_import_error() -> str:
    return "" if _IMPORT_ERROR is None else str(_IMPORT_ERROR)


def _cached_constant(shape: tuple[int, ...], value: float, dtype: torch.dtype) -> Tensor:
    """A CPU tensor filled with ``value``, one per shape, value and dtype, for tensors the kernel
    and torch only read. Built afresh while Dynamo traces (it ignores ``lru_cache``, and warns
    that it does), under a dispatch mode such as ``FakeTensorMode`` (whose tensor, cached,
    would reach every later call, in every thread) and under a ``torch.func`` transform (whose
    wrapper, cached, outlives the transform: a later call outside it found a tensor without
    storage)."""
    if (
        torch.compiler.is_compiling()
        or dispatch_mode_active()
        or _functorch_interpreter() is not None
        or math.prod(shape) > 1 << 16
    ):
        return torch.full(shape, value, dtype=dtype, device="cpu")  # (the cache keeps 96)
    return _constant(shape, value, dtype)


dispatch_mode_active = torch._C._len_torch_dispatch_stack  # looked up once: read on every call
_functorch_interpreter = torch._C._functorch.peek_interpreter_stack


@lru_cache(maxsize=96)
def _constant(shape: tuple[int, ...], value: float, dtype: torch.dtype) -> Tensor:
    with torch.inference_mode(False):  # cached: must stay usable outside inference mode
        return torch.full(shape, value, dtype=dtype, device="cpu")  # not a default device's


def _dense_batch_sizes(T: int, B: int) -> Tensor:
    """The batch sizes of T steps of B rows (the kernel takes them as a PackedSequence's)."""
    return _cached_constant((T,), B, torch.int64)


# Default initial states up to this size are cached (see ``zero_state``).
CACHED_ZERO_STATE_BYTES = 1 << 16


def zero_state(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Zeros of ``shape`` with the dtype and device of ``like``: the default initial state.

    Small CPU states are one cached tensor per shape and dtype: nothing writes to an initial
    state (the kernel and torch's GRU only read it, and it is never returned), and at the sizes
    where a call takes tens of microseconds a fresh allocation is a visible part of it.
    """
    if like.is_cpu and math.prod(shape) * like.element_size() <= CACHED_ZERO_STATE_BYTES:
        return _cached_constant(shape, 0, like.dtype)
    return torch.zeros(shape, dtype=like.dtype, device=like.device)


# The kernel indexes its buffers and weights with C ints: it takes calls whose largest buffer,
# rows x max(3H, D*H, I) elements, and largest weight, 3H x max(H, D*H, I), have fewer than
# 2**31 elements (larger ones run on torch's GRU).
KERNEL_MAX_ELEMENTS = 2**31 - 1


def kernel_fits(input: Tensor, hx: Tensor, num_directions: int) -> bool:
    """Whether a call of ``input`` (dense ``(T, B, I)`` or packed ``(N, I)``) is small enough
    for the kernel's indexing."""
    H = hx.shape[-1] if hx.dim() else 0
    layer_input = max(num_directions * H, input.shape[-1] if input.dim() else 0)
    rows = math.prod(input.shape[:-1])
    largest_buffer = rows * max(3 * H, layer_input)
    largest_weight = 3 * H * max(H, layer_input)  # W_hh, or W_ih of the first or a later layer
    return max(largest_buffer, largest_weight) <= KERNEL_MAX_ELEMENTS


def _check_batch_sizes(batch_sizes: Tensor, rows: int) -> int:
    """Validate PackedSequence batch sizes before the kernel trusts them; returns their sum."""
    if batch_sizes.dim() != 1 or batch_sizes.numel() == 0:
        raise RuntimeError("PackedSequence batch_sizes must be a non-empty 1-D tensor")
    if bool((batch_sizes < 0).any()):  # trailing zeros are steps without rows, as in torch
        raise RuntimeError(
            f"PackedSequence batch_sizes must not be negative, got {batch_sizes.tolist()}"
        )
    if bool((batch_sizes[1:] > batch_sizes[:-1]).any()):
        raise RuntimeError(
            f"PackedSequence batch_sizes must be nonincreasing, got {batch_sizes.tolist()}"
        )
    total = int(batch_sizes.sum())
    if total > rows:
        raise RuntimeError(
            f"PackedSequence batch_sizes sum to {total} but its data has only {rows} rows"
        )
    return total
