// Scoring for dot and dot_bias on the device: predictions (with the y_range sigmoid) and the
// validation RMSE/MAE sums, reduced per block then in one block, in a fixed order.
#include "common.cuh"

// raw = g + u·q (+ bu + bi), squashed into [lo, hi] when `squash`; one warp per pair.
__device__ __forceinline__ float score(const float* P, const float* Q, size_t pu, size_t qi,
                                       unsigned k, int bias, float g0, int squash, float lo,
                                       float hi) {
    const unsigned lane = threadIdx.x & 31u;
    float d = 0.0f;
    for (unsigned x = lane; x < k; x += 32u) {
        d += P[pu + x] * Q[qi + x];
    }
    d = warp_sum(d);
    float raw = g0 + d;
    if (bias) {
        raw += P[pu + k] + Q[qi + k];
    }
    return squash ? lo + (hi - lo) * recpipe_sigmoid(raw) : raw;
}

extern "C" __global__ void predict(const unsigned* __restrict__ user,
                                   const unsigned* __restrict__ item, unsigned n,
                                   const float* __restrict__ P, const float* __restrict__ Q,
                                   unsigned stride, unsigned k, int bias,
                                   const float* __restrict__ global, int squash, float lo,
                                   float hi, float* __restrict__ out) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const float g0 = bias ? global[0] : 0.0f;
    for (unsigned j = warp; j < n; j += warps) {
        const float p = score(P, Q, (size_t)user[j] * stride, (size_t)item[j] * stride, k, bias,
                              g0, squash, lo, hi);
        if (lane == 0) {
            out[j] = p;
        }
    }
}

// Per block: partial[2b] = Σ e², partial[2b+1] = Σ |e| over the pairs its warps score
// (warp w of the grid takes pairs w, w + warps, ...); writes predictions when `out` is set.
// Needs blockDim.x <= 1024, a multiple of 32.
extern "C" __global__ void eval_partials(const unsigned* __restrict__ user,
                                         const unsigned* __restrict__ item,
                                         const float* __restrict__ rating, unsigned n,
                                         const float* __restrict__ P,
                                         const float* __restrict__ Q, unsigned stride,
                                         unsigned k, int bias,
                                         const float* __restrict__ global, int squash,
                                         float lo, float hi, float* __restrict__ out,
                                         double* __restrict__ partial) {
    __shared__ double s_sse[32];
    __shared__ double s_sae[32];
    const unsigned lane = threadIdx.x & 31u, wib = threadIdx.x >> 5;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const float g0 = bias ? global[0] : 0.0f;
    double sse = 0.0, sae = 0.0;
    for (unsigned j = warp; j < n; j += warps) {
        const float p = score(P, Q, (size_t)user[j] * stride, (size_t)item[j] * stride, k, bias,
                              g0, squash, lo, hi);
        const float e = p - rating[j];
        sse += (double)(e * e);
        sae += (double)fabsf(e);
        if (lane == 0 && out) {
            out[j] = p;
        }
    }
    if (lane == 0) {
        s_sse[wib] = sse;
        s_sae[wib] = sae;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double a = 0.0, b = 0.0;
        for (unsigned w = 0; w < (blockDim.x >> 5); w++) {
            a += s_sse[w];
            b += s_sae[w];
        }
        partial[2 * blockIdx.x] = a;
        partial[2 * blockIdx.x + 1] = b;
    }
}

// One warp: sums[0] = Σ partial[2b], sums[1] = Σ partial[2b+1] over `blocks` blocks.
extern "C" __global__ void eval_reduce(const double* __restrict__ partial, unsigned blocks,
                                       double* __restrict__ sums) {
    const unsigned lane = threadIdx.x & 31u;
    if (threadIdx.x >= 32) {
        return;
    }
    double a = 0.0, b = 0.0;
    for (unsigned x = lane; x < blocks; x += 32u) {
        a += partial[2 * x];
        b += partial[2 * x + 1];
    }
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) {
        sums[0] = a;
        sums[1] = b;
    }
}
