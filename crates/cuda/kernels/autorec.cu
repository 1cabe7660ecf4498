// I-AutoRec (train/src/cpu/autorec.rs) on the device, with the cpu's arithmetic in the cpu's
// order. Item i's observed ratings (user u, rating r) are encoded through k sigmoid units,
// h_i = σ(μ + Σ r·V_u), decoded at the observed users only, r̂ = squash(W_u·h_i + b_u), and
// the batch's summed squared error is back-propagated to V, W, b (the rows of the users the
// batch touches, RowOpt with `weight_decay`) and μ (RowOpt without decay, as b).
//
// Launches per batch of items, in stream order:
//   ar_begin_step  2 warps: the step's scalars and catch-up tables of both optimizers
//                  (warp 0: V|W with weight decay; warp 1: b and μ without)
//   ar_forward     a warp per item: h, then per observed user in the item's order the
//                  prediction, du = dLoss/draw and dh += du·W_u, then dz = dh·h·(1 − h)
//   ar_update      a warp per touched user: [dV | dW] and db summed over the batch's items in
//                  batch order, catch-up, step; one more warp: μ's step (Σ dz) and the loss
// and at the end of an epoch embedding.cu's emb_flush for each table, then ar_fold: the
// dot_bias form every scorer reads (P = [W_u | b_u], Q = [h_i | 0]).
//
// Layout: the training ratings item-major (CSR: item i's ratings are start[i] .. start[i+1]
// of user / rating, in file order); the user table U rows of 2k floats, [V_u | W_u]; b one
// float a user; μ one row of k; optimizer state, `last` counters and catch-up tables as in
// embedding.cu. k is any size: lanes loop over it in strides of 32 and the rows stay in
// global memory, so no register array bounds it (the per-rating kernels' RECPIPE_KMAX does
// not apply here).
//
// Per batch, scratch of nb items: h and dz (nb × k), the items' Σ e² (doubles), and per
// observed rating (positions 0 .. of the batch, items in batch order, each item's ratings in
// file order): du, the rating and the item's slot in the batch.
#include "rowopt.cuh"

// h = σ(μ + Σ r·V_u) over item i's ratings (none when start is null) into out[0..k), by one
// warp; per unit the sum runs over the ratings in order, as the cpu's `encode`.
__device__ __forceinline__ void ar_encode(unsigned i, const unsigned* start, const unsigned* user,
                                          const float* rating, const float* U, unsigned k,
                                          const float* mu, float* out) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned e0 = start ? start[i] : 0u, e1 = start ? start[i + 1u] : 0u;
    const size_t k2 = 2u * (size_t)k;
    for (unsigned x = lane; x < k; x += 32u) {
        float z = mu[x];
        for (unsigned e = e0; e < e1; e++) {
            z += rating[e] * U[(size_t)user[e] * k2 + x];
        }
        out[x] = recpipe_sigmoid(z);
    }
}

// Both optimizers' RowOpt::begin_step for step t at rate lr: warp 0 the tables of the user
// rows (weight decay wd), warp 1 those of b and μ (no decay). Launch 1 × 64.
extern "C" __global__ void ar_begin_step(int kind, float b1, float b2, float mom, float wd,
                                         float lr, unsigned t, float* sc, float* hist,
                                         float* window, double* log_decay, float* sc_b,
                                         float* hist_b, float* window_b, double* log_decay_b,
                                         const float* __restrict__ rho_pow) {
    if (blockIdx.x != 0 || threadIdx.x >= 64u) {
        return;
    }
    const unsigned lane = threadIdx.x & 31u;
    if (threadIdx.x < 32u) {
        emb_begin_step_warp(lane, kind, b1, b2, mom, wd, lr, t, sc, hist, window, log_decay,
                            rho_pow);
    } else {
        emb_begin_step_warp(lane, kind, b1, b2, mom, 0.0f, lr, t, sc_b, hist_b, window_b,
                            log_decay_b, rho_pow);
    }
}

// The forward and backward pass of nb items, a warp per item (any grid: warps loop). Item
// slot s is items[s]; its ratings' positions in the batch start at pos[s] − pos[0]. Writes
// h (nb × k), dz (nb × k), item_sse[s] (Σ e² of the item, a double summed in order) and per
// position p: d[p] = du, pr[p] = the rating, pslot[p] = s.
extern "C" __global__ void ar_forward(
    unsigned nb, const unsigned* __restrict__ items, const unsigned* __restrict__ pos,
    const unsigned* __restrict__ start, const unsigned* __restrict__ user,
    const float* __restrict__ rating, const float* __restrict__ U, const float* __restrict__ B,
    const float* __restrict__ mu, unsigned k, int squash, float lo, float hi,
    float* __restrict__ h, float* __restrict__ dz, double* __restrict__ item_sse,
    float* __restrict__ d, float* __restrict__ pr, unsigned* __restrict__ pslot) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const size_t k2 = 2u * (size_t)k;
    for (unsigned s = warp; s < nb; s += warps) {
        const unsigned i = items[s];
        float* hs = h + (size_t)s * k;
        float* gs = dz + (size_t)s * k;
        ar_encode(i, start, user, rating, U, k, mu, hs);
        for (unsigned x = lane; x < k; x += 32u) {
            gs[x] = 0.0f;
        }
        // h is read across lanes by the dot products below.
        __syncwarp();
        const unsigned e0 = start[i], e1 = start[i + 1u];
        const unsigned p0 = pos[s] - pos[0];
        double sse = 0.0;
        for (unsigned e = e0; e < e1; e++) {
            const float* wu = U + (size_t)user[e] * k2 + k;
            const float raw = emb_dot(wu, hs, k) + B[user[e]];
            float out = raw, slope = 1.0f;
            if (squash) {
                out = lo + (hi - lo) * recpipe_sigmoid(raw);
                // The cpu's slope from the output (autorec.rs `pass`), not squash_slope's.
                slope = (out - lo) * (hi - out) / (hi - lo);
            }
            const float r = rating[e];
            const float err = out - r;
            sse += (double)(err * err);
            const float du = 2.0f * err * slope;
            for (unsigned x = lane; x < k; x += 32u) {
                gs[x] += du * wu[x];
            }
            if (lane == 0u) {
                const unsigned p = p0 + (e - e0);
                d[p] = du;
                pr[p] = r;
                pslot[p] = s;
            }
        }
        for (unsigned x = lane; x < k; x += 32u) {
            gs[x] = gs[x] * hs[x] * (1.0f - hs[x]);
        }
        if (lane == 0u) {
            item_sse[s] = sse;
        }
    }
}

