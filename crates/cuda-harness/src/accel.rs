//! [`HostAccel`]: an [`Accel`] whose memory is host memory and whose launches run the
//! kernels' C++ build on host threads, so recpipe-cuda's host code (buffers, launch shapes,
//! the training loops) and train's CUDA backend run end to end in tests with no GPU.
//!
//! Blocks run one after another on the launching thread, a block's threads as fibers that
//! switch at every barrier and shuffle (`cuda_host.h`), so every launch is deterministic; a
//! wide one still interleaves its warps at those points, where Hogwild's races show, while a
//! one-warp launch ([`Launch::SEQUENTIAL`]) is the cpu's order.
//! `with_memory` gives it a memory size, to test the out-of-memory errors; `with_shape`
//! runs the warp-per-item launches on another shape, to show results do not depend on it;
//! `planted` runs sgd.cu's `PLANT_OFF_BY_ONE` build, to show ASan catches a bad index.

use recpipe_cuda::accel::{Accel, DevPtr};
use recpipe_cuda::kernel::{Arg, Kernel, Launch};
use std::alloc::Layout;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

type Launcher = unsafe extern "C" fn(u32, u32, *const u64);

unsafe extern "C" {
    fn slots_sgd_epoch(grid: u32, block: u32, args: *const u64);
    fn slots_planted_sgd_epoch(grid: u32, block: u32, args: *const u64);
    fn slots_sgd_global_step(grid: u32, block: u32, args: *const u64);
    fn slots_predict(grid: u32, block: u32, args: *const u64);
    fn slots_eval_partials(grid: u32, block: u32, args: *const u64);
    fn slots_eval_reduce(grid: u32, block: u32, args: *const u64);
    fn slots_emb_opt_init(grid: u32, block: u32, args: *const u64);
    fn slots_emb_begin_step(grid: u32, block: u32, args: *const u64);
    fn slots_emb_forward(grid: u32, block: u32, args: *const u64);
    fn slots_emb_update(grid: u32, block: u32, args: *const u64);
    fn slots_emb_dense_step(grid: u32, block: u32, args: *const u64);
    fn slots_emb_flush(grid: u32, block: u32, args: *const u64);
    fn slots_emb_steps(grid: u32, block: u32, args: *const u64);
    fn slots_ar_begin_step(grid: u32, block: u32, args: *const u64);
    fn slots_ar_forward(grid: u32, block: u32, args: *const u64);
    fn slots_ar_update(grid: u32, block: u32, args: *const u64);
    fn slots_ar_fold(grid: u32, block: u32, args: *const u64);
    fn slots_dense_gemm(grid: u32, block: u32, args: *const u64);
    fn slots_dense_gather(grid: u32, block: u32, args: *const u64);
    fn slots_dense_copy_cols(grid: u32, block: u32, args: *const u64);
    fn slots_dense_bn_stats(grid: u32, block: u32, args: *const u64);
    fn slots_dense_activate(grid: u32, block: u32, args: *const u64);
    fn slots_dense_dropout(grid: u32, block: u32, args: *const u64);
    fn slots_dense_loss(grid: u32, block: u32, args: *const u64);
    fn slots_dense_act_back(grid: u32, block: u32, args: *const u64);
    fn slots_dense_bn_back(grid: u32, block: u32, args: *const u64);
    fn slots_dense_col_sum(grid: u32, block: u32, args: *const u64);
    fn slots_dense_emb_grad(grid: u32, block: u32, args: *const u64);
    fn slots_ease_gram(grid: u32, block: u32, args: *const u64);
    fn slots_ease_add_diag(grid: u32, block: u32, args: *const u64);
    fn slots_ease_block_inverse(grid: u32, block: u32, args: *const u64);
    fn slots_ease_panel(grid: u32, block: u32, args: *const u64);
    fn slots_ease_update(grid: u32, block: u32, args: *const u64);
    fn slots_ease_diag(grid: u32, block: u32, args: *const u64);
    fn slots_ease_weights(grid: u32, block: u32, args: *const u64);
    fn slots_ials_cg(grid: u32, block: u32, args: *const u64);
    fn slots_bpr_steps(grid: u32, block: u32, args: *const u64);
}

