/* The time loop's matrix products on AVX-512 register blocks, float32 (private).
 *
 * Every step multiplies 16 to 64 rows per thread (the batch's share) by a weight of a few
 * hundred columns. MKL's packed GEMM, called once per step, spends ~15% of such a
 * product re-copying the rows for every block of columns (a packed left operand did not help).
 * Here op(B) is packed once per call and C (M, N) = A (M, K) op(B) (+ C) is computed in
 * registers, 8 rows by 48 columns (3 vectors; the last group of columns may be 16 or 32 wide):
 * 24 accumulators, 3 loads and 8 broadcasts per 24 FMAs. Needs a build for AVX-512; elsewhere
 * the stubs below are never called. When N is not a multiple of 16, the packed op(B) is padded
 * with zero columns and the last vector of C is loaded and stored under a mask.
 * The same blocks, rows split across threads, serve the input projection of all steps and the
 * input gradient (`product` in _gru.pyx), where MKL's generic kernels are slower still.
 */
#ifndef LIGHTNING_GRU_BLOCK_GEMM_H
#define LIGHTNING_GRU_BLOCK_GEMM_H

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define LGRU_HAVE_BLOCK_GEMM 1
#include <immintrin.h>

enum { LGRU_ROWS = 8, LGRU_UNITS = 16 };

/* Vectors in the column group starting at j0: 3, or fewer in the last group. */
static inline int lgru_group_vectors(int N, int j0) {
    const int V = (N - j0 + LGRU_UNITS - 1) / LGRU_UNITS;
    return V < 3 ? V : 3;
}

/* Floats of op(B) (K, N) packed by lgru_block_pack: N rounded up to a multiple of 16. */
static long lgru_block_packed_floats(int K, int N) {
    return (long)K * ((N + LGRU_UNITS - 1) / LGRU_UNITS * LGRU_UNITS);
}

/* op(B) (K, N) packed: column group j0 (V vectors wide) at offset j0 * K, then per k the
 * V * 16 floats op(B)[k, j0 .. j0 + 16 V), zero past column N. op(B) = b (K, N) row-major, or
 * b^T with trans. */
static void lgru_block_pack(int K, int N, const float *b, long ldb, int trans, float *packed) {
    for (int j0 = 0; j0 < N; j0 += 3 * LGRU_UNITS) {
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
        for (int k0 = 0; k0 < K; k0 += LGRU_UNITS) {
            const int kn = K - k0 < LGRU_UNITS ? K - k0 : LGRU_UNITS;
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

/* Rows [0, R) by vectors [0, V) of C; `last` masks the columns of the last vector. */
static inline __attribute__((always_inline)) void lgru_block(
    const int R, const int V, int K, const float *restrict panel, const float *restrict a,
    long lda, float *restrict c, long ldc, int accumulate, __mmask16 last) {
    __m512 acc[LGRU_ROWS][3];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) {
            acc[r][v] = _mm512_setzero_ps();
        }
    }
    for (int k = 0; k < K; k++) {
        __m512 w[3];
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) {
            w[v] = _mm512_loadu_ps(panel + ((long)k * V + v) * LGRU_UNITS);
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 x = _mm512_set1_ps(a[r * lda + k]);
#pragma GCC unroll 3
            for (int v = 0; v < V; v++) {
                acc[r][v] = _mm512_fmadd_ps(x, w[v], acc[r][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) {
            float *out = c + r * ldc + v * LGRU_UNITS;
            const __mmask16 mask = v == V - 1 ? last : (__mmask16)0xFFFF;
            _mm512_mask_storeu_ps(
                out, mask,
                accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(mask, out), acc[r][v])
                           : acc[r][v]);
        }
    }
}

/* C (M, N) = A op(B), or C += A op(B) with accumulate; op(B) packed by lgru_block_pack. */
static void lgru_block_gemm(int M, int N, int K, const float *packed, const float *a, long lda,
                            float *c, long ldc, int accumulate) {
    for (int r0 = 0; r0 < M; r0 += LGRU_ROWS) {
        const int R = M - r0 < LGRU_ROWS ? M - r0 : LGRU_ROWS;
        const float *a_rows = a + (long)r0 * lda;
        float *c_rows = c + (long)r0 * ldc;
        for (int j0 = 0; j0 < N; j0 += 3 * LGRU_UNITS) {
            const int V = lgru_group_vectors(N, j0);
            const int tail = N - j0 - (V - 1) * LGRU_UNITS;  /* columns of the last vector */
            const __mmask16 last = tail >= LGRU_UNITS ? 0xFFFF : (__mmask16)((1u << tail) - 1);
            const float *panel = packed + (long)j0 * K;
            switch (R * 4 + V) {
#define LGRU_CASE(RR, VV)                                                                      \
    case RR * 4 + VV:                                                                          \
        lgru_block(RR, VV, K, panel, a_rows, lda, c_rows + j0, ldc, accumulate, last);         \
        break;
#define LGRU_CASES(RR) LGRU_CASE(RR, 1) LGRU_CASE(RR, 2) LGRU_CASE(RR, 3)
                LGRU_CASES(1) LGRU_CASES(2) LGRU_CASES(3) LGRU_CASES(4)
                LGRU_CASES(5) LGRU_CASES(6) LGRU_CASES(7) LGRU_CASES(8)
#undef LGRU_CASES
#undef LGRU_CASE
            }
        }
    }
}

#else
#define LGRU_HAVE_BLOCK_GEMM 0
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
#endif

#endif
