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
// emb_opt_init fills the catch-up tables once before the first step.
//
// Layout: rows `stride` floats apart (P, Q as in sgd.cu: k factors, then the bias at index
// k); optimizer state S of a table holds n_state rows of `stride` floats per row (row r at
// S + r·n_state·stride: Adam's m then v, SGD's momentum buffer); `last` one unsigned a row.
// The global bias is a table of one row with stride 1 (its state: 2 floats).
#include "common.cuh"

// Optimizer kinds (train/src/config.rs OptimizerKind).
#define EMB_ADAM 0
#define EMB_ADAMW 1
#define EMB_SGD 2
#define EMB_SPARSE_ADAM 3
// RowOpt's arithmetic for `adagrad` (Config::validate keeps it off the batch path; the
// libmf Adagrad of batch_size = 1 is sgd.cu's).
#define EMB_ADAGRAD 4

// rowopt.rs MAX_CATCH_UP and WD_CATCH_UP.
#define EMB_MAX_CATCH_UP 200u
#define EMB_WD_CATCH_UP 40000u

// Optimizer hyperparameters, as every optimizer kernel takes them.
struct EmbOpt {
    int kind;
    float b1, b2, eps, mom, wd;
};

// The step's scalars emb_begin_step writes: sc[0] = lr, sc[1] = step size, sc[2] =
// 1 / sqrt(1 - b2^t).
struct EmbTables {
    const float* sc;
    const float* hist;
    const float* window;
    const double* log_decay;
    const float* rho_pow;
};

__device__ __forceinline__ int emb_n_state(int kind) { return kind == EMB_SGD ? 1 : 2; }

// x^n by squaring, as Rust's powi (compiler-builtins `__powidf2` / `__powisf2`), so the
// bias corrections round as on the cpu.
template <typename T>
__device__ __forceinline__ T emb_powi(T a, int b) {
    const bool recip = b < 0;
    unsigned p = recip ? 0u - (unsigned)b : (unsigned)b;
    T mul = (T)1;
    for (;;) {
        if (p & 1u) {
            mul *= a;
        }
        p >>= 1;
        if (p == 0u) {
            break;
        }
        a *= a;
    }
    return recip ? (T)1 / mul : mul;
}

// rowopt.rs `ftz`: values pushed towards the subnormal range become zero.
__device__ __forceinline__ float emb_ftz(float x) { return fabsf(x) < 1e-30f ? 0.0f : x; }

// Rust's f32::signum (±1 by the sign bit; NaN stays NaN).
__device__ __forceinline__ float emb_signum(float x) {
    return x != x ? x : copysignf(1.0f, x);
}

// Rust's f32::max / min: the other operand when one is NaN.
__device__ __forceinline__ float emb_max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ float emb_min(float a, float b) { return fminf(a, b); }

__device__ __forceinline__ float emb_from_bits(unsigned b) {
#ifdef __CUDACC__
    return __uint_as_float(b);
#else
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
#endif
}

// rowopt.rs `exp_neg`: e^(-x) for x >= 0 by exponent bits and a degree-6 polynomial.
__device__ __forceinline__ float emb_exp_neg(float x) {
    const float t = -(emb_min(x, 87.0f)) * 1.44269504088896340736f;
    const int i = (int)t;
    const float f = (t - (float)i) * 0.693147180559945309417f;
    const float p =
        1.0f +
        f * (1.0f +
             f * (0.5f +
                  f * (1.0f / 6.0f +
                       f * (1.0f / 24.0f + f * (1.0f / 120.0f + f * (1.0f / 720.0f))))));
    return emb_from_bits(((unsigned)(i + 127)) << 23) * p;
}

// rowopt.rs `decay_pow`: β^n flushed to zero.
__device__ __forceinline__ float emb_decay_pow(float beta, unsigned n) {
    const int e = n > 2147483647u ? 2147483647 : (int)n;
    return emb_ftz(emb_powi(beta, e));
}

// The cpu's `dot` (embedding.rs): eight partial sums over chunks of 8, combined as
// (a0+a4) + (a1+a5) + ((a2+a6) + (a3+a7)), then the k % 8 tail in order. Lanes 0..7 hold
// the partial sums; every lane returns the same value.
__device__ __forceinline__ float emb_dot(const float* a, const float* b, unsigned k) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned full = k & ~7u;
    float acc = 0.0f;
    if (lane < 8u) {
        for (unsigned x = lane; x < full; x += 8u) {
            acc += a[x] * b[x];
        }
    }
    acc += __shfl_xor_sync(0xffffffffu, acc, 4);
    acc += __shfl_xor_sync(0xffffffffu, acc, 1);
    acc += __shfl_xor_sync(0xffffffffu, acc, 2);
    float s = __shfl_sync(0xffffffffu, acc, 0);
    for (unsigned x = full; x < k; x++) {
        s += a[x] * b[x];
    }
    return s;
}

