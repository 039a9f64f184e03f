"""GRU forward and backward through time for one layer, float32 and float64 (private).

Every matrix is row-major and lives in memory owned by torch tensors; the Python side
(`lightning_gru.functional`) checks shapes, dtypes and contiguity and passes raw addresses.

Layout (the PackedSequence convention): the rows of a layer's input are the time steps one after
another, step ``t`` holding ``batch_sizes[t]`` rows (nonincreasing), so a dense ``(T, B, I)``
input is the special case ``batch_sizes = [B] * T``. Sequence ``b`` is active at step ``t`` while
``b < batch_sizes[t]``; a sequence that ends keeps its hidden state, and the reverse direction
starts each sequence from ``h0`` at its own last step.

Buffers per direction (N = total rows, D = number of directions, ldy = D * H):
    gates (N, 3H)  forward: the input projection ``x W_ih^T`` (the gate kernels add the biases),
                   overwritten step by step, when training, with what the backward needs:
                   r, z and n (reset_before), or r, z and ``W_hn h + b_hn`` (reset_after: the
                   backward recomputes n from them and the n gate's input projection, which it
                   computes again a chunk of steps at a time); the backward overwrites it in
                   place with the gates' pre-activation gradients.
    n (N, H)       reset_after, training, small calls only (the caller decides): n, which the
                   backward then need not recompute.
    history (N, H) when training, a private copy of this direction's hidden states (the
                   layer output may be edited in place by the caller before the backward).
    y              the layer output (N, ldy).
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from cython cimport floating
from cython.parallel cimport prange

# Recurrent products of at least this many multiply-adds use MKL's packed weights.
cdef long PACK_MIN_MACS = 1 << 15
# Every step reads the packed recurrent weight, and packing it reads and writes all of it once,
# which fewer rows over all steps do not repay (T = 10, B = 1, H = 1024: 4.5 ms packed, 2.3 ms
# not, torch 2.5 ms).
cdef long PACK_MIN_ROWS = 16
# A weight of more floats than this (1 MiB, about a core's L2 cache) is slow to pack, and one to
# three rows per step gain little from the register blocks: such a weight is packed only for 32
# steps or more, and one for the products over all steps only for 64 rows or more.
cdef long LARGE_WEIGHT_FLOATS = 1 << 18
# Below this many recurrent multiply-adds (all steps) a direction runs on one thread.
cdef long PARALLEL_MIN_MACS = 1 << 22
# The backward walks time a chunk of steps at a time, of about an eighth of the rows and at least
# this many floats: a chunk buffer holds, per row, the n gate's input projection (recomputed)
# then the gradient of W_hn h (reset_after), or r * h (reset_before), for the chunk's share of
# W_hn's gradient. (Small reset_after calls keep n instead: see functional/_cython.py.)
cdef long CHUNK_MIN_FLOATS = 1 << 16
cdef enum:
    MAX_THREADS = 64  # most row blocks a direction is split into
    # rows of a step whose bias gradients are summed in the kernel's precision before they go
    # into double totals (add_rows_to_totals)
    SUM_ROWS = 256

cdef extern from "gru_gates.h" nogil:
    # after the state pointers (gates, then hidden products) come the bias vectors
    # rows (3H apart in g and gh, H apart in h and n_out), H, g, gh, bias, h[, n_out]
    void lgru_ra_forward_rows_f(long, int, float *, const float *, const float *, float *)
    void lgru_ra_forward_rows_d(long, int, double *, const double *, const double *, double *)
    void lgru_ra_forward_rows_keep_f(long, int, float *, const float *, const float *, float *,
                                     float *)
    void lgru_ra_forward_rows_keep_d(long, int, double *, const double *, const double *,
                                     double *, double *)
    void lgru_rb_forward_rz_f(int, float *, float *, const float *, const float *,
                              const float *, const float *, const float *, float *)
    void lgru_rb_forward_rz_d(int, double *, double *, const double *, const double *,
                              const double *, const double *, const double *, double *)
    void lgru_rb_forward_n_f(int, const float *, float *, const float *, const float *, float *)
    void lgru_rb_forward_n_d(int, const double *, double *, const double *, const double *,
                             double *)
    void lgru_ra_backward_f(int, float *, float *, float *, float *, float *, const float *,
                            const float *, float *, float *, float *)
    void lgru_ra_backward_d(int, double *, double *, double *, double *, double *,
                            const double *, const double *, double *, double *, double *)
    # rows (g 3H apart, c H apart), H, g, c, b_n
    void lgru_ra_recompute_n_rows_f(long, int, const float *, float *, const float *)
    void lgru_ra_recompute_n_rows_d(long, int, const double *, double *, const double *)
    void lgru_rb_backward_zn_f(int, const float *, float *, float *, float *, const float *,
                               const float *, float *, float *)
    void lgru_rb_backward_zn_d(int, const double *, double *, double *, double *,
                               const double *, const double *, double *, double *)
    void lgru_rb_backward_r_f(int, float *, const float *, float *, const float *, float *,
                              float *)
    void lgru_rb_backward_r_d(int, double *, const double *, double *, const double *,
                              double *, double *)
    void lgru_add_column_sums_f(float *sums, const float *src, long ld, int rows, int cols)
    void lgru_add_column_sums_d(double *sums, const double *src, long ld, int rows, int cols)

cdef extern from "block_gemm.h" nogil:
    int LGRU_HAVE_BLOCK_GEMM
    int LGRU_MAX_DEPTH
    int LGRU_MIN_ROWS_LARGE_WEIGHT
    int LGRU_BLOCK_WEIGHT_GRADIENTS
    int lgru_cpu_is_intel()
    long lgru_block_packed_floats(int K, int N)
    void lgru_block_pack(int K, int N, const float *b, long ldb, bint trans, float *packed)
    void lgru_block_gemm(int M, int N, int K, const float *packed, const float *a, long lda,
                         float *c, long ldc, bint accumulate)
    void lgru_block_gemm_tn(int M, int N, int K, const float *a, long lda, const float *b,
                            long ldb, float *c, long ldc, bint accumulate)
    void lgru_narrow_gemm(int M, int N, int K, const float *a, long lda, const float *bt,
                          long ldbt, float *c, long ldc, bint accumulate)

cdef extern from "huge_pages.h" nogil:
    int lgru_advise_huge_pages(void *address, size_t nbytes)

ctypedef void (*sgemm_fn)(const char *transa, const char *transb, const int *m, const int *n,
                          const int *k, const float *alpha, const float *a, const int *lda,
                          const float *b, const int *ldb, const float *beta, float *c,
                          const int *ldc) noexcept nogil
ctypedef void (*dgemm_fn)(const char *transa, const char *transb, const int *m, const int *n,
                          const int *k, const double *alpha, const double *a, const int *lda,
                          const double *b, const int *ldb, const double *beta, double *c,
                          const int *ldc) noexcept nogil

ctypedef int (*set_threads_fn)(int) noexcept nogil
# MKL's packed GEMM (CBLAS): the recurrent weight is packed once per call instead of once per
# time step, which a plain sgemm does for every product.
ctypedef size_t (*pack_size_fn)(int identifier, int m, int n, int k) noexcept nogil
ctypedef void (*pack_fn)(int layout, int identifier, int trans, int m, int n, int k, float alpha,
                         const float *src, int ld, float *dest) noexcept nogil
ctypedef void (*compute_fn)(int layout, int transa, int transb, int m, int n, int k,
                            const float *a, int lda, const float *b, int ldb, float beta,
                            float *c, int ldc) noexcept nogil
cdef enum:
    CBLAS_ROW_MAJOR = 101
    CBLAS_NO_TRANS = 111
    CBLAS_TRANS = 112
    CBLAS_PACKED = 151
    CBLAS_B_MATRIX = 162

cdef sgemm_fn _sgemm = NULL
cdef pack_size_fn _sgemm_pack_get_size = NULL
cdef pack_fn _sgemm_pack = NULL
cdef compute_fn _sgemm_compute = NULL
cdef dgemm_fn _dgemm = NULL
cdef set_threads_fn _set_blas_threads_local = NULL  # MKL_Set_Num_Threads_Local, if any

# Products below this many multiply-adds run on one thread: threading them gains nothing, and
# every parallel region waits for its slowest thread, which on a busy machine can be a whole
# scheduler tick (milliseconds).
cdef long SERIAL_GEMM_MAX_MACS = 1 << 20
cdef enum:
    K_BLOCK = 128  # rows of a weight gradient summed in registers at a time
# float32 per-step products on the register blocks of block_gemm.h where the build has them.
cdef bint BLOCK_GEMM = True
# Whether the BLAS is MKL on an Intel CPU, where MKL runs kernels tuned for it (set by set_blas):
# there large products go to MKL (see block_recurrent, block_product, block_weight_gradient).
cdef bint TUNED_MKL = False
# With TUNED_MKL, the per-step products of a recurrent weight of more floats than this (256 KiB,
# from 148 hidden units on) go to MKL's packed GEMM: on a 2 vCPU Xeon (AVX-512, 2 MiB L2 per
# core) MKL's measured 0.97-1.25x as fast as the register blocks at 200 hidden units, 1.03-1.43x
# at 256 to 512, 0.98-1.05x at 128 and 0.56-0.98x at 32 and 64 (docs/gru.md).
cdef long TUNED_MKL_MIN_WEIGHT_FLOATS = 1 << 16
# With TUNED_MKL, directions of fewer sequences than this and a recurrent weight over 1 MiB run
# as one block, each step's product split across the threads by MKL (mkl_threads_each_step).
cdef long TUNED_MKL_FEW_ROWS = 8


def set_blas(size_t sgemm_address, size_t dgemm_address, size_t set_threads_local_address=0,
             size_t pack_get_size_address=0, size_t pack_address=0, size_t compute_address=0):
    """Install the Fortran-ABI ``sgemm_``/``dgemm_`` the kernels call (addresses from ctypes);
    optionally MKL's ``MKL_Set_Num_Threads_Local`` (small products on one thread) and its
    ``cblas_sgemm_pack_get_size``/``cblas_sgemm_pack``/``cblas_sgemm_compute``."""
    global _sgemm, _dgemm, _set_blas_threads_local
    global _sgemm_pack_get_size, _sgemm_pack, _sgemm_compute, TUNED_MKL
    _sgemm = <sgemm_fn>sgemm_address
    _dgemm = <dgemm_fn>dgemm_address
    _set_blas_threads_local = <set_threads_fn>set_threads_local_address
    if pack_get_size_address and pack_address and compute_address:
        _sgemm_pack_get_size = <pack_size_fn>pack_get_size_address
        _sgemm_pack = <pack_fn>pack_address
        _sgemm_compute = <compute_fn>compute_address
    else:
        _sgemm_pack_get_size = NULL
        _sgemm_pack = NULL
        _sgemm_compute = NULL
    TUNED_MKL = _sgemm_compute != NULL and lgru_cpu_is_intel() == 1


cdef inline bint blocked_products() noexcept nogil:
    """Whether float32 per-step products run on the register blocks of block_gemm.h (a build
    with AVX-512, or AVX2 and FMA; any hidden size: a last partial vector of columns is masked)
    rather than on BLAS."""
    return BLOCK_GEMM and LGRU_HAVE_BLOCK_GEMM == 1


cdef inline bint large_recurrent_weight(int H) noexcept nogil:
    """Whether W_hh (3H x H) has more than ``LARGE_WEIGHT_FLOATS`` floats."""
    return <long>3 * H * H > LARGE_WEIGHT_FLOATS


cdef inline bint block_recurrent(int B, int H) noexcept nogil:
    """Whether the per-step products of a direction of B sequences run on the register blocks:
    where ``blocked_products()``, within the limits of block_gemm.h (none with AVX-512), and
    with ``TUNED_MKL`` for recurrent weights of at most TUNED_MKL_MIN_WEIGHT_FLOATS."""
    return (blocked_products() and H <= LGRU_MAX_DEPTH
            and not (TUNED_MKL and <long>3 * H * H > TUNED_MKL_MIN_WEIGHT_FLOATS)
            and (B >= LGRU_MIN_ROWS_LARGE_WEIGHT or not large_recurrent_weight(H)))


cdef inline bint mkl_threads_each_step(int B, int H) noexcept nogil:
    """Whether, with TUNED_MKL, a direction of B sequences runs as one block whose per-step
    products MKL splits across the threads, its recurrent weight not packed: a weight over
    1 MiB with fewer than TUNED_MKL_FEW_ROWS sequences. Each of a few rows by such a weight
    reads all of it; two threads that each take some of the rows both read all of it, two that
    each take half of the weight's columns read half each (50 steps of 2 sequences, 512 hidden
    units: inference 3.7x faster, training 2.1x; docs/gru.md)."""
    return TUNED_MKL and B < TUNED_MKL_FEW_ROWS and large_recurrent_weight(H)


cdef inline bint pack_recurrent_weight(int T, int N, int B, int H3, int H,
                                      bint blocked) noexcept nogil:
    """Whether the per-step products of a direction (B rows by H3 columns, N rows over all T
    steps) take a packed recurrent weight: in the register-block format when ``blocked``, else
    in MKL's."""
    if T <= 1 or N < PACK_MIN_ROWS or mkl_threads_each_step(B, H):
        return False
    if large_recurrent_weight(H) and B < 4 and T < 32:
        return False
    return blocked or <long>B * H3 * H >= PACK_MIN_MACS


