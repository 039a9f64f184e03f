/* The fused gate loops of the GRU, one batch row of H units per call, or two (private).
 *
 * Written in C so that every pointer can be `restrict` and GCC vectorises the loops (with the
 * SIMD exp/tanh declared in gru_math.h). The three gate blocks of a row (r, z, n, in torch's
 * order, each H wide) come as three pointers: as offsets into one array, GCC could not prove
 * that the stores into one block miss the loads from another and would not vectorise.
 * `gh_r`, `gh_z`, `gh_n` are the blocks of a row of the hidden projection W_hh h, `h` a row of
 * the state. (Passed as one pointer with offsets H and 2H, GCC loaded them with gathers.)
 */
#ifndef LIGHTNING_GRU_GRU_GATES_H
#define LIGHTNING_GRU_GRU_GATES_H

#include "gru_math.h"

/* Out of line, so that `restrict` survives (inlined, GCC guards loops with alias checks). */
#if defined(__GNUC__)
#define LGRU_KERNEL static __attribute__((noinline))
#else
#define LGRU_KERNEL static
#endif

/* The reset_after forward loop; SAVE_N is a statement that may keep nj. */
#define LGRU_RA_FORWARD_LOOP(T, S, TANH, SAVE_N)                                                \
    for (int j = 0; j < H; j++) {                                                               \
        T rj = lgru_sigmoid_##S(r[j] + b_r[j] + gh_r[j]);                                      \
        T zj = lgru_sigmoid_##S(z[j] + b_z[j] + gh_z[j]);                                      \
        T hnj = gh_n[j] + b_hn[j];                                                             \
        T nj = TANH(n[j] + b_n[j] + rj * hnj);                                                 \
        h[j] = nj + zj * (h[j] - nj);                                                           \
        r[j] = rj; z[j] = zj; n[j] = hnj;                                                       \
        SAVE_N                                                                                  \
    }

/* The same for two rows at once (pointers ending in 0 and 1), each stage of the cell for both
 * rows before the next: the exp and tanh of one row then run while the other's wait, which
 * made the loop 25-30% faster at H = 16 to 256 on Zen 2 (it is bound by their latency). */
#define LGRU_RA_FORWARD_PAIR_LOOP(T, S, TANH, SAVE_N)                                           \
    for (int j = 0; j < H; j++) {                                                               \
        T r0j = lgru_sigmoid_##S(r0[j] + b_r[j] + gh_r0[j]);                                   \
        T r1j = lgru_sigmoid_##S(r1[j] + b_r[j] + gh_r1[j]);                                   \
        T z0j = lgru_sigmoid_##S(z0[j] + b_z[j] + gh_z0[j]);                                   \
        T z1j = lgru_sigmoid_##S(z1[j] + b_z[j] + gh_z1[j]);                                   \
        T hn0j = gh_n0[j] + b_hn[j], hn1j = gh_n1[j] + b_hn[j];                                \
        T n0j = TANH(n0[j] + b_n[j] + r0j * hn0j);                                             \
        T n1j = TANH(n1[j] + b_n[j] + r1j * hn1j);                                             \
        h0[j] = n0j + z0j * (h0[j] - n0j);                                                     \
        h1[j] = n1j + z1j * (h1[j] - n1j);                                                     \
        SAVE_N                                                                                  \
    }

/* The parameters of the two-row kernels (CONST: empty, or const for inference). */
#define LGRU_RA_PAIR_ARGS(T, CONST)                                                              \
    int H, CONST T *restrict r0, CONST T *restrict z0, CONST T *restrict n0,                    \
    CONST T *restrict r1, CONST T *restrict z1, CONST T *restrict n1,                           \
    const T *restrict gh_r0, const T *restrict gh_z0, const T *restrict gh_n0,                 \
    const T *restrict gh_r1, const T *restrict gh_z1, const T *restrict gh_n1,                 \
    const T *restrict b_r, const T *restrict b_z, const T *restrict b_n,                       \
    const T *restrict b_hn, T *restrict h0, T *restrict h1