// What a row's catch-up over steps last+1 ..= upto needs besides the row itself (rowopt.rs
// `catch_up`), the same in every lane.
struct EmbCatchUp {
    int active;     // anything to do
    int decay;      // multiplicative (decoupled) decay: w *= fdec
    float fdec;
    int zero_start; // coupled Adam, never updated: move lin towards zero
    float h0;
    int moments;    // s > 0: the missed momentum steps
    float f, d1, d2, g, lin;
};

__device__ __forceinline__ EmbCatchUp emb_catch_up_plan(const EmbOpt& o, const EmbTables& tb,
                                                        unsigned s, unsigned upto) {
    EmbCatchUp c = {};
    if (s >= upto || o.kind == EMB_SPARSE_ADAM) {
        return c;
    }
    c.active = 1;
    const unsigned n = upto - s;
    const double ld = tb.log_decay[upto] - tb.log_decay[s];
    if (ld != 0.0) {
        c.decay = 1;
        c.fdec = (float)exp(ld);
    }
    const int coupled_adam = o.kind == EMB_ADAM && o.wd > 0.0f;
    if (s == 0u && coupled_adam) {
        c.zero_start = 1;
        c.h0 = tb.hist[upto] * (float)n;
    }
    if (s > 0u) {
        c.moments = 1;
        float f;
        if (n >= EMB_MAX_CATCH_UP) {
            f = tb.window[s];
        } else {
            f = 0.0f;
            for (unsigned j = 1; j <= n; j++) {
                f += tb.hist[s + j] * tb.rho_pow[j];
            }
        }
        c.f = f;
        if (o.kind == EMB_SGD) {
            c.d1 = emb_decay_pow(o.mom, n);
        } else {
            c.d1 = emb_decay_pow(o.b1, n);
            c.d2 = emb_decay_pow(o.b2, n);
        }
        if (coupled_adam) {
            const double h = (double)tb.hist[upto];
            const double q = 1.0 / sqrt((double)o.b2);
            const int nn = (int)(n < EMB_WD_CATCH_UP ? n : EMB_WD_CATCH_UP);
            const double geo = q * (emb_powi(q, nn) - 1.0) / (q - 1.0);
            c.g = emb_max((float)(h * geo) - f, 0.0f);
            c.lin = (float)h * (float)n;
        }
    }
    return c;
}

// The catch-up of one weight x with its state m (SGD: the buffer) and v.
__device__ __forceinline__ void emb_catch_up_one(const EmbOpt& o, const EmbCatchUp& c, float& x,
                                                 float& m, float& v) {
    if (c.decay) {
        x = emb_ftz(x * c.fdec);
    }
    if (c.zero_start) {
        x = emb_ftz(emb_signum(x) * emb_max(fabsf(x) - c.h0, 0.0f));
    }
    if (!c.moments) {
        return;
    }
    if (o.kind == EMB_ADAM && o.wd > 0.0f) {
        const float sv = sqrtf(v) + o.eps;
        const float y = x - c.f * m / sv;
        const float a = fabsf(y);
        const float shrunk =
            emb_max(emb_max(a * emb_exp_neg(o.wd * c.g / sv), a - c.lin), 0.0f);
        x = emb_ftz(emb_signum(y) * shrunk);
        const float gd = o.wd * x;
        m = emb_ftz(c.d1 * m + (1.0f - c.d1) * gd);
        v = emb_ftz(c.d2 * v + (1.0f - c.d2) * gd * gd);
    } else if (o.kind == EMB_SGD) {
        x -= c.f * m;
        m = emb_ftz(m * c.d1);
    } else {
        x -= c.f * m / (sqrtf(v) + o.eps);
        m = emb_ftz(m * c.d1);
        v = emb_ftz(v * c.d2);
    }
}

// RowOpt::update of one weight with gradient g (after its catch-up).
__device__ __forceinline__ void emb_step_one(const EmbOpt& o, float lr, float ss, float ib,
                                             float& w, float& m, float& v, float g) {
    if (o.kind == EMB_SGD) {
        g = g + o.wd * w;
        m = o.mom * m + g;
        w -= lr * m;
        return;
    }
    const float cwd = o.kind == EMB_ADAMW ? 0.0f : o.wd;
    const float decay = o.kind == EMB_ADAMW ? 1.0f - lr * o.wd : 1.0f;
    if (o.kind == EMB_SPARSE_ADAM) {
        ib = 1.0f;
    }
    const float x = w * decay;
    g = g + cwd * x;
    const float mi = o.b1 * m + (1.0f - o.b1) * g;
    const float vi = o.b2 * v + (1.0f - o.b2) * g * g;
    m = mi;
    v = vi;
    w = x - ss * mi / (sqrtf(vi) * ib + o.eps);
}

