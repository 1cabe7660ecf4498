//! The kernel functions the host code launches, each named by its module (the `.cu` file's
//! stem in `kernels/`) and its `extern "C"` name, and the arguments a launch passes.

/// One `extern "C" __global__` function of `kernels/*.cu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    /// sgd.cu: per-rating SGD / Adagrad over a slice of an order (Hogwild across warps).
    SgdEpoch,
    /// sgd.cu: the global bias's step after a chunk.
    SgdGlobalStep,
    /// predict.cu: predictions for (user, item) pairs.
    Predict,
    /// predict.cu: per-block Σe², Σ|e| of predictions against ratings.
    EvalPartials,
    /// predict.cu: the blocks' partial sums into one pair.
    EvalReduce,
    /// embedding.cu: the catch-up tables' step 0 and ρ^j (once).
    EmbOptInit,
    /// embedding.cu: a mini-batch step's scalars and catch-up tables.
    EmbBeginStep,
    /// embedding.cu: a batch's forward pass (coefficients, e², row copies).
    EmbForward,
    /// embedding.cu: the optimizer step of a batch's touched rows and the global bias.
    EmbUpdate,
    /// embedding.cu: dense mode's zero-gradient step of the untouched rows.
    EmbDenseStep,
    /// embedding.cu: every row of a table caught up to the current step.
    EmbFlush,
    /// embedding.cu: R consecutive mini-batch steps in one single-block launch.
    EmbSteps,
    /// autorec.cu: both optimizers' step scalars and catch-up tables.
    ArBeginStep,
    /// autorec.cu: a batch of items encoded, decoded and back-propagated.
    ArForward,
    /// autorec.cu: the optimizer step of a batch's users and μ.
    ArUpdate,
    /// autorec.cu: the dot_bias form (user rows, item codes) for scoring.
    ArFold,
    /// dense.cu: C = op(A)·op(B) (+ C) (+ bias): the layers' matrix products.
    DenseGemm,
    /// dense.cu: a batch's joined embeddings (and hybrid's item features).
    DenseGather,
    /// dense.cu: columns of one row-major buffer into another.
    DenseCopyCols,
    /// dense.cu: batch norm's batch (and running) statistics.
    DenseBnStats,
    /// dense.cu: a layer's batch norm, ReLU and dropout.
    DenseActivate,
    /// dense.cu: dropout of the joined input in place.
    DenseDropout,
    /// dense.cu: a batch's losses and the output layer's gradient.
    DenseLoss,
    /// dense.cu: dropout and ReLU backward.
    DenseActBack,
    /// dense.cu: batch norm backward.
    DenseBnBack,
    /// dense.cu: column sums (a bias's gradient).
    DenseColSum,
    /// dense.cu: the embedding rows' gradients of a batch.
    DenseEmbGrad,
    /// ease.cu: XᵀX of the binary interactions (a block per user, atomic integer counts).
    EaseGram,
    /// ease.cu: λ added on a square matrix's diagonal.
    EaseAddDiag,
    /// ease.cu: the inverse of one diagonal block (one block, shared memory).
    EaseBlockInverse,
    /// ease.cu: a sweep step's row panel copy and −P·panel.
    EasePanel,
    /// ease.cu: a sweep step's rank-b update and new panels.
    EaseUpdate,
    /// ease.cu: a square matrix's diagonal copied out.
    EaseDiag,
    /// ease.cu: −P into B = −P_ij / P_jj with a zero diagonal, in place.
    EaseWeights,
    /// ials.cu: every row's conjugate-gradient steps of an iALS half-sweep.
    IalsCg,
    /// bpr.cu: BPR's pairwise SGD steps over a sub-epoch's (u, i, j) triples.
    BprSteps,
}

