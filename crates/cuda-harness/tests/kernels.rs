//! Every kernel of recpipe-cuda run through its host code (`mf::MfModel`, `mf::Tables`) on
//! the host-thread device against a plain Rust reference of the same rule: per-rating
//! SGD/Adagrad (sequential schedule: equal within 1e-6), predictions (equal), and the
//! RMSE/MAE reduction (within fp32 tolerance), on several launch shapes; and a planted
//! off-by-one is caught.

mod reference;

use recpipe_cuda::mf::{DeviceRatings, MfModel, SgdStep};
use recpipe_cuda::{Accel, Buf, Kernel, Launch, Purpose};
use recpipe_cuda_harness::{self as h, HostAccel};
use reference::{Model, Rng};
use std::sync::Arc;

const TEST: Purpose = Purpose {
    what: "the test data",
    setting: "none",
};

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Ratings as three columns on `accel`.
fn upload(accel: &Arc<dyn Accel>, user: &[u32], item: &[u32], rating: &[f32]) -> DeviceRatings {
    DeviceRatings::upload(accel, (user, item, rating), TEST).unwrap()
}

/// `m` on `accel` (Adagrad's sums starting at 1 when `adagrad`).
fn resident(accel: &Arc<dyn Accel>, m: &Model, adagrad: bool) -> MfModel {
    MfModel::new(accel, m.shape(), &m.weights(), adagrad.then_some(1.0)).unwrap()
}

/// One `sgd_chunk` over `order` (every rating in turn when None) launched as `shape`: Σ e².
fn epoch(
    dev: &MfModel,
    accel: &Arc<dyn Accel>,
    data: &DeviceRatings,
    order: Option<&[u32]>,
    st: SgdStep,
    shape: Launch,
) -> f64 {
    let all: Vec<u32> = (0..data.len() as u32).collect();
    let order = order.unwrap_or(&all);
    let buf = Buf::from_slice(accel, order, TEST).unwrap();
    dev.sgd_chunk(data, &buf, 0..order.len(), st, shape)
        .unwrap()
}

#[test]
fn sgd_sequential_matches_the_reference() {
    let accel: Arc<dyn Accel> = Arc::new(HostAccel::new());
    let mut rng = Rng(0x5eed);
    let (nu, ni, n) = (7, 9, 60);
    for k in [3usize, 77, 256] {
        for bias in [false, true] {
            for y_range in [None, Some([0.5f32, 5.5])] {
                for adagrad in [false, true] {
                    let (user, item, rating) = reference::ratings(&mut rng, n, nu, ni);
                    let data = upload(&accel, &user, &item, &rating);
                    let scale = 1.0 / (k as f32).sqrt();
                    let mut cpu = reference::model(&mut rng, nu, ni, k, bias, scale);
                    let gpu = resident(&accel, &cpu, adagrad);
                    let (mut ru, mut ri) = (vec![1.0f32; nu], vec![1.0f32; ni]);
                    let st = SgdStep {
                        lr: 0.01,
                        reg: 2.0 * 0.02 + 0.001,
                        y_range,
                    };
                    let ctx = format!("k {k} bias {bias} y_range {y_range:?} adagrad {adagrad}");
                    for epoch_no in 0..2 {
                        let mut order: Vec<u32> = (0..n as u32).collect();
                        rng.shuffle(&mut order);
                        let a = epoch(&gpu, &accel, &data, Some(&order), st, Launch::SEQUENTIAL);
                        let rs = adagrad.then_some((&mut ru[..], &mut ri[..]));
                        let b = reference::sgd_epoch(
                            &user, &item, &rating, &order, &mut cpu, rs, st.lr, st.reg, y_range,
                        );
                        let ctx = format!("{ctx} epoch {epoch_no}");
                        assert!(
                            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                            "{ctx}: sse {a} vs {b}"
                        );
                        let w = gpu.weights().unwrap();
                        assert!(max_diff(&w.p, &cpu.p) <= 1e-6, "{ctx}: users differ");
                        assert!(max_diff(&w.q, &cpu.q) <= 1e-6, "{ctx}: items differ");
                        assert!(
                            (w.global - cpu.global).abs() <= 1e-6,
                            "{ctx}: global bias differs"
                        );
                        match gpu.adagrad_sums() {
                            Some((gu, gi)) => {
                                let (gu, gi) = (gu.to_vec().unwrap(), gi.to_vec().unwrap());
                                assert!(
                                    adagrad
                                        && max_diff(&gu, &ru) <= 1e-6
                                        && max_diff(&gi, &ri) <= 1e-6,
                                    "{ctx}: sums differ"
                                );
                            }
                            None => assert!(!adagrad, "{ctx}: no Adagrad sums"),
                        }
                        assert!(w.p.iter().all(|x| x.is_finite()), "{ctx}: diverged");
                    }
                }
            }
        }
    }
}

