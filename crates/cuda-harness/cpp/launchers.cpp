// The kernels of crates/cuda/kernels compiled for host threads, with one extern "C" launcher
// per kernel for the Rust tests (grid and block sizes in x only).
#include "sgd.cu"
#include "predict.cu"

extern "C" {

void harness_sgd_epoch(unsigned grid, unsigned block, const unsigned* user,
                       const unsigned* item, const float* rating, const unsigned* order,
                       unsigned n, float* P, float* Q, unsigned stride, unsigned k, int bias,
                       float* gu_sum, float* gi_sum, const float* global, float lr, float reg,
                       int squash, float lo, float hi, double* acc) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        sgd_epoch(user, item, rating, order, n, P, Q, stride, k, bias, gu_sum, gi_sum, global,
                  lr, reg, squash, lo, hi, acc);
    });
}

void harness_sgd_global_step(float* global, double* acc, float lr, unsigned n) {
    cuda_host::launch(dim3{1}, dim3{1}, [&] { sgd_global_step(global, acc, lr, n); });
}

void harness_predict(unsigned grid, unsigned block, const unsigned* user, const unsigned* item,
                     unsigned n, const float* P, const float* Q, unsigned stride, unsigned k,
                     int bias, const float* global, int squash, float lo, float hi, float* out) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        predict(user, item, n, P, Q, stride, k, bias, global, squash, lo, hi, out);
    });
}

void harness_eval(unsigned grid, unsigned block, const unsigned* user, const unsigned* item,
                  const float* rating, unsigned n, const float* P, const float* Q,
                  unsigned stride, unsigned k, int bias, const float* global, int squash,
                  float lo, float hi, float* out, double* partial, double* sums) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        eval_partials(user, item, rating, n, P, Q, stride, k, bias, global, squash, lo, hi, out,
                      partial);
    });
    cuda_host::launch(dim3{1}, dim3{32}, [&] { eval_reduce(partial, grid, sums); });
}
}

// ASan's defaults for the test binaries: Rust's test harness leaks by design at exit.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }

// The launchers HostAccel (src/accel.rs) calls: one per kernel, taking the kernel's
// parameters as 8-byte slots in order, exactly as the CUDA driver takes them (a pointer,
// or an unsigned / int / float in the slot's first four bytes).
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

extern "C" {

void slots_sgd_epoch(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        sgd_epoch(P<const unsigned*>(a[0]), P<const unsigned*>(a[1]), P<const float*>(a[2]),
                  P<const unsigned*>(a[3]), a[4].u, P<float*>(a[5]), P<float*>(a[6]), a[7].u,
                  a[8].u, a[9].i, P<float*>(a[10]), P<float*>(a[11]), P<const float*>(a[12]),
                  a[13].f, a[14].f, a[15].i, a[16].f, a[17].f, P<double*>(a[18]));
    });
}

void slots_sgd_global_step(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        sgd_global_step(P<float*>(a[0]), P<double*>(a[1]), a[2].f, a[3].u);
    });
}

void slots_predict(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        predict(P<const unsigned*>(a[0]), P<const unsigned*>(a[1]), a[2].u, P<const float*>(a[3]),
                P<const float*>(a[4]), a[5].u, a[6].u, a[7].i, P<const float*>(a[8]), a[9].i,
                a[10].f, a[11].f, P<float*>(a[12]));
    });
}

void slots_eval_partials(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        eval_partials(P<const unsigned*>(a[0]), P<const unsigned*>(a[1]), P<const float*>(a[2]),
                      a[3].u, P<const float*>(a[4]), P<const float*>(a[5]), a[6].u, a[7].u,
                      a[8].i, P<const float*>(a[9]), a[10].i, a[11].f, a[12].f, P<float*>(a[13]),
                      P<double*>(a[14]));
    });
}

void slots_eval_reduce(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        eval_reduce(P<const double*>(a[0]), a[1].u, P<double*>(a[2]));
    });
}
}
