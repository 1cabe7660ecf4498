// Runs CUDA C kernels on the cpu: compiled as C++20 with this header force-included, each
// thread of a block is a host thread, blocks run one after another (so `__shared__` is a
// function-static), __syncthreads is a barrier over the block, warp shuffles go through
// a per-warp exchange guarded by a std::barrier of its 32 lanes, and atomicAdd is
// std::atomic_ref. Built with -fsanitize=address, an out-of-bounds index in a kernel is
// reported with its .cu line.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace cuda_host {

// A sense-reversing barrier that yields while it waits: blocks have more threads than the
// machine has cores, and yielding hands the core to the lanes still on their way.
class Barrier {
  public:
    explicit Barrier(unsigned n) : n_(n) {}
    void arrive_and_wait() {
        const unsigned phase = phase_.load(std::memory_order_acquire);
        if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
            count_.store(0, std::memory_order_relaxed);
            phase_.store(phase + 1, std::memory_order_release);
            return;
        }
        while (phase_.load(std::memory_order_acquire) == phase) std::this_thread::yield();
    }

  private:
    const unsigned n_;
    std::atomic<unsigned> count_{0};
    std::atomic<unsigned> phase_{0};
};

struct Warp {
    explicit Warp(unsigned lanes) : bar(lanes) {}
    Barrier bar;
    // Two banks of one 8-byte slot per lane: enough for float, int and double shuffles.
    unsigned char slot[2][32][8] = {};
};

struct Block {
    explicit Block(unsigned threads) : bar(threads) {}
    Barrier bar;
    std::vector<std::unique_ptr<Warp>> warps;
};

inline thread_local dim3 thread_idx;
inline thread_local dim3 block_idx;
inline thread_local Block* block = nullptr;
// Shuffles this thread has made (all lanes of a warp make the same ones, in step).
inline thread_local unsigned exchanges = 0;
inline std::mutex one_launch_at_a_time;
inline dim3 block_dim;
inline dim3 grid_dim;

inline unsigned linear_thread() {
    return thread_idx.x + block_dim.x * (thread_idx.y + block_dim.y * thread_idx.z);
}

inline Warp& my_warp() { return *block->warps[linear_thread() / 32]; }

// Runs `body` (a call of one kernel) for every thread of every block of the launch. Blocks
// whose thread count is not a multiple of 32 get a short last warp. One launch at a time
// per process (gridDim and blockDim are process-wide), as on one CUDA stream.
template <typename F>
void launch(dim3 grid, dim3 blk, F body) {
    std::lock_guard<std::mutex> lock(one_launch_at_a_time);
    grid_dim = grid;
    block_dim = blk;
    const unsigned threads = blk.x * blk.y * blk.z;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                Block b(threads);
                for (unsigned w = 0; w < threads; w += 32) {
                    const unsigned lanes = threads - w < 32 ? threads - w : 32;
                    b.warps.push_back(std::make_unique<Warp>(lanes));
                }
                std::vector<std::thread> pool;
                pool.reserve(threads);
                for (unsigned t = 0; t < threads; t++) {
                    pool.emplace_back([&, t] {
                        block = &b;
                        block_idx = dim3{bx, by, bz};
                        thread_idx = dim3{t % blk.x, (t / blk.x) % blk.y, t / (blk.x * blk.y)};
                        exchanges = 0;
                        body();
                    });
                }
                for (auto& th : pool) th.join();
            }
}

// Lane l publishes v and takes the value of lane src_of_lane. Slots alternate between two
// banks, so one barrier per exchange suffices: a bank is rewritten two exchanges later, when
// every lane has passed the barrier after its last read.

template <typename T>
T exchange(T v, unsigned src_of_lane) {
    static_assert(sizeof(T) <= 8, "shuffles of values up to 8 bytes");
    Warp& w = my_warp();
    const unsigned lane = linear_thread() % 32, bank = exchanges++ & 1u;
    std::memcpy(w.slot[bank][lane], &v, sizeof(T));
    w.bar.arrive_and_wait();
    T r;
    std::memcpy(&r, w.slot[bank][src_of_lane % 32], sizeof(T));
    return r;
}

}  // namespace cuda_host

#define threadIdx (::cuda_host::thread_idx)
#define blockIdx (::cuda_host::block_idx)
#define blockDim (::cuda_host::block_dim)
#define gridDim (::cuda_host::grid_dim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict

inline void __syncthreads() { ::cuda_host::block->bar.arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { ::cuda_host::my_warp().bar.arrive_and_wait(); }

template <typename T>
T __shfl_xor_sync(unsigned, T v, int mask) {
    const unsigned lane = ::cuda_host::linear_thread() % 32;
    return ::cuda_host::exchange(v, lane ^ (unsigned)mask);
}

template <typename T>
T __shfl_sync(unsigned, T v, int src) {
    return ::cuda_host::exchange(v, (unsigned)src);
}

template <typename T>
T atomicAdd(T* p, T v) {
    return std::atomic_ref<T>(*p).fetch_add(v);
}