cdef inline bint block_product(int M, int N, int K) noexcept nogil:
    """Whether a float32 product over all steps, M rows by N columns (K deep), runs on the
    register blocks, where ``blocked_products()``: from 16 columns and 8 rows on
    (for fewer rows, packing op(B) costs as much as the product; one step of one sequence has
    one row), from 64 rows on for a large op(B), and at most ``LGRU_MAX_DEPTH`` deep; with
    ``TUNED_MKL`` only products MKL would run on one thread (at most SERIAL_GEMM_MAX_MACS
    multiply-adds)."""
    return (blocked_products() and N >= 16 and M >= 8 and K <= LGRU_MAX_DEPTH
            and (not TUNED_MKL or <long>M * N * K <= SERIAL_GEMM_MAX_MACS)
            and (M >= 64 or <long>K * N <= LARGE_WEIGHT_FLOATS))


cdef inline bint block_weight_gradient(int M, int N, int K) noexcept nogil:
    """Whether a float32 weight gradient ``A^T B`` (M x N, K rows) runs on the register blocks,
    where ``blocked_products()``: any with at most SERIAL_GEMM_MAX_MACS multiply-adds and one
    operand a vector wide (MKL runs those on one thread, and its call and its copies of the
    operands cost more than the product); larger ones with N a vector wide, where the build
    has ``LGRU_BLOCK_WEIGHT_GRADIENTS`` (see block_gemm.h) and not ``TUNED_MKL``."""
    if not blocked_products() or K <= 0:
        return False
    if <long>M * N * K <= SERIAL_GEMM_MAX_MACS:
        return M >= 16 or N >= 16
    return LGRU_BLOCK_WEIGHT_GRADIENTS == 1 and not TUNED_MKL and N >= 16


cdef inline bint narrow_product(int M, int N, int K) noexcept nogil:
    """Whether a float32 product over all steps with fewer columns than a vector (the input
    gradient of a few features) runs as dot products on one thread, where
    ``blocked_products()``: at most SERIAL_GEMM_MAX_MACS multiply-adds."""
    return blocked_products() and N < 16 and <long>M * N * K <= SERIAL_GEMM_MAX_MACS