/* The arguments of the two-row forward kernels for rows 3H apart in g and gh, H apart in h. */
#define LGRU_RA_PAIR_POINTERS(g, gh, bias, h)                                                   \
    H, g, g + H, g + 2 * H, g + 3 * H, g + 4 * H, g + 5 * H, gh, gh + H, gh + 2 * H,            \
    gh + 3 * H, gh + 4 * H, gh + 5 * H, bias, bias + H, bias + 2 * H, bias + 3 * H, h, h + H

/* One unit j of the reset_after backward of the row whose pointers end in K (empty, 0 or 1);
 * NJ is n_j from the row's values (rj, hnj, and c, b_n). */
#define LGRU_RA_BACKWARD_UNIT(T, K, NJ)                                                         \
    {                                                                                           \
        T dh = dh_state##K[j] + dy##K[j];                                                       \
        T rj = r##K[j], zj = z##K[j], hnj = hn##K[j];                                           \
        T nj = NJ;                                                                              \
        T dgn = dh * ((T)1 - zj) * ((T)1 - nj * nj);                                           \
        T dgr = dgn * hnj * rj * ((T)1 - rj);                                                  \
        T dgz = dh * (h_prev##K[j] - nj) * zj * ((T)1 - zj);                                   \
        T dghn = dgn * rj;                                                                      \
        r##K[j] = dgr; z##K[j] = dgz; hn##K[j] = dgn; c##K[j] = dghn;                           \
        dr##K[j] = dgr; dz##K[j] = dgz; dhn##K[j] = dghn;                                       \
        dh_state##K[j] = dh * zj;                                                               \
    }

/* The reset_after backward loop of one row; N_OF_ROW is n_j (see LGRU_RA_BACKWARD_UNIT). */
#define LGRU_RA_BACKWARD_LOOP(T, N_OF_ROW)                                                      \
    for (int j = 0; j < H; j++) LGRU_RA_BACKWARD_UNIT(T, , N_OF_ROW)

/* The parameters of one row of the reset_after backward, names ending in K. */
#define LGRU_RA_BACKWARD_ROW_ARGS(T, K)                                                         \
    T *restrict r##K, T *restrict z##K, T *restrict hn##K, T *restrict c##K,                    \
    T *restrict dh_state##K, const T *restrict dy##K, const T *restrict h_prev##K,             \
    T *restrict dr##K, T *restrict dz##K, T *restrict dhn##K

#define LGRU_DEFINE_GATES(T, S, EXP, TANH)                                                     \
static inline T lgru_sigmoid_##S(T x) { return (T)1 / ((T)1 + EXP(-x)); }                      \
                                                                                                \
/* The forward kernels take the input projection x W_ih^T in (r, z, n) without its bias: the     \
 * biases come as vectors, b_r = b_ir + b_hr, b_z = b_iz + b_hz, b_n = b_in (+ b_hn when         \
 * reset_before), so the (N, 3H) projection is never swept just to add them. */                  \
                                                                                                \
/* reset_after, forward: h <- (1-z) n + z h with n = tanh(gi_n + r (W_hn h + b_hn)); r and z   \
 * replace their input projections and n's block keeps W_hn h + b_hn: the backward recomputes  \
 * n from it, r and gi_n (so a row keeps 3H values). The _keep variant also writes n to n_out. */\
LGRU_KERNEL void lgru_ra_forward_##S(int H, T *restrict r, T *restrict z, T *restrict n,        \
                                     const T *restrict gh_r, const T *restrict gh_z,           \
                                     const T *restrict gh_n, const T *restrict b_r,            \
                                     const T *restrict b_z, const T *restrict b_n,             \
                                     const T *restrict b_hn, T *restrict h) {                  \
    LGRU_RA_FORWARD_LOOP(T, S, TANH, )                                                          \
}                                                                                               \
LGRU_KERNEL void lgru_ra_forward_keep_##S(int H, T *restrict r, T *restrict z, T *restrict n,   \
                                          const T *restrict gh_r, const T *restrict gh_z,      \
                                          const T *restrict gh_n, const T *restrict b_r,       \
                                          const T *restrict b_z, const T *restrict b_n,        \
                                          const T *restrict b_hn, T *restrict h,               \
                                          T *restrict n_out) {                                 \
    LGRU_RA_FORWARD_LOOP(T, S, TANH, n_out[j] = nj;)                                            \
}                                                                                               \
LGRU_KERNEL void lgru_ra_infer_##S(int H, const T *restrict r, const T *restrict z,             \
                                   const T *restrict n, const T *restrict gh_r,                \
                                   const T *restrict gh_z, const T *restrict gh_n,             \
                                   const T *restrict b_r, const T *restrict b_z,               \
                                   const T *restrict b_n, const T *restrict b_hn,              \
                                   T *restrict h) {                                            \
    for (int j = 0; j < H; j++) {                                                               \
        T rj = lgru_sigmoid_##S(r[j] + b_r[j] + gh_r[j]);                                      \
        T zj = lgru_sigmoid_##S(z[j] + b_z[j] + gh_z[j]);                                      \
        T nj = TANH(n[j] + b_n[j] + rj * (gh_n[j] + b_hn[j]));                                 \
        h[j] = nj + zj * (h[j] - nj);                                                           \
    }                                                                                           \
}                                                                                               \
/* Two rows at once (see LGRU_RA_FORWARD_PAIR_LOOP): training, training keeping n, inference. */\
LGRU_KERNEL void lgru_ra_forward_pair_##S(LGRU_RA_PAIR_ARGS(T, )) {                             \
    LGRU_RA_FORWARD_PAIR_LOOP(T, S, TANH,                                                       \
        r0[j] = r0j; z0[j] = z0j; n0[j] = hn0j; r1[j] = r1j; z1[j] = z1j; n1[j] = hn1j;)        \
}                                                                                               \
LGRU_KERNEL void lgru_ra_forward_keep_pair_##S(LGRU_RA_PAIR_ARGS(T, ), T *restrict n_out0,     \
                                               T *restrict n_out1) {                           \
    LGRU_RA_FORWARD_PAIR_LOOP(T, S, TANH,                                                       \
        r0[j] = r0j; z0[j] = z0j; n0[j] = hn0j; r1[j] = r1j; z1[j] = z1j; n1[j] = hn1j;         \
        n_out0[j] = n0j; n_out1[j] = n1j;)                                                      \
}                                                                                               \
LGRU_KERNEL void lgru_ra_infer_pair_##S(LGRU_RA_PAIR_ARGS(T, const)) {                          \
    LGRU_RA_FORWARD_PAIR_LOOP(T, S, TANH, )                                                     \
}                                                                                               \
/* Rows 0 and 1 of a step (3H apart in g and gh, H apart in h and n_saved): the kernel for     \
 * training, keeping n where n_saved is not NULL, or for inference. */                          \
