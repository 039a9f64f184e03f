/* The time loop's matrix products on register blocks, float32 (private).
 *
 * Every step multiplies 16 to 64 rows per thread (the batch's share) by a weight of a few
 * hundred columns. MKL's packed GEMM, called once per step, spends ~15% of such a
 * product re-copying the rows for every block of columns (a packed left operand did not help).
 * Here op(B) is packed once per call and C (M, N) = A (M, K) op(B) (+ C) is computed in
 * registers, a block of rows by a group of column vectors (the last group may be narrower):
 * - AVX-512 (32 registers of 16 floats): 8 rows by 48 columns, 24 accumulators, 3 loads and
 *   8 broadcasts per 24 FMAs;
 * - AVX2 with FMA (16 registers of 8 floats): 6 rows by 16 columns, 12 accumulators, 2 loads and
 *   6 broadcasts per 12 FMAs (4 rows by 24 columns, which fills all 16 registers, measured
 *   25-40% slower on Zen 2).
 * Needs a build for one of the two; elsewhere the stubs below are never called. When N is not
 * a multiple of the vector width, the packed op(B) is padded with zero columns and the last
 * vector of C is loaded and stored under a mask.
 * The same blocks, rows split across threads, serve the input projection of all steps and the
 * input gradient (`product` in _gru.pyx), where MKL's generic kernels are slower still, and,
 * reading A transposed and B in place, the weight gradients (`weight_product`): small ones,
 * where MKL's call and its copies of the operands cost more than the product, and with AVX-512
 * all of them. (On Intel CPUs MKL runs kernels tuned for them, and _gru.pyx sends it the large
 * products: TUNED_MKL.)
 */
#ifndef LIGHTNING_GRU_BLOCK_GEMM_H
#define LIGHTNING_GRU_BLOCK_GEMM_H

/* 1 on an Intel CPU (where MKL runs kernels tuned for it), else 0 (or unknown). */
static inline int lgru_cpu_is_intel(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") ? 1 : 0;
#else
    return 0;
#endif
}

