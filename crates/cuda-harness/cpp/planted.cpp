// sgd.cu again with PLANT_OFF_BY_ONE (a read of k+1 factors), under its own names, with its
// slot launcher slots_planted_sgd_epoch (HostAccel::planted launches it for sgd_epoch), so a
// test can show that the harness catches an out-of-bounds index.
#define PLANT_OFF_BY_ONE
#define sgd_epoch planted_sgd_epoch
#define sgd_global_step planted_sgd_global_step
#define slots_sgd_epoch slots_planted_sgd_epoch
#include "sgd.cu"
#include "sgd_epoch_slots.h"