/// The C++ launcher of `k` and its parameter count.
fn launcher(k: Kernel) -> (Launcher, usize) {
    match k {
        Kernel::SgdEpoch => (slots_sgd_epoch, 19),
        Kernel::SgdGlobalStep => (slots_sgd_global_step, 4),
        Kernel::Predict => (slots_predict, 13),
        Kernel::EvalPartials => (slots_eval_partials, 15),
        Kernel::EvalReduce => (slots_eval_reduce, 3),
        Kernel::EmbOptInit => (slots_emb_opt_init, 8),
        Kernel::EmbBeginStep => (slots_emb_begin_step, 12),
        Kernel::EmbForward => (slots_emb_forward, 18),
        Kernel::EmbUpdate => (slots_emb_update, 36),
        Kernel::EmbDenseStep => (slots_emb_dense_step, 18),
        Kernel::EmbFlush => (slots_emb_flush, 17),
        Kernel::EmbSteps => (slots_emb_steps, 47),
        Kernel::ArBeginStep => (slots_ar_begin_step, 16),
        Kernel::ArForward => (slots_ar_forward, 19),
        Kernel::ArUpdate => (slots_ar_update, 38),
        Kernel::ArFold => (slots_ar_fold, 11),
        Kernel::DenseGemm => (slots_dense_gemm, 13),
        Kernel::DenseGather => (slots_dense_gather, 15),
        Kernel::DenseCopyCols => (slots_dense_copy_cols, 8),
        Kernel::DenseBnStats => (slots_dense_bn_stats, 10),
        Kernel::DenseActivate => (slots_dense_activate, 13),
        Kernel::DenseDropout => (slots_dense_dropout, 5),
        Kernel::DenseLoss => (slots_dense_loss, 11),
        Kernel::DenseActBack => (slots_dense_act_back, 7),
        Kernel::DenseBnBack => (slots_dense_bn_back, 8),
        Kernel::DenseColSum => (slots_dense_col_sum, 4),
        Kernel::DenseEmbGrad => (slots_dense_emb_grad, 12),
        Kernel::EaseGram => (slots_ease_gram, 5),
        Kernel::EaseAddDiag => (slots_ease_add_diag, 3),
        Kernel::EaseBlockInverse => (slots_ease_block_inverse, 5),
        Kernel::EasePanel => (slots_ease_panel, 7),
        Kernel::EaseUpdate => (slots_ease_update, 7),
        Kernel::EaseDiag => (slots_ease_diag, 3),
        Kernel::EaseWeights => (slots_ease_weights, 3),
        Kernel::IalsCg => (slots_ials_cg, 10),
        Kernel::BprSteps => (slots_bpr_steps, 9),
    }
}

/// Device memory alignment (cudaMalloc's is 256 bytes).
const ALIGN: usize = 256;

/// The kernels on host threads.
#[derive(Debug)]
pub struct HostAccel {
    multiprocessors: u32,
    /// Bytes the "device" holds, when limited.
    limit: Option<usize>,
    /// The shape of every warp-per-item launch, when set.
    shape: Option<Launch>,
    /// sgd_epoch is the `PLANT_OFF_BY_ONE` build.
    planted: bool,
    live: Mutex<HashMap<DevPtr, Layout>>,
    /// Every (kernel, grid, block) launched.
    ran: Mutex<BTreeSet<(Kernel, u32, u32)>>,
}

impl Default for HostAccel {
    fn default() -> Self {
        Self::new()
    }
}

impl HostAccel {
    /// Unlimited memory, two "multiprocessors".
    pub fn new() -> Self {
        HostAccel {
            multiprocessors: 2,
            limit: None,
            shape: None,
            planted: false,
            live: Mutex::new(HashMap::new()),
            ran: Mutex::new(BTreeSet::new()),
        }
    }

    /// Runs every warp-per-item launch (the host code's [`Launch::warps`], blocks of
    /// [`Launch::BLOCK`] threads) as at most `shape.grid` blocks (never more than asked:
    /// eval_partials writes one partial sum a block) of `shape.block` threads. Those kernels
    /// loop their warps over the items, so the result must not depend on the shape;
    /// `Launch::SEQUENTIAL` makes them one warp walking the items in order.
    pub fn with_shape(shape: Launch) -> Self {
        assert!(shape.grid > 0 && shape.block.is_multiple_of(32) && shape.block <= 1024);
        HostAccel {
            shape: Some(shape),
            ..Self::new()
        }
    }

