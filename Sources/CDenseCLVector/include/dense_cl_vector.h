// Row kernels of the contrastive losses' softmax, compiled for several x86-64 vector levels and chosen at run time
// by the Swift side (DenseCLKernels' `SoftmaxRow`, `VectorLevel`).
//
// Every level gives the bits of the portable Swift code (`SoftmaxRow.portableExponentiate` and
// `SoftmaxRow.portableMaximumAndSum`): the same operations in the same order, separate multiplies and adds (no
// FMA), 16 Float lanes of partial sums per block of 256 values, each block's lanes added left to right and the
// block sums added in Double, the scalar tail last. So a loss does not depend on the CPU it ran on.
//
// No state: the functions read only their arguments; the caller decides which level to call.
#ifndef DENSE_CL_VECTOR_H
#define DENSE_CL_VECTOR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Vector instruction levels in increasing order (the raw values of Swift's `VectorLevel`).
enum {
    DCL_VECTOR_BASELINE = 0,  ///< SSE2: every x86-64 CPU (and the only level elsewhere).
    DCL_VECTOR_AVX2 = 1,      ///< AVX2: 256-bit registers.
    DCL_VECTOR_AVX512 = 2,    ///< AVX-512F: 512-bit registers.
};

/// The highest level this CPU and operating system support (`__builtin_cpu_supports`); DCL_VECTOR_BASELINE on
/// other architectures.
int dcl_vector_best_level(void);

/// The largest value of a row (NaN values ignored) and the sum of all its values.
typedef struct {
    float maximum;
    double sum;
} dcl_maximum_and_sum;

#if defined(__x86_64__)
/// `row[j] = exp(row[j] * scale - shift)` for `j < count`, in place; returns the sum of the new values.
/// Arguments are clamped to [-87.3, 88] before the exponential.
double dcl_exponentiate_sse2(float *row, ptrdiff_t count, float scale, float shift);
double dcl_exponentiate_avx2(float *row, ptrdiff_t count, float scale, float shift);
double dcl_exponentiate_avx512(float *row, ptrdiff_t count, float scale, float shift);

/// The largest of `count` values (-infinity for an empty row) and their sum.
dcl_maximum_and_sum dcl_maximum_and_sum_sse2(const float *row, ptrdiff_t count);
dcl_maximum_and_sum dcl_maximum_and_sum_avx2(const float *row, ptrdiff_t count);
dcl_maximum_and_sum dcl_maximum_and_sum_avx512(const float *row, ptrdiff_t count);
#endif

#ifdef __cplusplus
}
#endif

#endif
