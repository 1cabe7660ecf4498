// Runs CUDA C kernels on the cpu: compiled as C++20 with this header force-included, each
// thread of a block is a fiber (its own stack, switched in user space) on the launching host
// thread, blocks run one after another (so `__shared__` is a function-static, one per host
// thread), __syncthreads is a barrier over the block's fibers, warp shuffles go through a
// per-warp exchange guarded by a barrier of its 32 lanes, and atomicAdd is std::atomic_ref.
// Fibers run in thread order and switch only at barriers, so a launch is deterministic, and
// a wide launch still interleaves its warps at every shuffle and __syncthreads, the points
// where Hogwild races show. A barrier that not every thread reaches is reported, not hung
// on. Built with -fsanitize=address, an out-of-bounds index in a kernel is reported with its
// .cu line.
//
// Why fibers and not one host thread per CUDA thread: a block of 256 threads on a 2-core
// machine spent its time creating threads and spinning in barriers; a fiber switch is a few
// register moves.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace cuda_host {

// ---- Context switch: callee-saved registers and the stack pointer (x86-64 System V). ----

// Every translation unit that includes this header emits it, as one COMDAT group.
#if defined(__x86_64__)
extern "C" void cuda_host_switch(void** save_sp, void* next_sp);
asm(R"(
    .section .text.cuda_host_switch,"axG",@progbits,cuda_host_switch,comdat
    .p2align 4
    .weak cuda_host_switch
    .hidden cuda_host_switch
    .type cuda_host_switch,@function
cuda_host_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cuda_host_switch, .-cuda_host_switch
    .text
)");
struct Context {
    void* sp = nullptr;
};
#else
struct Context {
    ucontext_t uc;
};
#endif

void fiber_entry();

// Bytes of stack per fiber: kernels keep a few small arrays per thread; ASan's redzones
// make frames several times bigger. Mapped lazily, so unused pages cost nothing.
constexpr size_t STACK = 256 * 1024;

struct Barrier;

struct Fiber {
    Context ctx;
    unsigned char* stack = nullptr;
    dim3 idx;
    unsigned exchanges = 0;
    bool done = false;
    const Barrier* waiting = nullptr;
    unsigned waiting_gen = 0;
};

// What the launching host thread is running: its fibers and the one on the cpu now.
struct Scheduler {
    Context main;
    std::vector<Fiber> fibers;
    std::vector<unsigned char*> stacks;  // reused by every block of every launch
    Fiber* current = nullptr;
    void (*run)(void*) = nullptr;
    void* body = nullptr;
    ~Scheduler() {
        for (auto* s : stacks) munmap(s, STACK);
    }
};

inline thread_local Scheduler sched;

// ASan is not told of the switches (__sanitizer_start_switch_fiber made a launch ten times
// slower): its checks of kernel memory and of stack frames work on any stack; only its
// use-after-return detection, off by default, would need them.
inline void switch_to(Context& from, Context& to) {
#if defined(__x86_64__)
    cuda_host_switch(&from.sp, to.sp);
#else
    swapcontext(&from.uc, &to.uc);
#endif
}

// The running fiber gives the cpu back to the scheduler.
inline void yield_to_scheduler() {
    Scheduler& s = sched;
    switch_to(s.current->ctx, s.main);
}

// A barrier of n fibers of one host thread: the last to arrive opens it and goes on; the
// others wait in the scheduler until it has opened.
struct Barrier {
    explicit Barrier(unsigned n) : n_(n) {}
    void arrive_and_wait() {
        if (++count_ == n_) {
            count_ = 0;
            gen_++;
            return;
        }
        Fiber* f = sched.current;
        f->waiting = this;
        f->waiting_gen = gen_;
        yield_to_scheduler();
    }
    bool open_since(unsigned gen) const { return gen_ != gen; }

