"""The kernel's alternative code paths, forced at small sizes so the parity checks reach them.

By default the kernel splits a batch across threads only for large products and packs the
recurrent weight (MKL) only above a size; at the small shapes of the parity grid neither
happens, and the backward walks time in one chunk of steps. Here the thresholds are set to
zero (and to "never") so every combination of thread blocks, packed weights, serial BLAS and
chunks of steps is compared with the oracle, with and without the register-block products
(float32, where the build has them; column counts that are not multiples of the vector width,
16 floats or 8 on AVX2, end in a masked vector), which also carry the products over all steps
with 16 or more columns (the input projection, the input gradient), split by rows across
threads when the threshold is zero, and the weight gradients (with AVX2 only those below
``serial_gemm_max_macs``) and the input gradient of fewer than 16 features.
"""

import re
from pathlib import Path

import pytest
import torch
from _gru_helpers import DTYPES, RESET_AFTER, Case, check_parity, make_inputs, make_pair

from lightning_gru import _ext
from lightning_gru._ext import _gru
from lightning_gru.functional import _cython

NEVER = 1 << 62
# (parallel_min_macs, pack_min_macs, serial_gemm_max_macs, block_gemm, pack_min_rows,
#  chunk_min_floats, tuned_mkl, tuned_mkl_min_weight_floats): chunk_min_floats 0 walks the
#  backward in chunks of an eighth of the rows (one step each at these sizes) and recomputes n
#  (reset_after), NEVER walks it in one chunk and keeps n; tuned_mkl 0 is the choice of every
#  CPU but Intel's (the register blocks wherever the build has them)
PATHS = [
    pytest.param((0, 0, 0, 0, 0, 0, 0, NEVER), id="blocks+packed"),
    pytest.param((0, NEVER, 0, 0, 0, 0, 0, NEVER), id="blocks"),
    pytest.param((NEVER, 0, 0, 0, 0, 0, 0, NEVER), id="packed"),
    pytest.param((NEVER, NEVER, NEVER, 0, 0, NEVER, 0, NEVER), id="one-block-threaded-blas"),
    pytest.param((0, NEVER, 0, 1, 0, 0, 0, NEVER), id="blocks+register-blocks"),
    pytest.param((NEVER, NEVER, NEVER, 1, 0, 0, 0, NEVER), id="one-block+register-blocks"),
    # the register-block build with too few rows to pack the recurrent weight: BLAS per step
    pytest.param((NEVER, 0, NEVER, 1, NEVER, NEVER, 0, NEVER), id="register-blocks-unpacked"),
    # the weight gradients on the register blocks with their rows split across the threads
    # (with AVX2 only small ones go to the blocks, and no default threshold splits those)
    pytest.param((0, NEVER, NEVER, 1, 0, 0, 0, NEVER), id="blocks+small-weight-gradients-split"),
    # a register-block build where MKL is tuned for the CPU (Intel): the per-step products on
    # MKL's packed weight (BLAS where torch's BLAS is not MKL) and every product over all steps
    # and weight gradient above serial_gemm_max_macs (here all) on BLAS
    pytest.param((0, 0, 0, 1, 0, 0, 1, 0), id="tuned-mkl"),
]
LAYOUTS = [
    pytest.param(Case(T=6, B=9, I=5, H=12, layout="packed"), id="packed-unsorted"),
    pytest.param(Case(T=6, B=9, I=5, H=12, num_layers=2, bidirectional=True), id="dense-2L-bi"),
    pytest.param(Case(T=4, B=1, I=3, H=8), id="B1"),
    pytest.param(Case(T=6, B=19, I=5, H=32, layout="packed"), id="packed-unsorted-H32"),
    pytest.param(Case(T=5, B=9, I=4, H=16, num_layers=2, bidirectional=True), id="dense-2L-bi-H16"),
    # I = 16: the input gradient on the register blocks too; 9 rows, a full block of rows (8, or
    # 6 on AVX2) and the rest (fewer than 8 rows in all go to BLAS); the per-step products of 3
    # rows stay on the blocks
    pytest.param(Case(T=3, B=3, I=16, H=16), id="I16-nine-rows"),
    # 3 rows over all steps: the input projection and gradient go to BLAS, not the blocks
    pytest.param(Case(T=1, B=3, I=16, H=16), id="I16-three-rows"),
    # column counts that are not multiples of 16 or 8 (3H = 36, I = 20): a masked last vector
    pytest.param(Case(T=4, B=11, I=20, H=12, layout="packed"), id="I20-H12-masked-columns"),
    pytest.param(
        Case(T=5, B=9, I=4, H=20, num_layers=2, bidirectional=True, layout="packed"),
        id="H20-2L-bi-packed",
    ),
    # 46 rows: backward chunks of 3 steps, the last of 2 (with chunk_min_floats 0)
    pytest.param(Case(T=23, B=2, I=5, H=12, bidirectional=True), id="chunks-of-3-steps-bi"),
    # 560 rows: small weight gradients on the register blocks (serial_gemm_max_macs NEVER) sum
    # 128 rows at a time into the same result; H = 8 and I = 3 are narrower than a vector
    # (the transposed weight gradients, the input gradient as dot products)
    pytest.param(Case(T=40, B=14, I=3, H=8, bidirectional=True), id="560-rows-narrow"),
    # 168 rows, 16 and 20 columns: weight gradients summed 128 rows at a time, split across
    # the threads where the thresholds are zero
    pytest.param(Case(T=12, B=14, I=20, H=16, bidirectional=True), id="168-rows-H16"),
    # 49 rows over all steps split across two threads in whole blocks of 8 rows: 32 and 17
    pytest.param(Case(T=7, B=7, I=16, H=11), id="49-rows"),
]