// The optimizer step of a batch. Warp w < nu steps user rows[w]: its positions are ent[off[w]
// .. off[w + 1]] (batch order), its gradient [Σ r·dz_s | Σ du·h_s] on U's row (weight decay:
// the tables sc ..) and Σ du on b (no decay: the tables sc_b ..). Warp nu adds Σ over the nb
// items of item_sse to acc[0] (in item order, as the cpu) and steps μ with Σ_s dz_s (item
// order). Launch at least nu + 1 warps' worth (any grid: warps loop). Steps t.
extern "C" __global__ void ar_update(
    unsigned nu, const unsigned* __restrict__ rows, const unsigned* __restrict__ off,
    const unsigned* __restrict__ ent, const float* __restrict__ d, const float* __restrict__ pr,
    const unsigned* __restrict__ pslot, const float* __restrict__ h,
    const float* __restrict__ dz, unsigned nb, const double* __restrict__ item_sse, double* acc,
    float* U, float* SU, unsigned* last_u, float* B, float* SB, unsigned* last_b, float* mu,
    float* Smu, unsigned* last_mu, unsigned k, int kind, float b1, float b2, float eps, float mom,
    float wd, unsigned t, const float* sc, const float* hist, const float* window,
    const double* log_decay, const float* sc_b, const float* hist_b, const float* window_b,
    const double* log_decay_b, const float* rho_pow) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const EmbOpt o = {kind, b1, b2, eps, mom, wd};
    const EmbOpt ob = {kind, b1, b2, eps, mom, 0.0f};
    const EmbTables tb = {sc, hist, window, log_decay, rho_pow};
    const EmbTables tbb = {sc_b, hist_b, window_b, log_decay_b, rho_pow};
    const unsigned ns = (unsigned)emb_n_state(kind);
    const unsigned k2 = 2u * k;
    for (unsigned w = warp; w <= nu; w += warps) {
        if (w == nu) {
            if (lane == 0u) {
                double sse = 0.0;
                for (unsigned s = 0; s < nb; s++) {
                    sse += item_sse[s];
                }
                acc[0] += sse;
            }
            emb_row_update(ob, tbb, mu, Smu, k, k, last_mu, t, [&](unsigned x, float) {
                float g = 0.0f;
                for (unsigned s = 0; s < nb; s++) {
                    g += dz[(size_t)s * k + x];
                }
                return g;
            });
            continue;
        }
        const unsigned u = rows[w];
        const unsigned e0 = off[w], e1 = off[w + 1u];
        emb_row_update(o, tb, U + (size_t)u * k2, SU + (size_t)u * ns * k2, k2, k2, last_u + u, t,
                       [&](unsigned x, float) {
                           float g = 0.0f;
                           for (unsigned e = e0; e < e1; e++) {
                               const unsigned p = ent[e];
                               const size_t s = pslot[p];
                               g += x < k ? pr[p] * dz[s * k + x] : d[p] * h[s * k + (x - k)];
                           }
                           return g;
                       });
        emb_row_update(ob, tbb, B + u, SB + (size_t)u * ns, 1u, 1u, last_b + u, t,
                       [&](unsigned, float) {
                           float g = 0.0f;
                           for (unsigned e = e0; e < e1; e++) {
                               g += d[ent[e]];
                           }
                           return g;
                       });
    }
}

// The dot_bias form of the model (autorec.rs `tensors`): warp w < n_users writes P row w =
// [W_w | b_w] (stride k + 1); warp n_users + i writes Q row i = [h_i | 0], h_i encoded from
// item i's ratings (σ(μ) when start is null or the item has none). Any grid: warps loop.
extern "C" __global__ void ar_fold(unsigned n_users, unsigned n_items, const float* __restrict__ U,
                                   const float* __restrict__ B, const float* __restrict__ mu,
                                   const unsigned* __restrict__ start,
                                   const unsigned* __restrict__ user,
                                   const float* __restrict__ rating, unsigned k,
                                   float* __restrict__ P, float* __restrict__ Q) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const size_t s = (size_t)k + 1u;
    for (unsigned w = warp; w < n_users + n_items; w += warps) {
        if (w < n_users) {
            const float* wu = U + (size_t)w * 2u * k + k;
            for (unsigned x = lane; x < k; x += 32u) {
                P[w * s + x] = wu[x];
            }
            if (lane == 0u) {
                P[w * s + k] = B[w];
            }
        } else {
            const unsigned i = w - n_users;
            ar_encode(i, start, user, rating, U, k, mu, Q + i * s);
            if (lane == 0u) {
                Q[i * s + k] = 0.0f;
            }
        }
    }
}
