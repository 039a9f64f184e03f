"""Build the Cython kernels in ``lightning_gru/_ext``.

Compiler directives are set once here. ``LIGHTNING_GRU_DEBUG=1`` rebuilds with ``boundscheck``
and ``wraparound`` on (and ``-O0 -g``) for debugging; ``LIGHTNING_GRU_NO_OPENMP=1`` builds without
OpenMP, which also happens automatically when the compiler does not support it.
The kernels are tuned for the building machine (``-march=native``, when the compiler accepts it);
``LIGHTNING_GRU_PORTABLE=1`` builds for the baseline of the architecture instead (for wheels).
``-fno-math-errno`` lets GCC vectorise the gate loops with glibc's SIMD ``exp``/``tanh`` while
keeping IEEE semantics (NaN and inf propagate as in torch).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("LIGHTNING_GRU_DEBUG", "0") == "1"


def _compiler_has_openmp() -> bool:
    """Whether the C compiler builds and links a program with ``-fopenmp``."""
    if os.environ.get("LIGHTNING_GRU_NO_OPENMP", "0") == "1" or sys.platform == "win32":
        return False
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "omp.c")
        src.write_text("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        result = subprocess.run(
            [*cc.split(), "-fopenmp", str(src), "-o", str(Path(tmp, "omp"))],
            capture_output=True,
        )
        return result.returncode == 0


def _compiler_accepts(flag: str) -> bool:
    cc = os.environ.get("CC", "cc")
    if sys.platform == "win32" or shutil.which(cc.split()[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "flag.c")
        src.write_text("int main(void){return 0;}\n")
        result = subprocess.run(
            [*cc.split(), flag, str(src), "-o", str(Path(tmp, "flag"))], capture_output=True
        )
        return result.returncode == 0


OPENMP = _compiler_has_openmp()
PORTABLE = os.environ.get("LIGHTNING_GRU_PORTABLE", "0") == "1"
compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
if sys.platform != "win32":
    compile_args.append("-fno-math-errno")
if not PORTABLE and not DEBUG and _compiler_accepts("-march=native"):
    compile_args.append("-march=native")
link_args = []
if OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

extensions = [
    Extension(
        f"lightning_gru._ext.{path.stem}",
        [str(path)],
        depends=[str(header) for header in Path("lightning_gru/_ext").glob("*.h")],
        include_dirs=[np.get_include(), "lightning_gru/_ext"],
        libraries=["m"] if sys.platform.startswith("linux") else [],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for path in sorted(Path("lightning_gru/_ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "initializedcheck": DEBUG,
            "cdivision": True,
            "embedsignature": True,
        },
        compile_time_env={"LIGHTNING_GRU_OPENMP": OPENMP},
        annotate=DEBUG,
    ),
)
