// sgd.cu and predict.cu compiled for host threads, with their slot launchers (slots.h).
#include "sgd.cu"
#include "predict.cu"
#include "sgd_epoch_slots.h"

// ASan's defaults for the test binaries: Rust's test harness leaks by design at exit.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }

extern "C" {

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
