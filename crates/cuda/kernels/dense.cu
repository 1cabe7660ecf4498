// The neural models (mlp, hybrid, classifier) on the device: the cpu trainer's forward and
// backward pass (train/src/cpu/{net.rs,layers.rs,neural.rs}) on a mini-batch, as kernels
// over row-major buffers (row = a batch position). The embedding rows and the dense
// parameters are stepped by embedding.cu's emb_update (the same RowOpt arithmetic as the
// cpu); what is here makes their gradients.
//
// One training step, in stream order (dense.rs launches it):
//   dense_gather       a warp per rating: x0 = the join of the two embeddings (concat or
//                      product) and, for hybrid, the item's features (into the tower's
//                      input, or into x0 when there is no tower)
//   per layer          dense_gemm z = x·Wᵀ + b; dense_bn_stats (batch statistics, running
//                      statistics moved); dense_activate (normalise, ReLU, dropout mask)
//   dense_loss         a thread per rating: the loss and d(loss)/d(output)
//   per layer, back    dense_act_back (mask, ReLU), dense_bn_back, dense_col_sum (bias),
//                      dense_gemm gW = dᵀ·x and dx = d·W
//   dense_emb_grad     a warp per rating: each position's gradient of its user and item row
//
// Sums run in a fixed order: per column over rows in row order (as the cpu's loops), and
// each GEMM output over k in order with fused multiply-adds; no atomics, so a step is
// deterministic at any launch width. Every kernel but dense_gemm loops over its items with
// any grid; dense_gemm needs blocks of DENSE_GEMM_THREADS threads.
#include "common.cuh"

// The GEMM tile: TILE × TILE outputs per block of TILE × (TILE / 2) threads, each thread
// two outputs (rows ty and ty + TILE / 2 of the tile).
#define DENSE_TILE 16
#define DENSE_GEMM_THREADS (DENSE_TILE * DENSE_TILE / 2)
// Each output sums k in blocks of this many (a multiple of DENSE_TILE), a fused chain per
// block, the blocks' sums added in order: the cpu's matrixmultiply (KC = 256) sums so, and
// the harness then gives the cpu backend's weights bit for bit.
#define DENSE_KC 256u