/// Ratings that share no user and no item cannot race: a wide Hogwild launch (several
/// blocks, several warps each) must then give exactly the sequential result.
#[test]
fn hogwild_launch_without_conflicts_equals_the_sequential_one() {
    let accel: Arc<dyn Accel> = Arc::new(HostAccel::new());
    let mut rng = Rng(42);
    let n = 96;
    let user: Vec<u32> = (0..n as u32).collect();
    let mut item: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut item);
    let rating: Vec<f32> = (0..n).map(|_| 1.0 + 4.0 * rng.unit()).collect();
    let data = upload(&accel, &user, &item, &rating);
    let st = SgdStep {
        lr: 0.05,
        reg: 0.01,
        y_range: Some([0.0, 5.5]),
    };
    let start = reference::model(&mut rng, n, n, 40, true, 0.2);
    let (seq, wide) = (
        resident(&accel, &start, false),
        resident(&accel, &start, false),
    );
    let a = epoch(&seq, &accel, &data, None, st, Launch::SEQUENTIAL);
    let b = epoch(
        &wide,
        &accel,
        &data,
        None,
        st,
        Launch { grid: 3, block: 64 },
    );
    let (seq, wide) = (seq.weights().unwrap(), wide.weights().unwrap());
    let diffs: Vec<usize> = (0..seq.p.len())
        .filter(|&j| seq.p[j] != wide.p[j])
        .collect();
    assert!(
        diffs.is_empty(),
        "users differ at {:?} (of {})",
        &diffs[..diffs.len().min(20)],
        diffs.len()
    );
    assert_eq!(seq.q, wide.q);
    assert!((a - b).abs() <= 1e-9 * a, "sse {a} vs {b}");
    assert!((seq.global - wide.global).abs() <= 1e-6);
    assert_ne!(seq.global, start.global, "the global bias did not move");
}

/// With races (a few rows, many warps) Hogwild still trains: the loss falls over epochs.
#[test]
fn hogwild_launch_with_conflicts_still_learns() {
    let accel: Arc<dyn Accel> = Arc::new(HostAccel::new());
    let mut rng = Rng(7);
    let (nu, ni, n) = (5, 6, 100);
    let (user, item, rating) = reference::ratings(&mut rng, n, nu, ni);
    let data = upload(&accel, &user, &item, &rating);
    let m = resident(
        &accel,
        &reference::model(&mut rng, nu, ni, 8, true, 0.1),
        false,
    );
    let st = SgdStep {
        lr: 0.02,
        reg: 0.0,
        y_range: Some([0.0, 5.5]),
    };
    let shape = Launch { grid: 2, block: 64 };
    let first = epoch(&m, &accel, &data, None, st, shape);
    let mut last = first;
    for _ in 0..10 {
        last = epoch(&m, &accel, &data, None, st, shape);
    }
    assert!(last.is_finite() && last < first, "loss {first} -> {last}");
}

fn scoring_cases(rng: &mut Rng) -> Vec<(Model, Option<[f32; 2]>)> {
    let mut v = Vec::new();
    for k in [1usize, 40, 256] {
        for bias in [false, true] {
            for y in [None, Some([1.0f32, 5.0])] {
                v.push((reference::model(rng, 11, 13, k, bias, 0.3), y));
            }
        }
    }
    v
}

/// Host-thread devices that run the scoring launches as `shapes` (one warp, and several
/// blocks of two warps, fewer warps than pairs so they loop).
fn scoring_devices(shapes: &[Launch]) -> Vec<(Launch, Arc<HostAccel>, Arc<dyn Accel>)> {
    shapes
        .iter()
        .map(|&shape| {
            let h = Arc::new(HostAccel::with_shape(shape));
            (shape, h.clone(), h as Arc<dyn Accel>)
        })
        .collect()
}

