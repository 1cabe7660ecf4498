//! The weights of a CUDA-trained dot / dot_bias model on the host: the starting tables,
//! drawn exactly as the cpu trainers draw theirs (so every backend starts from the same
//! model for a seed), in the kernels' row layout, and the checkpoint's tensors back out of
//! that layout.

use crate::backend::ModelSpec;
use crate::config::ModelKind;
use crate::init;
use crate::rng::Rng;
use recpipe_core::math::unsquash;
use recpipe_core::model::{Tensor, tensor};
use recpipe_cuda::mf::{MfShape, MfWeights};
use std::collections::BTreeMap;

/// The device shape of `spec`'s model.
pub(crate) fn shape_of(spec: &ModelSpec) -> MfShape {
    MfShape {
        n_users: spec.n_users,
        n_items: spec.n_items,
        k: spec.k,
        bias: spec.kind == ModelKind::DotBias,
    }
}

/// The starting weights: `init::table` draws for users then items from stream 1, and the
/// global bias at the (unsquashed) mean rating, as `cpu/embedding.rs` and `cpu/grid.rs`.
pub(crate) fn initial_weights(spec: &ModelSpec) -> MfWeights {
    let cfg = &spec.cfg;
    let bias = spec.kind == ModelKind::DotBias;
    let mut rng = Rng::stream(cfg.seed, 1);
    let mut table = |n: usize| {
        let (w, b) = init::table(cfg, n, spec.k, bias, &mut rng);
        interleave(&w, &b, n, spec.k)
    };
    let p = table(spec.n_users);
    let q = table(spec.n_items);
    let global = if bias {
        unsquash(spec.global_mean, spec.y_range)
    } else {
        0.0
    };
    MfWeights { p, q, global }
}

/// Whether every weight is finite.
pub(crate) fn all_finite(w: &MfWeights) -> bool {
    w.p.iter().chain(&w.q).all(|x| x.is_finite()) && w.global.is_finite()
}

/// Rows of `k` factors then (when `b` is not empty) the bias: the kernels' layout.
fn interleave(w: &[f32], b: &[f32], n: usize, k: usize) -> Vec<f32> {
    let stride = k + usize::from(!b.is_empty());
    let mut out = vec![0.0; n * stride];
    for r in 0..n {
        out[r * stride..r * stride + k].copy_from_slice(&w[r * k..(r + 1) * k]);
        if let Some(&x) = b.get(r) {
            out[r * stride + k] = x;
        }
    }
    out
}

/// The checkpoint's tensors of device-layout weights.
pub(crate) fn tensors_of(shape: MfShape, w: &MfWeights) -> BTreeMap<String, Tensor> {
    let (k, s) = (shape.k, shape.stride());
    let factors = |t: &[f32], n: usize| {
        let data = (0..n)
            .flat_map(|r| t[r * s..r * s + k].iter().copied())
            .collect();
        Tensor::new(vec![n, k], data)
    };
    let biases = |t: &[f32], n: usize| Tensor::new(vec![n], (0..n).map(|r| t[r * s + k]).collect());
    let mut m = BTreeMap::new();
    m.insert(
        tensor::USER_FACTORS.to_string(),
        factors(&w.p, shape.n_users),
    );
    m.insert(
        tensor::ITEM_FACTORS.to_string(),
        factors(&w.q, shape.n_items),
    );
    if shape.bias {
        m.insert(tensor::USER_BIAS.to_string(), biases(&w.p, shape.n_users));
        m.insert(tensor::ITEM_BIAS.to_string(), biases(&w.q, shape.n_items));
        m.insert(
            tensor::GLOBAL_BIAS.to_string(),
            Tensor::new(vec![1], vec![w.global]),
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_interleave_factors_and_bias() {
        let w = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            interleave(&w, &[9.0, 8.0], 2, 2),
            [1.0, 2.0, 9.0, 3.0, 4.0, 8.0]
        );
        assert_eq!(interleave(&w, &[], 2, 2), w);
        let shape = MfShape {
            n_users: 2,
            n_items: 1,
            k: 2,
            bias: true,
        };
        let t = tensors_of(
            shape,
            &MfWeights {
                p: interleave(&w, &[9.0, 8.0], 2, 2),
                q: vec![5.0, 6.0, 7.0],
                global: 0.5,
            },
        );
        assert_eq!(t[tensor::USER_FACTORS].data, w);
        assert_eq!(t[tensor::USER_BIAS].data, [9.0, 8.0]);
        assert_eq!(t[tensor::ITEM_BIAS].data, [7.0]);
        assert_eq!(t[tensor::GLOBAL_BIAS].data, [0.5]);
    }
}