#if defined(__GNUC__) && !defined(__clang__) && \
    (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#define LGRU_HAVE_BLOCK_GEMM 1
#include <immintrin.h>

/* Rows per block, floats per vector, vectors per column group; and where MKL does better
 * (_gru.pyx asks): products deeper than LGRU_MAX_DEPTH, and per-step products of a large
 * weight with fewer than LGRU_MIN_ROWS_LARGE_WEIGHT rows per step. With AVX2, blocks of one to
 * a few rows keep too few FMAs in flight while MKL runs such a product on both threads (one
 * sequence of 100 steps, 1024 hidden units: 0.75x in inference on the blocks), and packing the
 * transposed W_ih of 4096 input features cost as much as its product (0.59x). With AVX-512
 * neither limit was needed. */
#if defined(__AVX512F__)
enum { LGRU_ROWS = 8, LGRU_UNITS = 16, LGRU_GROUP = 3 };
enum { LGRU_MAX_DEPTH = 1 << 30, LGRU_MIN_ROWS_LARGE_WEIGHT = 1 };
#else
enum { LGRU_ROWS = 6, LGRU_UNITS = 8, LGRU_GROUP = 2 };
enum { LGRU_MAX_DEPTH = 1024, LGRU_MIN_ROWS_LARGE_WEIGHT = 8 };
#endif
/* Whether the weight gradients of any size run on the blocks (lgru_block_gemm_tn), not only
 * small ones: measured faster than MKL with AVX-512 (an AMD EPYC, Zen 4); with AVX2 slower
 * (Zen 2; Zen 3: training steps 0.93-0.97x at the time machine and IMDb sizes). */
#if defined(__AVX512F__)
enum { LGRU_BLOCK_WEIGHT_GRADIENTS = 1 };
#else
enum { LGRU_BLOCK_WEIGHT_GRADIENTS = 0 };
#endif

/* Floats of A's rows kept in L2 while op(B) passes (128 KiB: a quarter of Zen 2's L2) */
enum { LGRU_CHUNK_FLOATS = 1 << 15, LGRU_L2_WEIGHT_FLOATS = 1 << 18 };

/* op(B)^T is read this many floats (a 64-byte cache line) of a row at a time when packed */
enum { LGRU_PACK_DEPTH = 16 };

/* Vectors in the column group starting at j0: LGRU_GROUP, or fewer in the last group. */
static inline int lgru_group_vectors(int N, int j0) {
    const int V = (N - j0 + LGRU_UNITS - 1) / LGRU_UNITS;
    return V < LGRU_GROUP ? V : LGRU_GROUP;
}

/* Floats of op(B) (K, N) packed by lgru_block_pack: N rounded up to whole vectors. */
static long lgru_block_packed_floats(int K, int N) {
    return (long)K * ((N + LGRU_UNITS - 1) / LGRU_UNITS * LGRU_UNITS);
}

/* op(B) (K, N) packed: column group j0 (V vectors wide) at offset j0 * K, then per k the
 * V vectors of op(B)[k, j0 ..], zero past column N. op(B) = b (K, N) row-major, or
 * b^T with trans. */
static void lgru_block_pack(int K, int N, const float *b, long ldb, int trans, float *packed) {
    for (int j0 = 0; j0 < N; j0 += LGRU_GROUP * LGRU_UNITS) {
        const int W = lgru_group_vectors(N, j0) * LGRU_UNITS; /* packed width of the group */
        const int n = N - j0 < W ? N - j0 : W;                 /* of which real columns */
        float *group = packed + (long)j0 * K;
        if (!trans) {
            for (int k = 0; k < K; k++) {
                const float *src = b + (long)k * ldb + j0;
                float *dst = group + (long)k * W;
                for (int j = 0; j < n; j++) dst[j] = src[j];
                for (int j = n; j < W; j++) dst[j] = 0.0f;
            }
            continue;
        }
        /* b^T: 16 consecutive k of each row of b at a time, so that b is read a cache line at
         * a time. (One k for all the group's rows per pass read one float of 48 lines whose
         * addresses, a power-of-two row length apart, share an L1 set: ~2 GB/s.) */
        for (int k0 = 0; k0 < K; k0 += LGRU_PACK_DEPTH) {
            const int kn = K - k0 < LGRU_PACK_DEPTH ? K - k0 : LGRU_PACK_DEPTH;
            float *tile = group + (long)k0 * W;
            for (int j = 0; j < n; j++) {
                const float *src = b + (long)(j0 + j) * ldb + k0;
                for (int kk = 0; kk < kn; kk++) tile[(long)kk * W + j] = src[kk];
            }
            for (int kk = 0; kk < kn; kk++)
                for (int j = n; j < W; j++) tile[(long)kk * W + j] = 0.0f;
        }
    }
}

#if defined(__AVX512F__)
typedef __m512 lgru_vec;
typedef __mmask16 lgru_mask;
#define lgru_zero _mm512_setzero_ps
#define lgru_load _mm512_loadu_ps
#define lgru_set1 _mm512_set1_ps
#define lgru_fmadd _mm512_fmadd_ps
#define lgru_load_masked(p, mask) _mm512_maskz_loadu_ps(mask, p)
#define lgru_sum _mm512_reduce_add_ps

/* A mask of the first `tail` (1 to 16) floats of a vector. */
static inline lgru_mask lgru_tail_mask(int tail) {
    return tail >= LGRU_UNITS ? 0xFFFF : (__mmask16)((1u << tail) - 1);
}

/* out <- value (+ out with accumulate); the last vector of a row under the mask `last`. */
static inline __attribute__((always_inline)) void lgru_store(float *out, lgru_vec value,
                                                             int last_vector, lgru_mask last,
                                                             int accumulate) {
    const __mmask16 mask = last_vector ? last : (__mmask16)0xFFFF;
    _mm512_mask_storeu_ps(
        out, mask, accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(mask, out), value) : value);
}
#else /* AVX2 with FMA */
typedef __m256 lgru_vec;
typedef __m256i lgru_mask;
#define lgru_zero _mm256_setzero_ps
#define lgru_load _mm256_loadu_ps
#define lgru_set1 _mm256_set1_ps
#define lgru_fmadd _mm256_fmadd_ps
#define lgru_load_masked(p, mask) _mm256_maskload_ps(p, mask)

