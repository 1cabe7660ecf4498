// iALS on the device (train/src/ranking/ials.rs is the cpu's): one half-sweep solves every
// row x of one side against the fixed other side Y by `steps` conjugate-gradient steps on
//   (G + Σ_j w_j y_j y_jᵀ) x = Σ_j (1 + w_j) y_j,   G = YᵀY + reg·I (dense.cu's GEMM),
// matrix-free, warm-started from the row's current x. The arithmetic is the cpu's cg_row
// operation for operation: every dot product sums as its `dot` does (eight partial sums in
// a fixed order, then the tail), every vector update is its axpy, and the coefficients of a
// row's interactions are applied in the row's order, so the harness (no fused multiply-
// adds) reproduces the cpu's factors and a GPU differs only by contracted multiply-adds.
//
// A block per row (any grid: blocks loop over the rows), blockDim.x ≥ k: thread d owns
// dimension d of the row's vectors (in shared memory), and the threads share the row's
// interactions for their dot products with y_j. Scalars every thread needs (rᵀr, pᵀAp) are
// computed by every thread from shared memory in the same order, so they agree without a
// reduction and every branch on them is uniform.
#include "common.cuh"

// The most factors a row may have (its vectors live in shared memory).
#define IALS_KMAX 256
// CG stops early on a row whose residual is this small (squared norm), as the cpu does.
#define IALS_RESIDUAL_EPS 1e-20f

// a · b over k values in the cpu's order: eight partial sums over whole groups of eight,
// combined as ((0+4) + (1+5)) + ((2+6) + (3+7)), plus the tail summed in order.
__device__ __forceinline__ float ials_dot(const float* a, const float* b, unsigned k) {
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    const unsigned full = k / 8u * 8u;
    for (unsigned c = 0; c < full; c += 8u) {
        for (unsigned l = 0; l < 8u; l++) {
            acc[l] += a[c + l] * b[c + l];
        }
    }
    float tail = 0.0f;
    for (unsigned c = full; c < k; c++) {
        tail += a[c] * b[c];
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) +
           tail;
}

// Every row of X (n_rows × k, row-major) solved against Y (× k) with G = YᵀY + reg·I
// (k × k). Row u's interactions are entries start[u]..start[u+1] of idx (rows of Y) and w
// (c − 1 of each); coef (one float per entry) is the rows' scratch.
extern "C" __global__ void ials_cg(unsigned n_rows, unsigned k, float* __restrict__ X,
                                   const float* __restrict__ Y, const float* __restrict__ G,
                                   const unsigned* __restrict__ start,
                                   const unsigned* __restrict__ idx, const float* __restrict__ w,
                                   float* __restrict__ coef, unsigned steps) {
    __shared__ float x[IALS_KMAX];
    __shared__ float r[IALS_KMAX];
    __shared__ float p[IALS_KMAX];
    __shared__ float ap[IALS_KMAX];
    const unsigned t = threadIdx.x, threads = blockDim.x;
    const bool mine = t < k;
    for (unsigned u = blockIdx.x; u < n_rows; u += gridDim.x) {
        const unsigned s = start[u], m = start[u + 1] - s;
        if (mine) {
            x[t] = X[(size_t)u * k + t];
        }
        __syncthreads();
        // r = b − A x = −G x + Σ_j (1 + w_j − w_j (y_j·x)) y_j.
        for (unsigned o = t; o < m; o += threads) {
            const float wj = w[s + o];
            coef[s + o] = 1.0f + wj - wj * ials_dot(Y + (size_t)idx[s + o] * k, x, k);
        }
        float g = mine ? ials_dot(G + (size_t)t * k, x, k) : 0.0f;
        __syncthreads();
        if (mine) {
            float v = -g;
            for (unsigned o = 0; o < m; o++) {
                v += coef[s + o] * Y[(size_t)idx[s + o] * k + t];
            }
            r[t] = v;
            p[t] = v;
        }
        __syncthreads();
        float rs = ials_dot(r, r, k);
        for (unsigned step = 0; step < steps; step++) {
            if (rs < IALS_RESIDUAL_EPS) {
                break;
            }
            // A p = G p + Σ_j w_j (y_j·p) y_j.
            for (unsigned o = t; o < m; o += threads) {
                coef[s + o] = w[s + o] * ials_dot(Y + (size_t)idx[s + o] * k, p, k);
            }
            g = mine ? ials_dot(G + (size_t)t * k, p, k) : 0.0f;
            __syncthreads();
            if (mine) {
                float v = g;
                for (unsigned o = 0; o < m; o++) {
                    v += coef[s + o] * Y[(size_t)idx[s + o] * k + t];
                }
                ap[t] = v;
            }
            __syncthreads();
            const float pap = ials_dot(p, ap, k);
            // The cpu's `pap.is_nan() || pap <= 0.0`.
            if (!(pap > 0.0f)) {
                break;
            }
            const float a = rs / pap;
            if (mine) {
                x[t] += a * p[t];
                r[t] += -a * ap[t];
            }
            __syncthreads();
            const float rs_new = ials_dot(r, r, k);
            const float beta = rs_new / rs;
            if (mine) {
                p[t] = r[t] + beta * p[t];
            }
            rs = rs_new;
            __syncthreads();
        }
        if (mine) {
            X[(size_t)u * k + t] = x[t];
        }
        __syncthreads();
    }
}