#[test]
fn predict_matches_the_reference() {
    let mut rng = Rng(99);
    let (user, item, _) = reference::ratings(&mut rng, 50, 11, 13);
    let devices = scoring_devices(&[Launch::SEQUENTIAL, Launch { grid: 4, block: 64 }]);
    for (m, y) in scoring_cases(&mut rng) {
        let want: Vec<f32> = user
            .iter()
            .zip(&item)
            .map(|(&u, &i)| reference::score(&m, u, i, y))
            .collect();
        for (shape, _, accel) in &devices {
            let dev = resident(accel, &m, false);
            let mut got = vec![f32::NAN; user.len()];
            dev.tables().predict(&user, &item, y, &mut got).unwrap();
            assert_eq!(
                got, want,
                "k {} bias {} y {y:?} shape {shape:?}",
                m.k, m.bias
            );
        }
    }
    for (shape, h, _) in &devices {
        assert_eq!(h.shapes(Kernel::Predict), [*shape], "the launch shape");
    }
}

#[test]
fn rmse_mae_reduction_matches_the_reference() {
    let mut rng = Rng(1234);
    let (user, item, rating) = reference::ratings(&mut rng, 200, 11, 13);
    let devices = scoring_devices(&[Launch::SEQUENTIAL, Launch { grid: 3, block: 64 }]);
    let data: Vec<DeviceRatings> = devices
        .iter()
        .map(|(_, _, a)| upload(a, &user, &item, &rating))
        .collect();
    for (m, y) in scoring_cases(&mut rng) {
        let (mut sse, mut sae) = (0.0f64, 0.0f64);
        for j in 0..user.len() {
            let e = (reference::score(&m, user[j], item[j], y) - rating[j]) as f64;
            sse += e * e;
            sae += e.abs();
        }
        for ((shape, _, accel), data) in devices.iter().zip(&data) {
            let dev = resident(accel, &m, false);
            let (a, b) = dev.tables().errors(data, y).unwrap();
            let ctx = format!("k {} bias {} y {y:?} shape {shape:?}", m.k, m.bias);
            assert!((a - sse).abs() <= 1e-6 * sse, "{ctx}: sse {a} vs {sse}");
            assert!((b - sae).abs() <= 1e-6 * sae, "{ctx}: sae {b} vs {sae}");
        }
    }
    for (shape, h, _) in &devices {
        assert_eq!(h.shapes(Kernel::EvalPartials), [*shape], "the launch shape");
    }
}

const PLANTED_CHILD: &str = "RECPIPE_HARNESS_PLANTED_CHILD";

/// Runs the `PLANT_OFF_BY_ONE` build of sgd.cu (it reads k+1 factors of a row) through
/// `MfModel::sgd_chunk` on `HostAccel::planted()` in a child process and requires
/// AddressSanitizer to stop it at the planted read's line of sgd.cu.
#[test]
fn planted_off_by_one_is_caught() {
    if !h::ASAN {
        assert!(
            std::env::var("RECPIPE_HARNESS_ASAN").is_ok_and(|v| v == "0"),
            "the harness was built without AddressSanitizer (the C++ compiler could not link it), \
             so it cannot catch out-of-bounds indices"
        );
        println!("skipped: RECPIPE_HARNESS_ASAN=0 built the harness without AddressSanitizer");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "planted_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PLANTED_CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let src = include_str!("../../cuda/kernels/sgd.cu");
    // The planted loop reads u then q; either read may be the one past the table.
    let line = 1 + src
        .lines()
        .position(|l| l.trim() == "u[t] = P[pu + x];")
        .expect("the factor read in sgd.cu");
    let at = [format!("sgd.cu:{line}"), format!("sgd.cu:{}", line + 1)];
    assert!(
        !out.status.success(),
        "the planted off-by-one ran to the end:\n{stderr}"
    );
    assert!(
        stderr.contains("AddressSanitizer: heap-buffer-overflow"),
        "{stderr}"
    );
    assert!(
        at.iter().any(|a| stderr.contains(a)),
        "not reported at {at:?}:\n{stderr}"
    );
}

/// The planted kernel on exact-length device tables whose last row is rated; only run by
/// `planted_off_by_one_is_caught`.
#[test]
#[ignore = "run in a child process by planted_off_by_one_is_caught"]
fn planted_child() {
    if std::env::var(PLANTED_CHILD).is_err() {
        return;
    }
    let accel: Arc<dyn Accel> = Arc::new(HostAccel::planted());
    let mut rng = Rng(3);
    let (user, item, rating) = reference::ratings(&mut rng, 20, 4, 5);
    let data = upload(&accel, &user, &item, &rating);
    let m = resident(
        &accel,
        &reference::model(&mut rng, 4, 5, 3, false, 0.1),
        false,
    );
    let st = SgdStep {
        lr: 0.01,
        reg: 0.0,
        y_range: None,
    };
    epoch(&m, &accel, &data, None, st, Launch::SEQUENTIAL);
    eprintln!("the planted kernel finished");
}
