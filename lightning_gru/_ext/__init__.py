"""The compiled GRU kernels (private) and the BLAS they call.

The kernels call a Fortran-ABI ``sgemm_``/``dgemm_`` through function pointers installed here at
import. The first choice is the BLAS inside torch itself (MKL on x86 Linux wheels): it runs on
torch's own OpenMP thread pool and follows ``torch.set_num_threads``, so the kernel never fights
a second pool for the cores. Where torch exports no BLAS, SciPy's (OpenBLAS) is used through
``scipy.linalg.cython_blas``, limited to one thread when called alongside torch (see
``docs/gru.md`` for the measurements behind this choice).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

import lightning_gru._ext._gru as _gru  # (a from-import of a missing one reads "circular import")

__all__ = ["BLAS_SOURCE", "advise_huge_pages", "backward", "forward"]

forward = _gru.forward
backward = _gru.backward
advise_huge_pages = _gru.advise_huge_pages


def _torch_blas() -> tuple[int, ...] | None:
    """Addresses of ``sgemm_``/``dgemm_`` exported by torch's CPU library, if any, then of MKL's
    ``MKL_Set_Num_Threads_Local`` and packed-GEMM functions (0 when torch's BLAS is not MKL)."""
    lib_dir = Path(torch.__file__).parent / "lib"
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        path = lib_dir / name
        if not path.exists():
            continue
        try:
            lib = ctypes.CDLL(str(path))
            gemms = (
                ctypes.cast(lib.sgemm_, ctypes.c_void_p).value,
                ctypes.cast(lib.dgemm_, ctypes.c_void_p).value,
            )
        except (OSError, AttributeError):
            return None
        extras = []
        for symbol in (
            "MKL_Set_Num_Threads_Local",
            "cblas_sgemm_pack_get_size",
            "cblas_sgemm_pack",
            "cblas_sgemm_compute",
        ):
            try:
                extras.append(ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value or 0)
            except AttributeError:
                extras.append(0)
        return (*gemms, *extras)
    return None


def _scipy_blas() -> tuple[int, int]:
    from scipy.linalg import cython_blas

    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    capsules = cython_blas.__pyx_capi__
    return tuple(get_pointer(capsules[f], get_name(capsules[f])) for f in ("sgemm", "dgemm"))


def _install_blas() -> str:
    addresses = _torch_blas()
    if addresses is not None and all(addresses[:2]):
        _gru.set_blas(*addresses)
        return "torch"
    _gru.set_blas(*_scipy_blas())
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass
    return "scipy"


BLAS_SOURCE = _install_blas()