/* The sum of a vector's floats. */
static inline float lgru_sum(lgru_vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* A mask of the first `tail` (1 to 8) floats of a vector. */
static inline lgru_mask lgru_tail_mask(int tail) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* out <- value (+ out with accumulate); the last vector of a row under the mask `last` (a
 * masked move is slow on AMD: the other vectors are stored plainly). */
static inline __attribute__((always_inline)) void lgru_store(float *out, lgru_vec value,
                                                             int last_vector, lgru_mask last,
                                                             int accumulate) {
    if (last_vector) {
        _mm256_maskstore_ps(
            out, last, accumulate ? _mm256_add_ps(_mm256_maskload_ps(out, last), value) : value);
    } else {
        _mm256_storeu_ps(out, accumulate ? _mm256_add_ps(_mm256_loadu_ps(out), value) : value);
    }
}
#endif

/* Rows [0, R) by vectors [0, V) of C; when `partial`, the last vector is stored under the mask
 * `last` (only there: on Zen 2, storing every group's last vector under a full mask made the
 * per-step products of 16 hidden units 1.7x slower, and the input projection of 100 features
 * 1.12x). With `tn`, C = A^T B: `a` is A (K, M) and `panel` B (K, N) from the group's first
 * column, both row-major and unpacked, B's rows `ldb` apart (its last vector loaded under the
 * mask when `partial`: the row may end there). */
static inline __attribute__((always_inline)) void lgru_block(
    const int tn, const int R, const int V, int K, const float *restrict panel, long ldb,
    const float *restrict a, long lda, float *restrict c, long ldc, int accumulate,
    lgru_mask last, int partial) {
    lgru_vec acc[LGRU_ROWS][LGRU_GROUP];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) {
            acc[r][v] = lgru_zero();
        }
    }
    for (int k = 0; k < K; k++) {
        lgru_vec w[LGRU_GROUP];
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) {
            if (!tn) {
                w[v] = lgru_load(panel + ((long)k * V + v) * LGRU_UNITS);
            } else if (partial && v == V - 1) {
                w[v] = lgru_load_masked(panel + (long)k * ldb + v * LGRU_UNITS, last);
            } else {
                w[v] = lgru_load(panel + (long)k * ldb + v * LGRU_UNITS);
            }
            /* kept in a register: for blocks of 1 to 4 rows GCC otherwise folded this load into
             * every row's FMA, which made a 4-row block load-bound, 1.5x slower on Zen 2 */
            __asm__("" : "+v"(w[v]));
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const lgru_vec x = lgru_set1(tn ? a[(long)k * lda + r] : a[r * lda + k]);
#pragma GCC unroll 3
            for (int v = 0; v < V; v++) {
                acc[r][v] = lgru_fmadd(x, w[v], acc[r][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) {
            lgru_store(c + r * ldc + v * LGRU_UNITS, acc[r][v], partial && v == V - 1, last,
                       accumulate);
        }
    }
}

/* C (M, N) = A op(B) (+ C with accumulate) with op(B) packed by lgru_block_pack in `b`, or with
 * `tn`, A^T B for A (K, M) and B (K, N) unpacked in `b`, its rows `ldb` apart. */
static inline __attribute__((always_inline)) void lgru_block_rows(
    const int tn, int M, int N, int K, const float *b, long ldb, const float *a, long lda,
    float *c, long ldc, int accumulate) {
    /* as few blocks as full ones would take, of nearly equal rows (16 rows: 6, 5, 5, not
     * 6, 6, 4; 32: 6, 6, 5, 5, 5, 5, not 6, 6, 6, 6, 6, 2): a block of few rows has too few
     * accumulators to hide the FMA latency */
    const int blocks = (M + LGRU_ROWS - 1) / LGRU_ROWS;
    const int base = blocks ? M / blocks : 0, longer = blocks ? M % blocks : 0;
    /* rows taken a chunk at a time, each column group for all the chunk's blocks: the chunk's
     * rows of A stay in the core's L2 while op(B) passes once per chunk (a block at a time, all
     * of op(B) passed once per block: a weight larger than L2 came from L3 for every 8 rows) */
    const int chunk_blocks = tn || (long)K * N <= LGRU_L2_WEIGHT_FLOATS
                                 ? 1
                                 : (int)(LGRU_CHUNK_FLOATS / (base * (long)K) + 1);
    for (int blk0 = 0; blk0 < blocks; blk0 += chunk_blocks) {
        const int blk1 = blk0 + chunk_blocks < blocks ? blk0 + chunk_blocks : blocks;
        const int r0 = blk0 * base + (blk0 < longer ? blk0 : longer); /* the chunk's first row */
        for (int j0 = 0; j0 < N; j0 += LGRU_GROUP * LGRU_UNITS) {
            const int V = lgru_group_vectors(N, j0);
            const int tail = N - j0 - (V - 1) * LGRU_UNITS;  /* columns of the last vector */
            const lgru_mask last = lgru_tail_mask(tail);
            const int partial = tail < LGRU_UNITS;            /* the group ends past column N */
            const float *panel = tn ? b + j0 : b + (long)j0 * K;
            for (int blk = blk0, r = r0; blk < blk1; blk++) {
                const int R = base + (blk < longer);
                const float *a_rows = tn ? a + r : a + (long)r * lda;
                float *c_rows = c + (long)r * ldc;
                switch (R * 4 + V) {
#define LGRU_CASE(RR, VV)                                                                      \
    case RR * 4 + VV:                                                                          \
        lgru_block(tn, RR, VV, K, panel, ldb, a_rows, lda, c_rows + j0, ldc, accumulate, last, \
                   partial);                                                                   \
        break;
#if defined(__AVX512F__)
#define LGRU_CASES(RR) LGRU_CASE(RR, 1) LGRU_CASE(RR, 2) LGRU_CASE(RR, 3)
                    LGRU_CASES(1) LGRU_CASES(2) LGRU_CASES(3) LGRU_CASES(4)
                    LGRU_CASES(5) LGRU_CASES(6) LGRU_CASES(7) LGRU_CASES(8)
#else
#define LGRU_CASES(RR) LGRU_CASE(RR, 1) LGRU_CASE(RR, 2)
                    LGRU_CASES(1) LGRU_CASES(2) LGRU_CASES(3) LGRU_CASES(4)
                    LGRU_CASES(5) LGRU_CASES(6)
#endif
#undef LGRU_CASES
#undef LGRU_CASE
                }
                r += R;
            }
        }
    }
}

/* C (M, N) = A op(B), or C += A op(B) with accumulate; op(B) packed by lgru_block_pack. */
static void lgru_block_gemm(int M, int N, int K, const float *packed, const float *a, long lda,
                            float *c, long ldc, int accumulate) {
    lgru_block_rows(0, M, N, K, packed, 0, a, lda, c, ldc, accumulate);
}

/* C (M, N) = A^T B, or C += A^T B with accumulate, for A (K, M) and B (K, N) row-major and
 * unpacked: the weight gradients (A the gate gradients of K rows, B the inputs or states of
 * those rows; `weight_product` in _gru.pyx says which). */
static void lgru_block_gemm_tn(int M, int N, int K, const float *a, long lda, const float *b,
                               long ldb, float *c, long ldc, int accumulate) {
    lgru_block_rows(1, M, N, K, b, ldb, a, lda, c, ldc, accumulate);
}

/* C (M, N) = A B, or C += A B with accumulate, for N narrower than a vector (the input gradient
 * of a few input features): each element the dot product of a row of A (M, K) and a column of
 * B, the columns given as the rows of `bt` (N, K), `ldbt` apart. */
static void lgru_narrow_gemm(int M, int N, int K, const float *a, long lda, const float *bt,
                             long ldbt, float *c, long ldc, int accumulate) {
    const int full = K / LGRU_UNITS * LGRU_UNITS;
    const lgru_mask tail = lgru_tail_mask(K - full);
    for (int m = 0; m < M; m++) {
        const float *row = a + (long)m * lda;
        for (int n = 0; n < N; n++) {
            const float *column = bt + (long)n * ldbt;
            lgru_vec acc = lgru_zero();
            for (int k = 0; k < full; k += LGRU_UNITS) {
                acc = lgru_fmadd(lgru_load(row + k), lgru_load(column + k), acc);
            }
            if (full < K) {
                acc = lgru_fmadd(lgru_load_masked(row + full, tail),
                                 lgru_load_masked(column + full, tail), acc);
            }
            const float value = lgru_sum(acc);
            c[(long)m * ldc + n] = accumulate ? c[(long)m * ldc + n] + value : value;
        }
    }
}

#else
#define LGRU_HAVE_BLOCK_GEMM 0
enum { LGRU_MAX_DEPTH = 0, LGRU_MIN_ROWS_LARGE_WEIGHT = 1, LGRU_BLOCK_WEIGHT_GRADIENTS = 0 };
static long lgru_block_packed_floats(int K, int N) {
    (void)K; (void)N;
    return 0;
}
static void lgru_block_pack(int K, int N, const float *b, long ldb, int trans, float *packed) {
    (void)K; (void)N; (void)b; (void)ldb; (void)trans; (void)packed;
}
static void lgru_block_gemm(int M, int N, int K, const float *packed, const float *a, long lda,
                            float *c, long ldc, int accumulate) {
    (void)M; (void)N; (void)K; (void)packed; (void)a; (void)lda; (void)c; (void)ldc;
    (void)accumulate;
}
static void lgru_block_gemm_tn(int M, int N, int K, const float *a, long lda, const float *b,
                               long ldb, float *c, long ldc, int accumulate) {
    (void)M; (void)N; (void)K; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)accumulate;
}
static void lgru_narrow_gemm(int M, int N, int K, const float *a, long lda, const float *bt,
                             long ldbt, float *c, long ldc, int accumulate) {
    (void)M; (void)N; (void)K; (void)a; (void)lda; (void)bt; (void)ldbt; (void)c; (void)ldc;
    (void)accumulate;
}
#endif

#endif
