// Mini-batch training of dot and dot_bias: the cpu EmbeddingTrainer + RowOpt step
// (train/src/cpu/embedding.rs, rowopt.rs) on the device, with the same arithmetic in the
// same order, so the two agree to rounding (bit for bit where the compiler fuses nothing).
//
// One batch of n ratings (positions j = 0..n of the batch, in batch order):
//   raw_j = g + u·q (+ bu + bi), p_j = squash(raw_j), e_j = p_j - y_j,
//   c_j = (2 / n) · e_j · dp_j                      (PyTorch's MSELoss: the batch mean)
//   ∇u = Σ_j c_j · q_j (bias: Σ_j c_j), summed in batch order, + 2·l2·u when l2 > 0
//   (and the same for items); ∇g = Σ_j c_j (no l2). The optimizer then steps only the rows
//   the batch touched, each first catching up in closed form on the steps it missed since
//   its `last` step (rowopt.rs), and the global bias (a one-float row stepped every batch).
//
// Launches per batch, in stream order:
//   emb_begin_step  1 block of 32: the step's scalars and catch-up tables (step t, rate lr)
//   emb_forward     a warp per rating: c_j, e_j², and copies of the two rows' k factors
//   emb_update      a warp per touched row (users, then items) + one warp for the global
//                   bias and the loss: gradient in batch order, l2, catch-up, step
//   emb_dense_step  dense mode only, per table: a zero-gradient step for every row the
//                   batch did not touch (PyTorch's dense optimizers)
// and at the end of an epoch emb_flush per table brings every row up to step t (lazy mode).
// emb_opt_init fills the catch-up tables once before the first step. emb_steps runs the
// same four steps for R consecutive batches in one launch of one block (small batches,
// where the launches above cost more than the work; see minibatch.rs for why this design).
//
// Layout: rows `stride` floats apart (P, Q as in sgd.cu: k factors, then the bias at index
// k); optimizer state S of a table holds n_state rows of `stride` floats per row (row r at
// S + r·n_state·stride: Adam's m then v, SGD's momentum buffer); `last` one unsigned a row.
// The global bias is a table of one row with stride 1 (its state: 2 floats).
#include "rowopt.cuh"

// Threads of emb_steps' one block (minibatch.rs FUSED_THREADS): 16 warps, so the compiler
// may use up to 128 registers a thread.
#define EMB_STEPS_THREADS 512

// Once, before step 1: ρ^j (ρ = b1/√b2 for Adam/AdamW, the momentum for SGD, else 0) for
// j = 0..=200 into rho_pow, and step 0 of the tables. One thread.
extern "C" __global__ void emb_opt_init(int kind, float b1, float b2, float mom,
                                        float* __restrict__ rho_pow, float* __restrict__ hist,
                                        float* __restrict__ window,
                                        double* __restrict__ log_decay) {
    if (blockIdx.x != 0 || threadIdx.x != 0) {
        return;
    }
    float rho = 0.0f;
    if (kind == EMB_ADAM || kind == EMB_ADAMW) {
        rho = b1 / sqrtf(b2);
    } else if (kind == EMB_SGD) {
        rho = mom;
    }
    float p = 1.0f;
    for (unsigned j = 0; j <= EMB_MAX_CATCH_UP; j++) {
        rho_pow[j] = p;
        p *= rho;
    }
    hist[0] = 0.0f;
    window[0] = 0.0f;
    log_decay[0] = 0.0;
}

// RowOpt::begin_step: starts step t (1-based; steps must begin in order 1, 2, ...) at rate
// lr: sc, hist[t], window[t - 200 .. t], log_decay[t]. hist, window and log_decay hold at
// least t + 1 entries. One warp (launch 1 × 32).
extern "C" __global__ void emb_begin_step(int kind, float b1, float b2, float mom, float wd,
                                          float lr, unsigned t, float* __restrict__ sc,
                                          float* __restrict__ hist, float* __restrict__ window,
                                          double* __restrict__ log_decay,
                                          const float* __restrict__ rho_pow) {
    if (blockIdx.x != 0 || threadIdx.x >= 32u) {
        return;
    }
    emb_begin_step_warp(threadIdx.x, kind, b1, b2, mom, wd, lr, t, sc, hist, window, log_decay,
                        rho_pow);
}

// The ratings and tables of the forward pass.
struct EmbBatchIn {
    const unsigned* user;
    const unsigned* item;
    const float* rating;
    unsigned stride, k;
    int bias;
    int squash;
    float lo, hi;
};

