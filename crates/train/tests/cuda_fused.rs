//! The CUDA backend's mini-batch trainer fuses small batches (`emb_steps`, R batches a
//! launch) and launches large ones one at a time; on the harness both give the cpu
//! backend's checkpoint bit for bit through the whole epoch loop.

mod common;

use common::planted;
use recpipe_core::Progress;
use recpipe_cuda::Kernel;
use recpipe_cuda::minibatch::{FUSE_MAX_BATCH, FUSED_THREADS};
use recpipe_cuda_harness::HostAccel;
use recpipe_train::cpu::CpuBackend;
use recpipe_train::cuda::{CudaBackend, Schedule};
use recpipe_train::{Config, Device, ModelKind, OptimizerKind, train_on};
use std::sync::Arc;

#[test]
fn small_batches_fuse_large_ones_do_not_and_both_give_the_cpu_weights() {
    let p = planted(30, 20, 2, 900, 0.1);
    for (batch, fused) in [(48, true), (FUSE_MAX_BATCH + 44, false)] {
        let cfg = Config {
            model: ModelKind::DotBias,
            optimizer: OptimizerKind::Adam,
            k: Some(6),
            epochs: 2,
            batch_size: batch,
            lr: 1e-2,
            weight_decay: 1e-4,
            threads: 1,
            ..Config::default()
        };
        let run = |b: &dyn recpipe_train::Backend| {
            train_on(b, &cfg, (&p.train, &p.valid), None, &Progress::hidden())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let cpu = run(&CpuBackend { threads: 1 });
        let host = Arc::new(HostAccel::new());
        let dev = run(&CudaBackend::on(
            host.clone(),
            Device::Cuda(0),
            Schedule::Sequential,
        ));
        assert_eq!(
            dev.checkpoint.tensors, cpu.checkpoint.tensors,
            "batch {batch}"
        );
        let steps = host.shapes(Kernel::EmbSteps);
        let forward = host.shapes(Kernel::EmbForward);
        if fused {
            assert_eq!(steps.len(), 1, "batch {batch}");
            assert_eq!((steps[0].grid, steps[0].block), (1, FUSED_THREADS));
            assert!(forward.is_empty(), "batch {batch}: {forward:?}");
        } else {
            assert!(steps.is_empty() && !forward.is_empty(), "batch {batch}");
        }
    }
}
