// dense.cu (the neural models' layers) compiled for host threads, with its slot launchers
// (slots.h).
#include "dense.cu"
#include "slots.h"

extern "C" {

void slots_dense_gemm(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_gemm(a[0].u, a[1].u, a[2].u, P<const float*>(a[3]), a[4].u, a[5].i,
                   P<const float*>(a[6]), a[7].u, a[8].i, P<float*>(a[9]), a[10].u,
                   P<const float*>(a[11]), a[12].i);
    });
}

void slots_dense_gather(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_gather(a[0].u, P<const unsigned*>(a[1]), P<const unsigned*>(a[2]),
                     P<const unsigned*>(a[3]), P<const float*>(a[4]), P<const float*>(a[5]),
                     a[6].u, a[7].i, P<const float*>(a[8]), a[9].u, P<float*>(a[10]), a[11].u,
                     P<float*>(a[12]), a[13].u, a[14].u);
    });
}

void slots_dense_copy_cols(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_copy_cols(a[0].u, a[1].u, P<const float*>(a[2]), a[3].u, a[4].u, P<float*>(a[5]),
                        a[6].u, a[7].u);
    });
}

void slots_dense_bn_stats(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_bn_stats(a[0].u, a[1].u, P<const float*>(a[2]), P<float*>(a[3]), P<float*>(a[4]),
                       P<float*>(a[5]), P<float*>(a[6]), a[7].i, a[8].f, a[9].f);
    });
}

void slots_dense_activate(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_activate(a[0].u, a[1].u, P<const float*>(a[2]), P<float*>(a[3]), P<float*>(a[4]),
                       P<const float*>(a[5]), P<const float*>(a[6]), P<const float*>(a[7]),
                       P<const float*>(a[8]), a[9].i, P<const unsigned*>(a[10]), a[11].f,
                       a[12].i);
    });
}

void slots_dense_dropout(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_dropout(a[0].u, a[1].u, P<float*>(a[2]), P<const unsigned*>(a[3]), a[4].f);
    });
}

void slots_dense_loss(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_loss(a[0].u, a[1].u, P<const float*>(a[2]), P<const float*>(a[3]),
                   P<const unsigned*>(a[4]), P<const float*>(a[5]), a[6].i, a[7].f, a[8].f,
                   P<float*>(a[9]), P<float*>(a[10]));
    });
}

void slots_dense_act_back(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_act_back(a[0].u, a[1].u, P<float*>(a[2]), P<const float*>(a[3]),
                       P<const unsigned*>(a[4]), a[5].f, a[6].i);
    });
}

void slots_dense_bn_back(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_bn_back(a[0].u, a[1].u, P<float*>(a[2]), P<const float*>(a[3]),
                      P<const float*>(a[4]), P<const float*>(a[5]), P<float*>(a[6]),
                      P<float*>(a[7]));
    });
}

void slots_dense_col_sum(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_col_sum(a[0].u, a[1].u, P<const float*>(a[2]), P<float*>(a[3]));
    });
}

void slots_dense_emb_grad(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        dense_emb_grad(a[0].u, P<const unsigned*>(a[1]), P<const unsigned*>(a[2]),
                       P<const unsigned*>(a[3]), P<const float*>(a[4]), P<const float*>(a[5]),
                       a[6].u, a[7].i, P<const float*>(a[8]), a[9].u, P<float*>(a[10]),
                       P<float*>(a[11]));
    });
}
}