// The forward pass of the batch idx[0..n] by warps `warp`, `warp + warps`, ...: see
// emb_forward.
__device__ __forceinline__ void emb_forward_warps(unsigned warp, unsigned warps,
                                                  const EmbBatchIn& in, const unsigned* idx,
                                                  unsigned n, const float* P, const float* Q,
                                                  const float* global, float* coef, float* err2,
                                                  float* snap_u, float* snap_i) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned k = in.k;
    const float scale = 2.0f / (float)n;
    const float g0 = in.bias ? global[0] : 0.0f;
    for (unsigned j = warp; j < n; j += warps) {
        const unsigned r = idx[j];
        const float* wu = P + (size_t)in.user[r] * in.stride;
        const float* wi = Q + (size_t)in.item[r] * in.stride;
        float raw = g0 + emb_dot(wu, wi, k);
        if (in.bias) {
            raw += wu[k] + wi[k];
        }
        float p = raw, dp = 1.0f;
        if (in.squash) {
            const float s = recpipe_sigmoid(raw);
            p = in.lo + (in.hi - in.lo) * s;
            dp = (in.hi - in.lo) * s * (1.0f - s);
        }
        const float e = p - in.rating[r];
        for (unsigned x = lane; x < k; x += 32u) {
            snap_u[(size_t)j * k + x] = wu[x];
            snap_i[(size_t)j * k + x] = wi[x];
        }
        if (lane == 0u) {
            coef[j] = scale * e * dp;
            err2[j] = e * e;
        }
    }
}

// Forward pass of a batch, a warp per rating: rating idx[j] (j < n, batch order) gives
// coef[j] = (2/n)·e·dp, err2[j] = e², and snap_u/snap_i rows j (k floats each) the user's
// and item's factors before the step. `global` is read only with bias.
extern "C" __global__ void emb_forward(const unsigned* __restrict__ user,
                                       const unsigned* __restrict__ item,
                                       const float* __restrict__ rating,
                                       const unsigned* __restrict__ idx, unsigned n,
                                       const float* __restrict__ P, const float* __restrict__ Q,
                                       unsigned stride, unsigned k, int bias,
                                       const float* __restrict__ global, int squash, float lo,
                                       float hi, float* __restrict__ coef,
                                       float* __restrict__ err2, float* __restrict__ snap_u,
                                       float* __restrict__ snap_i) {
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const EmbBatchIn in = {user, item, rating, stride, k, bias, squash, lo, hi};
    emb_forward_warps(warp, warps, in, idx, n, P, Q, global, coef, err2, snap_u, snap_i);
}

// The tables an optimizer step writes: rows, their state and last steps, and the global
// bias (a one-float row, its state and last step).
struct EmbModel {
    float* P;
    float* Su;
    unsigned* last_u;
    float* Q;
    float* Si;
    unsigned* last_i;
    unsigned stride, k;
    int bias;
    float* gw;
    float* gs;
    unsigned* glast;
};

// The optimizer step of a batch by warps `warp`, `warp + warps`, ...: see emb_update.
__device__ __forceinline__ void emb_update_warps(
    unsigned warp, unsigned warps, unsigned nu, unsigned ni, const unsigned* rows,
    const unsigned* off, const unsigned* ent, const float* coef, const float* err2,
    const float* snap_u, const float* snap_i, unsigned n, const EmbModel& md, double* acc,
    const EmbOpt& o, float l2, unsigned t, const EmbTables& tb) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned k = md.k;
    const unsigned dim = k + (md.bias ? 1u : 0u);
    const unsigned ns = (unsigned)emb_n_state(o.kind);
    for (unsigned w = warp; w <= nu + ni; w += warps) {
        if (w == nu + ni) {
            if (lane == 0u) {
                double sse = 0.0;
                float gsum = 0.0f;
                for (unsigned j = 0; j < n; j++) {
                    sse += (double)err2[j];
                    gsum += coef[j];
                }
                acc[0] += sse;
                if (md.bias) {
                    // A lone lane: the row update's warp-wide parts run on lane 0 only.
                    const EmbCatchUp c = emb_catch_up_plan(o, tb, *md.glast, t - 1u);
                    float x = md.gw[0], m = md.gs[0], v = ns == 2u ? md.gs[1] : 0.0f;
                    if (c.active) {
                        emb_catch_up_one(o, c, x, m, v);
                    }
                    emb_step_one(o, tb.sc[0], tb.sc[1], tb.sc[2], x, m, v, gsum);
                    md.gw[0] = x;
                    md.gs[0] = m;
                    if (ns == 2u) {
                        md.gs[1] = v;
                    }
                    *md.glast = t;
                }
            }
            continue;
        }
        const bool is_user = w < nu;
        const unsigned row = rows[w];
        float* W = (is_user ? md.P : md.Q) + (size_t)row * md.stride;
        float* S = (is_user ? md.Su : md.Si) + (size_t)row * ns * md.stride;
        unsigned* last = (is_user ? md.last_u : md.last_i) + row;
        const float* other = is_user ? snap_i : snap_u;
        const unsigned e0 = off[w], e1 = off[w + 1u];
        const float two_l2 = 2.0f * l2;
        emb_row_update(o, tb, W, S, md.stride, dim, last, t, [&](unsigned x, float wx) {
            float g = 0.0f;
            for (unsigned e = e0; e < e1; e++) {
                const unsigned j = ent[e];
                g += x < k ? coef[j] * other[(size_t)j * k + x] : coef[j];
            }
            if (l2 > 0.0f) {
                g += two_l2 * wx;
            }
            return g;
        });
    }
}

