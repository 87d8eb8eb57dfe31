// The softmax row kernels of dense_cl_vector.h at three x86-64 vector levels.
//
// Arithmetic contract (shared with the portable Swift code in DenseCLKernels/SoftmaxRow.swift, checked bit for bit
// by SoftmaxRowTests): exp(x) clamps x to [-87.3, 88], rounds x·log2(e) to n with the 1.5·2^23 trick, reduces
// r = x - n·ln2_hi + n·ln2_lo (Cody–Waite), evaluates Cephes' degree-6 polynomial by Horner's rule as
// p·r·r + r + 1 and multiplies by 2^n built in the exponent bits. Each multiply and add is its own rounding: this
// file is compiled with -ffp-contract=off and uses no fused multiply-add, on any level.
// Sums: 16 Float lanes of partial sums over each block of up to 256 values (lane i holds the values at offsets
// i mod 16), the block's lanes added left to right from lane 0, each block sum added to a Double; the values after
// the last whole group of 16 are added one by one in Double.

#include "dense_cl_vector.h"

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { LANES = 16, BLOCK = 256 };

// The constants, written as Swift writes them (the Float literals round to the same bits).
#define CLAMP_LOW (-87.3f)
#define CLAMP_HIGH 88.0f
#define ROUNDING_MAGIC 12582912.0f  // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits
#define LOG2_E 1.44269504f
#define LN2_HI 0.693359375f
#define LN2_LO 2.1219444e-4f  // ln 2 = LN2_HI - LN2_LO
#define P0 1.98756915e-4f
#define P1 1.39819995e-3f
#define P2 8.3334519e-3f
#define P3 4.16657959e-2f
#define P4 1.66666655e-1f
#define P5 5.00000012e-1f

static inline ptrdiff_t block_end(ptrdiff_t c, ptrdiff_t count) {
    ptrdiff_t lastStart = count - LANES, blockLast = c + BLOCK - LANES;
    return lastStart < blockLast ? lastStart : blockLast;
}

// Swift's SIMD16<Float>.sum(): -0 + lane 0 + lane 1 + ... + lane 15, left to right (-0 + x is x).
static inline float sum_lanes(const float lanes[LANES]) {
    float sum = lanes[0];
    for (int i = 1; i < LANES; i++) sum += lanes[i];
    return sum;
}

// Swift's SIMD16<Float>.max(): Float.maximum(m, lane) from lane 0 on (keeps m when m > lane or lane is NaN).
static inline float max_lanes(const float lanes[LANES]) {
    float m = lanes[0];
    for (int i = 0; i < LANES; i++) m = (m > lanes[i] || isnan(lanes[i])) ? m : lanes[i];
    return m;
}

static inline float float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t bits_of_float(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

// One lane of the exponential, for the tail (the same operations as the vector versions).
static inline float exp_scalar(float input) {
    float x = input < CLAMP_LOW ? CLAMP_LOW : input;
    x = x > CLAMP_HIGH ? CLAMP_HIGH : x;
    float shifted = x * LOG2_E + ROUNDING_MAGIC;
    float n = shifted - ROUNDING_MAGIC;
    float r = x - n * LN2_HI + n * LN2_LO;
    float p = P0;
    p = p * r + P1;
    p = p * r + P2;
    p = p * r + P3;
    p = p * r + P4;
    p = p * r + P5;
    float expR = p * r * r + r + 1.0f;
    uint32_t nBits = bits_of_float(shifted) - bits_of_float(ROUNDING_MAGIC);
    return expR * float_from_bits((nBits + 127u) << 23);
}

// The scalar tail shared by the three levels.
static inline double exponentiate_tail(float *row, ptrdiff_t c, ptrdiff_t count, float scale, float shift) {
    double total = 0;
    for (; c < count; c++) {
        float e = exp_scalar(row[c] * scale - shift);
        row[c] = e;
        total += (double)e;
    }
    return total;
}

// The end shared by the three levels' maximum-and-sum: the maximum of the 16 lane maxima, then the values after the
// last whole group of 16 one by one (Swift.max(top, row[c]) and the Double sum).
static inline dcl_maximum_and_sum maximum_and_sum_tail(
    const float largest[LANES], double total, const float *row, ptrdiff_t c, ptrdiff_t count) {
    float top = max_lanes(largest);
    for (; c < count; c++) {
        top = row[c] >= top ? row[c] : top;
        total += (double)row[c];
    }
    return (dcl_maximum_and_sum){top, total};
}

// ---------------------------------------------------------------------------------------------------------------
// Baseline: SSE2, four 4-lane registers forming the 16 lanes.

// maxps/minps return their second operand unless the first is strictly greater/less: that is Swift's
// `replacing(with:where:)` of the clamp, NaN included.
static inline __m128 exp_sse2(__m128 input) {
    __m128 x = _mm_min_ps(_mm_set1_ps(CLAMP_HIGH), _mm_max_ps(_mm_set1_ps(CLAMP_LOW), input));
    __m128 magic = _mm_set1_ps(ROUNDING_MAGIC);
    __m128 shifted = _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(LOG2_E)), magic);
    __m128 n = _mm_sub_ps(shifted, magic);
    __m128 r = _mm_add_ps(_mm_sub_ps(x, _mm_mul_ps(n, _mm_set1_ps(LN2_HI))), _mm_mul_ps(n, _mm_set1_ps(LN2_LO)));
    __m128 p = _mm_set1_ps(P0);
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(P1));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(P2));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(P3));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(P4));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(P5));
    __m128 expR = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, r), r), r), _mm_set1_ps(1.0f));
    __m128i nBits = _mm_sub_epi32(_mm_castps_si128(shifted), _mm_castps_si128(magic));
    __m128 twoToN = _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(nBits, _mm_set1_epi32(127)), 23));
    return _mm_mul_ps(expR, twoToN);
}