cdef float *pack_weight(bint trans, int m, int n, int k, const float *w, int ldw,
                        bint blocked) noexcept nogil:
    """op(w) (k, n) packed for ``packed_gemm`` products with up to m rows, in the register-block
    format of block_gemm.h when ``blocked``, else in MKL's; NULL if unavailable."""
    cdef float *packed
    if m <= 0 or n <= 0 or k <= 0:
        return NULL
    if blocked:
        packed = <float *>malloc(lgru_block_packed_floats(k, n) * sizeof(float))
        if packed != NULL:
            lgru_block_pack(k, n, w, ldw, trans, packed)
        return packed
    if _sgemm_pack == NULL:
        return NULL
    packed = <float *>malloc(_sgemm_pack_get_size(CBLAS_B_MATRIX, m, n, k))
    if packed != NULL:
        _sgemm_pack(CBLAS_ROW_MAJOR, CBLAS_B_MATRIX, CBLAS_TRANS if trans else CBLAS_NO_TRANS,
                    m, n, k, 1.0, w, ldw, packed)
    return packed


cdef inline void packed_gemm(const float *packed, bint blocked, bint trans_b, int M, int N,
                             int K, const floating *A, int lda, const floating *B, int ldb,
                             floating beta, floating *C, int ldc) noexcept nogil:
    """Row-major ``C = A op(B) + beta C`` (beta 0 or 1) with op(B) from ``pack_weight`` when it
    is not NULL."""
    if floating is float:
        if packed != NULL:
            if M <= 0:
                return
            if blocked:
                lgru_block_gemm(M, N, K, packed, A, lda, C, ldc, beta != 0)
            else:
                _sgemm_compute(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_PACKED, M, N, K, A, lda,
                               packed, N, beta, C, ldc)
            return
    gemm(False, trans_b, M, N, K, <floating>1.0, A, lda, B, ldb, beta, C, ldc)


def set_tuning(long parallel_min_macs=-1, long pack_min_macs=-1, long serial_gemm_max_macs=-1,
               int block_gemm=-1, long pack_min_rows=-1, long chunk_min_floats=-1,
               int tuned_mkl=-1, long tuned_mkl_min_weight_floats=-1):
    """Private knobs for benchmarks and tests (-1 keeps a value); returns the current values."""
    global PARALLEL_MIN_MACS, PACK_MIN_MACS, SERIAL_GEMM_MAX_MACS, BLOCK_GEMM, PACK_MIN_ROWS
    global CHUNK_MIN_FLOATS, TUNED_MKL, TUNED_MKL_MIN_WEIGHT_FLOATS
    if parallel_min_macs >= 0:
        PARALLEL_MIN_MACS = parallel_min_macs
    if pack_min_macs >= 0:
        PACK_MIN_MACS = pack_min_macs
    if serial_gemm_max_macs >= 0:
        SERIAL_GEMM_MAX_MACS = serial_gemm_max_macs
    if block_gemm >= 0:
        BLOCK_GEMM = block_gemm
    if pack_min_rows >= 0:
        PACK_MIN_ROWS = pack_min_rows
    if chunk_min_floats >= 0:
        CHUNK_MIN_FLOATS = chunk_min_floats
    if tuned_mkl >= 0:
        TUNED_MKL = tuned_mkl
    if tuned_mkl_min_weight_floats >= 0:
        TUNED_MKL_MIN_WEIGHT_FLOATS = tuned_mkl_min_weight_floats
    return (PARALLEL_MIN_MACS, PACK_MIN_MACS, SERIAL_GEMM_MAX_MACS, int(BLOCK_GEMM),
            PACK_MIN_ROWS, CHUNK_MIN_FLOATS, int(TUNED_MKL), TUNED_MKL_MIN_WEIGHT_FLOATS)


def tuned_mkl():
    """Whether large products go to MKL, tuned for this CPU (MKL as the BLAS, an Intel CPU)."""
    return bool(TUNED_MKL)


def has_block_gemm():
    """Whether this build has the register-block products of block_gemm.h (AVX-512 or AVX2)."""
    return LGRU_HAVE_BLOCK_GEMM == 1


def advise_huge_pages(size_t address, size_t nbytes):
    """Ask Linux for transparent huge pages on a large buffer (see huge_pages.h); True if done."""
    return lgru_advise_huge_pages(<void *>address, nbytes) == 1


def has_blas():
    return _sgemm != NULL and _dgemm != NULL


