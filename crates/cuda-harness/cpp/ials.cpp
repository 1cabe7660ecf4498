// ials.cu (iALS's conjugate-gradient row solves) compiled for host threads, with its slot
// launcher (slots.h).
#include "ials.cu"
#include "slots.h"

extern "C" {

void slots_ials_cg(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ials_cg(a[0].u, a[1].u, P<float*>(a[2]), P<const float*>(a[3]), P<const float*>(a[4]),
                P<const unsigned*>(a[5]), P<const unsigned*>(a[6]), P<const float*>(a[7]),
                P<float*>(a[8]), a[9].u);
    });
}
}
