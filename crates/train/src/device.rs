//! Which device a run trains on: the config's `device` (`"auto"`, `"cpu"`, `"cuda"`,
//! `"cuda:N"`) resolved against what this machine has and what the CUDA backend trains.
//!
//! - `cpu`: the CPU backend.
//! - `cuda` / `cuda:N`: that CUDA device, or a one-line error naming what is missing (the
//!   driver, the device) or why the model cannot train there.
//! - `auto`: the first CUDA device when the driver finds one and the CUDA backend trains
//!   the model, else the cpu, with one log line saying why.
//!
//! [`planned`] is the same choice without opening anything, for the cache key: a model
//! trained on a GPU and one trained on the cpu never share a cache entry.

use crate::backend::Device;
use crate::config::{Config, DeviceChoice, ModelKind};
use crate::error::{Result, TrainError};

/// Why the CUDA backend cannot train `cfg`'s model, if it cannot: it trains `dot` and
/// `dot_bias` (per-rating and mini-batch; k up to the dot / dot_bias kernels' KMAX), the
/// neural models (`mlp`, `hybrid`, `classifier`) and `autorec` (any k: its kernels loop
/// over the hidden units), and the ranking models `ease` and `ials` (k up to the iALS
/// kernel's KMAX) and `bpr` (k up to the BPR kernel's KMAX).
pub fn cuda_refuses(cfg: &Config) -> Option<String> {
    // The kernels that hold a row of k factors in registers have a widest k.
    let (kernels, kmax) = match cfg.model {
        m if m.is_embedding() => ("kernels'", recpipe_cuda::mf::KMAX),
        ModelKind::Ials => ("iALS kernel's", recpipe_cuda::ials::KMAX),
        ModelKind::Bpr => ("BPR kernel's", recpipe_cuda::bpr::KMAX),
        m if m.is_neural() || matches!(m, ModelKind::Autorec | ModelKind::Ease) => return None,
        other => {
            return Some(format!(
                "the CUDA backend trains dot / dot_bias / mlp / hybrid / classifier / autorec / \
                 ease / ials / bpr; `{other}` is not on it yet"
            ));
        }
    };
    (cfg.k() > kmax).then(|| format!("k = {} is above the CUDA {kernels} {kmax}", cfg.k()))
}

