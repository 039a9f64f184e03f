/* One reset_after time step as a single pass, float32, AVX-512 (private).
 *
 * The BLAS path multiplies h by W_hh^T into a (rows, 3H) buffer and then runs the gate loop
 * over it. Here the product is computed in registers, 8 rows by 16 hidden units at a time,
 * with the r, z and n columns of those units side by side, and the gates are applied to the
 * accumulators before they leave the registers: no (rows, 3H) buffer, and no per-call BLAS
 * overhead, which at 16 to 32 rows per thread is a large part of MKL's time (it re-copies the
 * rows for every block of columns). Used when the build targets AVX-512 and H % 16 == 0;
 * the other per-step products use the same register blocks (lgru_block_gemm).
 *
 * Packed weight layout (H * 3H floats): for unit block u (units 16u..16u+15) and input k,
 * 48 floats: the r, z and n rows of W_hh for those units at column k.
 */
#ifndef LIGHTNING_GRU_FUSED_STEP_H
#define LIGHTNING_GRU_FUSED_STEP_H

#include <string.h>

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
#define LGRU_HAVE_FUSED_STEP 1
#include <immintrin.h>

/* glibc's libmvec: 16 expf / tanhf at once (the functions gru_math.h lets GCC call). */
__m512 _ZGVeN16v_expf(__m512);
__m512 _ZGVeN16v_tanhf(__m512);

enum { LGRU_ROWS = 8, LGRU_UNITS = 16 };

static void lgru_fused_pack(int H, const float *w_hh, float *packed) {
    for (int u = 0; u < H / LGRU_UNITS; u++) {
        for (int k = 0; k < H; k++) {
            float *dst = packed + ((long)u * H + k) * 3 * LGRU_UNITS;
            for (int gate = 0; gate < 3; gate++) {
                for (int j = 0; j < LGRU_UNITS; j++) {
                    dst[gate * LGRU_UNITS + j] =
                        w_hh[((long)gate * H + u * LGRU_UNITS + j) * H + k];
                }
            }
        }
    }
}

static inline __m512 lgru_sigmoid16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 e = _ZGVeN16v_expf(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

/* R rows (R <= 8, a constant after inlining) of one step. hs: the rows' states before the step
 * (R, H); g: the rows' input projections (R, 3H), overwritten with r, z, n when training;
 * h: the running state rows (R, H), updated; hn: W_hn h + b_hn saved (R, H) when training. */
static inline __attribute__((always_inline)) void lgru_fused_rows(
    const int R, int H, const float *restrict packed, const float *restrict hs,
    float *restrict g, const float *restrict bias, float *restrict h, float *restrict hn,
    float *restrict y, long ldy, float *restrict history, int training) {
    const long H3 = 3L * H;
    for (int u = 0; u < H / LGRU_UNITS; u++) {
        const float *panel = packed + (long)u * H * 3 * LGRU_UNITS;
        __m512 acc_r[LGRU_ROWS], acc_z[LGRU_ROWS], acc_n[LGRU_ROWS];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            acc_r[r] = _mm512_setzero_ps();
            acc_z[r] = _mm512_setzero_ps();
            acc_n[r] = _mm512_setzero_ps();
        }
        for (int k = 0; k < H; k++) {
            const __m512 w_r = _mm512_loadu_ps(panel + (long)k * 48);
            const __m512 w_z = _mm512_loadu_ps(panel + (long)k * 48 + 16);
            const __m512 w_n = _mm512_loadu_ps(panel + (long)k * 48 + 32);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                const __m512 a = _mm512_set1_ps(hs[(long)r * H + k]);
                acc_r[r] = _mm512_fmadd_ps(a, w_r, acc_r[r]);
                acc_z[r] = _mm512_fmadd_ps(a, w_z, acc_z[r]);
                acc_n[r] = _mm512_fmadd_ps(a, w_n, acc_n[r]);
            }
        }
        const int j = u * LGRU_UNITS;
        const __m512 b_r = _mm512_loadu_ps(bias + j);
        const __m512 b_z = _mm512_loadu_ps(bias + H + j);
        const __m512 b_n = _mm512_loadu_ps(bias + 2 * H + j);
        const __m512 b_hn = _mm512_loadu_ps(bias + 3 * H + j);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            float *gr = g + r * H3 + j;
            const __m512 rr = lgru_sigmoid16(
                _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(gr), b_r), acc_r[r]));
            const __m512 zz = lgru_sigmoid16(
                _mm512_add_ps(_mm512_add_ps(_mm512_loadu_ps(gr + H), b_z), acc_z[r]));
            const __m512 hnv = _mm512_add_ps(acc_n[r], b_hn);
            const __m512 nn = _ZGVeN16v_tanhf(_mm512_fmadd_ps(
                rr, hnv, _mm512_add_ps(_mm512_loadu_ps(gr + 2 * H), b_n)));
            const __m512 h_old = _mm512_loadu_ps(hs + (long)r * H + j);
            const __m512 h_new = _mm512_fmadd_ps(zz, _mm512_sub_ps(h_old, nn), nn);
            _mm512_storeu_ps(h + (long)r * H + j, h_new);
            _mm512_storeu_ps(y + r * ldy + j, h_new);
            if (history) {
                _mm512_storeu_ps(history + (long)r * H + j, h_new);
            }
            if (training) {
                _mm512_storeu_ps(gr, rr);
                _mm512_storeu_ps(gr + H, zz);
                _mm512_storeu_ps(gr + 2 * H, nn);
                _mm512_storeu_ps(hn + (long)r * H + j, hnv);
            }
        }
    }
}

