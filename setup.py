"""Build the Cython kernels in ``lightning_gru/_ext``, and compile the Python glue that calls
them (``lightning_gru/functional/_cython.py``, with Python's semantics).

Compiler directives are set once here. ``LIGHTNING_GRU_DEBUG=1`` builds for a debugger
(``-O0 -g``, the same instruction set as the normal build, Cython's annotated HTML) with
Cython's ``boundscheck``/``wraparound``/``initializedcheck`` on; the kernels index raw pointers,
which those do not check: for memory errors run the debug build under valgrind.
``LIGHTNING_GRU_NO_OPENMP=1`` builds without OpenMP, which also happens automatically when the
compiler does not support it. The kernels are tuned for the building machine
(``-march=native``, when the compiler accepts it); ``LIGHTNING_GRU_PORTABLE=1`` builds for the
baseline of the architecture instead (for wheels). ``-fno-math-errno`` lets GCC vectorise the
gate loops with glibc's SIMD ``exp``/``tanh`` while keeping IEEE semantics (NaN and inf
propagate as in torch).

A build whose configuration (these variables, the compiler) differs from the last one in this
tree recompiles everything, also where the sources have not changed
(``build/lightning-gru-config``).
"""

import hashlib
import importlib.machinery
import os
import pprint
import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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
if not PORTABLE and _compiler_accepts("-march=native"):
    compile_args.append("-march=native")
link_args = []
NATIVE = "-march=native" in compile_args
if OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