double dcl_exponentiate_sse2(float *row, ptrdiff_t count, float scale, float shift) {
    const __m128 s = _mm_set1_ps(scale), t = _mm_set1_ps(shift);
    double total = 0;
    ptrdiff_t c = 0;
    while (c + LANES <= count) {
        ptrdiff_t end = block_end(c, count);
        __m128 partial[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
        for (; c <= end; c += LANES) {
            for (int q = 0; q < 4; q++) {
                __m128 e = exp_sse2(_mm_sub_ps(_mm_mul_ps(_mm_loadu_ps(row + c + 4 * q), s), t));
                _mm_storeu_ps(row + c + 4 * q, e);
                partial[q] = _mm_add_ps(partial[q], e);
            }
        }
        float lanes[LANES];
        for (int q = 0; q < 4; q++) _mm_storeu_ps(lanes + 4 * q, partial[q]);
        total += (double)sum_lanes(lanes);
    }
    return total + exponentiate_tail(row, c, count, scale, shift);
}

dcl_maximum_and_sum dcl_maximum_and_sum_sse2(const float *row, ptrdiff_t count) {
    __m128 largest[4];
    for (int q = 0; q < 4; q++) largest[q] = _mm_set1_ps(-INFINITY);
    double total = 0;
    ptrdiff_t c = 0;
    while (c + LANES <= count) {
        ptrdiff_t end = block_end(c, count);
        __m128 partial[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
        for (; c <= end; c += LANES) {
            for (int q = 0; q < 4; q++) {
                __m128 v = _mm_loadu_ps(row + c + 4 * q);
                __m128 greater = _mm_cmpgt_ps(v, largest[q]);  // false for NaN, as Swift's `.>`
                largest[q] = _mm_or_ps(_mm_and_ps(greater, v), _mm_andnot_ps(greater, largest[q]));
                partial[q] = _mm_add_ps(partial[q], v);
            }
        }
        float lanes[LANES];
        for (int q = 0; q < 4; q++) _mm_storeu_ps(lanes + 4 * q, partial[q]);
        total += (double)sum_lanes(lanes);
    }
    float lanes[LANES];
    for (int q = 0; q < 4; q++) _mm_storeu_ps(lanes + 4 * q, largest[q]);
    return maximum_and_sum_tail(lanes, total, row, c, count);
}

// ---------------------------------------------------------------------------------------------------------------
// AVX2: two 8-lane registers forming the 16 lanes.

__attribute__((target("avx2")))
static inline __m256 exp_avx2(__m256 input) {
    __m256 x = _mm256_min_ps(_mm256_set1_ps(CLAMP_HIGH), _mm256_max_ps(_mm256_set1_ps(CLAMP_LOW), input));
    __m256 magic = _mm256_set1_ps(ROUNDING_MAGIC);
    __m256 shifted = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2_E)), magic);
    __m256 n = _mm256_sub_ps(shifted, magic);
    __m256 r = _mm256_add_ps(
        _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI))), _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)));
    __m256 p = _mm256_set1_ps(P0);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P1));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P2));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P5));
    __m256 expR = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), _mm256_set1_ps(1.0f));
    __m256i nBits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic));
    __m256 twoToN = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(nBits, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(expR, twoToN);
}

__attribute__((target("avx2")))
double dcl_exponentiate_avx2(float *row, ptrdiff_t count, float scale, float shift) {
    const __m256 s = _mm256_set1_ps(scale), t = _mm256_set1_ps(shift);
    double total = 0;
    ptrdiff_t c = 0;
    while (c + LANES <= count) {
        ptrdiff_t end = block_end(c, count);
        __m256 low = _mm256_setzero_ps(), high = _mm256_setzero_ps();
        for (; c <= end; c += LANES) {
            __m256 e0 = exp_avx2(_mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(row + c), s), t));
            __m256 e1 = exp_avx2(_mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(row + c + 8), s), t));
            _mm256_storeu_ps(row + c, e0);
            _mm256_storeu_ps(row + c + 8, e1);
            low = _mm256_add_ps(low, e0);
            high = _mm256_add_ps(high, e1);
        }
        float lanes[LANES];
        _mm256_storeu_ps(lanes, low);
        _mm256_storeu_ps(lanes + 8, high);
        total += (double)sum_lanes(lanes);
    }
    return total + exponentiate_tail(row, c, count, scale, shift);
}

