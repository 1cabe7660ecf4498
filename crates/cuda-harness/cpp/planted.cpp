// sgd.cu again with PLANT_OFF_BY_ONE (a read of k+1 factors), under its own names, so a
// test can show that the harness catches an out-of-bounds index.
#define PLANT_OFF_BY_ONE
#define sgd_epoch planted_sgd_epoch
#define sgd_global_step planted_sgd_global_step
#include "sgd.cu"

extern "C" void harness_planted_sgd_epoch(unsigned grid, unsigned block, const unsigned* user,
                                          const unsigned* item, const float* rating,
                                          const unsigned* order, unsigned n, float* P,
                                          float* Q, unsigned stride, unsigned k, int bias,
                                          float* gu_sum, float* gi_sum, const float* global,
                                          float lr, float reg, int squash, float lo, float hi,
                                          double* acc) {
    cuda_host::launch(dim3{grid}, dim3{block}, [&] {
        planted_sgd_epoch(user, item, rating, order, n, P, Q, stride, k, bias, gu_sum, gi_sum,
                          global, lr, reg, squash, lo, hi, acc);
    });
}