// Elements of op(X) (an M × K or K × N matrix as the GEMM reads it): X row-major with
// leading dimension ld, transposed when t.
__device__ __forceinline__ float dense_at(const float* X, unsigned ld, int t, unsigned r,
                                          unsigned c) {
    return t ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

// C (M × N, leading dimension ldc) = op(A) · op(B) (+ C when acc) (+ bias[n] when bias is
// not null), op(A) M × K, op(B) K × N. Tiles of 16 × 16 through shared memory; blocks loop
// over the tiles (any grid); blocks of DENSE_GEMM_THREADS threads. k sums in DENSE_KC
// blocks.
extern "C" __global__ void dense_gemm(unsigned M, unsigned N, unsigned K,
                                      const float* __restrict__ A, unsigned lda, int ta,
                                      const float* __restrict__ B, unsigned ldb, int tb,
                                      float* __restrict__ C, unsigned ldc,
                                      const float* __restrict__ bias, int acc) {
    __shared__ float As[DENSE_TILE][DENSE_TILE + 1];
    __shared__ float Bs[DENSE_TILE][DENSE_TILE + 1];
    const unsigned tid = threadIdx.x;
    const unsigned tx = tid % DENSE_TILE, ty = tid / DENSE_TILE;
    const unsigned half = DENSE_TILE / 2;
    const unsigned tiles_n = (N + DENSE_TILE - 1) / DENSE_TILE;
    const unsigned tiles = ((M + DENSE_TILE - 1) / DENSE_TILE) * tiles_n;
    for (unsigned tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const unsigned m0 = (tile / tiles_n) * DENSE_TILE, n0 = (tile % tiles_n) * DENSE_TILE;
        float c0 = 0.0f, c1 = 0.0f, t0 = 0.0f, t1 = 0.0f;
        for (unsigned k0 = 0; k0 < K; k0 += DENSE_TILE) {
            if (k0 > 0u && k0 % DENSE_KC == 0u) {
                t0 += c0;
                t1 += c1;
                c0 = 0.0f;
                c1 = 0.0f;
            }
            // Each thread loads two elements of each tile (rows ty and ty + half).
            for (unsigned h = 0; h < 2u; h++) {
                const unsigned r = ty + h * half;
                const unsigned am = m0 + r, ak = k0 + tx;
                As[r][tx] = am < M && ak < K ? dense_at(A, lda, ta, am, ak) : 0.0f;
                const unsigned bk = k0 + r, bn = n0 + tx;
                Bs[r][tx] = bk < K && bn < N ? dense_at(B, ldb, tb, bk, bn) : 0.0f;
            }
            __syncthreads();
            const unsigned kk = K - k0 < DENSE_TILE ? K - k0 : DENSE_TILE;
            for (unsigned x = 0; x < kk; x++) {
                c0 = fmaf(As[ty][x], Bs[x][tx], c0);
                c1 = fmaf(As[ty + half][x], Bs[x][tx], c1);
            }
            __syncthreads();
        }
        const unsigned n = n0 + tx;
        for (unsigned h = 0; h < 2u; h++) {
            const unsigned m = m0 + ty + h * half;
            if (m < M && n < N) {
                float v = h ? t1 + c1 : t0 + c0;
                float* out = C + (size_t)m * ldc + n;
                if (acc) {
                    v = *out + v;
                }
                if (bias) {
                    v = v + bias[n];
                }
                *out = v;
            }
        }
    }
}

// The first layer's input of the n pairs: pair j is (user[r], item[r]) with r = idx[j] (or
// r = j when idx is null). x0 row j (leading dimension ld0) = [u | i] (concat) or u ⊙ i
// (product), k floats per embedding row; with features (fw > 0) the item's fw features go to
// row j of fdst at column fcol (leading dimension fld): the tower's input, or x0 itself.
// A warp per pair, any grid.
extern "C" __global__ void dense_gather(unsigned n, const unsigned* __restrict__ user,
                                        const unsigned* __restrict__ item,
                                        const unsigned* __restrict__ idx,
                                        const float* __restrict__ P, const float* __restrict__ Q,
                                        unsigned k, int product, const float* __restrict__ feat,
                                        unsigned fw, float* __restrict__ x0, unsigned ld0,
                                        float* __restrict__ fdst, unsigned fld, unsigned fcol) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    for (unsigned j = warp; j < n; j += warps) {
        const unsigned r = idx ? idx[j] : j;
        const float* wu = P + (size_t)user[r] * k;
        const float* wi = Q + (size_t)item[r] * k;
        float* row = x0 + (size_t)j * ld0;
        for (unsigned x = lane; x < k; x += 32u) {
            if (product) {
                row[x] = wu[x] * wi[x];
            } else {
                row[x] = wu[x];
                row[k + x] = wi[x];
            }
        }
        if (fw > 0u) {
            const float* f = feat + (size_t)item[r] * fw;
            float* d = fdst + (size_t)j * fld + fcol;
            for (unsigned x = lane; x < fw; x += 32u) {
                d[x] = f[x];
            }
        }
    }
}

// dst[j, dcol + c] = src[j, scol + c] for j < n, c < cols (leading dimensions ldd, lds):
// the tower's output into x0, and back the gradient of x0's feature columns. Any grid.
extern "C" __global__ void dense_copy_cols(unsigned n, unsigned cols,
                                           const float* __restrict__ src, unsigned lds,
                                           unsigned scol, float* __restrict__ dst, unsigned ldd,
                                           unsigned dcol) {
    const size_t total = (size_t)n * cols;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const size_t j = e / cols, c = e % cols;
        dst[j * ldd + dcol + c] = src[j * lds + scol + c];
    }
}

// Batch norm's statistics of z (b × n), a thread per column. Training: the batch mean and
// 1/sqrt(var + eps) (biased variance, f64 sums in row order as layers.rs batch_stats) into
// mean / inv_std, and the running statistics moved by `momentum` (unbiased variance).
// Evaluation: mean / inv_std from the running statistics. Any grid.
extern "C" __global__ void dense_bn_stats(unsigned b, unsigned n, const float* __restrict__ z,
                                          float* __restrict__ mean, float* __restrict__ inv_std,
                                          float* __restrict__ rmean, float* __restrict__ rvar,
                                          int train, float momentum, float eps) {
    const unsigned stride = gridDim.x * blockDim.x;
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += stride) {
        if (!train) {
            mean[j] = rmean[j];
            inv_std[j] = 1.0f / sqrtf(rvar[j] + eps);
            continue;
        }
        double s = 0.0;
        for (unsigned r = 0; r < b; r++) {
            s += (double)z[(size_t)r * n + j];
        }
        const double m = s / (double)b;
        double q = 0.0;
        for (unsigned r = 0; r < b; r++) {
            const double d = (double)z[(size_t)r * n + j] - m;
            q += d * d;
        }
        const double var = q / (double)b;
        const double unbiased = b > 1u ? var * (double)b / (double)(b - 1u) : var;
        rmean[j] = (1.0f - momentum) * rmean[j] + momentum * (float)m;
        rvar[j] = (1.0f - momentum) * rvar[j] + momentum * (float)unbiased;
        mean[j] = (float)m;
        inv_std[j] = 1.0f / sqrtf((float)var + eps);
    }
}

