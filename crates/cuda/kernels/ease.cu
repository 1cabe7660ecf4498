// EASE on the device (train/src/ranking/ease.rs is the cpu's): the Gram matrix of the binary
// interactions, λ on its diagonal, its inverse P by a blocked Gauss-Jordan sweep in place,
// and B = −P_ij / P_jj with a zero diagonal. No cuBLAS / cuSOLVER: they ship with the
// toolkit, not with the driver.
//
// The sweep of a symmetric positive definite A on a b × b diagonal block K, with
// P = A_KK⁻¹, replaces
//   A_ij (i, j ∉ K) by A_ij − A_iK P A_Kj,   A_Kj by P A_Kj,   A_iK by A_iK P,   A_KK by −P;
// sweeping every block in turn leaves −A⁻¹. No pivoting: every pivot block of an SPD matrix
// swept so far is SPD. A step is three launches (ease.rs `invert_in_place`):
//   ease_block_inverse  one block: P = A_KK⁻¹ by the same sweep on scalars, in shared memory
//   ease_panel          C = A_K· (a copy of the old row panel) and R = −P A_K·
//   ease_update         every element: the rank-b update, or its new panel / block value
// Sums run in a fixed order with no atomics (the Gram matrix's atomics add integers, exact
// in f32 in any order), so the result does not depend on the grid.
#include "common.cuh"

// The widest diagonal block ease_block_inverse holds in shared memory.
#define EASE_MAX_BLOCK 64

// G[a·n + b] += 1 for every ordered pair (a, b) of one user's items (a = b included): XᵀX.
// Counts stay below 2^24 (ease.rs refuses more users), so f32 holds them exactly and the
// order the atomics land in cannot show. A block per user, any grid; its threads share
// the user's m² pairs.
extern "C" __global__ void ease_gram(unsigned n_users, unsigned n, const unsigned* __restrict__ start,
                                     const unsigned* __restrict__ items, float* __restrict__ G) {
    for (unsigned u = blockIdx.x; u < n_users; u += gridDim.x) {
        const unsigned s = start[u];
        const unsigned m = start[u + 1] - s;
        const unsigned long long pairs = (unsigned long long)m * m;
        for (unsigned long long p = threadIdx.x; p < pairs; p += blockDim.x) {
            const unsigned a = items[s + (unsigned)(p / m)];
            const unsigned b = items[s + (unsigned)(p % m)];
            atomicAdd(&G[(size_t)a * n + b], 1.0f);
        }
    }
}

// A[i·n + i] += lambda for i < n. Any grid.
extern "C" __global__ void ease_add_diag(unsigned n, float* __restrict__ A, float lambda) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        A[(size_t)i * n + i] += lambda;
    }
}

// P (bs × bs, row-major) = the inverse of A's diagonal block at rows and columns k0..k0+bs
// (bs ≤ EASE_MAX_BLOCK), by the scalar sweep: pivot c replaces M_ij by M_ij − M_ic M_cj / d,
// M_cj by M_cj / d, M_ic by M_ic / d and M_cc by −1 / d (d = M_cc); after every pivot M is
// −A_KK⁻¹. One block of any width.
extern "C" __global__ void ease_block_inverse(unsigned n, const float* __restrict__ A, unsigned k0,
                                              unsigned bs, float* __restrict__ P) {
    __shared__ float M[EASE_MAX_BLOCK][EASE_MAX_BLOCK + 1];
    __shared__ float row[EASE_MAX_BLOCK];
    __shared__ float col[EASE_MAX_BLOCK];
    const unsigned t = threadIdx.x, threads = blockDim.x, cells = bs * bs;
    for (unsigned e = t; e < cells; e += threads) {
        M[e / bs][e % bs] = A[(size_t)(k0 + e / bs) * n + k0 + e % bs];
    }
    __syncthreads();
    for (unsigned c = 0; c < bs; c++) {
        for (unsigned x = t; x < bs; x += threads) {
            row[x] = M[c][x];
            col[x] = M[x][c];
        }
        __syncthreads();
        const float d = row[c];
        for (unsigned e = t; e < cells; e += threads) {
            const unsigned i = e / bs, j = e % bs;
            float v;
            if (i == c && j == c) {
                v = -1.0f / d;
            } else if (i == c) {
                v = row[j] / d;
            } else if (j == c) {
                v = col[i] / d;
            } else {
                v = M[i][j] - col[i] * (row[j] / d);
            }
            M[i][j] = v;
        }
        __syncthreads();
    }
    for (unsigned e = t; e < cells; e += threads) {
        P[e] = -M[e / bs][e % bs];
    }
}

