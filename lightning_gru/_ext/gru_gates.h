/* The fused gate loops of the GRU, one batch row of H units per call, or all the rows of a step
 * (private).
 *
 * Written in C so that every pointer can be `restrict` and GCC vectorises the loops (with the
 * SIMD exp/tanh declared in gru_math.h). The three gate blocks of a row (r, z, n, in torch's
 * order, each H wide) come as three pointers, or as one with LGRU_IVDEP on the loop: as offsets
 * into one array, GCC could not prove that the stores into one block miss the loads from another
 * and would not vectorise. `gh_r`, `gh_z`, `gh_n` are the blocks of a row of the hidden
 * projection W_hh h, `h` a row of the state. (Passed as one pointer with offsets H and 2H, GCC
 * loaded them with gathers.)
 */
#ifndef LIGHTNING_GRU_GRU_GATES_H
#define LIGHTNING_GRU_GRU_GATES_H

#include "gru_math.h"

/* With AVX-512, the gate loops in 512-bit vectors (GCC's default for such CPUs is 256): a
 * row of 16 units is one call of the 16-wide exp or tanh, not two of the 8-wide ones. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#define LGRU_WIDE_GATES 1
#pragma GCC push_options
#pragma GCC target("prefer-vector-width=512")
#endif

/* Out of line, so that `restrict` survives (inlined, GCC guards loops with alias checks). */
#if defined(__GNUC__)
#define LGRU_KERNEL static __attribute__((noinline))
#else
#define LGRU_KERNEL static
#endif

/* On a loop over the units of a row whose gate blocks are read and written through one pointer,
 * at offsets H and 2H: its iterations are independent, which GCC cannot prove. */
#if defined(__GNUC__) && !defined(__clang__)
#define LGRU_IVDEP _Pragma("GCC ivdep")
#else
#define LGRU_IVDEP
#endif

/* The reset_after forward of `rows` rows of a step, in two passes over them: r and z of every
 * row, then n and h. Within a pass no exp or tanh waits for another, so the calls overlap; one
 * pass through the cell per row chained them (r -> n -> h), and the loop ran at their latency:
 * 1.2-1.4x slower from H = 16 to 256 (Zen 3), even with two rows interleaved. g (r, z, n blocks)
 * and gh are 3H apart, h and n_out H apart; SAVE_N is a statement that may keep nj. */
#define LGRU_RA_FORWARD_ROWS(T, S, TANH, SAVE_N)                                                \
    for (long b = 0; b < rows; b++) {                                                           \
        T *rz = g + b * 3 * H;                                                                  \
        const T *gh_rz = gh + b * 3 * H;                                                        \
        LGRU_IVDEP                                                                              \
        for (int j = 0; j < 2 * H; j++) rz[j] = lgru_sigmoid_##S(rz[j] + bias[j] + gh_rz[j]);  \
    }                                                                                           \
    const T *b_n = bias + 2 * H, *b_hn = bias + 3 * H;                                          \
    for (long b = 0; b < rows; b++) {                                                           \
        T *r = g + b * 3 * H, *z = r + H, *n = r + 2 * H, *hb = h + b * H;                     \
        const T *gh_n = gh + b * 3 * H + 2 * H;                                                 \
        LGRU_IVDEP                                                                              \
        for (int j = 0; j < H; j++) {                                                           \
            T hnj = gh_n[j] + b_hn[j];                                                          \
            T nj = TANH(n[j] + b_n[j] + r[j] * hnj);                                            \
            hb[j] = nj + z[j] * (hb[j] - nj);                                                   \
            n[j] = hnj;                                                                         \
            SAVE_N                                                                              \
        }                                                                                       \
    }

#define LGRU_DEFINE_GATES(T, S, EXP, TANH)                                                     \
static inline T lgru_sigmoid_##S(T x) { return (T)1 / ((T)1 + EXP(-x)); }                      \
                                                                                                \
/* The forward kernels take the input projection x W_ih^T in (r, z, n) without its bias: the     \
 * biases come as vectors, b_r = b_ir + b_hr, b_z = b_iz + b_hz, b_n = b_in (+ b_hn when         \
 * reset_before), so the (N, 3H) projection is never swept just to add them. */                  \
                                                                                                \
/* reset_after, forward, `rows` rows of a step (see LGRU_RA_FORWARD_ROWS): h <- (1-z) n + z h  \
 * with n = tanh(gi_n + r (W_hn h + b_hn)); r and z replace their input projections and n's     \
 * block keeps W_hn h + b_hn: the backward recomputes n from it, r and gi_n (so a row keeps 3H   \
 * values). The _keep variant also writes n to n_out. Inference calls the first one too (its g  \
 * is scratch). */                                                                              \