// The optimizer step of a batch. Warp w < nu steps user rows[w], nu <= w < nu + ni item
// rows[w] (each row listed once per table); its ratings are the batch positions
// ent[off[w] .. off[w + 1]], in batch order, so the gradient sums in the cpu's order. Warp
// nu + ni adds the batch's Σ e² (in batch order, as a double) to acc[0] and, with bias,
// steps the global bias (gw, its state gs, its step glast) with Σ coef. Launch at least
// nu + ni + 1 warps' worth (any grid: warps loop). Steps t with the scalars of sc.
extern "C" __global__ void emb_update(
    unsigned nu, unsigned ni, const unsigned* __restrict__ rows,
    const unsigned* __restrict__ off, const unsigned* __restrict__ ent,
    const float* __restrict__ coef, const float* __restrict__ err2,
    const float* __restrict__ snap_u, const float* __restrict__ snap_i, unsigned n, float* P,
    float* Su, unsigned* last_u, float* Q, float* Si, unsigned* last_i, unsigned stride,
    unsigned k, int bias, float* gw, float* gs, unsigned* glast, double* acc, int kind, float b1,
    float b2, float eps, float mom, float wd, float l2, unsigned t, const float* sc,
    const float* hist, const float* window, const double* log_decay, const float* rho_pow) {
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const EmbOpt o = {kind, b1, b2, eps, mom, wd};
    const EmbTables tb = {sc, hist, window, log_decay, rho_pow};
    const EmbModel md = {P, Su, last_u, Q, Si, last_i, stride, k, bias, gw, gs, glast};
    emb_update_warps(warp, warps, nu, ni, rows, off, ent, coef, err2, snap_u, snap_i, n, md, acc,
                     o, l2, t, tb);
}

// Dense mode's zero-gradient step of one table's untouched rows by warps `warp`, ...
__device__ __forceinline__ void emb_dense_step_warps(unsigned warp, unsigned warps, unsigned n,
                                                     float* W, float* S, unsigned* last,
                                                     unsigned stride, unsigned dim,
                                                     const EmbOpt& o, unsigned t,
                                                     const EmbTables& tb) {
    const unsigned ns = (unsigned)emb_n_state(o.kind);
    for (unsigned r = warp; r < n; r += warps) {
        if (last[r] == t) {
            continue;
        }
        emb_row_update(o, tb, W + (size_t)r * stride, S + (size_t)r * ns * stride, stride, dim,
                       last + r, t, [](unsigned, float) { return 0.0f; });
    }
}

// Dense mode, after emb_update: every row of a table (n rows) not stepped at step t gets
// step t with a zero gradient, as PyTorch's dense optimizers step all parameters. Any grid.
extern "C" __global__ void emb_dense_step(unsigned n, float* W, float* S, unsigned* last,
                                          unsigned stride, unsigned dim, int kind, float b1,
                                          float b2, float eps, float mom, float wd, unsigned t,
                                          const float* sc, const float* hist,
                                          const float* window, const double* log_decay,
                                          const float* rho_pow) {
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const EmbOpt o = {kind, b1, b2, eps, mom, wd};
    const EmbTables tb = {sc, hist, window, log_decay, rho_pow};
    emb_dense_step_warps(warp, warps, n, W, S, last, stride, dim, o, t, tb);
}

// Fields of one batch in emb_steps' `meta` (minibatch.rs PlannedBatch, 7 unsigned a batch).
#define EMB_META 7u

