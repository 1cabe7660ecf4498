//! Baselines on the bundled ml-latest-small against the figures the literature reports for
//! random 90/10 splits (Surprise's BaselineOnly ≈ 0.87–0.88 RMSE, global mean ≈ 1.04).

use recpipe_core::Ratings;
use recpipe_core::math::Scored;
use recpipe_evaluate::baselines::{Baseline, Fitted};
use recpipe_evaluate::metrics::rating::rating_metrics;
use recpipe_evaluate::rng::SplitMix64;

fn bundled() -> Ratings {
    recpipe_core::testutil::bundled_ratings()
}

/// RMSE of every baseline on a seeded random 90/10 split: [global, user, item, bias].
fn split_rmse(all: &Ratings, seed: u64) -> [f64; 4] {
    let mut idx: Vec<usize> = (0..all.len()).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..idx.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        idx.swap(i, j);
    }
    let n_valid = all.len() / 10;
    let valid = all.select(&idx[..n_valid]);
    let train = all.select(&idx[n_valid..]);
    let fitted = Fitted::fit(&train);
    Baseline::ALL.map(|b| {
        let pred = fitted.predict(b, &valid.user, &valid.item);
        rating_metrics(Scored {
            pred: &pred,
            truth: &valid.rating,
        })
        .rmse
    })
}

#[test]
fn baselines_on_ml_latest_small_random_90_10() {
    let all = bundled();
    // The published 100,836 MovieLens ratings of 9,724 movies by 610 users.
    assert_eq!((all.len(), all.n_users, all.n_items), (100_836, 610, 9_724));

    // One 10% split holds ~10k ratings, whose RMSE moves by ±0.01 with the seed: judge the
    // mean of five splits, as the literature's 5-fold figures do.
    let runs: Vec<[f64; 4]> = (1..=5).map(|seed| split_rmse(&all, seed)).collect();
    let mean = |c: usize| runs.iter().map(|r| r[c]).sum::<f64>() / runs.len() as f64;
    let (global, user, item, bias) = (mean(0), mean(1), mean(2), mean(3));
    println!("mean of 5 splits: global {global:.4} user {user:.4} item {item:.4} bias {bias:.4}");
    assert!((1.02..1.06).contains(&global), "global mean RMSE {global}");
    assert!((0.86..0.885).contains(&bias), "bias baseline RMSE {bias}");
    for r in &runs {
        // The ordering every MovieLens tutorial shows: biases beat either mean alone.
        assert!(
            r[3] < r[1] && r[3] < r[2] && r[1] < r[0] && r[2] < r[0],
            "{r:?}"
        );
        assert!((0.84..0.90).contains(&r[3]), "{r:?}");
    }
}