LGRU_KERNEL void lgru_ra_forward_rows_##S(long rows, int H, T *restrict g,                      \
                                          const T *restrict gh, const T *restrict bias,        \
                                          T *restrict h) {                                     \
    LGRU_RA_FORWARD_ROWS(T, S, TANH, )                                                          \
}                                                                                               \
LGRU_KERNEL void lgru_ra_forward_rows_keep_##S(long rows, int H, T *restrict g,                 \
                                               const T *restrict gh, const T *restrict bias,   \
                                               T *restrict h, T *restrict n_out) {             \
    LGRU_RA_FORWARD_ROWS(T, S, TANH, n_out[b * H + j] = nj;)                                    \
}                                                                                               \
/* reset_before, forward, first half: r, z and r * h (the input of W_hn). */                    \
LGRU_KERNEL void lgru_rb_forward_rz_##S(int H, T *restrict r, T *restrict z,                    \
                                        const T *restrict gh_r, const T *restrict gh_z,        \
                                        const T *restrict b_r, const T *restrict b_z,          \
                                        const T *restrict h, T *restrict rh) {                 \
    for (int j = 0; j < H; j++) {                                                               \
        T rj = lgru_sigmoid_##S(r[j] + b_r[j] + gh_r[j]);                                      \
        r[j] = rj;                                                                              \
        z[j] = lgru_sigmoid_##S(z[j] + b_z[j] + gh_z[j]);                                      \
        rh[j] = rj * h[j];                                                                      \
    }                                                                                           \
}                                                                                               \
/* reset_before, forward, second half: n = tanh(gi_n + b_n + W_hn (r h)). */                    \
LGRU_KERNEL void lgru_rb_forward_n_##S(int H, const T *restrict z, T *restrict n,               \
                                       const T *restrict ghn, const T *restrict b_n,           \
                                       T *restrict h) {                                        \
    for (int j = 0; j < H; j++) {                                                               \
        T nj = TANH(n[j] + b_n[j] + ghn[j]);                                                   \
        h[j] = nj + z[j] * (h[j] - nj);                                                         \
        n[j] = nj;                                                                              \
    }                                                                                           \
}                                                                                               \
/* reset_after, backward of one row. In: r, z, hn = W_hn h + b_hn (as the forward left them),   \
 * c = n (kept by the forward, or lgru_ra_recompute_n_rows), dh_state = dL/dh_t less the        \
 * output's share dy. Out: dL/d(gi) in (r, z, hn), dL/d(W_hn h) in c, the row of the step's     \
 * hidden-product gradient in (dr, dz, dhn), and dh_state <- dh z (the W_hh part follows). */   \
LGRU_KERNEL void lgru_ra_backward_##S(int H, T *restrict r, T *restrict z, T *restrict hn,       \
                                      T *restrict c, T *restrict dh_state,                     \
                                      const T *restrict dy, const T *restrict h_prev,          \
                                      T *restrict dr, T *restrict dz, T *restrict dhn) {       \
    for (int j = 0; j < H; j++) {                                                               \
        T dh = dh_state[j] + dy[j];                                                             \
        T rj = r[j], zj = z[j], hnj = hn[j], nj = c[j];                                         \
        T dgn = dh * ((T)1 - zj) * ((T)1 - nj * nj);                                           \
        T dgr = dgn * hnj * rj * ((T)1 - rj);                                                  \
        T dgz = dh * (h_prev[j] - nj) * zj * ((T)1 - zj);                                      \
        T dghn = dgn * rj;                                                                      \
        r[j] = dgr; z[j] = dgz; hn[j] = dgn; c[j] = dghn;                                       \
        dr[j] = dgr; dz[j] = dgz; dhn[j] = dghn;                                                \
        dh_state[j] = dh * zj;                                                                  \
    }                                                                                           \
}                                                                                               \
/* n = tanh(c + b_n + r hn) into c, where c held the n gate's input projection less b_n, for    \
 * `rows` rows of a step (g 3H apart, c H apart): where the forward did not keep n, the backward \
 * recomputes it for all the step's rows in one pass (its tanh calls overlap, as in             \
 * LGRU_RA_FORWARD_ROWS) before lgru_ra_backward. */                                            \
LGRU_KERNEL void lgru_ra_recompute_n_rows_##S(long rows, int H, const T *restrict g,            \
                                              T *restrict c, const T *restrict b_n) {          \
    for (long b = 0; b < rows; b++) {                                                           \
        const T *r = g + b * 3 * H, *hn = r + 2 * H;                                            \
        T *n = c + b * H;                                                                       \
        LGRU_IVDEP                                                                              \
        for (int j = 0; j < H; j++) n[j] = TANH(n[j] + b_n[j] + r[j] * hn[j]);                  \
    }                                                                                           \
}                                                                                               \
/* reset_before, backward, first half: dgi_z and dgi_n (= dgh_n), dh_state <- dh z, and      \
 * rh <- r h_prev (the input of W_hn, for its gradient: the forward does not keep it). */      \