// Batches b0 .. b0 + nb of an epoch plan, one after another, in one block (launch 1 ×
// EMB_STEPS_THREADS or fewer, a multiple of 32): for each, what emb_begin_step (step t0 +
// 1 + i at rate lrs[b]), emb_forward, emb_update (Σ e² into sse[b]) and, when `dense`,
// emb_dense_step per table do, with the same device functions, separated by __syncthreads
// so each step sees the last one's writes: the result is the four launches' bit for bit.
// meta[7b ..] = the batch's start in `order`, size n, nu, ni and its offsets into rows,
// off and ent (the plan's PlannedBatch).
extern "C" __global__ __launch_bounds__(EMB_STEPS_THREADS) void emb_steps(
    unsigned b0, unsigned nb, const unsigned* __restrict__ meta,
    const float* __restrict__ lrs, unsigned t0, const unsigned* __restrict__ user,
    const unsigned* __restrict__ item, const float* __restrict__ rating,
    const unsigned* __restrict__ order, const unsigned* __restrict__ rows,
    const unsigned* __restrict__ off, const unsigned* __restrict__ ent, double* sse,
    float* P, float* Su, unsigned* last_u, float* Q, float* Si, unsigned* last_i,
    unsigned stride, unsigned k, int bias, float* gw, float* gs, unsigned* glast,
    int squash, float lo, float hi, float* coef, float* err2, float* snap_u,
    float* snap_i, int kind, float b1, float b2, float eps, float mom, float wd,
    float l2, int dense, unsigned n_users, unsigned n_items, float* sc, float* hist,
    float* window, double* log_decay, const float* rho_pow) {
    if (blockIdx.x != 0) {
        return;
    }
    const unsigned warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const EmbOpt o = {kind, b1, b2, eps, mom, wd};
    const EmbTables tb = {sc, hist, window, log_decay, rho_pow};
    const EmbBatchIn in = {user, item, rating, stride, k, bias, squash, lo, hi};
    const EmbModel md = {P, Su, last_u, Q, Si, last_i, stride, k, bias, gw, gs, glast};
    for (unsigned i = 0; i < nb; i++) {
        const unsigned b = b0 + i, t = t0 + 1u + i;
        const unsigned* m = meta + (size_t)b * EMB_META;
        const unsigned start = m[0], n = m[1], nu = m[2], ni = m[3];
        if (warp == 0u) {
            emb_begin_step_warp(threadIdx.x & 31u, kind, b1, b2, mom, wd, lrs[b], t, sc, hist,
                                window, log_decay, rho_pow);
        }
        __syncthreads();
        emb_forward_warps(warp, warps, in, order + start, n, P, Q, gw, coef, err2, snap_u,
                          snap_i);
        __syncthreads();
        emb_update_warps(warp, warps, nu, ni, rows + m[4], off + m[5], ent + m[6], coef, err2,
                         snap_u, snap_i, n, md, sse + b, o, l2, t, tb);
        __syncthreads();
        if (dense) {
            emb_dense_step_warps(warp, warps, n_users, P, Su, last_u, stride, stride, o, t, tb);
            emb_dense_step_warps(warp, warps, n_items, Q, Si, last_i, stride, stride, o, t, tb);
            __syncthreads();
        }
    }
}

// Table::flush: every row of a table (n rows) catches up on the steps it missed up to step
// t (the last step begun). Lazy mode, at the end of each epoch. Any grid.
extern "C" __global__ void emb_flush(unsigned n, float* W, float* S, unsigned* last,
                                     unsigned stride, unsigned dim, int kind, float b1, float b2,
                                     float eps, float mom, float wd, unsigned t,
                                     const float* hist, const float* window,
                                     const double* log_decay, const float* rho_pow) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const EmbOpt o = {kind, b1, b2, eps, mom, wd};
    const EmbTables tb = {nullptr, hist, window, log_decay, rho_pow};
    const int two = emb_n_state(kind) == 2;
    const unsigned ns = two ? 2u : 1u;
    for (unsigned r = warp; r < n; r += warps) {
        const unsigned s0 = last[r];
        const EmbCatchUp c = emb_catch_up_plan(o, tb, s0, t);
        if (c.active) {
            float* w = W + (size_t)r * stride;
            float* s = S + (size_t)r * ns * stride;
            for (unsigned x = lane; x < dim; x += 32u) {
                float wx = w[x], m = s[x], v = two ? s[stride + x] : 0.0f;
                emb_catch_up_one(o, c, wx, m, v);
                w[x] = wx;
                s[x] = m;
                if (two) {
                    s[stride + x] = v;
                }
            }
        }
        __syncwarp();
        if (lane == 0u && s0 < t) {
            last[r] = t;
        }
    }
}