  private:
    const unsigned n_;
    unsigned count_ = 0;
    unsigned gen_ = 0;
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
inline thread_local dim3 block_dim;
inline thread_local dim3 grid_dim;

inline unsigned linear_thread() {
    return thread_idx.x + block_dim.x * (thread_idx.y + block_dim.y * thread_idx.z);
}

inline Warp& my_warp() { return *block->warps[linear_thread() / 32]; }

inline void fiber_entry() {
    Scheduler& s = sched;
    s.run(s.body);
    s.current->done = true;
    yield_to_scheduler();
    std::abort();  // a finished fiber is never resumed
}

inline void prepare(Fiber& f, unsigned char* stack) {
    f.stack = stack;
#if defined(__SANITIZE_ADDRESS__)
    // The frames a finished fiber left (fiber_entry's) may keep poisoned redzones.
    __asan_unpoison_memory_region(stack + STACK - 16384, 16384);
#endif
#if defined(__x86_64__)
    // cuda_host_switch pops six registers and returns into fiber_entry, which then sees the
    // stack as a call would leave it (rsp ≡ 8 mod 16).
    auto* top = reinterpret_cast<void**>(stack + STACK);
    top[-1] = nullptr;                                       // fiber_entry's return address
    top[-2] = reinterpret_cast<void*>(&fiber_entry);         // where `ret` goes
    for (int r = 3; r <= 8; r++) top[-r] = nullptr;          // r15 … rbp
    f.ctx.sp = &top[-8];
#else
    getcontext(&f.ctx.uc);
    f.ctx.uc.uc_stack.ss_sp = stack;
    f.ctx.uc.uc_stack.ss_size = STACK;
    f.ctx.uc.uc_link = nullptr;
    makecontext(&f.ctx.uc, fiber_entry, 0);
#endif
}

// Runs the block's fibers in thread order, each until it finishes or waits at a barrier
// still closed, until all have finished.
template <typename F>
void run_block(unsigned threads, F& body) {
    Scheduler& s = sched;
    while (s.stacks.size() < threads) {
        void* m = mmap(nullptr, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            std::fprintf(stderr, "cuda_host: cannot map a %zu-byte fiber stack\n", STACK);
            std::abort();
        }
        s.stacks.push_back(static_cast<unsigned char*>(m));
    }
    s.fibers.assign(threads, Fiber{});
    s.run = [](void* b) { (*static_cast<F*>(b))(); };
    s.body = &body;
    for (unsigned t = 0; t < threads; t++) {
        Fiber& f = s.fibers[t];
        f.idx = dim3{t % block_dim.x, (t / block_dim.x) % block_dim.y, t / (block_dim.x * block_dim.y)};
        prepare(f, s.stacks[t]);
    }
    unsigned left = threads;
    while (left > 0) {
        bool ran = false;
        for (auto& f : s.fibers) {
            if (f.done || (f.waiting && !f.waiting->open_since(f.waiting_gen))) continue;
            f.waiting = nullptr;
            s.current = &f;
            thread_idx = f.idx;
            exchanges = f.exchanges;
            switch_to(s.main, f.ctx);
            f.exchanges = exchanges;
            ran = true;
            if (f.done) left--;
        }
        if (!ran) {
            std::fprintf(stderr,
                         "cuda_host: block (%u, %u, %u): %u of %u threads wait at a barrier the "
                         "others never reach\n",
                         block_idx.x, block_idx.y, block_idx.z, left, threads);
            std::abort();
        }
    }
    s.current = nullptr;
}

// Runs `body` (a call of one kernel) for every thread of every block of the launch. Blocks
// whose thread count is not a multiple of 32 get a short last warp. Launches from one host
// thread run in order, as on one CUDA stream; launches from different host threads (tests
// running side by side) do not share anything.
template <typename F>
void launch(dim3 grid, dim3 blk, F body) {
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
                block = &b;
                block_idx = dim3{bx, by, bz};
                run_block(threads, body);
                block = nullptr;
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
#define __shared__ static thread_local
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

// Round-to-nearest arithmetic that CUDA never fuses into an fma; the harness is built with
// -ffp-contract=off, so plain operators are already that.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }

template <typename T>
T atomicAdd(T* p, T v) {
    return std::atomic_ref<T>(*p).fetch_add(v);
}