/* Rows [0, n) of one step, pointers at the step's first row (g, y, history, hn) and at the
 * block's first state row (h). scratch: 8 * H floats. */
static void lgru_fused_step(int n, int H, const float *packed, float *g, const float *bias,
                            float *h, float *hn, float *y, long ldy, float *history,
                            int training, float *scratch) {
    const long H3 = 3L * H;
    for (int r0 = 0; r0 < n; r0 += LGRU_ROWS) {
        const int R = n - r0 < LGRU_ROWS ? n - r0 : LGRU_ROWS;
        float *hr = h + (long)r0 * H;
        float *gr = g + r0 * H3;
        float *hnr = training ? hn + (long)r0 * H : NULL;
        float *yr = y + r0 * ldy;
        float *histr = history ? history + (long)r0 * H : NULL;
        memcpy(scratch, hr, (size_t)R * H * sizeof(float));
        switch (R) {
#define LGRU_CASE(K)                                                                           \
    case K:                                                                                    \
        lgru_fused_rows(K, H, packed, scratch, gr, bias, hr, hnr, yr, ldy, histr, training);   \
        break;
            LGRU_CASE(1) LGRU_CASE(2) LGRU_CASE(3) LGRU_CASE(4)
            LGRU_CASE(5) LGRU_CASE(6) LGRU_CASE(7) LGRU_CASE(8)
#undef LGRU_CASE
        }
    }
}

/* The other per-step products, C (M, N) = A (M, K) op(B) (+ C), by the same kind of register
 * blocks: 8 rows by 48 columns (3 vectors; the last group of columns may be 16 or 32 wide), for
 * N % 16 == 0. Used for the backward's dh += dg W_hh and for both products of reset_before.
 * Packed op(B): column group j0 (V vectors wide) at offset j0 * K, then per k the V * 16
 * floats op(B)[k, j0 .. j0 + 16 V). */
static void lgru_block_pack(int K, int N, const float *b, long ldb, int trans, float *packed) {
    for (int j0 = 0; j0 < N; j0 += 3 * LGRU_UNITS) {
        const int V = (N - j0) / LGRU_UNITS < 3 ? (N - j0) / LGRU_UNITS : 3;
        for (int k = 0; k < K; k++) {
            float *dst = packed + (long)j0 * K + (long)k * V * LGRU_UNITS;
            for (int j = 0; j < V * LGRU_UNITS; j++) {
                dst[j] = trans ? b[(long)(j0 + j) * ldb + k] : b[(long)k * ldb + j0 + j];
            }
        }
    }
}

static inline __attribute__((always_inline)) void lgru_block(
    const int R, const int V, int K, const float *restrict panel, const float *restrict a,
    long lda, float *restrict c, long ldc, int accumulate) {
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
            _mm512_storeu_ps(out, accumulate ? _mm512_add_ps(_mm512_loadu_ps(out), acc[r][v])
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
            const int V = (N - j0) / LGRU_UNITS < 3 ? (N - j0) / LGRU_UNITS : 3;
            const float *panel = packed + (long)j0 * K;
            switch (R * 4 + V) {
#define LGRU_CASE(RR, VV)                                                                      \
    case RR * 4 + VV:                                                                          \
        lgru_block(RR, VV, K, panel, a_rows, lda, c_rows + j0, ldc, accumulate);               \
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
#define LGRU_HAVE_FUSED_STEP 0
static void lgru_fused_pack(int H, const float *w_hh, float *packed) {
    (void)H; (void)w_hh; (void)packed;
}
static void lgru_fused_step(int n, int H, const float *packed, float *g, const float *bias,
                            float *h, float *hn, float *y, long ldy, float *history,
                            int training, float *scratch) {
    (void)n; (void)H; (void)packed; (void)g; (void)bias; (void)h; (void)hn; (void)y;
    (void)ldy; (void)history; (void)training; (void)scratch;
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
