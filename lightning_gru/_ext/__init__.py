"""The compiled GRU kernels (private) and the BLAS they call.

The kernels call a Fortran-ABI ``sgemm_``/``dgemm_`` through function pointers installed here at
import. The first choice is the BLAS inside torch itself (MKL on x86 Linux wheels): it runs on
torch's own OpenMP thread pool and follows ``torch.set_num_threads``, so the kernel never fights
a second pool for the cores. Where torch exports no BLAS, SciPy's (OpenBLAS) is used through
``scipy.linalg.cython_blas``, limited to one thread when called alongside torch (see
``docs/gru.md`` for the measurements behind this choice).

Before loading them, it checks that this CPU has the instruction sets a native build was
compiled to use (``check_cpu``), and that the sources beside them are those they were built
from (``check_sources``).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
from pathlib import Path

import torch


def _cpu_flags() -> frozenset[str] | None:
    """The flags of this CPU as Linux lists them in /proc/cpuinfo; None where unknown."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return None


def check_cpu(built_for: frozenset[str], flags: frozenset[str] | None) -> None:
    """An ``ImportError`` naming what is missing when this CPU lacks an instruction-set extension
    that the kernel was compiled to use (``-march=native`` on another CPU: a wheel from a pip
    cache shared by machines of different kinds). Loaded, it would stop the interpreter with an
    illegal instruction; refused, ``backend="auto"`` runs torch's GRU instead."""
    missing = sorted(built_for - flags) if flags is not None else []
    if missing:
        raise ImportError(
            "this build of the kernel was compiled (-march=native) for a CPU with "
            f"{', '.join(missing)}, which this CPU lacks; rebuild it on this machine, past pip's "
            "cache (pip install --no-cache-dir --force-reinstall --no-deps, then what you "
            "installed lightning-gru from; make clean install in a checkout), or with "
            "LIGHTNING_GRU_PORTABLE=1 for a build that runs on any x86-64 CPU"
        )


def changed_sources(built_from: dict[str, str], package: Path) -> list[str]:
    """The sources of the compiled modules, by path in ``package``, whose SHA-256 differs from
    the one the build recorded (``built_from``). One not installed (a wheel need not ship the
    kernel's sources) has not changed."""
    changed = []
    for name, digest in built_from.items():
        try:
            source = (package / name).read_bytes()
        except OSError:
            continue
        if hashlib.sha256(source).hexdigest() != digest:
            changed.append(name)
    return changed


def check_sources(built_from: dict[str, str], package: Path) -> None:
    """An ``ImportError`` naming the changed sources when the compiled kernel and glue were
    built from other sources than those beside them: a checkout updated or edited without a
    rebuild, where the old compiled code would run with the new Python code around it (calls
    with arguments it reads otherwise). Refused, ``backend="auto"`` runs torch's GRU instead."""
    changed = changed_sources(built_from, package)
    if changed:
        names = ", ".join(f"{package.name}/{name}" for name in changed)
        raise ImportError(
            f"the compiled kernel and glue were built from other sources: {names} changed since "
            "the build"
        )


try:
    from lightning_gru._ext._native_cpu import BUILT_FOR
except ImportError:  # built before setup.py recorded it
    BUILT_FOR = frozenset()
check_cpu(BUILT_FOR, _cpu_flags())
try:  # (the record holds the builds of every Python version in the tree, by file suffix)
    from lightning_gru._ext._built_from import SOURCES
except ImportError:  # built before setup.py recorded them
    SOURCES = {}
except Exception as error:  # a record cut short
    raise ImportError(f"the build's record of its sources is unreadable ({error!r})") from error
BUILT_FROM = SOURCES.get(importlib.machinery.EXTENSION_SUFFIXES[0], {})
check_sources(BUILT_FROM, Path(__file__).resolve().parents[1])

# (after the check; a from-import of a missing _gru would read "circular import")
import lightning_gru._ext._gru as _gru  # noqa: E402

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
