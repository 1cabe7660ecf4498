// Per-rating SGD / row-wise Adagrad for dot and dot_bias, one warp per rating (Hogwild).
//
// The rule is the cpu grid path's (train/src/cpu/grid.rs `rate`): raw = g + u·q (+ bu + bi),
// p = lo + (hi - lo)·sigmoid(raw) when squashed, c = 2·(p - y)·dp, and with reg = 2·l2 + wd
//   u' = (1 - lu·reg)·u - lu·c·q,   q' = (1 - li·reg)·q - li·c·u   (biases: the same with q = 1)
// where lu = li = lr for sgd, and for Adagrad lu = lr / sqrt(G_u), G_u += |∇u|² / dims with
// G starting at 1 (libmf). The global bias stays fixed during a launch; each warp adds its
// ratings' Σ c and Σ e² into acc[1] and acc[0], and sgd_global_step applies the mean c.
//
// A launch of one block of 32 threads walks `order` sequentially (deterministic); wider
// launches race on shared rows as Hogwild does. k <= RECPIPE_KMAX, rows `stride` floats
// apart, the bias at index k.
#include "common.cuh"

extern "C" __global__ void sgd_epoch(const unsigned* __restrict__ user,
                                     const unsigned* __restrict__ item,
                                     const float* __restrict__ rating,
                                     const unsigned* __restrict__ order, unsigned n,
                                     float* P, float* Q, unsigned stride, unsigned k,
                                     int bias, float* gu_sum, float* gi_sum,
                                     const float* __restrict__ global, float lr, float reg,
                                     int squash, float lo, float hi, double* acc) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const int adagrad = gu_sum != nullptr;
    const float g0 = bias ? global[0] : 0.0f;
    const float dims = (float)(k + (bias ? 1u : 0u));
    double sse = 0.0, gsum = 0.0;
    for (unsigned j = warp; j < n; j += warps) {
        const unsigned r = order ? order[j] : j;
        const size_t pu = (size_t)user[r] * stride, qi = (size_t)item[r] * stride;
        float u[RECPIPE_PER_LANE], q[RECPIPE_PER_LANE];
        float d = 0.0f;
#pragma unroll
        for (int t = 0; t < RECPIPE_PER_LANE; t++) {
            const unsigned x = lane + 32u * t;
            u[t] = 0.0f;
            q[t] = 0.0f;
#ifdef PLANT_OFF_BY_ONE
            if (x <= k) {  // planted bug: reads one factor past the row (the harness must catch it)
#else
            if (x < k) {
#endif
                u[t] = P[pu + x];
                q[t] = Q[qi + x];
            }
            d += u[t] * q[t];
        }
        // Every lane reads what lane 0 later writes (biases, Adagrad sums) before the warp
        // sum: its shuffles keep lane 0 from storing before all lanes have loaded.
        const float bu = bias ? P[pu + k] : 0.0f, bi = bias ? Q[qi + k] : 0.0f;
        const float gu_old = adagrad ? gu_sum[user[r]] : 1.0f;
        const float gi_old = adagrad ? gi_sum[item[r]] : 1.0f;
        d = warp_sum(d);
        float raw = g0 + d;
        if (bias) {
            raw += bu + bi;
        }
        float p = raw, dp = 1.0f;
        if (squash) {
            const float s = recpipe_sigmoid(raw);
            p = lo + (hi - lo) * s;
            dp = (hi - lo) * s * (1.0f - s);
        }
        const float e = p - rating[r];
        const float c = 2.0f * e * dp;
        float lu = lr, li = lr;
        if (adagrad) {
            float g2u = 0.0f, g2i = 0.0f;
#pragma unroll
            for (int t = 0; t < RECPIPE_PER_LANE; t++) {
                const float a = c * q[t] + reg * u[t], b = c * u[t] + reg * q[t];
                g2u += a * a;
                g2i += b * b;
            }
            g2u = warp_sum(g2u);
            g2i = warp_sum(g2i);
            if (bias) {
                g2u += (c + reg * bu) * (c + reg * bu);
                g2i += (c + reg * bi) * (c + reg * bi);
            }
            const float gu_new = gu_old + g2u / dims, gi_new = gi_old + g2i / dims;
            if (lane == 0) {
                gu_sum[user[r]] = gu_new;
                gi_sum[item[r]] = gi_new;
            }
            lu = lr / sqrtf(gu_new);
            li = lr / sqrtf(gi_new);
        }
        const float au = 1.0f - lu * reg, su = lu * c, ai = 1.0f - li * reg, si = li * c;
#pragma unroll
        for (int t = 0; t < RECPIPE_PER_LANE; t++) {
            const unsigned x = lane + 32u * t;
            if (x < k) {
                P[pu + x] = au * u[t] - su * q[t];
                Q[qi + x] = ai * q[t] - si * u[t];
            }
        }
        if (lane == 0) {
            if (bias) {
                P[pu + k] = au * bu - su;
                Q[qi + k] = ai * bi - si;
            }
            sse += (double)(e * e);
            gsum += (double)c;
        }
        // Keep the warp together: the next rating's loads must not pass this one's stores.
        __syncwarp();
    }
    if (lane == 0 && n > 0) {
        atomicAdd(&acc[0], sse);
        atomicAdd(&acc[1], gsum);
    }
}

// After a chunk of `n` ratings: global -= lr · (Σ c / n), then clears Σ c (one thread).
extern "C" __global__ void sgd_global_step(float* global, double* acc, float lr, unsigned n) {
    if (blockIdx.x == 0 && threadIdx.x == 0 && n > 0) {
        global[0] -= lr * (float)(acc[1] / (double)n);
        acc[1] = 0.0;
    }
}