/// The CUDA devices the driver lists, or why there are none.
fn cuda_devices() -> std::result::Result<Vec<recpipe_cuda::probe::DeviceInfo>, String> {
    match recpipe_cuda::probe::devices() {
        Ok(d) if d.is_empty() => Err("the CUDA driver lists no device".to_string()),
        Ok(d) => Ok(d),
        Err(recpipe_cuda::Error::NoDriver(_)) => Err(
            "no CUDA driver (libcuda not found; `recpipe devices` shows where it looked)"
                .to_string(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

/// The device `cfg` trains on here and why (the reason `auto` gave), or the error `cuda`
/// gives, with the GPU's name when it is one; opens nothing.
fn choose(cfg: &Config) -> Result<(Device, Option<String>, String)> {
    let cuda_error = |n: usize, message: String| TrainError::Cuda {
        device: Device::Cuda(n).name(),
        message,
    };
    match cfg.device {
        DeviceChoice::Cpu => Ok((Device::Cpu, None, "device = \"cpu\"".to_string())),
        DeviceChoice::Cuda(n) => {
            if let Some(why) = cuda_refuses(cfg) {
                return Err(cuda_error(
                    n,
                    format!("{why}; use device = \"cpu\" or \"auto\""),
                ));
            }
            let devices = cuda_devices()
                .map_err(|why| cuda_error(n, format!("{why}; use device = \"cpu\" or \"auto\"")))?;
            let d = devices.get(n).ok_or_else(|| {
                cuda_error(
                    n,
                    format!(
                        "this machine has {} CUDA device(s), cuda:0..cuda:{}",
                        devices.len(),
                        devices.len() - 1
                    ),
                )
            })?;
            Ok((
                Device::Cuda(n),
                Some(d.name.clone()),
                format!("device = \"cuda:{n}\": {}", d.name),
            ))
        }
        DeviceChoice::Auto => {
            if let Some(why) = cuda_refuses(cfg) {
                return Ok((
                    Device::Cpu,
                    None,
                    format!("device = \"auto\": training on cpu: {why}"),
                ));
            }
            match cuda_devices() {
                Ok(d) => Ok((
                    Device::Cuda(0),
                    Some(d[0].name.clone()),
                    format!("device = \"auto\": training on cuda:0 ({})", d[0].name),
                )),
                Err(why) => Ok((
                    Device::Cpu,
                    None,
                    format!("device = \"auto\": training on cpu: {why}"),
                )),
            }
        }
    }
}

/// The device `cfg` trains on, logging why `auto` chose it: once per process for each
/// reason, so a pipeline of several training stages says it once.
pub fn select(cfg: &Config) -> Result<Device> {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let (device, _, why) = choose(cfg)?;
    let first = {
        let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
        let first = !said.contains(&why);
        if first {
            said.push(why.clone());
        }
        first
    };
    if cfg.device == DeviceChoice::Auto && first {
        tracing::info!("{why}");
    } else {
        tracing::debug!("{why}");
    }
    Ok(device)
}

/// What the cache key records of the device (Null for the cpu, so cpu keys are those of
/// every earlier run): the CUDA device and its name.
pub fn planned(cfg: &Config) -> serde_json::Value {
    match choose(cfg) {
        Ok((device @ Device::Cuda(_), gpu, _)) => {
            serde_json::json!({ "device": device.name(), "gpu": gpu.unwrap_or_default() })
        }
        _ => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelKind, OptimizerKind};

    fn per_rating_cfg(device: DeviceChoice) -> Config {
        Config {
            model: ModelKind::DotBias,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.0,
            batch_size: 1,
            device,
            ..Config::default()
        }
    }

    #[test]
    fn device_names_parse_and_print_back() {
        for (s, d) in [
            ("auto", DeviceChoice::Auto),
            ("cpu", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
        ] {
            assert_eq!(DeviceChoice::try_from(s.to_string()).unwrap(), d);
        }
        assert_eq!(String::from(DeviceChoice::Cuda(0)), "cuda");
        assert_eq!(String::from(DeviceChoice::Cuda(2)), "cuda:2");
        let e = DeviceChoice::try_from("gpu".to_string()).unwrap_err();
        assert!(e.contains("`gpu`") && e.contains("cuda:N"), "{e}");
    }

    #[test]
    fn cpu_is_cpu_and_models_off_the_cuda_backend_say_why() {
        assert_eq!(
            select(&per_rating_cfg(DeviceChoice::Cpu)).unwrap(),
            Device::Cpu
        );
        let mlp = Config {
            model: ModelKind::Blend,
            device: DeviceChoice::Cuda(0),
            ..Config::default()
        };
        let e = select(&mlp).unwrap_err().to_string();
        assert!(
            e.contains("`blend` is not on it yet") && e.contains("device = \"cpu\""),
            "{e}"
        );
        // autorec's kernels loop over its hidden units: KMAX is the dot / dot_bias kernels'.
        let autorec = Config {
            model: ModelKind::Autorec,
            k: Some(1000),
            ..Config::default()
        };
        assert_eq!(cuda_refuses(&autorec), None);
        for model in [ModelKind::Mlp, ModelKind::Hybrid, ModelKind::Classifier] {
            let neural = Config {
                model,
                k: Some(300),
                ..Config::default()
            };
            assert_eq!(cuda_refuses(&neural), None, "{model:?}");
        }
        let wide = Config {
            k: Some(300),
            ..per_rating_cfg(DeviceChoice::Cuda(0))
        };
        let e = select(&wide).unwrap_err().to_string();
        assert!(e.contains("k = 300 is above the CUDA kernels' 256"), "{e}");
        let wide = Config {
            device: DeviceChoice::Auto,
            ..wide
        };
        assert_eq!(select(&wide).unwrap(), Device::Cpu);
        // EASE and iALS are on it (iALS up to its kernel's k).
        for model in [ModelKind::Ease, ModelKind::Ials] {
            let ranking = Config {
                model,
                ..Config::default()
            };
            assert_eq!(cuda_refuses(&ranking), None, "{model:?}");
        }
        let wide_ials = Config {
            model: ModelKind::Ials,
            k: Some(300),
            ..Config::default()
        };
        let why = cuda_refuses(&wide_ials).expect("k above the kernel's");
        assert!(
            why.contains("k = 300 is above the CUDA iALS kernel's 256"),
            "{why}"
        );
        // BPR is on it up to its kernel's k; `auto` trains a wider one on the cpu.
        let bpr = Config {
            model: ModelKind::Bpr,
            ..Config::default()
        };
        assert_eq!(cuda_refuses(&bpr), None);
        let wide_bpr = Config {
            k: Some(300),
            device: DeviceChoice::Auto,
            ..bpr
        };
        let why = cuda_refuses(&wide_bpr).expect("k above the kernel's");
        assert!(
            why.contains("k = 300 is above the CUDA BPR kernel's 256"),
            "{why}"
        );
        assert_eq!(select(&wide_bpr).unwrap(), Device::Cpu);
        // auto never fails: a model off the CUDA backend trains on the cpu.
        let auto = Config {
            device: DeviceChoice::Auto,
            ..mlp
        };
        assert_eq!(select(&auto).unwrap(), Device::Cpu);
        assert_eq!(planned(&auto), serde_json::Value::Null);
    }

    /// On a machine without a driver, `cuda` is a one-line error naming what is missing and
    /// `auto` falls back to the cpu; with a device, both pick it.
    #[test]
    fn cuda_without_a_driver_errors_and_auto_falls_back() {
        let cuda = select(&per_rating_cfg(DeviceChoice::Cuda(0)));
        let auto = select(&per_rating_cfg(DeviceChoice::Auto)).unwrap();
        match cuda_devices() {
            Err(why) => {
                let e = cuda.unwrap_err().to_string();
                assert!(e.starts_with("device = \"cuda:0\": "), "{e}");
                assert!(e.contains(&why) && !e.contains('\n'), "{e}");
                assert_eq!(auto, Device::Cpu);
                println!("skipped the GPU half: no GPU ({why})");
            }
            Ok(devices) => {
                assert_eq!(cuda.unwrap(), Device::Cuda(0));
                assert_eq!(auto, Device::Cuda(0));
                let e = select(&per_rating_cfg(DeviceChoice::Cuda(devices.len())))
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("CUDA device(s)"), "{e}");
            }
        }
    }
}
