// bpr.cu (BPR's pairwise step) compiled for host threads, with its slot launcher (slots.h).
#include "bpr.cu"
#include "slots.h"

extern "C" {

void slots_bpr_steps(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        bpr_steps(P<const unsigned*>(a[0]), a[1].u, P<float*>(a[2]), P<float*>(a[3]), a[4].u,
                  a[5].u, a[6].f, a[7].f, P<double*>(a[8]));
    });
}
}