extensions = [
    Extension(
        f"lightning_gru._ext.{path.stem}",
        [str(path)],
        depends=[str(header) for header in Path("lightning_gru/_ext").glob("*.h")],
        include_dirs=["lightning_gru/_ext"],
        libraries=["m"] if sys.platform.startswith("linux") else [],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(Path("lightning_gru/_ext").glob("*.pyx"))
]
# The Python glue between torch and the kernel, compiled as it is (Cython's pure Python mode,
# Python's semantics): a small call spends much of its time there (docs/gru.md). The module
# imports from its .py where this build is missing.
GLUE = "lightning_gru/functional/_cython.py"
glue_extension = Extension(
    "lightning_gru.functional._cython", [GLUE], extra_compile_args=["-O0", "-g"] if DEBUG else []
)

# Instruction-set extensions that -march=native can use where the CPU has them (the names of
# Linux's /proc/cpuinfo flags). A native build records those of the building CPU next to the
# kernel; the kernel refuses to load on a CPU without one of them (lightning_gru/_ext/
# __init__.py) instead of stopping the interpreter with an illegal instruction: a wheel moves
# between machines in a pip cache that several share, whatever LIGHTNING_GRU_PORTABLE says.
VECTOR_EXTENSIONS = (
    "ssse3", "sse4_1", "sse4_2", "sse4a", "popcnt", "abm", "movbe", "bmi1", "bmi2", "adx",
    "f16c", "fma", "fma4", "xop", "tbm", "aes", "pclmulqdq", "sha_ni", "avx", "avx2",
    "avx_vnni", "avx_ifma", "avx_vnni_int8", "avx_ne_convert", "avx512f", "avx512dq",
    "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi", "avx512_vbmi2",
    "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_bf16", "avx512_fp16",
    "avx512_vp2intersect", "gfni", "vaes", "vpclmulqdq",
)  # fmt: skip


def _building_cpu_extensions() -> list[str]:
    """The ``VECTOR_EXTENSIONS`` of the CPU this runs on (Linux on x86-64), else none."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            line = next(line for line in cpuinfo if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    flags = set(line.partition(":")[2].split())
    return [name for name in VECTOR_EXTENSIONS if name in flags]


# The extensions the kernel may use: the building CPU's for a native build, none otherwise.
BUILT_FOR = _building_cpu_extensions() if NATIVE else []

# The configuration of this build; the sources' timestamps do not show a change of it. The CPU
# is part of it: a checkout (or a build folder) used on a machine of another kind is rebuilt,
# so that the kernel and its record of BUILT_FOR always come from the same compilation.
CONFIG = (
    f"debug={DEBUG} openmp={OPENMP} portable={PORTABLE} cc={os.environ.get('CC', 'cc')} "
    f"cpu={','.join(BUILT_FOR)}\n"
)
CONFIG_FILE = Path("build", "lightning-gru-config")
CONFIG_CHANGED = not CONFIG_FILE.is_file() or CONFIG_FILE.read_text() != CONFIG


# The sources of the compiled modules, by path in the package: the build records their digests
# beside the kernel, which refuses to load once one differs (lightning_gru/_ext/__init__.py):
# a checkout updated without a rebuild would otherwise run the old compiled glue and kernel
# with the new Python code around them. They are read before compiling, so that a source saved
# during the build shows as changed; and a source whose digest differs from the record is
# compiled again whatever its timestamp says (a copy that kept an older one, `cp -p`).
KERNEL_SOURCES = sorted(
    [*Path("lightning_gru/_ext").glob("*.pyx"), *Path("lightning_gru/_ext").glob("*.h")]
)
SOURCE_DIGESTS = {
    path.relative_to("lightning_gru").as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
    for path in [*KERNEL_SOURCES, Path(GLUE)]
}
# One record for the builds of every Python version in the tree, by the suffix of their files.
EXT_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
SOURCE_RECORD = "_built_from.py"


def _recorded_sources(record: Path) -> dict[str, dict[str, str]]:
    """The digests a record holds, by extension suffix; none where it is missing or unreadable."""
    try:
        builds = runpy.run_path(str(record))["SOURCES"]
    except Exception:  # noqa: BLE001 (missing, or cut short: rebuild)
        return {}
    return {suffix: digests for suffix, digests in builds.items() if isinstance(digests, dict)}


_BUILT_FROM = _recorded_sources(Path("lightning_gru/_ext", SOURCE_RECORD)).get(EXT_SUFFIX, {})
_CHANGED = {  # (a header added or removed counts)
    name
    for name in _BUILT_FROM.keys() | SOURCE_DIGESTS.keys()
    if _BUILT_FROM.get(name) != SOURCE_DIGESTS.get(name)
}
_GLUE_NAME = Path(GLUE).relative_to("lightning_gru").as_posix()
KERNEL_CHANGED = bool(_CHANGED - {_GLUE_NAME})
GLUE_CHANGED = _GLUE_NAME in _CHANGED


class BuildExtRecordingConfig(build_ext):
    """``build_ext`` that recompiles when the configuration changed, then records it, and
    beside the kernel the extensions it was compiled to use and the sources it was built from."""

    def run(self) -> None:
        self.force = self.force or CONFIG_CHANGED
        super().run()
        self.write_cpu_record()
        self.write_source_record()
        CONFIG_FILE.parent.mkdir(exist_ok=True)
        CONFIG_FILE.write_text(CONFIG)

    def write_cpu_record(self) -> None:
        """``_native_cpu.py`` beside the kernel just built (in the tree with ``--inplace``, in
        the build folder for a wheel): the extensions it was compiled to use."""
        self.write_record(
            "_native_cpu.py",
            "# Written by setup.py: the instruction-set extensions (Linux /proc/cpuinfo names)\n"
            "# of the CPU this kernel was compiled for with -march=native; none if portable.\n"
            f"BUILT_FOR = frozenset({sorted(BUILT_FOR)!r})\n",
        )

    def write_source_record(self) -> None:
        """``_built_from.py`` beside the kernel: ``SOURCE_DIGESTS`` for this build's suffix,
        beside those of other Python versions' builds."""
        builds = _recorded_sources(self.record_path(SOURCE_RECORD))
        builds[EXT_SUFFIX] = SOURCE_DIGESTS
        self.write_record(
            SOURCE_RECORD,
            "# Written by setup.py: the SHA-256 of each source of the compiled modules (the\n"
            "# kernel, the glue) as each build compiled them, by the suffix of its files (one\n"
            "# per Python version) and path in the package.\n"
            f"SOURCES = {pprint.pformat(builds, width=100, sort_dicts=True)}\n",
        )

    def record_path(self, name: str) -> Path:
        return Path(self.get_ext_fullpath("lightning_gru._ext._gru")).with_name(name)

    def write_record(self, name: str, text: str) -> None:
        """A record beside the kernel, written whole, then renamed: a build cut short leaves
        the last one, not a module the package fails to import."""
        record = self.record_path(name)
        record.parent.mkdir(parents=True, exist_ok=True)
        partial = record.with_suffix(".partial")
        partial.write_text(text)
        partial.replace(record)


def recipe_data_files() -> list[tuple[str, list[str]]]:
    """The recipes, installed with a wheel under ``<prefix>/share/lightning-gru/recipes`` (see
    ``lightning_gru.recipes.recipes_dir``), so that the demo and the recipes work without a
    checkout."""
    folders: dict[str, list[str]] = {}
    for path in sorted(Path("recipes").rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".md", ".py"):
            folder = Path("share", "lightning-gru", path.parent).as_posix()
            folders.setdefault(folder, []).append(path.as_posix())
    return sorted(folders.items())


setup(
    data_files=recipe_data_files(),
    cmdclass={"build_ext": BuildExtRecordingConfig},
    ext_modules=cythonize(
        extensions,
        force=CONFIG_CHANGED or KERNEL_CHANGED,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "initializedcheck": DEBUG,
            "cdivision": True,
            "embedsignature": True,
        },
        annotate=DEBUG,
    )
    # Python's semantics: negative indices, division, checks as in Python; annotations are not
    # types (Cython would refuse a tuple for a `list` and convert an int for a `float`)
    + cythonize(
        [glue_extension],
        force=CONFIG_CHANGED or GLUE_CHANGED,
        compiler_directives={"language_level": 3, "annotation_typing": False},
    ),
)