// For the block at rows k0..k0+bs: C = A's row panel (bs × n, a copy: ease_update rewrites
// it) and R = −P · (that panel), both row-major with leading dimension n. Each R element
// sums over the block in order. Any grid.
extern "C" __global__ void ease_panel(unsigned n, const float* __restrict__ A, unsigned k0,
                                      unsigned bs, const float* __restrict__ P,
                                      float* __restrict__ C, float* __restrict__ R) {
    const size_t cells = (size_t)bs * n;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < cells; e += stride) {
        const unsigned x = (unsigned)(e / n), j = (unsigned)(e % n);
        float s = 0.0f;
        for (unsigned y = 0; y < bs; y++) {
            s = fmaf(P[x * bs + y], A[(size_t)(k0 + y) * n + j], s);
        }
        C[e] = A[(size_t)(k0 + x) * n + j];
        R[e] = -s;
    }
}

// One sweep step on every element of A (n × n) for the block k0..k0+bs, from ease_panel's C
// and R and the block's P: A_ij += Σ_x C_xi R_xj (x in order) off the block's rows and
// columns; A_Kj = −R_xj and, by symmetry, A_iK = −R_xi (P A_Kj and A_iK P); A_KK = −P. A
// thread per element, consecutive threads along a row (R's reads coalesce, C's broadcast).
// Any grid.
extern "C" __global__ void ease_update(unsigned n, float* __restrict__ A, unsigned k0, unsigned bs,
                                       const float* __restrict__ P, const float* __restrict__ C,
                                       const float* __restrict__ R) {
    const size_t cells = (size_t)n * n;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < cells; e += stride) {
        const unsigned i = (unsigned)(e / n), j = (unsigned)(e % n);
        const bool ik = i >= k0 && i < k0 + bs, jk = j >= k0 && j < k0 + bs;
        if (ik && jk) {
            A[e] = -P[(i - k0) * bs + (j - k0)];
        } else if (ik) {
            A[e] = -R[(size_t)(i - k0) * n + j];
        } else if (jk) {
            A[e] = -R[(size_t)(j - k0) * n + i];
        } else {
            float s = 0.0f;
            for (unsigned x = 0; x < bs; x++) {
                s = fmaf(C[(size_t)x * n + i], R[(size_t)x * n + j], s);
            }
            A[e] = A[e] + s;
        }
    }
}

// d[i] = A[i·n + i]: the diagonal, saved before ease_weights rewrites it. Any grid.
extern "C" __global__ void ease_diag(unsigned n, const float* __restrict__ A, float* __restrict__ d) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        d[i] = A[(size_t)i * n + i];
    }
}

// A = −P after the sweep (d its diagonal) becomes B in place: B_ij = −P_ij / P_jj and
// B_ji = −P_ij / P_ii from the upper triangle's P_ij (i < j), as the cpu's `weights` reads
// it, and B_ii = 0. A thread per element of the upper triangle writes both of its cells, so
// no thread reads a cell another writes. Any grid.
extern "C" __global__ void ease_weights(unsigned n, float* __restrict__ A, const float* __restrict__ d) {
    const size_t cells = (size_t)n * n;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < cells; e += stride) {
        const unsigned i = (unsigned)(e / n), j = (unsigned)(e % n);
        if (i == j) {
            A[e] = 0.0f;
        } else if (i < j) {
            const float p = -A[e];
            A[e] = -p / -d[j];
            A[(size_t)j * n + i] = -p / -d[i];
        }
    }
}
