// autorec.cu (I-AutoRec) compiled for host threads, with its slot launchers (slots.h).
#include "autorec.cu"
#include "slots.h"

extern "C" {

void slots_ar_begin_step(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ar_begin_step(a[0].i, a[1].f, a[2].f, a[3].f, a[4].f, a[5].f, a[6].u, P<float*>(a[7]),
                      P<float*>(a[8]), P<float*>(a[9]), P<double*>(a[10]), P<float*>(a[11]),
                      P<float*>(a[12]), P<float*>(a[13]), P<double*>(a[14]),
                      P<const float*>(a[15]));
    });
}

void slots_ar_forward(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ar_forward(a[0].u, P<const unsigned*>(a[1]), P<const unsigned*>(a[2]),
                   P<const unsigned*>(a[3]), P<const unsigned*>(a[4]), P<const float*>(a[5]),
                   P<const float*>(a[6]), P<const float*>(a[7]), P<const float*>(a[8]), a[9].u,
                   a[10].i, a[11].f, a[12].f, P<float*>(a[13]), P<float*>(a[14]),
                   P<double*>(a[15]), P<float*>(a[16]), P<float*>(a[17]), P<unsigned*>(a[18]));
    });
}

void slots_ar_update(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ar_update(a[0].u, P<const unsigned*>(a[1]), P<const unsigned*>(a[2]),
                  P<const unsigned*>(a[3]), P<const float*>(a[4]), P<const float*>(a[5]),
                  P<const unsigned*>(a[6]), P<const float*>(a[7]), P<const float*>(a[8]), a[9].u,
                  P<const double*>(a[10]), P<double*>(a[11]), P<float*>(a[12]),
                  P<float*>(a[13]), P<unsigned*>(a[14]), P<float*>(a[15]), P<float*>(a[16]),
                  P<unsigned*>(a[17]), P<float*>(a[18]), P<float*>(a[19]), P<unsigned*>(a[20]),
                  a[21].u, a[22].i, a[23].f, a[24].f, a[25].f, a[26].f, a[27].f, a[28].u,
                  P<const float*>(a[29]), P<const float*>(a[30]), P<const float*>(a[31]),
                  P<const double*>(a[32]), P<const float*>(a[33]), P<const float*>(a[34]),
                  P<const float*>(a[35]), P<const double*>(a[36]), P<const float*>(a[37]));
    });
}

void slots_ar_fold(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ar_fold(a[0].u, a[1].u, P<const float*>(a[2]), P<const float*>(a[3]),
                P<const float*>(a[4]), P<const unsigned*>(a[5]), P<const unsigned*>(a[6]),
                P<const float*>(a[7]), a[8].u, P<float*>(a[9]), P<float*>(a[10]));
    });
}
}