@pytest.fixture
def kernel_tuning():
    """``tune(values, num_threads=2)`` sets the kernel's thresholds and torch's thread count for
    one test; both are restored afterwards."""
    saved, threads = _gru.set_tuning(), torch.get_num_threads()
    keep_n = _cython.KEEP_N_MAX_FLOATS

    def tune(values, num_threads=2):
        torch.set_num_threads(num_threads)
        _gru.set_tuning(*values)
        _cython.KEEP_N_MAX_FLOATS = values[5]

    yield tune
    _gru.set_tuning(*saved)
    _cython.KEEP_N_MAX_FLOATS = keep_n
    torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("case", LAYOUTS)
@pytest.mark.parametrize("path", PATHS)
def test_every_kernel_path_matches_the_oracle(kernel_tuning, path, case, reset_after, dtype):
    kernel_tuning(path)
    case = case.with_(reset_after=reset_after)
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize(
    "threads",
    [
        # the blocks after the first add their bias-gradient sums into the first one's
        pytest.param(3, id="3-threads"),
        pytest.param(4, id="4-threads"),
        # more threads than MAX_THREADS (64): at most that many thread blocks and row chunks
        pytest.param(72, id="72-threads"),
    ],
)
def test_more_than_two_threads(kernel_tuning, threads, reset_after, dtype):
    """Machines with more cores split a call into more thread blocks than the two that every
    other test here uses."""
    kernel_tuning((0, NEVER, 0, 0, 0, 0, 0, NEVER), threads)
    case = Case(T=5, B=threads if threads > 64 else 9, I=4, H=12, layout="packed")
    case = case.with_(reset_after=reset_after)
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["dense", "packed"])
def test_kept_n_with_thread_blocks(kernel_tuning, layout, dtype):
    """A reset_after forward split into thread blocks that keeps n for the backward, each block
    at its own rows (a call small enough to keep n by default is too small to split, and the
    PATHS that split recompute n)."""
    kernel_tuning((0, NEVER, 0, 0, 0, NEVER, 0, NEVER))
    case = Case(T=6, B=9, I=5, H=12, layout=layout)
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