// Dropout's multiplier of element e of a site: bit e of its mask set = kept (scaled by keep).
__device__ __forceinline__ float dense_mask(const unsigned* mask, size_t e, float keep) {
    return (mask[e >> 5] >> (e & 31u)) & 1u ? keep : 0.0f;
}

// A layer's output after its linear part, elementwise over b × n: out = z, or with batch
// norm (gamma not null) gamma · (z − mean) · inv_std + beta (xhat kept when training); then
// ReLU; then, with a mask (training), out ·= 0 or 1/(1 − p). Any grid.
extern "C" __global__ void dense_activate(unsigned b, unsigned n, const float* __restrict__ z,
                                          float* __restrict__ out, float* __restrict__ xhat,
                                          const float* __restrict__ mean,
                                          const float* __restrict__ inv_std,
                                          const float* __restrict__ gamma,
                                          const float* __restrict__ beta, int relu,
                                          const unsigned* __restrict__ mask, float p, int train) {
    const size_t total = (size_t)b * n;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const float keep = 1.0f / (1.0f - p);
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const unsigned j = (unsigned)(e % n);
        float v = z[e];
        if (gamma) {
            const float xh = (v - mean[j]) * inv_std[j];
            if (train) {
                xhat[e] = xh;
            }
            v = gamma[j] * xh + beta[j];
        }
        if (relu) {
            v = fmaxf(v, 0.0f);
        }
        if (mask) {
            v *= dense_mask(mask, e, keep);
        }
        out[e] = v;
    }
}

// Dropout on b × n values in place (the joined input x0): x ·= 0 or 1/(1 − p). Any grid.
extern "C" __global__ void dense_dropout(unsigned b, unsigned n, float* __restrict__ x,
                                         const unsigned* __restrict__ mask, float p) {
    const size_t total = (size_t)b * n;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const float keep = 1.0f / (1.0f - p);
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        x[e] *= dense_mask(mask, e, keep);
    }
}

// The loss of n ratings (rating[idx[j]]) from the output layer z (n × n_out) into loss[j],
// and d(mean loss)/d(z) into dz. Regression (classes null): the squared error of
// squash(z) (y_range lo..hi when squash), dz = 2·e·slope / n. Classifier: softmax
// cross-entropy against the class nearest the rating, dz = (softmax − onehot) / n. A thread
// per rating, any grid.
extern "C" __global__ void dense_loss(unsigned n, unsigned n_out, const float* __restrict__ z,
                                      const float* __restrict__ rating,
                                      const unsigned* __restrict__ idx,
                                      const float* __restrict__ classes, int squash, float lo,
                                      float hi, float* __restrict__ dz,
                                      float* __restrict__ loss) {
    const unsigned stride = gridDim.x * blockDim.x;
    const float bf = (float)n;
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += stride) {
        const float y = rating[idx[j]];
        const float* row = z + (size_t)j * n_out;
        float* d = dz + (size_t)j * n_out;
        if (classes) {
            // math.rs nearest_class: the first class at the least distance.
            unsigned t = 0;
            for (unsigned c = 0; c < n_out; c++) {
                if (fabsf(classes[c] - y) < fabsf(classes[t] - y)) {
                    t = c;
                }
            }
            float mx = row[0];
            for (unsigned c = 1; c < n_out; c++) {
                mx = fmaxf(mx, row[c]);
            }
            float sum = 0.0f;
            for (unsigned c = 0; c < n_out; c++) {
                sum += expf(row[c] - mx);
            }
            loss[j] = logf(sum) - (row[t] - mx);
            for (unsigned c = 0; c < n_out; c++) {
                const float pc = expf(row[c] - mx) / sum;
                d[c] = (pc - (c == t ? 1.0f : 0.0f)) / bf;
            }
        } else {
            float p = row[0], dp = 1.0f;
            if (squash) {
                const float s = recpipe_sigmoid(row[0]);
                p = lo + (hi - lo) * s;
                dp = (hi - lo) * s * (1.0f - s);
            }
            const float e = p - y;
            loss[j] = e * e;
            d[0] = 2.0f * e * dp / bf;
        }
    }
}

