// The launchers HostAccel (src/accel.rs) calls, `slots_<kernel>(grid, block, args)`: the
// kernel's parameters as 8-byte slots in order, exactly as the CUDA driver takes them (a
// pointer, or an unsigned / int / float in the slot's first four bytes).
#pragma once
#include <cstdint>

union Slot {
    uint64_t p;
    unsigned u;
    int i;
    float f;
};

// Slot `s` as a pointer of type T.
template <typename T>
static T P(const Slot& s) {
    return reinterpret_cast<T>(static_cast<uintptr_t>(s.p));
}
