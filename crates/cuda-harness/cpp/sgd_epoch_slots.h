// sgd_epoch's slot launcher, included after sgd.cu by launchers.cpp and (under the planted
// names) by planted.cpp, so its parameter list is written once.
#include "slots.h"

extern "C" void slots_sgd_epoch(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        sgd_epoch(P<const unsigned*>(a[0]), P<const unsigned*>(a[1]), P<const float*>(a[2]),
                  P<const unsigned*>(a[3]), a[4].u, P<float*>(a[5]), P<float*>(a[6]), a[7].u,
                  a[8].u, a[9].i, P<float*>(a[10]), P<float*>(a[11]), P<const float*>(a[12]),
                  a[13].f, a[14].f, a[15].i, a[16].f, a[17].f, P<double*>(a[18]));
    });
}