__attribute__((target("avx2")))
dcl_maximum_and_sum dcl_maximum_and_sum_avx2(const float *row, ptrdiff_t count) {
    __m256 largestLow = _mm256_set1_ps(-INFINITY), largestHigh = largestLow;
    double total = 0;
    ptrdiff_t c = 0;
    while (c + LANES <= count) {
        ptrdiff_t end = block_end(c, count);
        __m256 low = _mm256_setzero_ps(), high = _mm256_setzero_ps();
        for (; c <= end; c += LANES) {
            __m256 v0 = _mm256_loadu_ps(row + c), v1 = _mm256_loadu_ps(row + c + 8);
            // Ordered "greater than": false for NaN, as Swift's `.>`.
            largestLow = _mm256_blendv_ps(largestLow, v0, _mm256_cmp_ps(v0, largestLow, _CMP_GT_OQ));
            largestHigh = _mm256_blendv_ps(largestHigh, v1, _mm256_cmp_ps(v1, largestHigh, _CMP_GT_OQ));
            low = _mm256_add_ps(low, v0);
            high = _mm256_add_ps(high, v1);
        }
        float lanes[LANES];
        _mm256_storeu_ps(lanes, low);
        _mm256_storeu_ps(lanes + 8, high);
        total += (double)sum_lanes(lanes);
    }
    float lanes[LANES];
    _mm256_storeu_ps(lanes, largestLow);
    _mm256_storeu_ps(lanes + 8, largestHigh);
    return maximum_and_sum_tail(lanes, total, row, c, count);
}

// ---------------------------------------------------------------------------------------------------------------
// AVX-512F: one 16-lane register.

__attribute__((target("avx512f")))
static inline __m512 exp_avx512(__m512 input) {
    __m512 x = _mm512_min_ps(_mm512_set1_ps(CLAMP_HIGH), _mm512_max_ps(_mm512_set1_ps(CLAMP_LOW), input));
    __m512 magic = _mm512_set1_ps(ROUNDING_MAGIC);
    __m512 shifted = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2_E)), magic);
    __m512 n = _mm512_sub_ps(shifted, magic);
    __m512 r = _mm512_add_ps(
        _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(LN2_HI))), _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)));
    __m512 p = _mm512_set1_ps(P0);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P1));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P2));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P3));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P4));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P5));
    __m512 expR = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r), _mm512_set1_ps(1.0f));
    __m512i nBits = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(magic));
    __m512 twoToN = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(nBits, _mm512_set1_epi32(127)), 23));
    return _mm512_mul_ps(expR, twoToN);
}

__attribute__((target("avx512f")))
double dcl_exponentiate_avx512(float *row, ptrdiff_t count, float scale, float shift) {
    const __m512 s = _mm512_set1_ps(scale), t = _mm512_set1_ps(shift);
    double total = 0;
    ptrdiff_t c = 0;
    while (c + LANES <= count) {
        ptrdiff_t end = block_end(c, count);
        __m512 partial = _mm512_setzero_ps();
        for (; c <= end; c += LANES) {
            __m512 e = exp_avx512(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(row + c), s), t));
            _mm512_storeu_ps(row + c, e);
            partial = _mm512_add_ps(partial, e);
        }
        float lanes[LANES];
        _mm512_storeu_ps(lanes, partial);
        total += (double)sum_lanes(lanes);
    }
    return total + exponentiate_tail(row, c, count, scale, shift);
}

__attribute__((target("avx512f")))
dcl_maximum_and_sum dcl_maximum_and_sum_avx512(const float *row, ptrdiff_t count) {
    __m512 largest = _mm512_set1_ps(-INFINITY);
    double total = 0;
    ptrdiff_t c = 0;
    while (c + LANES <= count) {
        ptrdiff_t end = block_end(c, count);
        __m512 partial = _mm512_setzero_ps();
        for (; c <= end; c += LANES) {
            __m512 v = _mm512_loadu_ps(row + c);
            largest = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, largest, _CMP_GT_OQ), largest, v);
            partial = _mm512_add_ps(partial, v);
        }
        float lanes[LANES];
        _mm512_storeu_ps(lanes, partial);
        total += (double)sum_lanes(lanes);
    }
    float lanes[LANES];
    _mm512_storeu_ps(lanes, largest);
    return maximum_and_sum_tail(lanes, total, row, c, count);
}

int dcl_vector_best_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return DCL_VECTOR_AVX512;
    if (__builtin_cpu_supports("avx2")) return DCL_VECTOR_AVX2;
    return DCL_VECTOR_BASELINE;
}

#else

int dcl_vector_best_level(void) { return DCL_VECTOR_BASELINE; }

#endif
