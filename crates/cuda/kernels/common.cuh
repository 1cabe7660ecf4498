// Device helpers every kernel shares: warp sums, the y_range squash and one rating's score.
#pragma once

// Factors per row the per-rating kernels hold in registers: 8 per lane of a warp.
#define RECPIPE_KMAX 256
#define RECPIPE_PER_LANE (RECPIPE_KMAX / 32)

// Sum over the 32 lanes by an xor butterfly: every lane ends with the same value, added in
// the same order (lane l pairs with l^16, l^8, ..., l^1), so the host reference can copy it.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int off = 16; off > 0; off >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, off);
    }
    return v;
}

// 1 / (1 + e^-x), with the accurate expf (no fast math) so cpu and gpu agree to an ulp.
__device__ __forceinline__ float recpipe_sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}
