//! Exports a small model trained here by plain SGD, for trying the export and the interop
//! check before the train stage exists in a build:
//!
//! ```text
//! recpipe ingest data/ml-latest-small --out /tmp/demo/ingest
//! recpipe split --input /tmp/demo/ingest --out /tmp/demo/split
//! cargo run --release -p recpipe-export --example export_demo -- /tmp/demo/ingest /tmp/demo/split /tmp/demo
//! scripts/check_interop.sh /tmp/demo/export
//! ```

use recpipe_core::model::{Checkpoint, ModelMeta, Tensor};
use recpipe_core::{Progress, Ratings};
use recpipe_export::{Config, ExportInputs, Format, export};
use std::collections::BTreeMap;
use std::path::PathBuf;

const K: usize = 32;
const EPOCHS: usize = 25;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [ingest, split, out] = args.as_slice() else {
        return Err("usage: export_demo INGEST_DIR SPLIT_DIR OUT_DIR".into());
    };
    let train = Ratings::read(split.join("train.parquet"))?;
    let (nu, ni) = (train.n_users as usize, train.n_items as usize);
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rand = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut p: Vec<f32> = (0..nu * K).map(|_| 0.1 * rand()).collect();
    let mut q: Vec<f32> = (0..ni * K).map(|_| 0.1 * rand()).collect();
    let (mut bu, mut bi) = (vec![0f32; nu], vec![0f32; ni]);
    let g = train.mean_rating() as f32;
    let (lr, reg) = (0.01f32, 0.05f32);
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            let j = ((rand() + 0.5) * (i + 1) as f32) as usize;
            order.swap(i, j.min(i));
        }
        let mut sse = 0f64;
        for &r in &order {
            let (u, i) = (train.user[r] as usize, train.item[r] as usize);
            let (pu, qi) = (&mut p[u * K..(u + 1) * K], &mut q[i * K..(i + 1) * K]);
            let dot: f32 = pu.iter().zip(qi.iter()).map(|(a, b)| a * b).sum();
            let err = train.rating[r] - (g + bu[u] + bi[i] + dot);
            sse += (err * err) as f64;
            bu[u] += lr * (err - reg * bu[u]);
            bi[i] += lr * (err - reg * bi[i]);
            for (a, b) in pu.iter_mut().zip(qi.iter_mut()) {
                let (a0, b0) = (*a, *b);
                *a += lr * (err * b0 - reg * a0);
                *b += lr * (err * a0 - reg * b0);
            }
        }
        eprintln!(
            "epoch {epoch}: train rmse {:.4}",
            (sse / train.len() as f64).sqrt()
        );
    }
    let mut tensors = BTreeMap::new();
    tensors.insert("user_factors".into(), Tensor::new(vec![nu, K], p));
    tensors.insert("item_factors".into(), Tensor::new(vec![ni, K], q));
    tensors.insert("user_bias".into(), Tensor::new(vec![nu], bu));
    tensors.insert("item_bias".into(), Tensor::new(vec![ni], bi));
    tensors.insert("global_bias".into(), Tensor::new(vec![1], vec![g]));
    let model_dir = out.join("train-demo");
    Checkpoint {
        meta: ModelMeta {
            model: "dot_bias".into(),
            n_users: nu as u32,
            n_items: ni as u32,
            k: K,
            y_range: None,
            global_mean: g,
            classes: None,
            best_epoch: None,
            device: "cpu".into(),
            config: serde_json::Value::Null,
        },
        tensors,
    }
    .save(&model_dir)?;
    let export_dir = out.join("export");
    std::fs::create_dir_all(&export_dir)?;
    let cfg = Config {
        normalized: true,
        similar_min_ratings: std::env::var("MIN_RATINGS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(Config::default().similar_min_ratings),
        format: vec![Format::Parquet, Format::Npy, Format::Csv],
        ..Config::default()
    };
    let summary = export(
        &cfg,
        &ExportInputs {
            model: &model_dir,
            ingest,
            split: Some(split),
        },
        &export_dir,
        &Progress::from_env(),
    )?;
    println!("wrote {}", export_dir.display());
    for line in summary.lines() {
        println!("{line}");
    }
    println!("export took {:.2}s", summary.seconds);
    Ok(())
}
