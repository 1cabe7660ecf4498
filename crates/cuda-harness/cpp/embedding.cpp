// embedding.cu (mini-batch dot / dot_bias) compiled for host threads, with one extern "C"
// launcher per kernel for the Rust tests (grid and block sizes in x only).
#include "embedding.cu"

extern "C" {

void harness_emb_opt_init(int kind, float b1, float b2, float mom, float* rho_pow, float* hist,
                          float* window, double* log_decay) {
    cuda_host::launch(dim3{1}, dim3{1},
                      [&] { emb_opt_init(kind, b1, b2, mom, rho_pow, hist, window, log_decay); });
}

void harness_emb_begin_step(int kind, float b1, float b2, float mom, float wd, float lr,
                            unsigned t, float* sc, float* hist, float* window,
                            double* log_decay, const float* rho_pow) {
    cuda_host::launch(dim3{1}, dim3{32}, [&] {
        emb_begin_step(kind, b1, b2, mom, wd, lr, t, sc, hist, window, log_decay, rho_pow);
    });
}

void harness_emb_forward(unsigned grid, unsigned block, const unsigned* user,
                         const unsigned* item, const float* rating, const unsigned* idx,
                         unsigned n, const float* P, const float* Q, unsigned stride,
                         unsigned k, int bias, const float* global, int squash, float lo,
                         float hi, float* coef, float* err2, float* snap_u, float* snap_i) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_forward(user, item, rating, idx, n, P, Q, stride, k, bias, global, squash, lo, hi,
                    coef, err2, snap_u, snap_i);
    });
}

void harness_emb_update(unsigned grid, unsigned block, unsigned nu, unsigned ni,
                        const unsigned* rows, const unsigned* off, const unsigned* ent,
                        const float* coef, const float* err2, const float* snap_u,
                        const float* snap_i, unsigned n, float* P, float* Su, unsigned* last_u,
                        float* Q, float* Si, unsigned* last_i, unsigned stride, unsigned k,
                        int bias, float* gw, float* gs, unsigned* glast, double* acc, int kind,
                        float b1, float b2, float eps, float mom, float wd, float l2,
                        unsigned t, const float* sc, const float* hist, const float* window,
                        const double* log_decay, const float* rho_pow) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_update(nu, ni, rows, off, ent, coef, err2, snap_u, snap_i, n, P, Su, last_u, Q, Si,
                   last_i, stride, k, bias, gw, gs, glast, acc, kind, b1, b2, eps, mom, wd, l2,
                   t, sc, hist, window, log_decay, rho_pow);
    });
}

void harness_emb_dense_step(unsigned grid, unsigned block, unsigned n, float* W, float* S,
                            unsigned* last, unsigned stride, unsigned dim, int kind, float b1,
                            float b2, float eps, float mom, float wd, unsigned t,
                            const float* sc, const float* hist, const float* window,
                            const double* log_decay, const float* rho_pow) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_dense_step(n, W, S, last, stride, dim, kind, b1, b2, eps, mom, wd, t, sc, hist,
                       window, log_decay, rho_pow);
    });
}

void harness_emb_flush(unsigned grid, unsigned block, unsigned n, float* W, float* S,
                       unsigned* last, unsigned stride, unsigned dim, int kind, float b1,
                       float b2, float eps, float mom, float wd, unsigned t, const float* hist,
                       const float* window, const double* log_decay, const float* rho_pow) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_flush(n, W, S, last, stride, dim, kind, b1, b2, eps, mom, wd, t, hist, window,
                  log_decay, rho_pow);
    });
}
}

// The launchers HostAccel (src/accel.rs) calls for these kernels: the parameters as 8-byte
// slots in order, as the CUDA driver takes them (a pointer, or an unsigned / int / float in
// the slot's first four bytes).
namespace emb_slots {
union Slot {
    uint64_t p;
    unsigned u;
    int i;
    float f;
};
template <typename T>
static T P(const Slot& s) {
    return reinterpret_cast<T>(static_cast<uintptr_t>(s.p));
}
}  // namespace emb_slots

extern "C" {
using emb_slots::P;
using emb_slots::Slot;

void slots_emb_opt_init(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_opt_init(a[0].i, a[1].f, a[2].f, a[3].f, P<float*>(a[4]), P<float*>(a[5]),
                     P<float*>(a[6]), P<double*>(a[7]));
    });
}

void slots_emb_begin_step(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_begin_step(a[0].i, a[1].f, a[2].f, a[3].f, a[4].f, a[5].f, a[6].u, P<float*>(a[7]),
                       P<float*>(a[8]), P<float*>(a[9]), P<double*>(a[10]),
                       P<const float*>(a[11]));
    });
}

void slots_emb_forward(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_forward(P<const unsigned*>(a[0]), P<const unsigned*>(a[1]), P<const float*>(a[2]),
                    P<const unsigned*>(a[3]), a[4].u, P<const float*>(a[5]),
                    P<const float*>(a[6]), a[7].u, a[8].u, a[9].i, P<const float*>(a[10]),
                    a[11].i, a[12].f, a[13].f, P<float*>(a[14]), P<float*>(a[15]),
                    P<float*>(a[16]), P<float*>(a[17]));
    });
}

void slots_emb_update(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_update(a[0].u, a[1].u, P<const unsigned*>(a[2]), P<const unsigned*>(a[3]),
                   P<const unsigned*>(a[4]), P<const float*>(a[5]), P<const float*>(a[6]),
                   P<const float*>(a[7]), P<const float*>(a[8]), a[9].u, P<float*>(a[10]),
                   P<float*>(a[11]), P<unsigned*>(a[12]), P<float*>(a[13]), P<float*>(a[14]),
                   P<unsigned*>(a[15]), a[16].u, a[17].u, a[18].i, P<float*>(a[19]),
                   P<float*>(a[20]), P<unsigned*>(a[21]), P<double*>(a[22]), a[23].i, a[24].f,
                   a[25].f, a[26].f, a[27].f, a[28].f, a[29].f, a[30].u, P<const float*>(a[31]),
                   P<const float*>(a[32]), P<const float*>(a[33]), P<const double*>(a[34]),
                   P<const float*>(a[35]));
    });
}

void slots_emb_dense_step(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_dense_step(a[0].u, P<float*>(a[1]), P<float*>(a[2]), P<unsigned*>(a[3]), a[4].u,
                       a[5].u, a[6].i, a[7].f, a[8].f, a[9].f, a[10].f, a[11].f, a[12].u,
                       P<const float*>(a[13]), P<const float*>(a[14]), P<const float*>(a[15]),
                       P<const double*>(a[16]), P<const float*>(a[17]));
    });
}

void slots_emb_flush(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_flush(a[0].u, P<float*>(a[1]), P<float*>(a[2]), P<unsigned*>(a[3]), a[4].u, a[5].u,
                  a[6].i, a[7].f, a[8].f, a[9].f, a[10].f, a[11].f, a[12].u,
                  P<const float*>(a[13]), P<const float*>(a[14]), P<const double*>(a[15]),
                  P<const float*>(a[16]));
    });
}
}