def test_tuning_knobs_round_trip(kernel_tuning):
    before = _gru.set_tuning()
    assert _gru.set_tuning(1, 2, 3, 0, 4, 5, 1, 6) == (1, 2, 3, 0, 4, 5, 1, 6)
    assert _gru.set_tuning(*before) == before


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Case(T=40, B=16, I=8, H=128, bidirectional=True), id="dense-bi-640-rows"),
        pytest.param(Case(T=40, B=16, I=8, H=192, layout="packed"), id="packed-365-rows"),
    ],
)
def test_default_thresholds_recompute_n_in_chunks(case, reset_after, dtype):
    """With the default thresholds these calls are too large to keep n (more than 64K floats
    per direction), so the backward recomputes it, in two chunks of steps."""
    case = case.with_(reset_after=reset_after)
    inputs = make_inputs(case, dtype)
    rows = case.T * case.B if inputs.lengths is None else sum(inputs.lengths)
    assert not _cython.keeps_n(rows, case.H, True)
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, inputs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize(
    "case",
    [
        # a recurrent weight over 1 MiB (3H x H > 2**18 floats) with 4 sequences and 32 steps:
        # packed for the register blocks with AVX-512, left to MKL with AVX2 (fewer than 8)
        pytest.param(Case(T=32, B=4, I=3, H=300), id="large-weight-4-sequences"),
        # an input projection 1100 deep: on the blocks with AVX-512, on MKL with AVX2 (> 1024)
        pytest.param(Case(T=4, B=4, I=1100, H=16, layout="packed"), id="1100-deep-input"),
    ],
)
def test_default_thresholds_where_the_builds_differ(case, reset_after, dtype):
    """Shapes that block_gemm.h's limits send to MKL on one instruction set and to the register
    blocks on the other, with the default thresholds."""
    case = case.with_(reset_after=reset_after)
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


@pytest.mark.parametrize("tuned_mkl", [pytest.param(0, id="blocks"), pytest.param(1, id="mkl")])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Case(T=20, B=16, I=300, H=300), id="16-sequences"),
        # 340 rows in 43 blocks of 8 and 7 rows: chunks of 16 blocks starting mid-way through
        # the longer blocks (rows 128 and 256)
        pytest.param(Case(T=20, B=17, I=300, H=300), id="17-sequences"),
        # fewer than 8: with tuned_mkl one block, the weight not packed, MKL's threads per step
        pytest.param(Case(T=20, B=3, I=300, H=300, layout="packed"), id="3-sequences-packed"),
    ],
)
def test_operands_larger_than_l2(kernel_tuning, tuned_mkl, reset_after, case):
    """float32 products whose op(B) has more than 2**18 floats (1 MiB): on the register blocks
    (where the build has them) their rows are taken a chunk at a time, 112 rows of 300 or 40 of
    900 deep, and each column group passes all of a chunk's blocks; with ``tuned_mkl`` (the
    default on Intel CPUs) they go to MKL instead."""
    _gru.set_tuning(tuned_mkl=tuned_mkl)
    case = case.with_(reset_after=reset_after)
    oracle, ours = make_pair(case, torch.float32)
    check_parity(oracle, ours, case, make_inputs(case, torch.float32), torch.float32)


def _cpu_vendor() -> str | None:
    try:
        match = re.search(r"^vendor_id\s*:\s*(\S+)", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        return None
    return match and match.group(1)


@pytest.mark.skipif(_cpu_vendor() is None, reason="no vendor_id in /proc/cpuinfo (not Linux x86)")
def test_large_products_go_to_mkl_where_it_is_tuned_for_the_cpu(kernel_tuning):
    """``tuned_mkl`` (see test_operands_larger_than_l2) is chosen when the BLAS is installed:
    on where torch's BLAS is MKL (with its packed GEMM) and the CPU is Intel's."""
    _gru.set_tuning(tuned_mkl=not _gru.tuned_mkl())
    _ext._install_blas()
    mkl = _ext.BLAS_SOURCE == "torch" and torch.backends.mkl.is_available()
    assert _gru.tuned_mkl() == (mkl and _cpu_vendor() == "GenuineIntel")
