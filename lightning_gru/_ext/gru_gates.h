/* The fused gate loops of the GRU, one batch row of H units per call (private).
 *
 * Written in C so that every pointer can be `restrict` and GCC vectorises the loops (with the
 * SIMD exp/tanh declared in gru_math.h). Gate order r, z, n as in torch; `g` is a row of the
 * (N, 3H) gates buffer, `gh` a row of the hidden projection W_hh h, `h` a row of the running state.
 */
#ifndef LIGHTNING_GRU_GRU_GATES_H
#define LIGHTNING_GRU_GRU_GATES_H

#include "gru_math.h"

#define LGRU_DEFINE_GATES(T, S, EXP, TANH)                                                     \
static inline T lgru_sigmoid_##S(T x) { return (T)1 / ((T)1 + EXP(-x)); }                      \
                                                                                                \
/* reset_after, forward: h <- (1-z) n + z h with n = tanh(gi_n + r (W_hn h + b_hn)). */         \
static inline void lgru_ra_forward_##S(int H, T *restrict g, const T *restrict gh,             \
                                       const T *restrict b_hn, T *restrict h,                  \
                                       T *restrict hn_saved) {                                 \
    for (int j = 0; j < H; j++) {                                                               \
        T r = lgru_sigmoid_##S(g[j] + gh[j]);                                                  \
        T z = lgru_sigmoid_##S(g[H + j] + gh[H + j]);                                          \
        T hn = gh[2 * H + j] + b_hn[j];                                                        \
        T n = TANH(g[2 * H + j] + r * hn);                                                     \
        h[j] = n + z * (h[j] - n);                                                              \
        g[j] = r; g[H + j] = z; g[2 * H + j] = n;                                               \
        hn_saved[j] = hn;                                                                       \
    }                                                                                           \
}                                                                                               \
static inline void lgru_ra_infer_##S(int H, const T *restrict g, const T *restrict gh,         \
                                     const T *restrict b_hn, T *restrict h) {                  \
    for (int j = 0; j < H; j++) {                                                               \
        T r = lgru_sigmoid_##S(g[j] + gh[j]);                                                  \
        T z = lgru_sigmoid_##S(g[H + j] + gh[H + j]);                                          \
        T n = TANH(g[2 * H + j] + r * (gh[2 * H + j] + b_hn[j]));                              \
        h[j] = n + z * (h[j] - n);                                                              \
    }                                                                                           \
}                                                                                               \
/* reset_before, forward, first half: r, z and r * h (the input of W_hn). */                    \
static inline void lgru_rb_forward_rz_##S(int H, T *restrict g, const T *restrict gh,          \
                                          const T *restrict h, T *restrict rh) {               \
    for (int j = 0; j < H; j++) {                                                               \
        T r = lgru_sigmoid_##S(g[j] + gh[j]);                                                  \
        g[j] = r;                                                                               \
        g[H + j] = lgru_sigmoid_##S(g[H + j] + gh[H + j]);                                     \
        rh[j] = r * h[j];                                                                       \
    }                                                                                           \
}                                                                                               \
/* reset_before, forward, second half: n = tanh(gi_n + W_hn (r h)) (b_hn is folded in gi_n). */ \
static inline void lgru_rb_forward_n_##S(int H, T *restrict g, const T *restrict ghn,          \
                                         T *restrict h) {                                      \
    for (int j = 0; j < H; j++) {                                                               \
        T z = g[H + j];                                                                         \
        T n = TANH(g[2 * H + j] + ghn[j]);                                                     \
        h[j] = n + z * (h[j] - n);                                                              \
        g[2 * H + j] = n;                                                                       \
    }                                                                                           \
}                                                                                               \
/* reset_after, backward. In: r, z, n in g, W_hn h + b_hn in e, dh_state = dL/dh_t minus the   \
 * output's share dy. Out: dL/d(gi) in g, dL/d(W_hn h) in e, the row [dgi_r, dgi_z, dgh_n]     \
 * of the step's hidden-product gradient in dg, and dh_state <- dh z (the W_hh part follows). */\
static inline void lgru_ra_backward_##S(int H, T *restrict g, T *restrict e,                   \
                                        T *restrict dh_state, const T *restrict dy,            \
                                        const T *restrict h_prev, T *restrict dg) {            \
    for (int j = 0; j < H; j++) {                                                               \
        T dh = dh_state[j] + dy[j];                                                             \
        T r = g[j], z = g[H + j], n = g[2 * H + j];                                             \
        T dgn = dh * ((T)1 - z) * ((T)1 - n * n);                                              \
        T dgr = dgn * e[j] * r * ((T)1 - r);                                                   \
        T dgz = dh * (h_prev[j] - n) * z * ((T)1 - z);                                         \
        T dghn = dgn * r;                                                                       \
        g[j] = dgr; g[H + j] = dgz; g[2 * H + j] = dgn;                                         \
        e[j] = dghn;                                                                            \
        dg[j] = dgr; dg[H + j] = dgz; dg[2 * H + j] = dghn;                                     \
        dh_state[j] = dh * z;                                                                   \
    }                                                                                           \
}                                                                                               \
/* reset_before, backward, first half: dgi_z and dgi_n (= dgh_n), dh_state <- dh z. */          \
static inline void lgru_rb_backward_zn_##S(int H, T *restrict g, T *restrict dh_state,         \
                                           const T *restrict dy, const T *restrict h_prev,     \
                                           T *restrict dg) {                                   \
    for (int j = 0; j < H; j++) {                                                               \
        T dh = dh_state[j] + dy[j];                                                             \
        T z = g[H + j], n = g[2 * H + j];                                                       \
        T dgn = dh * ((T)1 - z) * ((T)1 - n * n);                                              \
        g[H + j] = dh * (h_prev[j] - n) * z * ((T)1 - z);                                      \
        g[2 * H + j] = dgn;                                                                     \
        dg[2 * H + j] = dgn;                                                                    \
        dh_state[j] = dh * z;                                                                   \
    }                                                                                           \
}                                                                                               \
/* reset_before, backward, second half: dg[0:H] holds d(r h) = dgn W_hn on entry. */            \
static inline void lgru_rb_backward_r_##S(int H, T *restrict g, T *restrict dh_state,          \
                                          const T *restrict h_prev, T *restrict dg) {          \
    for (int j = 0; j < H; j++) {                                                               \
        T r = g[j], drh = dg[j];                                                                \
        T dgr = drh * h_prev[j] * r * ((T)1 - r);                                              \
        dh_state[j] += drh * r;                                                                 \
        g[j] = dgr;                                                                             \
        dg[j] = dgr; dg[H + j] = g[H + j];                                                      \
    }                                                                                           \
}

LGRU_DEFINE_GATES(float, f, expf, tanhf)
LGRU_DEFINE_GATES(double, d, exp, tanh)

#endif