// A layer's backward pass through dropout and ReLU, in place on d (b × n, the gradient of
// its output): d ·= the mask's multiplier; with ReLU, d = 0 where out <= 0. Any grid.
extern "C" __global__ void dense_act_back(unsigned b, unsigned n, float* __restrict__ d,
                                          const float* __restrict__ out,
                                          const unsigned* __restrict__ mask, float p, int relu) {
    const size_t total = (size_t)b * n;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const float keep = 1.0f / (1.0f - p);
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        float v = d[e];
        if (mask) {
            v *= dense_mask(mask, e, keep);
        }
        if (relu && out[e] <= 0.0f) {
            v = 0.0f;
        }
        d[e] = v;
    }
}

// Batch norm's backward pass (layers.rs batch_norm_backward), a thread per column: the
// gamma and beta gradients into ggamma / gbeta (written), and d (b × n, the gradient of
// the normalised output) turned in place into the gradient of z. Any grid.
extern "C" __global__ void dense_bn_back(unsigned b, unsigned n, float* __restrict__ d,
                                         const float* __restrict__ xhat,
                                         const float* __restrict__ gamma,
                                         const float* __restrict__ inv_std,
                                         float* __restrict__ ggamma, float* __restrict__ gbeta) {
    const unsigned stride = gridDim.x * blockDim.x;
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += stride) {
        const float g = gamma[j];
        float dg = 0.0f, db = 0.0f, sd = 0.0f, sdx = 0.0f;
        for (unsigned r = 0; r < b; r++) {
            const size_t e = (size_t)r * n + j;
            const float dy = d[e], xh = xhat[e];
            dg += dy * xh;
            db += dy;
            const float dxh = dy * g;
            sd += dxh;
            sdx += dxh * xh;
        }
        ggamma[j] = dg;
        gbeta[j] = db;
        const float bf = (float)b;
        const float kf = inv_std[j] / bf;
        for (unsigned r = 0; r < b; r++) {
            const size_t e = (size_t)r * n + j;
            const float dxh = d[e] * g;
            d[e] = kf * (bf * dxh - sd - xhat[e] * sdx);
        }
    }
}

// out[j] = Σ_r d[r, j] (a bias's gradient), a thread per column of the n, in ndarray's
// order as the cpu sums a column (layers.rs backward): over the rows in order, or, when
// the column is contiguous (n = 1), its eightfold unrolled fold. Any grid.
extern "C" __global__ void dense_col_sum(unsigned b, unsigned n, const float* __restrict__ d,
                                         float* __restrict__ out) {
    const unsigned stride = gridDim.x * blockDim.x;
    for (unsigned j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += stride) {
        if (n == 1u) {
            // ndarray numeric_util::unrolled_fold.
            float p[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
            unsigned r = 0;
            for (; r + 8u <= b; r += 8u) {
                for (unsigned l = 0; l < 8u; l++) {
                    p[l] += d[r + l];
                }
            }
            float s = 0.0f;
            for (unsigned l = 0; l < 4u; l++) {
                s += p[l] + p[l + 4u];
            }
            for (; r < b; r++) {
                s += d[r];
            }
            out[0] = s;
            continue;
        }
        float s = 0.0f;
        for (unsigned r = 0; r < b; r++) {
            s += d[(size_t)r * n + j];
        }
        out[j] = s;
    }
}

// Each pair's gradient of its user and item rows from dx0 (the gradient of x0, leading
// dimension ld0): concat, the two halves; product, dx0 ⊙ the other row (as the cpu, from
// the weights before the step). Row j of gu (n × k) is user[idx[j]]'s, of gi item's. A
// warp per pair, any grid.
extern "C" __global__ void dense_emb_grad(unsigned n, const unsigned* __restrict__ user,
                                          const unsigned* __restrict__ item,
                                          const unsigned* __restrict__ idx,
                                          const float* __restrict__ P,
                                          const float* __restrict__ Q, unsigned k, int product,
                                          const float* __restrict__ dx0, unsigned ld0,
                                          float* __restrict__ gu, float* __restrict__ gi) {
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const unsigned warps = (gridDim.x * blockDim.x) >> 5;
    for (unsigned j = warp; j < n; j += warps) {
        const unsigned r = idx[j];
        const float* d = dx0 + (size_t)j * ld0;
        float* ou = gu + (size_t)j * k;
        float* oi = gi + (size_t)j * k;
        if (product) {
            const float* wu = P + (size_t)user[r] * k;
            const float* wi = Q + (size_t)item[r] * k;
            for (unsigned x = lane; x < k; x += 32u) {
                ou[x] = d[x] * wi[x];
                oi[x] = d[x] * wu[x];
            }
        } else {
            for (unsigned x = lane; x < k; x += 32u) {
                ou[x] = d[x];
                oi[x] = d[k + x];
            }
        }
    }
}
