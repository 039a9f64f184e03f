/* Elementwise maths of the GRU gates, written so that GCC vectorises the gate loops.
 *
 * glibc's libmvec has SIMD versions of exp and tanh, but <math.h> only announces them under
 * -ffast-math, which would also break NaN/inf propagation. Declaring the `simd` attribute here
 * (and compiling with -fno-math-errno) lets GCC call them from plain -O3 loops while keeping
 * IEEE semantics. Elsewhere the scalar libm functions are used.
 */
#ifndef LIGHTNING_GRU_GRU_MATH_H
#define LIGHTNING_GRU_GRU_MATH_H

#include <math.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
__attribute__((__simd__("notinbranch"))) extern float expf(float);
__attribute__((__simd__("notinbranch"))) extern float tanhf(float);
__attribute__((__simd__("notinbranch"))) extern double exp(double);
__attribute__((__simd__("notinbranch"))) extern double tanh(double);
#endif

#endif
