// embedding.cu (mini-batch dot / dot_bias) compiled for host threads, with its slot
// launchers (slots.h).
#include "embedding.cu"
#include "slots.h"

extern "C" {

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
void slots_emb_steps(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        emb_steps(a[0].u, a[1].u, P<const unsigned*>(a[2]), P<const float*>(a[3]), a[4].u,
                  P<const unsigned*>(a[5]), P<const unsigned*>(a[6]), P<const float*>(a[7]),
                  P<const unsigned*>(a[8]), P<const unsigned*>(a[9]), P<const unsigned*>(a[10]),
                  P<const unsigned*>(a[11]), P<double*>(a[12]), P<float*>(a[13]),
                  P<float*>(a[14]), P<unsigned*>(a[15]), P<float*>(a[16]), P<float*>(a[17]),
                  P<unsigned*>(a[18]), a[19].u, a[20].u, a[21].i, P<float*>(a[22]),
                  P<float*>(a[23]), P<unsigned*>(a[24]), a[25].i, a[26].f, a[27].f,
                  P<float*>(a[28]), P<float*>(a[29]), P<float*>(a[30]), P<float*>(a[31]),
                  a[32].i, a[33].f, a[34].f, a[35].f, a[36].f, a[37].f, a[38].f, a[39].i,
                  a[40].u, a[41].u, P<float*>(a[42]), P<float*>(a[43]), P<float*>(a[44]),
                  P<double*>(a[45]), P<const float*>(a[46]));
    });
}
}