static inline void lgru_ra_forward_two_rows_##S(int training, int H, T *g, const T *gh,         \
                                                const T *bias, T *h, T *n_saved) {             \
    if (!training)                                                                              \
        lgru_ra_infer_pair_##S(LGRU_RA_PAIR_POINTERS(g, gh, bias, h));                          \
    else if (n_saved)                                                                           \
        lgru_ra_forward_keep_pair_##S(LGRU_RA_PAIR_POINTERS(g, gh, bias, h), n_saved,          \
                                      n_saved + H);                                             \
    else                                                                                        \
        lgru_ra_forward_pair_##S(LGRU_RA_PAIR_POINTERS(g, gh, bias, h));                        \
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
/* reset_after, backward. In: r, z, hn = W_hn h + b_hn (as the forward left them), c = n itself \
 * (n_kept) or the n gate's input projection without its bias b_n (n is recomputed), dh_state = \
 * dL/dh_t less the output's share dy. Out: dL/d(gi) in (r, z, hn), dL/d(W_hn h) in c, the row  \
 * of the step's hidden-product gradient in (dr, dz, dhn), and dh_state <- dh z (the W_hh part   \
 * follows). */                                                                                 \
LGRU_KERNEL void lgru_ra_backward_recompute_##S(int H, T *restrict r, T *restrict z,            \
                                                T *restrict hn, T *restrict c,                 \
                                                const T *restrict b_n, T *restrict dh_state,   \
                                                const T *restrict dy,                          \
                                                const T *restrict h_prev, T *restrict dr,      \
                                                T *restrict dz, T *restrict dhn) {             \
    LGRU_RA_BACKWARD_LOOP(T, TANH(c[j] + b_n[j] + rj * hnj))                                    \
}                                                                                               \
LGRU_KERNEL void lgru_ra_backward_kept_##S(int H, T *restrict r, T *restrict z,                 \
                                           T *restrict hn, T *restrict c,                      \
                                           T *restrict dh_state, const T *restrict dy,         \
                                           const T *restrict h_prev, T *restrict dr,           \
                                           T *restrict dz, T *restrict dhn) {                  \
    LGRU_RA_BACKWARD_LOOP(T, c[j])                                                              \
}                                                                                               \
/* Two rows at once when n is recomputed, their tanh calls side by side (as in the forward). */\
LGRU_KERNEL void lgru_ra_backward_recompute_pair_##S(int H, const T *restrict b_n,              \
                                                     LGRU_RA_BACKWARD_ROW_ARGS(T, 0),           \
                                                     LGRU_RA_BACKWARD_ROW_ARGS(T, 1)) {         \
    for (int j = 0; j < H; j++) {                                                               \
        T n0j = TANH(c0[j] + b_n[j] + r0[j] * hn0[j]);                                          \
        T n1j = TANH(c1[j] + b_n[j] + r1[j] * hn1[j]);                                          \
        LGRU_RA_BACKWARD_UNIT(T, 0, n0j)                                                        \
        LGRU_RA_BACKWARD_UNIT(T, 1, n1j)                                                        \
    }                                                                                           \
}                                                                                               \
/* Rows 0 and 1 of a step, n recomputed: 3H apart in g and dg, H apart in c and dh_state. */    \
static inline void lgru_ra_backward_recompute_two_rows_##S(                                     \
    int H, const T *b_n, T *g, T *c, T *dh_state, const T *dy0, const T *dy1,                  \
    const T *h_prev0, const T *h_prev1, T *dg) {                                               \
    lgru_ra_backward_recompute_pair_##S(                                                        \
        H, b_n, g, g + H, g + 2 * H, c, dh_state, dy0, h_prev0, dg, dg + H, dg + 2 * H,         \
        g + 3 * H, g + 4 * H, g + 5 * H, c + H, dh_state + H, dy1, h_prev1, dg + 3 * H,         \
        dg + 4 * H, dg + 5 * H);                                                                \
}                                                                                               \
static inline void lgru_ra_backward_##S(int n_kept, int H, T *r, T *z, T *hn, T *c,             \
                                        const T *b_n, T *dh_state, const T *dy,                \
                                        const T *h_prev, T *dr, T *dz, T *dhn) {               \
    if (n_kept)                                                                                 \
        lgru_ra_backward_kept_##S(H, r, z, hn, c, dh_state, dy, h_prev, dr, dz, dhn);          \
    else                                                                                        \
        lgru_ra_backward_recompute_##S(H, r, z, hn, c, b_n, dh_state, dy, h_prev, dr, dz,      \
                                       dhn);                                                    \
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

#endif