cdef inline void gemm(bint trans_a, bint trans_b, int M, int N, int K, floating alpha,
                      const floating *A, int lda, const floating *B, int ldb, floating beta,
                      floating *C, int ldc) noexcept nogil:
    """Row-major ``C (M, N) = alpha op(A) op(B) + beta C`` via column-major BLAS (C^T = B^T A^T).

    Products under SERIAL_GEMM_MAX_MACS multiply-adds run on one thread, except, with
    TUNED_MKL, those of an op(B) over 1 MiB: a few rows by such a weight are bound by the rate
    at which one core reads it, and two threads read half each (10 steps of one sequence, 512
    hidden units: inference 2.8x faster)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef Py_ssize_t i, j
    if M <= 0 or N <= 0:
        return
    if K <= 0:  # BLAS would only scale C; do it here and skip its argument checks
        if beta != 1:
            for i in range(M):
                for j in range(N):
                    C[i * ldc + j] = 0 if beta == 0 else beta * C[i * ldc + j]
        return
    cdef int previous_threads = -1
    if (_set_blas_threads_local != NULL and <long>M * N * K < SERIAL_GEMM_MAX_MACS
            and not (TUNED_MKL and <long>K * N > LARGE_WEIGHT_FLOATS)):
        previous_threads = _set_blas_threads_local(1)
    if floating is float:
        _sgemm(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc)
    else:
        _dgemm(&tb, &ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc)
    if previous_threads >= 0:
        _set_blas_threads_local(previous_threads)


cdef inline int row_chunks(int M, long macs, int num_threads, long *rows) noexcept nogil:
    """How many threads share the M rows of a product over all steps (one below
    PARALLEL_MIN_MACS multiply-adds), and in ``rows`` each one's share: whole blocks of 8."""
    cdef int chunks = 1
    if num_threads > 1 and macs >= PARALLEL_MIN_MACS:
        chunks = num_threads if num_threads < MAX_THREADS else MAX_THREADS
    rows[0] = ((M + chunks - 1) // chunks + 7) // 8 * 8
    return chunks


cdef void product(bint trans_b, int M, int N, int K, const floating *A, int lda,
                  const floating *B, int ldb, floating beta, floating *C, int ldc,
                  int num_threads) noexcept nogil:
    """Row-major ``C (M, N) = A op(B) + beta C`` (beta 0 or 1) over all steps at once.

    float32 with ``block_product(M, N, K)``: op(B) packed once and the rows split across threads on
    the register blocks of block_gemm.h, which outrun MKL where it runs its generic kernels
    (docs/gru.md); otherwise, or when the packed copy cannot be allocated, BLAS."""
    cdef float *packed = NULL
    cdef int chunks
    cdef long rows
    cdef Py_ssize_t c, k, n
    if floating is float:
        if narrow_product(M, N, K):
            if trans_b:  # op(B)'s columns are B's rows
                lgru_narrow_gemm(M, N, K, A, lda, B, ldb, C, ldc, beta != 0)
                return
            packed = <float *>malloc(<size_t>N * K * sizeof(float))
            if packed != NULL:
                for k in range(K):
                    for n in range(N):
                        packed[n * K + k] = B[k * ldb + n]
                lgru_narrow_gemm(M, N, K, A, lda, packed, K, C, ldc, beta != 0)
                free(packed)
                return
        if block_product(M, N, K):
            packed = pack_weight(trans_b, M, N, K, B, ldb, True)
        if packed != NULL:
            chunks = row_chunks(M, <long>M * N * K, num_threads, &rows)
            if chunks == 1:
                lgru_block_gemm(M, N, K, packed, A, lda, C, ldc, beta != 0)
            else:
                for c in prange(chunks, num_threads=chunks, schedule="static"):
                    if c * rows < M:
                        lgru_block_gemm(rows if (c + 1) * rows <= M else M - c * rows, N, K,
                                        packed, A + c * rows * lda, lda, C + c * rows * ldc,
                                        ldc, beta != 0)
            free(packed)
            return
    gemm(False, trans_b, M, N, K, <floating>1.0, A, lda, B, ldb, beta, C, ldc)


cdef void block_weight_product(int M, int N, int K, const float *A, int lda, const float *B,
                               int ldb, bint accumulate, float *C, int ldc) noexcept nogil:
    """``C (M, N) = A^T B (+ C)`` on the register blocks, K_BLOCK rows at a time: their float
    sums, of at most that many terms, are added up in C."""
    cdef int k0 = 0, rows
    while k0 < K:
        rows = K - k0 if K - k0 < K_BLOCK else K_BLOCK
        lgru_block_gemm_tn(M, N, rows, A + <Py_ssize_t>k0 * lda, lda, B + <Py_ssize_t>k0 * ldb,
                           ldb, C, ldc, accumulate or k0 > 0)
        k0 += rows


cdef void weight_product(int M, int N, int K, const floating *A, int lda, const floating *B,
                         int ldb, floating beta, floating *C, int ldc,
                         int num_threads) noexcept nogil:
    """Row-major ``C (M, N) = A^T B + beta C`` (beta 0 or 1) for A (K, M) and B (K, N): a weight
    gradient, summed over K rows. float32 with ``block_weight_gradient``: on the register blocks
    of block_gemm.h, A and B read in place (``block_weight_product``), the rows of C split
    across threads from PARALLEL_MIN_MACS multiply-adds on; a small one where N is narrower
    than a vector and M is not as C^T = B^T A. Otherwise BLAS."""
    cdef float *transposed = NULL
    cdef int i, j, chunks
    cdef long rows
    cdef Py_ssize_t c
    if floating is float:
        if block_weight_gradient(M, N, K):
            if N >= 16 or M <= N:
                chunks = row_chunks(M, <long>M * N * K, num_threads, &rows)
                if chunks == 1:
                    block_weight_product(M, N, K, A, lda, B, ldb, beta != 0, C, ldc)
                else:
                    for c in prange(chunks, num_threads=chunks, schedule="static"):
                        if c * rows < M:
                            block_weight_product(rows if (c + 1) * rows <= M else M - c * rows,
                                                 N, K, A + c * rows, lda, B, ldb, beta != 0,
                                                 C + c * rows * ldc, ldc)
                return
            transposed = <float *>malloc(<size_t>M * N * sizeof(float))
            if transposed != NULL:  # C^T (N, M) = B^T A, small (see block_weight_gradient)
                block_weight_product(N, M, K, B, ldb, A, lda, False, transposed, M)
                for i in range(M):
                    for j in range(N):
                        C[i * ldc + j] = (transposed[j * M + i]
                                          + (C[i * ldc + j] if beta != 0 else 0))
                free(transposed)
                return
    gemm(True, False, M, N, K, <floating>1.0, A, lda, B, ldb, beta, C, ldc)


cdef inline void add_column_sums(floating *sums, const floating *src, int ld_src, int rows,
                                 int cols) noexcept nogil:
    if floating is float:
        lgru_add_column_sums_f(sums, src, ld_src, rows, cols)
    else:
        lgru_add_column_sums_d(sums, src, ld_src, rows, cols)


cdef inline void add_to_totals(double *totals, floating *partial, int cols) noexcept nogil:
    """``totals += partial``, then ``partial = 0``."""
    cdef Py_ssize_t j
    for j in range(cols):
        totals[j] += partial[j]
        partial[j] = 0


cdef inline void add_rows_to_totals(double *totals, floating *partial, const floating *src,
                                    int ld_src, int rows, int cols) noexcept nogil:
    """``totals`` += the column sums of ``rows`` rows of ``src`` (a step's share of the bias
    gradients), summed SUM_ROWS rows at a time in the kernel's precision (in ``partial``, zeros
    on entry and on return), each block's sums then added in double: float32 bias gradients
    would lose digits to the sums of many rows, 1.8e-3 relative for a step of a million rows
    summed at once."""
    cdef int r0 = 0
    while r0 < rows:
        add_column_sums(partial, src + <Py_ssize_t>r0 * ld_src, ld_src, min(SUM_ROWS, rows - r0),
                        cols)
        add_to_totals(totals, partial, cols)
        r0 += SUM_ROWS


cdef int split_rows(const int64_t *batch_sizes, int T, int B, int H, int num_threads,
                    Py_ssize_t *bounds) noexcept nogil:
    """Split the B sequences into contiguous row blocks of about equal work, one per thread.

    Sequences are independent, so each block runs its whole time loop on its own thread with no
    synchronisation at all. Returns the number of blocks; block c is rows
    [bounds[c], bounds[c + 1]). One block when the work is too small to share.
    """
    cdef long total = 0, done = 0
    cdef Py_ssize_t b, t = T - 1
    cdef int blocks = num_threads if num_threads < B else B
    cdef int c = 1
    if blocks > MAX_THREADS:
        blocks = MAX_THREADS
    for b in range(T):
        total += batch_sizes[b]
    bounds[0] = 0
    if blocks <= 1 or total * 3 * H * H < PARALLEL_MIN_MACS or mkl_threads_each_step(B, H):
        bounds[1] = B
        return 1
    for b in range(B):  # the length of sequence b is the number of steps with more rows than b
        while t >= 0 and batch_sizes[t] <= b:
            t -= 1
        done += t + 1
        if c < blocks and done * blocks >= total * c:
            bounds[c] = b + 1
            c += 1
    bounds[c] = B
    return c


cdef int64_t *step_offsets(const int64_t *batch_sizes, int T) noexcept nogil:
    """Row offset of every step, plus the total at index T (NULL when out of memory)."""
    cdef int64_t *offsets = <int64_t *>malloc((T + 1) * sizeof(int64_t))
    cdef int t
    if offsets == NULL:
        return NULL
    offsets[0] = 0
    for t in range(T):
        offsets[t + 1] = offsets[t] + batch_sizes[t]
    return offsets


# ----------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------

# ``bias`` (4H) is (b_r, b_z, b_n, b_hn): see ``step_biases``.
cdef inline void rb_forward_rz(int H, floating *g, const floating *gh, const floating *bias,
                               const floating *h, floating *rh) noexcept nogil:
    if floating is float:
        lgru_rb_forward_rz_f(H, g, g + H, gh, gh + H, bias, bias + H, h, rh)
    else:
        lgru_rb_forward_rz_d(H, g, g + H, gh, gh + H, bias, bias + H, h, rh)


cdef inline void rb_forward_n(int H, floating *g, const floating *ghn, const floating *bias,
                              floating *h) noexcept nogil:
    if floating is float:
        lgru_rb_forward_n_f(H, g + H, g + 2 * H, ghn, bias + 2 * H, h)
    else:
        lgru_rb_forward_n_d(H, g + H, g + 2 * H, ghn, bias + 2 * H, h)


cdef inline void ra_forward_rows(
    Py_ssize_t b0, Py_ssize_t b1, int H, floating *g, const floating *gh, const floating *bias,
    floating *h, floating *n_saved, floating *y, int ldy, floating *history,
) noexcept nogil:
    """Rows [b0, b1) of one reset_after step (all of them in one call: see gru_gates.h);
    ``g``, ``n_saved``, ``y`` and ``history`` start at the step; n is kept where ``n_saved``
    is not NULL; ``y`` and ``history`` (which may be NULL) get copies of the new states."""
    cdef Py_ssize_t b
    if floating is float:
        if n_saved != NULL:
            lgru_ra_forward_rows_keep_f(b1 - b0, H, g + b0 * 3 * H, gh + b0 * 3 * H, bias,
                                        h + b0 * H, n_saved + b0 * H)
        else:
            lgru_ra_forward_rows_f(b1 - b0, H, g + b0 * 3 * H, gh + b0 * 3 * H, bias, h + b0 * H)
    else:
        if n_saved != NULL:
            lgru_ra_forward_rows_keep_d(b1 - b0, H, g + b0 * 3 * H, gh + b0 * 3 * H, bias,
                                        h + b0 * H, n_saved + b0 * H)
        else:
            lgru_ra_forward_rows_d(b1 - b0, H, g + b0 * 3 * H, gh + b0 * 3 * H, bias, h + b0 * H)
    for b in range(b0, b1):
        memcpy(y + b * ldy, h + b * H, H * sizeof(floating))
        if history != NULL:
            memcpy(history + b * H, h + b * H, H * sizeof(floating))


cdef inline void rb_forward_rz_rows(
    Py_ssize_t b0, Py_ssize_t b1, int H, floating *g, const floating *gh, const floating *bias,
    const floating *h, floating *rh, int ld_rh,
) noexcept nogil:
    cdef Py_ssize_t b
    for b in range(b0, b1):
        rb_forward_rz(H, g + b * 3 * H, gh + b * 3 * H, bias, h + b * H, rh + b * ld_rh)


cdef inline void rb_forward_n_rows(
    Py_ssize_t b0, Py_ssize_t b1, int H, floating *g, const floating *ghn, const floating *bias,
    floating *h, floating *y, int ldy, floating *history,
) noexcept nogil:
    cdef Py_ssize_t b
    for b in range(b0, b1):
        rb_forward_n(H, g + b * 3 * H, ghn + b * 3 * H, bias, h + b * H)
        memcpy(y + b * ldy, h + b * H, H * sizeof(floating))
        if history != NULL:
            memcpy(history + b * H, h + b * H, H * sizeof(floating))


cdef floating *step_biases(const floating *b_ih, const floating *b_hh, int H,
                           bint reset_after) noexcept nogil:
    """The biases the gate kernels add, (b_r, b_z, b_n, b_hn), 4H (NULL when out of memory).

    b_hh of r and z (and of n when reset_before) only ever appear summed with b_ih, so they are
    folded; b_hn stays apart when reset_after (it is multiplied by r). Zeros without biases.
    """
    cdef floating *bias = <floating *>calloc(4 * H, sizeof(floating))
    cdef Py_ssize_t j
    cdef int folded = 2 * H if reset_after else 3 * H
    if bias == NULL:
        return NULL
    if b_ih != NULL:
        for j in range(3 * H):
            bias[j] = b_ih[j]
    if b_hh != NULL:
        for j in range(folded):
            bias[j] += b_hh[j]
        for j in range(folded, 3 * H):
            bias[H + j] = b_hh[j]  # b_hn, at 3H
    return bias


cdef int forward_time_loop(
    Py_ssize_t b0, Py_ssize_t b1, int T, int H, const int64_t *batch_sizes,
    const int64_t *offsets, const floating *w_hh, const float *packed_rz, const float *packed_n,
    bint blocked, const floating *bias, floating *h, floating *gates, floating *y, int ldy,
    floating *n_saved, floating *history, bint reverse, bint reset_after, bint training,
    bint serial_blas,
) noexcept nogil:
    """The time loop of sequences [b0, b1): their products, gates, outputs and states.

    ``packed_rz`` is W_hh^T packed (all of it when reset_after, its r and z columns otherwise),
    ``packed_n`` W_hn^T; NULL when not packed; ``blocked``: in the register-block format."""
    cdef int H3 = 3 * H
    cdef Py_ssize_t step, t, row0
    cdef int n
    cdef int blas_threads = -1
    cdef floating *hb = h + b0 * H  # the running state of the block
    cdef floating *gh = <floating *>malloc((b1 - b0) * H3 * sizeof(floating))  # (rows, 3H)
    cdef floating *g
    cdef floating *yt
    cdef floating *ht
    if gh == NULL:
        return -1
    if serial_blas and _set_blas_threads_local != NULL:
        blas_threads = _set_blas_threads_local(1)
    for step in range(T):
        t = T - 1 - step if reverse else step
        n = (batch_sizes[t] if batch_sizes[t] < b1 else b1) - b0  # active rows of the block
        if n <= 0:
            continue
        row0 = offsets[t] + b0
        g = gates + row0 * H3
        yt = y + row0 * ldy
        ht = history + row0 * H if history != NULL else NULL
        if reset_after:
            packed_gemm(packed_rz, blocked, True, n, H3, H, hb, H, w_hh, H, <floating>0.0, gh,
                        H3)
            ra_forward_rows(0, n, H, g, gh, bias, hb,
                            n_saved + row0 * H if training and n_saved != NULL else NULL, yt,
                            ldy, ht)
        else:
            # r and z first; then n from W_hn (r * h), a second product that needs r (r * h
            # goes where the n block of the products will be written).
            packed_gemm(packed_rz, blocked, True, n, 2 * H, H, hb, H, w_hh, H, <floating>0.0,
                        gh, H3)
            rb_forward_rz_rows(0, n, H, g, gh, bias, hb, gh + 2 * H, H3)
            packed_gemm(packed_n, blocked, True, n, H, H, gh + 2 * H, H3, w_hh + 2 * H * H, H,
                        <floating>0.0, gh, H3)
            rb_forward_n_rows(0, n, H, g, gh, bias, hb, yt, ldy, ht)
    if blas_threads >= 0:
        _set_blas_threads_local(blas_threads)
    free(gh)
    return 0


cdef int forward_direction(
    const floating *x, int ldx, int I, const int64_t *batch_sizes, const int64_t *offsets,
    int T, int B, int H, const floating *w_ih, const floating *w_hh, const floating *b_ih,
    const floating *b_hh, const floating *h0, floating *y, int ldy, floating *h_n,
    floating *gates, floating *n_saved, floating *history, bint reverse, bint reset_after,
    bint training, int num_threads,
) noexcept nogil:
    """One direction of one layer. ``n_saved`` (N, H) and ``history`` (a private (N, H) copy of
    the states for the backward, so that the returned output may be edited in place) may be
    NULL. Returns -1 when out of memory."""
    cdef int H3 = 3 * H
    cdef int N = offsets[T]
    cdef Py_ssize_t c
    cdef Py_ssize_t bounds[MAX_THREADS + 1]
    cdef int status[MAX_THREADS]
    cdef int blocks, failed = 0
    cdef float *packed_rz = NULL
    cdef float *packed_n = NULL
    cdef bint blocked = False
    cdef floating *bias = step_biases(b_ih, b_hh, H, reset_after)
    if bias == NULL:
        return -1

    product(True, N, H3, I, x, ldx, w_ih, I, <floating>0.0, gates, H3, num_threads)

    memcpy(h_n, h0, <size_t>B * H * sizeof(floating))  # h_n is the running state
    if floating is float:
        blocked = block_recurrent(B, H)
        if pack_recurrent_weight(T, N, B, H3, H, blocked):
            packed_rz = pack_weight(True, B, H3 if reset_after else 2 * H, H, w_hh, H, blocked)
            if not reset_after:
                packed_n = pack_weight(True, B, H, H, w_hh + 2 * H * H, H, blocked)
    blocks = split_rows(batch_sizes, T, B, H, num_threads, bounds)
    if blocks == 1:
        failed = forward_time_loop(0, B, T, H, batch_sizes, offsets, w_hh, packed_rz, packed_n,
                                   blocked, bias, h_n, gates, y, ldy, n_saved, history,
                                   reverse, reset_after, training, False)
    else:
        for c in prange(blocks, num_threads=blocks, schedule="static"):
            status[c] = forward_time_loop(bounds[c], bounds[c + 1], T, H, batch_sizes, offsets,
                                          w_hh, packed_rz, packed_n, blocked, bias, h_n, gates,
                                          y, ldy, n_saved, history, reverse, reset_after,
                                          training, True)
        for c in range(blocks):
            failed = failed | status[c]
    free(packed_rz)
    free(packed_n)
    free(bias)
    return failed


def forward(
    size_t x, int ldx, int I, size_t batch_sizes, int T, int B, int H,
    size_t w_ih, size_t w_hh, size_t b_ih, size_t b_hh, size_t h0, size_t y, int ldy,
    size_t h_n, size_t gates, bint reverse, bint reset_after, bint training,
    bint double_precision, int num_threads=1, size_t n_saved=0, size_t history=0,
):
    """One direction of one layer (see the module docstring for the buffers)."""
    cdef int64_t *offsets
    cdef int status
    if _sgemm == NULL or _dgemm == NULL:
        raise RuntimeError("lightning_gru._ext: no BLAS installed (set_blas was not called)")
    offsets = step_offsets(<const int64_t *>batch_sizes, T)
    if offsets == NULL:
        raise MemoryError()
    with nogil:
        if double_precision:
            status = forward_direction(
                <const double *>x, ldx, I, <const int64_t *>batch_sizes, offsets, T, B, H,
                <const double *>w_ih, <const double *>w_hh, <const double *>b_ih,
                <const double *>b_hh, <const double *>h0, <double *>y, ldy, <double *>h_n,
                <double *>gates, <double *>n_saved, <double *>history, reverse, reset_after,
                training, num_threads)
        else:
            status = forward_direction(
                <const float *>x, ldx, I, <const int64_t *>batch_sizes, offsets, T, B, H,
                <const float *>w_ih, <const float *>w_hh, <const float *>b_ih,
                <const float *>b_hh, <const float *>h0, <float *>y, ldy, <float *>h_n,
                <float *>gates, <float *>n_saved, <float *>history, reverse, reset_after,
                training, num_threads)
    free(offsets)
    if status != 0:
        raise MemoryError()


# ----------------------------------------------------------------------------------------------
# Backward
# ----------------------------------------------------------------------------------------------

cdef inline void ra_backward(int H, floating *g, floating *c, floating *dh_state,
                             const floating *dy, const floating *h_prev,
                             floating *dg) noexcept nogil:
    """``c``: n; then dL/d(W_hn h)."""
    if floating is float:
        lgru_ra_backward_f(H, g, g + H, g + 2 * H, c, dh_state, dy, h_prev, dg, dg + H,
                           dg + 2 * H)
    else:
        lgru_ra_backward_d(H, g, g + H, g + 2 * H, c, dh_state, dy, h_prev, dg, dg + H,
                           dg + 2 * H)


cdef inline void ra_recompute_n_rows(Py_ssize_t b0, Py_ssize_t b1, int H, const floating *g,
                                     floating *c, const floating *b_n) noexcept nogil:
    """n of rows [b0, b1) into ``c``, which held the n gate's input projection less b_n."""
    if floating is float:
        lgru_ra_recompute_n_rows_f(b1 - b0, H, g + b0 * 3 * H, c + b0 * H, b_n)
    else:
        lgru_ra_recompute_n_rows_d(b1 - b0, H, g + b0 * 3 * H, c + b0 * H, b_n)


cdef inline void rb_backward_zn(int H, floating *g, floating *dh_state, const floating *dy,
                                const floating *h_prev, floating *dg,
                                floating *rh) noexcept nogil:
    if floating is float:
        lgru_rb_backward_zn_f(H, g, g + H, g + 2 * H, dh_state, dy, h_prev, dg + 2 * H, rh)
    else:
        lgru_rb_backward_zn_d(H, g, g + H, g + 2 * H, dh_state, dy, h_prev, dg + 2 * H, rh)


cdef inline void rb_backward_r(int H, floating *g, floating *dh_state, const floating *h_prev,
                               floating *dg) noexcept nogil:
    if floating is float:
        lgru_rb_backward_r_f(H, g, g + H, dh_state, h_prev, dg, dg + H)
    else:
        lgru_rb_backward_r_d(H, g, g + H, dh_state, h_prev, dg, dg + H)


cdef inline const floating *previous_state(
    const floating *y, int ldy, const floating *h0, int H, const int64_t *batch_sizes,
    const int64_t *offsets, int T, Py_ssize_t t, Py_ssize_t b, bint reverse,
) noexcept nogil:
    """Row of the hidden state that step ``t`` of sequence ``b`` started from."""
    if reverse:
        if t + 1 < T and b < batch_sizes[t + 1]:
            return y + (offsets[t + 1] + b) * ldy
    elif t > 0:
        return y + (offsets[t - 1] + b) * ldy
    return h0 + b * H


cdef inline const floating *row_gradient(
    const floating *dy, int ld_dy, const floating *dy_fill, const int64_t *offsets,
    Py_ssize_t t, Py_ssize_t b,
) noexcept nogil:
    """Row of the output gradient for step ``t`` of sequence ``b`` (``dy_fill`` without dy)."""
    return dy + (offsets[t] + b) * ld_dy if dy != NULL else dy_fill


cdef inline void backward_rows(
    Py_ssize_t b0, Py_ssize_t b1, int H, Py_ssize_t t, int T, const int64_t *batch_sizes,
    const int64_t *offsets, const floating *y, int ldy, const floating *h0, const floating *dy,
    int ld_dy, const floating *dy_fill, floating *g, floating *c, const floating *b_n,
    floating *dh_state, floating *dg_step, floating *h_prev_buffer, bint reverse,
    bint reset_after, bint n_kept,
) noexcept nogil:
    """Rows [b0, b1) of step ``t``: gate gradients (r's too when reset_after); ``g`` and ``c``
    (the step's rows of the chunk buffer, see ``backward_direction``) start at the step,
    ``dg_step`` at row b0."""
    cdef Py_ssize_t b
    cdef const floating *h_prev
    cdef const floating *dy_row
    if reset_after and not n_kept:
        ra_recompute_n_rows(b0, b1, H, g, c, b_n)
    if h_prev_buffer != NULL:
        for b in range(b0, b1):
            memcpy(h_prev_buffer + (offsets[t] + b) * H,
                   previous_state(y, ldy, h0, H, batch_sizes, offsets, T, t, b, reverse),
                   H * sizeof(floating))
    for b in range(b0, b1):
        h_prev = previous_state(y, ldy, h0, H, batch_sizes, offsets, T, t, b, reverse)
        dy_row = row_gradient(dy, ld_dy, dy_fill, offsets, t, b)
        if reset_after:
            ra_backward(H, g + b * 3 * H, c + b * H, dh_state + b * H, dy_row, h_prev,
                        dg_step + (b - b0) * 3 * H)
        else:
            rb_backward_zn(H, g + b * 3 * H, dh_state + b * H, dy_row, h_prev,
                           dg_step + (b - b0) * 3 * H, c + b * H)


cdef inline void rb_backward_r_rows(
    Py_ssize_t b0, Py_ssize_t b1, int H, Py_ssize_t t, int T, const int64_t *batch_sizes,
    const int64_t *offsets, const floating *y, int ldy, const floating *h0, floating *g,
    floating *dh_state, floating *dg_step, bint reverse,
) noexcept nogil:
    """``dg_step`` starts at row b0."""
    cdef Py_ssize_t b
    for b in range(b0, b1):
        rb_backward_r(H, g + b * 3 * H, dh_state + b * H,
                      previous_state(y, ldy, h0, H, batch_sizes, offsets, T, t, b, reverse),
                      dg_step + (b - b0) * 3 * H)


cdef void hidden_weight_grad(
    floating *dw, int M, const floating *dg, int ld_dg, const floating *y, int ldy,
    const floating *h0, int H, const int64_t *offsets, int T, int B, bint reverse,
    const floating *h_prev_buffer, int ta, int tb, floating beta, int num_threads,
) noexcept nogil:
    """``dw (M, H) = beta dw + sum_t dg[t]^T h_prev[t]`` over the steps [ta, tb), as large GEMMs;
    ``dg`` starts at the first row of step ta.

    With equal batch sizes the previous states are the output shifted by one step (plus h0), so
    no copy is needed; otherwise they were gathered into ``h_prev_buffer`` (N, H).
    """
    cdef int rows = offsets[tb] - offsets[ta]
    cdef int t0 = T - 1 if reverse else 0  # the step that starts from h0
    if h_prev_buffer != NULL:
        weight_product(M, H, rows, dg, ld_dg, h_prev_buffer + offsets[ta] * H, H, beta, dw, H,
                       num_threads)
        return
    if ta <= t0 < tb:  # h0's product first, then those of the states in y
        weight_product(M, H, B, dg + <Py_ssize_t>(t0 - ta) * B * ld_dg, ld_dg, h0, H, beta, dw,
                       H, num_threads)
        if reverse:  # steps [ta, T - 1) started from y's steps [ta + 1, T)
            weight_product(M, H, rows - B, dg, ld_dg, y + <Py_ssize_t>(ta + 1) * B * ldy, ldy,
                           <floating>1.0, dw, H, num_threads)
        else:  # steps [1, tb) started from y's steps [0, tb - 1)
            weight_product(M, H, rows - B, dg + <Py_ssize_t>B * ld_dg, ld_dg, y, ldy,
                           <floating>1.0, dw, H, num_threads)
    else:
        weight_product(M, H, rows, dg, ld_dg,
                       y + <Py_ssize_t>(ta + 1 if reverse else ta - 1) * B * ldy, ldy, beta, dw, H,
                       num_threads)


cdef int backward_time_loop(
    Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t s0, Py_ssize_t s1, int T, int H,
    const int64_t *batch_sizes, const int64_t *offsets, const floating *w_hh,
    const float *packed_h, const float *packed_n, bint blocked, const floating *h0,
    const floating *y, int ldy, const floating *dy, int ld_dy, const floating *dy_fill,
    floating *gates, floating *chunk, Py_ssize_t chunk_row0, const floating *b_n,
    floating *dh_state, floating *h_prev_buffer, double *sums, bint reverse,
    bint reset_after, bint n_kept, bint serial_blas,
) noexcept nogil:
    """Steps [s0, s1) of the reverse time walk (in the walk's order) of sequences [b0, b1): gate
    gradients and the state gradient. ``chunk`` holds the rows of those steps from row
    ``chunk_row0`` on (see ``backward_direction``); ``b_n`` is b_in (reset_after).

    ``packed_h`` is W_hh packed (its r and z rows when reset_before), ``packed_n`` W_hn; NULL
    when not packed; ``blocked``: in the register-block format of block_gemm.h.
    ``sums`` (4H, or NULL) accumulates the block's bias gradients while its rows are in cache
    (step by step, in double): the column sums of the hidden-product gradients (r, z, n:
    b_hh's), then, when reset_after, of the n gate's input-side gradient (b_in's)."""
    cdef int H3 = 3 * H
    cdef Py_ssize_t step, t
    cdef int n
    cdef int blas_threads = -1
    cdef floating *g
    cdef floating *c
    cdef floating *dhb = dh_state + b0 * H
    # the step's hidden-product gradient of the block, (rows, 3H), then its column sums (4H)
    cdef floating *dg_step = <floating *>malloc(((b1 - b0) * H3 + 4 * H) * sizeof(floating))
    cdef floating *step_sums = dg_step + (b1 - b0) * H3
    if dg_step == NULL:
        return -1
    memset(step_sums, 0, 4 * H * sizeof(floating))
    if serial_blas and _set_blas_threads_local != NULL:
        blas_threads = _set_blas_threads_local(1)
    for step in range(s0, s1):
        t = step if reverse else T - 1 - step
        n = (batch_sizes[t] if batch_sizes[t] < b1 else b1) - b0  # active rows of the block
        if n <= 0:
            continue
        g = gates + offsets[t] * H3
        c = chunk + (offsets[t] - chunk_row0) * H
        backward_rows(b0, b0 + n, H, t, T, batch_sizes, offsets, y, ldy, h0, dy, ld_dy, dy_fill,
                      g, c, b_n, dh_state, dg_step, h_prev_buffer, reverse, reset_after, n_kept)
        if sums != NULL and reset_after:
            add_rows_to_totals(sums, step_sums, dg_step, H3, n, H3)
            add_rows_to_totals(sums + H3, step_sums, g + b0 * H3 + 2 * H, H3, n, H)
        if reset_after:
            packed_gemm(packed_h, blocked, False, n, H, H3, dg_step, H3, w_hh, H, <floating>1.0,
                        dhb, H)
        else:
            # d(r*h) = dgn W_hn into dg_step[:, :H], then r's gradient and r*h's path to h.
            packed_gemm(packed_n, blocked, False, n, H, H, dg_step + 2 * H, H3, w_hh + 2 * H * H,
                        H, <floating>0.0, dg_step, H3)
            rb_backward_r_rows(b0, b0 + n, H, t, T, batch_sizes, offsets, y, ldy, h0, g,
                               dh_state, dg_step, reverse)
            if sums != NULL:
                add_rows_to_totals(sums, step_sums, dg_step, H3, n, H3)
            packed_gemm(packed_h, blocked, False, n, H, 2 * H, dg_step, H3, w_hh, H,
                        <floating>1.0, dhb, H)
    if blas_threads >= 0:
        _set_blas_threads_local(blas_threads)
    free(dg_step)
    return 0


cdef int chunk_steps(int T, int N, int B, int H) noexcept nogil:
    cdef long rows = (N + 7) // 8
    cdef long steps
    if rows < CHUNK_MIN_FLOATS // H:
        rows = CHUNK_MIN_FLOATS // H
    steps = rows // B
    if steps < 1:
        return 1
    return T if steps > T else <int>steps


cdef int backward_direction(
    const floating *x, int ldx, int I, const int64_t *batch_sizes, const int64_t *offsets, int T,
    int B, int H, const floating *w_ih, const floating *w_hh, const floating *b_ih,
    const floating *h0, const floating *y, int ldy, const floating *dy, int ld_dy,
    const floating *dh_n, floating *gates, floating *n_kept, bint reverse, bint reset_after,
    bint dense, floating *dx, bint accumulate_dx, floating *dh0, floating *dw_ih,
    floating *dw_hh, floating *db_ih, floating *db_hh, int num_threads,
) noexcept nogil:
    """Gradients of one direction; ``gates`` and ``n_kept`` (the n kept by the forward, or NULL:
    recomputed a chunk of steps at a time) are consumed (overwritten in place)."""
    cdef int H3 = 3 * H
    cdef int N = offsets[T]
    cdef Py_ssize_t c, s0, s1, ta, tb, row0
    cdef Py_ssize_t bounds[MAX_THREADS + 1]
    cdef int status[MAX_THREADS]
    cdef int blocks, failed = 0
    cdef float *packed_h = NULL
    cdef float *packed_n = NULL
    cdef bint blocked = False
    cdef double *sums = NULL  # per block: the bias gradients' column sums (4H)
    # the dy row of every step when dy is absent (zeros) or one value broadcast (ld_dy < 0),
    # then b_in when reset_after (zeros without biases)
    cdef floating *fill = <floating *>calloc(2 * H, sizeof(floating))
    cdef floating *dy_fill = fill
    cdef const floating *b_n = fill + H
    cdef floating *h_prev_buffer = NULL
    cdef int steps = T if n_kept != NULL else chunk_steps(T, N, B, H)
    cdef floating *chunk = n_kept
    cdef floating beta = 0
    cdef int j
    if chunk == NULL:
        chunk = <floating *>malloc(<size_t>steps * B * H * sizeof(floating))
    if fill == NULL or chunk == NULL:
        free(fill)
        if chunk != n_kept:
            free(chunk)
        return -1
    if dy != NULL and ld_dy < 0:
        for j in range(H):
            dy_fill[j] = dy[0]
        dy = NULL
    if b_ih != NULL:
        b_n = b_ih + 2 * H
    if not dense:
        h_prev_buffer = <floating *>malloc(<size_t>N * H * sizeof(floating))
        if h_prev_buffer == NULL:
            free(fill)
            if chunk != n_kept:
                free(chunk)
            return -1

    if dh_n != NULL:
        memcpy(dh0, dh_n, <size_t>B * H * sizeof(floating))  # dh0 is the running state gradient
    else:
        memset(dh0, 0, <size_t>B * H * sizeof(floating))
    if floating is float:
        blocked = block_recurrent(B, H)
        if pack_recurrent_weight(T, N, B, H3, H, blocked):
            packed_h = pack_weight(False, B, H, H3 if reset_after else 2 * H, w_hh, H, blocked)
            if not reset_after:
                packed_n = pack_weight(False, B, H, H, w_hh + 2 * H * H, H, blocked)
    blocks = split_rows(batch_sizes, T, B, H, num_threads, bounds)
    if db_ih != NULL or db_hh != NULL:
        sums = <double *>calloc(blocks * 4 * H, sizeof(double))
        failed = sums == NULL
    s0 = 0
    while s0 < T and not failed:
        s1 = s0 + steps if s0 + steps < T else T
        ta = s0 if reverse else T - s1  # the chunk's steps [ta, tb) are rows [row0, offsets[tb])
        tb = s1 if reverse else T - s0
        row0 = offsets[ta]
        if reset_after and n_kept == NULL:  # the n gate's input projection, without b_in
            product(True, offsets[tb] - row0, H, I, x + row0 * ldx, ldx, w_ih + 2 * H * I, I,
                    <floating>0.0, chunk, H, num_threads)
        if blocks == 1:
            failed = backward_time_loop(0, B, s0, s1, T, H, batch_sizes, offsets, w_hh, packed_h,
                                        packed_n, blocked, h0, y, ldy, dy, ld_dy, dy_fill, gates,
                                        chunk, row0, b_n, dh0, h_prev_buffer, sums, reverse,
                                        reset_after, n_kept != NULL, False)
        else:
            for c in prange(blocks, num_threads=blocks, schedule="static"):
                status[c] = backward_time_loop(
                    bounds[c], bounds[c + 1], s0, s1, T, H, batch_sizes, offsets, w_hh, packed_h,
                    packed_n, blocked, h0, y, ldy, dy, ld_dy, dy_fill, gates, chunk, row0, b_n,
                    dh0, h_prev_buffer, sums + c * 4 * H if sums != NULL else NULL, reverse,
                    reset_after, n_kept != NULL, True)
            for c in range(blocks):
                failed = failed | status[c]
        if failed:
            break
        # W_hn's gradient: sum of dL/d(W_hn h)^T h (reset_after) or dgn^T (r * h) over the chunk
        if reset_after:
            hidden_weight_grad(dw_hh + 2 * H * H, H, chunk, H, y, ldy, h0, H, offsets, T, B,
                               reverse, h_prev_buffer, ta, tb, beta, num_threads)
        else:
            weight_product(H, H, offsets[tb] - row0, gates + row0 * H3 + 2 * H, H3, chunk, H,
                           beta, dw_hh + 2 * H * H, H, num_threads)
        beta = 1
        s0 = s1
    free(packed_h)
    free(packed_n)
    free(fill)
    if chunk != n_kept:
        free(chunk)
    if failed:
        free(sums)
        free(h_prev_buffer)
        return -1

    # Weight and input gradients: large GEMMs over all steps at once.
    if dx != NULL:
        product(False, N, I, H3, gates, H3, w_ih, I, <floating>(1.0 if accumulate_dx else 0.0),
                dx, I, num_threads)
    weight_product(H3, I, N, gates, H3, x, ldx, <floating>0.0, dw_ih, I, num_threads)
    hidden_weight_grad(dw_hh, 2 * H, gates, H3, y, ldy, h0, H, offsets, T, B, reverse,
                       h_prev_buffer, 0, T, <floating>0.0, num_threads)
    if sums != NULL:  # b_hh's and b_ih's gradients differ only in n, when reset_after
        for c in range(1, blocks):
            add_column_sums(sums, sums + c * 4 * H, 0, 1, 4 * H)
        for j in range(H3):
            if db_hh != NULL:
                db_hh[j] = <floating>sums[j]
            if db_ih != NULL:
                db_ih[j] = <floating>sums[H3 + j - 2 * H if reset_after and j >= 2 * H else j]
    free(sums)
    free(h_prev_buffer)
    return 0


def backward(
    size_t x, int ldx, int I, size_t batch_sizes, int T, int B, int H,
    size_t w_ih, size_t w_hh, size_t b_ih, size_t h0, size_t y, int ldy, size_t dy, int ld_dy,
    size_t dh_n, size_t gates, size_t n_kept, bint reverse, bint reset_after,
    size_t dx, bint accumulate_dx, size_t dh0, size_t dw_ih, size_t dw_hh, size_t db_ih,
    size_t db_hh, bint double_precision, int num_threads=1,
):
    """Gradients of one direction of one layer; ``b_ih``/``dy``/``dh_n``/``n_kept``/``dx``/
    ``db_*`` may be 0.

    ``ld_dy = -1``: every element of ``dy`` is ``dy[0]`` (the gradient of ``out.sum()``).

    ``y`` (with ``ldy``) holds the states the forward went through: its ``history`` buffer.
    """
    cdef int64_t *offsets
    cdef int status
    cdef const int64_t *bsz = <const int64_t *>batch_sizes
    cdef bint dense = True
    cdef int t
    if _sgemm == NULL or _dgemm == NULL:
        raise RuntimeError("lightning_gru._ext: no BLAS installed (set_blas was not called)")
    for t in range(T):
        if bsz[t] != B:
            dense = False
    offsets = step_offsets(bsz, T)
    if offsets == NULL:
        raise MemoryError()
    with nogil:
        if double_precision:
            status = backward_direction(
                <const double *>x, ldx, I, bsz, offsets, T, B, H, <const double *>w_ih,
                <const double *>w_hh, <const double *>b_ih, <const double *>h0,
                <const double *>y, ldy, <const double *>dy, ld_dy, <const double *>dh_n,
                <double *>gates, <double *>n_kept, reverse, reset_after, dense, <double *>dx,
                accumulate_dx, <double *>dh0, <double *>dw_ih, <double *>dw_hh, <double *>db_ih,
                <double *>db_hh, num_threads)
        else:
            status = backward_direction(
                <const float *>x, ldx, I, bsz, offsets, T, B, H, <const float *>w_ih,
                <const float *>w_hh, <const float *>b_ih, <const float *>h0, <const float *>y,
                ldy, <const float *>dy, ld_dy, <const float *>dh_n, <float *>gates,
                <float *>n_kept, reverse, reset_after, dense, <float *>dx, accumulate_dx,
                <float *>dh0, <float *>dw_ih, <float *>dw_hh, <float *>db_ih, <float *>db_hh,
                num_threads)
    free(offsets)
    if status != 0:
        raise MemoryError()