impl Kernel {
    /// Every kernel, in module order.
    pub const ALL: &'static [Kernel] = &[
        Kernel::SgdEpoch,
        Kernel::SgdGlobalStep,
        Kernel::Predict,
        Kernel::EvalPartials,
        Kernel::EvalReduce,
        Kernel::EmbOptInit,
        Kernel::EmbBeginStep,
        Kernel::EmbForward,
        Kernel::EmbUpdate,
        Kernel::EmbDenseStep,
        Kernel::EmbFlush,
        Kernel::EmbSteps,
        Kernel::ArBeginStep,
        Kernel::ArForward,
        Kernel::ArUpdate,
        Kernel::ArFold,
        Kernel::DenseGemm,
        Kernel::DenseGather,
        Kernel::DenseCopyCols,
        Kernel::DenseBnStats,
        Kernel::DenseActivate,
        Kernel::DenseDropout,
        Kernel::DenseLoss,
        Kernel::DenseActBack,
        Kernel::DenseBnBack,
        Kernel::DenseColSum,
        Kernel::DenseEmbGrad,
        Kernel::EaseGram,
        Kernel::EaseAddDiag,
        Kernel::EaseBlockInverse,
        Kernel::EasePanel,
        Kernel::EaseUpdate,
        Kernel::EaseDiag,
        Kernel::EaseWeights,
        Kernel::IalsCg,
        Kernel::BprSteps,
    ];

    /// The module (`kernels/<module>.cu`) that defines it.
    pub fn module(self) -> &'static str {
        match self {
            Kernel::SgdEpoch | Kernel::SgdGlobalStep => "sgd",
            Kernel::Predict | Kernel::EvalPartials | Kernel::EvalReduce => "predict",
            Kernel::EmbOptInit
            | Kernel::EmbBeginStep
            | Kernel::EmbForward
            | Kernel::EmbUpdate
            | Kernel::EmbDenseStep
            | Kernel::EmbFlush
            | Kernel::EmbSteps => "embedding",
            Kernel::ArBeginStep | Kernel::ArForward | Kernel::ArUpdate | Kernel::ArFold => {
                "autorec"
            }
            Kernel::DenseGemm
            | Kernel::DenseGather
            | Kernel::DenseCopyCols
            | Kernel::DenseBnStats
            | Kernel::DenseActivate
            | Kernel::DenseDropout
            | Kernel::DenseLoss
            | Kernel::DenseActBack
            | Kernel::DenseBnBack
            | Kernel::DenseColSum
            | Kernel::DenseEmbGrad => "dense",
            Kernel::EaseGram
            | Kernel::EaseAddDiag
            | Kernel::EaseBlockInverse
            | Kernel::EasePanel
            | Kernel::EaseUpdate
            | Kernel::EaseDiag
            | Kernel::EaseWeights => "ease",
            Kernel::IalsCg => "ials",
            Kernel::BprSteps => "bpr",
        }
    }

    /// Its `extern "C"` name.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::SgdEpoch => "sgd_epoch",
            Kernel::SgdGlobalStep => "sgd_global_step",
            Kernel::Predict => "predict",
            Kernel::EvalPartials => "eval_partials",
            Kernel::EvalReduce => "eval_reduce",
            Kernel::EmbOptInit => "emb_opt_init",
            Kernel::EmbBeginStep => "emb_begin_step",
            Kernel::EmbForward => "emb_forward",
            Kernel::EmbUpdate => "emb_update",
            Kernel::EmbDenseStep => "emb_dense_step",
            Kernel::EmbFlush => "emb_flush",
            Kernel::EmbSteps => "emb_steps",
            Kernel::ArBeginStep => "ar_begin_step",
            Kernel::ArForward => "ar_forward",
            Kernel::ArUpdate => "ar_update",
            Kernel::ArFold => "ar_fold",
            Kernel::DenseGemm => "dense_gemm",
            Kernel::DenseGather => "dense_gather",
            Kernel::DenseCopyCols => "dense_copy_cols",
            Kernel::DenseBnStats => "dense_bn_stats",
            Kernel::DenseActivate => "dense_activate",
            Kernel::DenseDropout => "dense_dropout",
            Kernel::DenseLoss => "dense_loss",
            Kernel::DenseActBack => "dense_act_back",
            Kernel::DenseBnBack => "dense_bn_back",
            Kernel::DenseColSum => "dense_col_sum",
            Kernel::DenseEmbGrad => "dense_emb_grad",
            Kernel::EaseGram => "ease_gram",
            Kernel::EaseAddDiag => "ease_add_diag",
            Kernel::EaseBlockInverse => "ease_block_inverse",
            Kernel::EasePanel => "ease_panel",
            Kernel::EaseUpdate => "ease_update",
            Kernel::EaseDiag => "ease_diag",
            Kernel::EaseWeights => "ease_weights",
            Kernel::IalsCg => "ials_cg",
            Kernel::BprSteps => "bpr_steps",
        }
    }
}