    /// sgd_epoch built with `PLANT_OFF_BY_ONE` (cpp/planted.cpp: it reads k+1 factors of a
    /// row), which AddressSanitizer must stop at the read past the table.
    pub fn planted() -> Self {
        HostAccel {
            planted: true,
            ..Self::new()
        }
    }

    /// A device of `bytes` bytes.
    pub fn with_memory(bytes: usize) -> Self {
        HostAccel {
            limit: Some(bytes),
            ..Self::new()
        }
    }

    /// Bytes allocated and not freed.
    pub fn used(&self) -> usize {
        self.live.lock().unwrap().values().map(Layout::size).sum()
    }

    /// Live allocations (to check that buffers are freed).
    pub fn allocations(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    /// The shapes `kernel` has run on, in (grid, block) order.
    pub fn shapes(&self, kernel: Kernel) -> Vec<Launch> {
        let ran = self.ran.lock().unwrap();
        ran.iter()
            .filter(|r| r.0 == kernel)
            .map(|&(_, grid, block)| Launch { grid, block })
            .collect()
    }

    fn check(&self, ptr: DevPtr, len: usize) {
        let live = self.live.lock().unwrap();
        let ok = live
            .iter()
            .any(|(&p, l)| ptr >= p && ptr + len as u64 <= p + l.size() as u64);
        assert!(
            ok,
            "host accel: {len} bytes at {ptr:#x} are not inside one live allocation"
        );
    }
}

impl Accel for HostAccel {
    fn name(&self) -> String {
        "harness".to_string()
    }

    fn multiprocessors(&self) -> u32 {
        self.multiprocessors
    }

    fn memory(&self) -> Option<(usize, usize)> {
        self.limit.map(|l| (l.saturating_sub(self.used()), l))
    }

    fn alloc_zeroed(&self, bytes: usize) -> Result<DevPtr, recpipe_cuda::Error> {
        if let Some((free, _)) = self.memory()
            && bytes > free
        {
            return Err(recpipe_cuda::Error::Driver(
                "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".to_string(),
            ));
        }
        let layout = Layout::from_size_align(bytes.max(1), ALIGN).expect("a valid layout");
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!p.is_null(), "host allocation of {bytes} bytes failed");
        self.live.lock().unwrap().insert(p as DevPtr, layout);
        Ok(p as DevPtr)
    }

    unsafe fn free(&self, ptr: DevPtr) {
        let layout = self
            .live
            .lock()
            .unwrap()
            .remove(&ptr)
            .expect("free of a pointer this accel did not allocate");
        // SAFETY: allocated above with this layout, removed from `live` so freed once.
        unsafe { std::alloc::dealloc(ptr as *mut u8, layout) };
    }

    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), recpipe_cuda::Error> {
        self.check(dst, src.len());
        // SAFETY: `dst..dst + len` lies in a live allocation (checked).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }

    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), recpipe_cuda::Error> {
        self.check(src, dst.len());
        // SAFETY: `src..src + len` lies in a live allocation (checked).
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn launch(
        &self,
        kernel: Kernel,
        shape: Launch,
        args: &[Arg],
    ) -> Result<(), recpipe_cuda::Error> {
        let (mut f, n) = launcher(kernel);
        if self.planted && kernel == Kernel::SgdEpoch {
            f = slots_planted_sgd_epoch;
        }
        assert_eq!(
            args.len(),
            n,
            "{kernel:?} takes {n} arguments, got {}",
            args.len()
        );
        assert!(shape.block.is_multiple_of(32) && shape.block <= 1024 && shape.grid > 0);
        let shape = match self.shape {
            Some(s) if shape.block == Launch::BLOCK => Launch {
                grid: s.grid.min(shape.grid),
                block: s.block,
            },
            _ => shape,
        };
        let ran = (kernel, shape.grid, shape.block);
        self.ran.lock().unwrap().insert(ran);
        let slots: Vec<u64> = args
            .iter()
            .map(|a| match *a {
                Arg::Ptr(p) => p,
                Arg::U32(v) => u64::from(v),
                Arg::I32(v) => u64::from(v as u32),
                Arg::F32(v) => u64::from(v.to_bits()),
            })
            .collect();
        // SAFETY: the slots are the kernel's parameter list (count checked); pointers are
        // the host addresses this accel handed out, bounds-checked by ASan in the C++.
        unsafe { f(shape.grid, shape.block, slots.as_ptr()) };
        Ok(())
    }
}