// One row (dim weights at w, state at s) by one warp: catch up to step t - 1, then step t
// with the gradient grad(x) of weight x (computed from the weights before the catch-up, as
// the cpu adds l2 before RowOpt::update). Lane 0 sets *last = t.
template <typename Grad>
__device__ __forceinline__ void emb_row_update(const EmbOpt& o, const EmbTables& tb, float* w,
                                               float* s, unsigned stride, unsigned dim,
                                               unsigned* last, unsigned t, Grad grad) {
    const unsigned lane = threadIdx.x & 31u;
    const EmbCatchUp c = emb_catch_up_plan(o, tb, *last, t - 1u);
    const float lr = tb.sc[0], ss = tb.sc[1], ib = tb.sc[2];
    const int two = emb_n_state(o.kind) == 2;
    for (unsigned x = lane; x < dim; x += 32u) {
        const float g = grad(x, w[x]);
        float wx = w[x], m = s[x], v = two ? s[stride + x] : 0.0f;
        if (c.active) {
            emb_catch_up_one(o, c, wx, m, v);
        }
        emb_step_one(o, lr, ss, ib, wx, m, v, g);
        w[x] = wx;
        s[x] = m;
        if (two) {
            s[stride + x] = v;
        }
    }
    // Every lane has read *last (in the plan) before lane 0 overwrites it.
    __syncwarp();
    if (lane == 0u) {
        *last = t;
    }
}

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
    const unsigned lane = threadIdx.x;
    const double lrd = (double)lr;
    const double bc1 = 1.0 - emb_powi((double)b1, (int)t);
    const double bc2 = 1.0 - emb_powi((double)b2, (int)t);
    double step_size, h, decay;
    if (kind == EMB_ADAM || kind == EMB_ADAMW) {
        step_size = lrd / bc1;
        h = lrd * sqrt(bc2) / bc1;
        decay = kind == EMB_ADAMW ? lrd * (double)wd : 0.0;
    } else if (kind == EMB_SGD) {
        step_size = lrd;
        h = lrd;
        decay = lrd * (double)wd / (1.0 - (double)mom);
    } else {
        step_size = lrd * sqrt(bc2) / bc1;
        h = 0.0;
        decay = 0.0;
    }
    const float hf = (float)h;
    const unsigned top = t < EMB_MAX_CATCH_UP ? t : EMB_MAX_CATCH_UP;
    for (unsigned j = 1u + lane; j <= top; j += 32u) {
        window[t - j] += hf * rho_pow[j];
    }
    if (lane == 0u) {
        sc[0] = lr;
        sc[1] = (float)step_size;
        sc[2] = (float)(1.0 / sqrt(bc2));
        hist[t] = hf;
        window[t] = 0.0f;
        log_decay[t] = log_decay[t - 1u] + log(1.0 - (decay < 0.999 ? decay : 0.999));
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
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const float scale = 2.0f / (float)n;
    const float g0 = bias ? global[0] : 0.0f;
    for (unsigned j = warp; j < n; j += warps) {
        const unsigned r = idx[j];
        const float* wu = P + (size_t)user[r] * stride;
        const float* wi = Q + (size_t)item[r] * stride;
        float raw = g0 + emb_dot(wu, wi, k);
        if (bias) {
            raw += wu[k] + wi[k];
        }
        float p = raw, dp = 1.0f;
        if (squash) {
            const float s = recpipe_sigmoid(raw);
            p = lo + (hi - lo) * s;
            dp = (hi - lo) * s * (1.0f - s);
        }
        const float e = p - rating[r];
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
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    const EmbOpt o = {kind, b1, b2, eps, mom, wd};
    const EmbTables tb = {sc, hist, window, log_decay, rho_pow};
    const unsigned dim = k + (bias ? 1u : 0u);
    const unsigned ns = (unsigned)emb_n_state(kind);
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
                if (bias) {
                    // A lone lane: the row update's warp-wide parts run on lane 0 only.
                    const EmbCatchUp c = emb_catch_up_plan(o, tb, *glast, t - 1u);
                    float x = gw[0], m = gs[0], v = ns == 2u ? gs[1] : 0.0f;
                    if (c.active) {
                        emb_catch_up_one(o, c, x, m, v);
                    }
                    emb_step_one(o, tb.sc[0], tb.sc[1], tb.sc[2], x, m, v, gsum);
                    gw[0] = x;
                    gs[0] = m;
                    if (ns == 2u) {
                        gs[1] = v;
                    }
                    *glast = t;
                }
            }
            continue;
        }
        const bool is_user = w < nu;
        const unsigned row = rows[w];
        float* W = (is_user ? P : Q) + (size_t)row * stride;
        float* S = (is_user ? Su : Si) + (size_t)row * ns * stride;
        unsigned* last = (is_user ? last_u : last_i) + row;
        const float* other = is_user ? snap_i : snap_u;
        const unsigned e0 = off[w], e1 = off[w + 1u];
        const float two_l2 = 2.0f * l2;
        emb_row_update(o, tb, W, S, stride, dim, last, t, [&](unsigned x, float wx) {
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
    const unsigned ns = (unsigned)emb_n_state(kind);
    for (unsigned r = warp; r < n; r += warps) {
        if (last[r] == t) {
            continue;
        }
        emb_row_update(o, tb, W + (size_t)r * stride, S + (size_t)r * ns * stride, stride, dim,
                       last + r, t, [](unsigned, float) { return 0.0f; });
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
