// RowOpt's arithmetic (train/src/cpu/rowopt.rs) and the cpu's `dot` (embedding.rs) as
// device functions, shared by the mini-batch kernels (embedding.cu) and I-AutoRec's
// (autorec.cu), so every optimizer step on the device rounds as the cpu's does.
#pragma once
#include "common.cuh"

// Outside NVRTC (the host-thread harness) launch bounds are only a hint to drop.
#ifndef __CUDACC__
#define __launch_bounds__(n)
#endif

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

// RowOpt::begin_step by one warp (lane = its lane): starts step t (1-based; steps must
// begin in order 1, 2, ...) at rate lr: sc (lr, step size, 1/sqrt(1 - b2^t)), hist[t],
// window[t - 200 .. t], log_decay[t]; the tables hold at least t + 1 entries.
__device__ __forceinline__ void emb_begin_step_warp(unsigned lane, int kind, float b1, float b2,
                                                    float mom, float wd, float lr, unsigned t,
                                                    float* sc, float* hist, float* window,
                                                    double* log_decay, const float* rho_pow) {
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
