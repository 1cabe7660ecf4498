// BPR's pairwise SGD step (train/src/ranking/bpr.rs `step`), one warp per (u, i, j) triple.
//
// Rows are `stride = k + 1` floats: k factors, then the bias slot, which a user row keeps at
// 1 and an item row uses for its bias, so x_ui = p_u·q_i + b_i is one dot product. For a
// triple, with x = x_ui − x_uj, g = σ(−x), a = 1 − lr·reg and s = lr·g, every weight steps
// from the values before the step:
//   p_u' = a·p_u + s·(q_i − q_j),   q_i' = a·q_i + s·p_u,   q_j' = a·q_j − s·p_u
// (the user's bias slot stays 1), and Σ −ln σ(x) is added to acc[0].
//
// The arithmetic is the cpu's, in its order: a half-warp per dot product (lanes 0-15
// p_u·q_i, lanes 16-31 p_u·q_j), lane l summing elements l, l+16, l+32, ... as the cpu's
// sixteen partial sums do, then the cpu's tree (l+8, l+4, then pairs, then the two halves;
// float addition commutes, so the xor butterfly gives it on every lane). Products and sums
// are written with the _rn intrinsics, which NVRTC never fuses into an fma: on a GPU only
// expf / log1pf can differ from the cpu's libm (by an ulp), on the harness nothing does.
//
// The host draws the triples (negatives from the cpu's streams, in the cpu's order) and
// uploads them a sub-epoch at a time. Warp w of W takes triples [w·n/W, (w+1)·n/W) in
// order: one warp (Launch::SEQUENTIAL) is the cpu's sequence; more warps race on shared
// rows as Hogwild does, each on its own stretch of the sub-epoch. k <= RECPIPE_KMAX.
#include "common.cuh"

// Row slots a lane holds in registers: elements l + 16·t for t < RECPIPE_BPR_SLOTS.
#define RECPIPE_BPR_SLOTS ((RECPIPE_KMAX + 1 + 15) / 16)

extern "C" __global__ void bpr_steps(const unsigned* __restrict__ triples, unsigned n, float* P,
                                     float* Q, unsigned stride, unsigned k, float lr, float reg,
                                     double* acc) {
    const unsigned lane = threadIdx.x & 31u, half = lane >> 4, l = lane & 15u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const unsigned begin = (unsigned)(((unsigned long long)n * warp) / warps);
    const unsigned end = (unsigned)(((unsigned long long)n * (warp + 1u)) / warps);
    const float a = 1.0f - __fmul_rn(lr, reg);
    double loss = 0.0;
    for (unsigned t = begin; t < end; t++) {
        const size_t at = (size_t)3 * t;
        const size_t pu = (size_t)triples[at] * stride;
        const size_t qi = (size_t)triples[at + 1] * stride;
        const size_t qj = (size_t)triples[at + 2] * stride;
        float u[RECPIPE_BPR_SLOTS], vi[RECPIPE_BPR_SLOTS], vj[RECPIPE_BPR_SLOTS];
        float d = 0.0f;
#pragma unroll
        for (int s = 0; s < RECPIPE_BPR_SLOTS; s++) {
            const unsigned x = l + 16u * s;
            u[s] = 0.0f;
            vi[s] = 0.0f;
            vj[s] = 0.0f;
            if (x <= k) {
                u[s] = P[pu + x];
                vi[s] = Q[qi + x];
                vj[s] = Q[qj + x];
            }
            d = __fadd_rn(d, __fmul_rn(u[s], half ? vj[s] : vi[s]));
        }
        d = __fadd_rn(d, __shfl_xor_sync(0xffffffffu, d, 8));
        d = __fadd_rn(d, __shfl_xor_sync(0xffffffffu, d, 4));
        d = __fadd_rn(d, __shfl_xor_sync(0xffffffffu, d, 1));
        d = __fadd_rn(d, __shfl_xor_sync(0xffffffffu, d, 2));
        const float o = __shfl_xor_sync(0xffffffffu, d, 16);
        const float xd = half ? __fsub_rn(o, d) : __fsub_rn(d, o);
        const float g = 1.0f / (1.0f + expf(xd));
        const float sg = __fmul_rn(lr, g);
#pragma unroll
        for (int s = 0; s < RECPIPE_BPR_SLOTS; s++) {
            const unsigned x = l + 16u * s;
            if (x <= k) {
                const float su = __fmul_rn(sg, u[s]);
                if (half == 0u) {
                    if (x < k) {
                        const float step = __fmul_rn(sg, __fsub_rn(vi[s], vj[s]));
                        P[pu + x] = __fadd_rn(__fmul_rn(a, u[s]), step);
                    }
                    Q[qi + x] = __fadd_rn(__fmul_rn(a, vi[s]), su);
                } else {
                    Q[qj + x] = __fsub_rn(__fmul_rn(a, vj[s]), su);
                }
            }
        }
        if (lane == 0u) {
            const float nl = xd > 0.0f ? log1pf(expf(-xd)) : -xd + log1pf(expf(xd));
            loss += (double)nl;
        }
        // Keep the warp together: the next triple's loads must not pass this one's stores.
        __syncwarp();
    }
    if (lane == 0u && end > begin) {
        atomicAdd(&acc[0], loss);
    }
}