/// One kernel argument, as the kernel's C parameter type: a device pointer (null: `0`), an
/// `unsigned`, an `int` or a `float`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg {
    Ptr(u64),
    U32(u32),
    I32(i32),
    F32(f32),
}

impl Arg {
    /// The null pointer (an optional buffer left out).
    pub const NULL: Arg = Arg::Ptr(0);

    /// A device pointer, or a panic naming the argument: launchers check their argument
    /// lists against the kernel signature in tests, so a wrong type is a bug.
    pub fn ptr(self) -> u64 {
        match self {
            Arg::Ptr(p) => p,
            other => panic!("kernel argument {other:?} where a pointer was expected"),
        }
    }
    pub fn u32(self) -> u32 {
        match self {
            Arg::U32(v) => v,
            other => panic!("kernel argument {other:?} where an unsigned was expected"),
        }
    }
    pub fn i32(self) -> i32 {
        match self {
            Arg::I32(v) => v,
            other => panic!("kernel argument {other:?} where an int was expected"),
        }
    }
    pub fn f32(self) -> f32 {
        match self {
            Arg::F32(v) => v,
            other => panic!("kernel argument {other:?} where a float was expected"),
        }
    }
}

/// Grid and block of a launch (x only: every kernel here is one-dimensional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub grid: u32,
    pub block: u32,
}

impl Launch {
    /// Threads per block of the warp-per-item kernels: 8 warps.
    pub const BLOCK: u32 = 256;

    /// One warp, walking its items in order: the deterministic (sequential) schedule.
    pub const SEQUENTIAL: Launch = Launch { grid: 1, block: 32 };

    /// A warp per item for `items` items, at most `waves` blocks per multiprocessor (the
    /// warps then loop over the rest), at least one block.
    pub fn warps(items: usize, multiprocessors: u32, waves: u32) -> Launch {
        let per_block = (Self::BLOCK / 32) as usize;
        let needed = items.div_ceil(per_block).max(1);
        let cap = (multiprocessors.max(1) * waves.max(1)) as usize;
        Launch {
            grid: needed.min(cap) as u32,
            block: Self::BLOCK,
        }
    }

    /// Warps in the whole grid.
    pub fn total_warps(&self) -> usize {
        (self.grid as usize * self.block as usize) / 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_is_in_a_shipped_source() {
        for k in Kernel::ALL {
            let file = format!("{}.cu", k.module());
            let (_, src) = crate::SOURCES
                .iter()
                .find(|(f, _)| *f == file)
                .unwrap_or_else(|| panic!("{k:?}: no {file} in SOURCES"));
            assert!(
                src.contains(&format!("void {}(", k.name())),
                "{k:?}: {file} defines no `{}`",
                k.name()
            );
        }
    }

    #[test]
    fn launch_shapes_cover_the_items_and_stay_capped() {
        let l = Launch::warps(10, 132, 4);
        assert_eq!((l.grid, l.block), (2, 256));
        assert!(l.total_warps() >= 10);
        let big = Launch::warps(25_000_000, 132, 4);
        assert_eq!(big.grid, 528);
        assert_eq!(Launch::warps(0, 132, 4).grid, 1);
        assert_eq!(Launch::SEQUENTIAL.total_warps(), 1);
    }

    #[test]
    fn args_refuse_the_wrong_type() {
        assert_eq!(Arg::U32(3).u32(), 3);
        assert!(std::panic::catch_unwind(|| Arg::F32(1.0).ptr()).is_err());
    }
}