LGRU_KERNEL void lgru_rb_backward_zn_##S(int H, const T *restrict r, T *restrict z,             \
                                         T *restrict n, T *restrict dh_state,                  \
                                         const T *restrict dy, const T *restrict h_prev,       \
                                         T *restrict dn, T *restrict rh) {                     \
    for (int j = 0; j < H; j++) {                                                               \
        T dh = dh_state[j] + dy[j];                                                             \
        T zj = z[j], nj = n[j];                                                                 \
        T dgn = dh * ((T)1 - zj) * ((T)1 - nj * nj);                                           \
        z[j] = dh * (h_prev[j] - nj) * zj * ((T)1 - zj);                                       \
        n[j] = dgn;                                                                             \
        dn[j] = dgn;                                                                            \
        dh_state[j] = dh * zj;                                                                  \
        rh[j] = r[j] * h_prev[j];                                                               \
    }                                                                                           \
}                                                                                               \
/* reset_before, backward, second half: dr holds d(r h) = dgn W_hn on entry. */                 \
LGRU_KERNEL void lgru_rb_backward_r_##S(int H, T *restrict r, const T *restrict z,              \
                                        T *restrict dh_state, const T *restrict h_prev,        \
                                        T *restrict dr, T *restrict dz) {                      \
    for (int j = 0; j < H; j++) {                                                               \
        T rj = r[j], drh = dr[j];                                                               \
        T dgr = drh * h_prev[j] * rj * ((T)1 - rj);                                            \
        dh_state[j] += drh * rj;                                                                \
        r[j] = dgr;                                                                             \
        dr[j] = dgr; dz[j] = z[j];                                                              \
    }                                                                                           \
}

LGRU_DEFINE_GATES(float, f, expf, tanhf)
LGRU_DEFINE_GATES(double, d, exp, tanh)

/* sums[j] += the sum of src[i * ld + j] over the rows i < rows, for j < cols (the bias
 * gradients of a step). A register of columns at a time, the rows added in four accumulators
 * that stay in registers: adding each row into `sums` in memory chained every row's additions
 * through a store and a reload, ~7 us of a 20-step backward of 38 rows (sine B = 38). GCC's
 * vector extension, not a loop over an array, or it took the final sums apart lane by lane,
 * and no wider than the CPU's registers (64-byte vectors without AVX-512 went through the
 * stack: 3% slower steps than the plain loop); other compilers add the rows one by one. */
#if defined(__GNUC__)
#if defined(__AVX512F__)
#define LGRU_COLUMN_BYTES 64
#elif defined(__AVX__)
#define LGRU_COLUMN_BYTES 32
#else
#define LGRU_COLUMN_BYTES 16
#endif
#define LGRU_DEFINE_COLUMN_SUMS(T, S)                                                           \
typedef T lgru_columns_##S                                                                      \
    __attribute__((vector_size(LGRU_COLUMN_BYTES), aligned(sizeof(T)), may_alias));             \
static void lgru_add_column_sums_##S(T *restrict sums, const T *restrict src, long ld,          \
                                     int rows, int cols) {                                      \
    typedef lgru_columns_##S V;                                                                 \
    const int W = (int)(sizeof(V) / sizeof(T));                                                 \
    int j0 = 0;                                                                                 \
    for (; j0 + W <= cols; j0 += W) {                                                           \
        V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                               \
        const T *row = src + j0;                                                                \
        int i = 0;                                                                              \
        for (; i + 4 <= rows; i += 4, row += 4 * ld) {                                          \
            a0 += *(const V *)row;                                                              \
            a1 += *(const V *)(row + ld);                                                       \
            a2 += *(const V *)(row + 2 * ld);                                                   \
            a3 += *(const V *)(row + 3 * ld);                                                   \
        }                                                                                       \
        for (; i < rows; i++, row += ld) a0 += *(const V *)row;                                 \
        *(V *)(sums + j0) += (a0 + a1) + (a2 + a3);                                             \
    }                                                                                           \
    for (int i = 0; i < rows; i++)                                                              \
        for (int j = j0; j < cols; j++) sums[j] += src[(long)i * ld + j];                       \
}
#else
#define LGRU_DEFINE_COLUMN_SUMS(T, S)                                                           \
static void lgru_add_column_sums_##S(T *sums, const T *src, long ld, int rows, int cols) {      \
    for (int i = 0; i < rows; i++)                                                              \
        for (int j = 0; j < cols; j++) sums[j] += src[(long)i * ld + j];                        \
}
#endif

LGRU_DEFINE_COLUMN_SUMS(float, f)
LGRU_DEFINE_COLUMN_SUMS(double, d)

#if defined(LGRU_WIDE_GATES)
#pragma GCC pop_options
#endif

#endif
