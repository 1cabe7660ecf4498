// ease.cu (EASE's Gram matrix, sweep inverse and weights) compiled for host threads, with
// its slot launchers (slots.h).
#include "ease.cu"
#include "slots.h"

extern "C" {

void slots_ease_gram(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ease_gram(a[0].u, a[1].u, P<const unsigned*>(a[2]), P<const unsigned*>(a[3]),
                  P<float*>(a[4]));
    });
}

void slots_ease_add_diag(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] { ease_add_diag(a[0].u, P<float*>(a[1]), a[2].f); });
}

void slots_ease_block_inverse(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ease_block_inverse(a[0].u, P<const float*>(a[1]), a[2].u, a[3].u, P<float*>(a[4]));
    });
}

void slots_ease_panel(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ease_panel(a[0].u, P<const float*>(a[1]), a[2].u, a[3].u, P<const float*>(a[4]),
                   P<float*>(a[5]), P<float*>(a[6]));
    });
}

void slots_ease_update(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        ease_update(a[0].u, P<float*>(a[1]), a[2].u, a[3].u, P<const float*>(a[4]),
                    P<const float*>(a[5]), P<const float*>(a[6]));
    });
}

void slots_ease_diag(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] { ease_diag(a[0].u, P<const float*>(a[1]), P<float*>(a[2])); });
}

void slots_ease_weights(unsigned grid, unsigned block, const Slot* a) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] { ease_weights(a[0].u, P<float*>(a[1]), P<const float*>(a[2])); });
}
}
