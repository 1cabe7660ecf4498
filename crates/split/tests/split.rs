mod common;

use common::{Fixture, fixture, movielens, movielens_fixture, tuples};
use recpipe_core::{Inputs, OutDir, Progress, Ratings, Stage};
use recpipe_split::{Config, SplitError, SplitStage, Strategy, Summary, split};

fn cfg(toml_text: &str) -> Config {
    toml::from_str(toml_text).unwrap()
}

fn run(fx: &Fixture, cfg: &Config) -> Result<Summary, SplitError> {
    split(cfg, &fx.ingest(), &fx.out(), &Progress::hidden())
}

fn parts(fx: &Fixture) -> [Ratings; 3] {
    [
        fx.part("train.parquet"),
        fx.part("valid.parquet"),
        fx.part("test.parquet"),
    ]
}

/// The parts together hold exactly the input ratings, none lost or duplicated.
fn assert_partition(input: &Ratings, parts: &[Ratings; 3]) {
    let mut all: Vec<_> = parts.iter().flat_map(tuples).collect();
    let mut want = tuples(input);
    all.sort_unstable();
    want.sort_unstable();
    assert_eq!(all.len(), want.len());
    assert!(all == want, "the parts are not a partition of the input");
}

/// Rows held out for a fraction of `n`, rounded as the split documents.
fn held(n: usize, fraction: f64) -> usize {
    (n as f64 * fraction).round() as usize
}

fn ts(r: &Ratings) -> &[i64] {
    r.timestamp.as_deref().unwrap()
}

#[test]
fn random_90_10_seed_42_is_a_sized_partition_in_the_full_id_space() {
    let fx = movielens_fixture();
    let ml = movielens();
    let s = run(&fx, &Config::default()).unwrap();
    let [train, valid, test] = parts(&fx);
    let n = ml.ratings.len();
    assert_eq!(n, 100_836);
    let v = held(n, 0.1);
    assert_eq!((train.len(), valid.len(), test.len()), (n - v, v, 0));
    assert_partition(&ml.ratings, &[train.clone(), valid.clone(), test.clone()]);
    for p in [&train, &valid, &test] {
        assert_eq!(
            (p.n_users, p.n_items),
            (ml.ratings.n_users, ml.ratings.n_items)
        );
    }
    assert_eq!((s.train.rows, s.valid.rows, s.test.rows), (n - v, v, 0));
    assert!(s.train.users >= 609 && s.input_rows == n);
    let on_disk: Summary = recpipe_split::read_summary(&fx.out()).unwrap();
    assert_eq!(on_disk, s);
    // Items rated once end up in valid alone: real cold-start rows, reported.
    assert!(s.valid.cold_items > 0 && s.valid.cold_rows >= s.valid.cold_items);
    assert_eq!(s.train.cold_rows, 0);
}

#[test]
fn random_split_is_deterministic_for_a_seed_and_changes_with_it() {
    let fx = movielens_fixture();
    run(&fx, &Config::default()).unwrap();
    let first = fx.part("valid.parquet");
    run(&fx, &Config::default()).unwrap();
    assert_eq!(fx.part("valid.parquet"), first);
    run(&fx, &cfg("seed = 7")).unwrap();
    let other = fx.part("valid.parquet");
    assert_eq!(other.len(), first.len());
    assert_ne!(tuples(&other), tuples(&first));
}

#[test]
fn the_notebooks_splits_are_expressible() {
    let fx = movielens_fixture();
    let ml = movielens();
    let n = ml.ratings.len();
    for (text, fraction) in [
        ("valid_fraction = 0.2", 0.2),
        ("valid_fraction = 0.15\nseed = 2137", 0.15),
        ("valid_fraction = 0.1\nseed = 42", 0.1),
    ] {
        run(&fx, &cfg(text)).unwrap();
        let valid = held(n, fraction);
        let p = parts(&fx);
        assert_eq!(p[1].len(), valid, "{text}");
        assert_eq!(p[0].len(), ml.ratings.len() - valid, "{text}");
        assert_partition(&ml.ratings, &p);
    }
}

#[test]
fn three_way_random_split() {
    let fx = movielens_fixture();
    let s = run(&fx, &cfg("valid_fraction = 0.1\ntest_fraction = 0.2")).unwrap();
    let p = parts(&fx);
    let n = movielens().ratings.len();
    assert_eq!((p[1].len(), p[2].len()), (held(n, 0.1), held(n, 0.2)));
    assert_eq!(s.test.rows, held(n, 0.2));
    assert_partition(&movielens().ratings, &p);
}

#[test]
fn user_random_keeps_every_user_in_train_with_per_user_fractions() {
    let fx = movielens_fixture();
    let s = run(
        &fx,
        &cfg("strategy = \"user_random\"\nvalid_fraction = 0.1\ntest_fraction = 0.1"),
    )
    .unwrap();
    let p = parts(&fx);
    assert_partition(&movielens().ratings, &p);
    let ml = movielens();
    let nu = ml.ratings.n_users as usize;
    assert_eq!(s.valid.cold_users + s.test.cold_users, 0);
    assert_eq!(s.train.users, nu);
    for part in &p[1..] {
        let target = held(ml.ratings.len(), 0.1);
        assert!(part.len().abs_diff(target) <= 2, "{}", part.len());
    }
    let (all, valid, test) = (per_user(&ml.ratings), per_user(&p[1]), per_user(&p[2]));
    for u in (0..nu).filter(|&u| all[u] >= 10) {
        let exact = all[u] as f64 * 0.1;
        assert!((valid[u] as f64 - exact).abs() < 1.0, "user {u}");
        assert!((test[u] as f64 - exact).abs() < 1.0, "user {u}");
    }
    // Deterministic, and the alias from issue 4 names the same strategy.
    run(
        &fx,
        &cfg("strategy = \"stratified\"\nvalid_fraction = 0.1\ntest_fraction = 0.1"),
    )
    .unwrap();
    assert_eq!(fx.part("test.parquet"), p[2]);
}

#[test]
fn user_random_keeps_single_rating_users_in_train() {
    // User 0 rated once, user 1 twice, user 2 ten times; half held out.
    let r = Ratings {
        user: [0].into_iter().chain([1; 2]).chain([2; 10]).collect(),
        item: (0..13).collect(),
        rating: vec![4.0; 13],
        timestamp: Some((0..13).collect()),
        n_users: 3,
        n_items: 13,
    };
    let fx = fixture(&r, &[1, 2, 3], &(100..113).collect::<Vec<_>>());
    run(
        &fx,
        &cfg("strategy = \"user_random\"\nvalid_fraction = 0.5"),
    )
    .unwrap();
    let [train, valid, _] = parts(&fx);
    for u in 0..3 {
        assert!(train.user.contains(&u), "user {u} missing from train");
    }
    assert!(!valid.user.contains(&0));
    assert_eq!(valid.user.iter().filter(|&&u| u == 2).count(), 5);
}

#[test]
fn chronological_parts_are_time_ordered() {
    let fx = movielens_fixture();
    run(
        &fx,
        &cfg("strategy = \"chronological\"\nvalid_fraction = 0.1\ntest_fraction = 0.1"),
    )
    .unwrap();
    let p = parts(&fx);
    assert_partition(&movielens().ratings, &p);
    let n = movielens().ratings.len();
    assert_eq!((p[1].len(), p[2].len()), (held(n, 0.1), held(n, 0.1)));
    let max = |r: &Ratings| *ts(r).iter().max().unwrap();
    let min = |r: &Ratings| *ts(r).iter().min().unwrap();
    assert!(max(&p[0]) <= min(&p[1]));
    assert!(max(&p[1]) <= min(&p[2]));
    assert!(min(&p[0]) < max(&p[2]));
}

fn per_user(r: &Ratings) -> Vec<usize> {
    let mut c = vec![0usize; r.n_users as usize];
    r.user.iter().for_each(|&u| c[u as usize] += 1);
    c
}

/// Per user, no held-out rating is older than one in the part before it.
fn assert_user_time_order(p: &[Ratings; 3]) {
    let nu = p[0].n_users as usize;
    let mut lo = vec![i64::MAX; nu * 3];
    let mut hi = vec![i64::MIN; nu * 3];
    for (k, part) in p.iter().enumerate() {
        for (i, &u) in part.user.iter().enumerate() {
            let slot = k * nu + u as usize;
            lo[slot] = lo[slot].min(ts(part)[i]);
            hi[slot] = hi[slot].max(ts(part)[i]);
        }
    }
    for u in 0..nu {
        let (train_hi, valid_lo, valid_hi, test_lo) =
            (hi[u], lo[nu + u], hi[nu + u], lo[2 * nu + u]);
        assert!(train_hi <= valid_lo.min(test_lo), "user {u}");
        assert!(valid_hi == i64::MIN || valid_hi <= test_lo, "user {u}");
    }
}

#[test]
fn user_chronological_holds_out_each_users_latest() {
    let fx = movielens_fixture();
    let s = run(
        &fx,
        &cfg("strategy = \"user_chrono\"\nvalid_fraction = 0.1\ntest_fraction = 0.2"),
    )
    .unwrap();
    assert_eq!(s.strategy, "user_chronological");
    let p = parts(&fx);
    assert_partition(&movielens().ratings, &p);
    let n = movielens().ratings.len();
    assert!(p[1].len().abs_diff(held(n, 0.1)) <= 2);
    assert!(p[2].len().abs_diff(held(n, 0.2)) <= 2);
    assert_user_time_order(&p);
    assert_eq!(s.test.cold_users, 0);
}

#[test]
fn leave_last_k_holds_out_k_latest_per_user_for_test_and_k_before_for_valid() {
    let fx = movielens_fixture();
    run(&fx, &cfg("strategy = \"leave_last_k\"\nk = 2")).unwrap();
    let p = parts(&fx);
    assert_partition(&movielens().ratings, &p);
    // A user with at least 2k + 1 ratings gives up exactly k + k; shorter histories keep one
    // in train and fill test first.
    let all = per_user(&movielens().ratings);
    let (valid, test) = (per_user(&p[1]), per_user(&p[2]));
    for u in 0..all.len() {
        let keep = all[u].saturating_sub(1);
        assert_eq!(test[u], keep.min(2), "user {u}");
        assert_eq!(valid[u], keep.saturating_sub(2).min(2), "user {u}");
    }
    assert!(test.iter().filter(|&&n| n == 2).count() >= 610);
    assert_user_time_order(&p);
}

#[test]
fn min_ratings_and_drop_cold_start_remove_and_count_rows() {
    let fx = movielens_fixture();
    let ml = movielens();
    let per_user = per_user(&ml.ratings);
    let sparse: usize = per_user.iter().filter(|&&n| n < 100).sum();
    let s = run(&fx, &cfg("min_ratings = 100")).unwrap();
    assert_eq!(s.dropped_min_ratings, sparse);
    let p = parts(&fx);
    assert_eq!(
        p.iter().map(Ratings::len).sum::<usize>(),
        ml.ratings.len() - sparse
    );
    assert!(p[0].user.iter().all(|&u| per_user[u as usize] >= 100));

    let before = run(&fx, &Config::default()).unwrap();
    let after = run(&fx, &cfg("drop_cold_start = true")).unwrap();
    assert!(before.valid.cold_rows > 0);
    assert_eq!(after.valid.dropped_cold_start, before.valid.cold_rows);
    assert_eq!(after.valid.cold_rows, 0);
    assert_eq!(after.valid.rows, before.valid.rows - before.valid.cold_rows);
    assert_eq!(after.train, before.train);
}

#[test]
fn the_stage_runs_through_the_trait() {
    let fx = movielens_fixture();
    let inputs = Inputs::single("ingest", fx.ingest());
    let out = OutDir::new(fx.path("stage-out")).unwrap();
    let outputs = SplitStage::run(&Config::default(), &inputs, &out, &Progress::hidden()).unwrap();
    let n = movielens().ratings.len();
    assert_eq!(outputs.summary["valid"]["rows"], held(n, 0.1));
    assert_eq!(outputs.summary["train"]["rows"], n - held(n, 0.1));
    assert!(
        outputs.lines[0].contains("train 90,7"),
        "{:?}",
        outputs.lines
    );
    for f in [
        "train.parquet",
        "valid.parquet",
        "test.parquet",
        "split.json",
    ] {
        assert!(out.path(f).is_file(), "{f}");
    }
    assert_eq!(SplitStage::KIND, "split");
    let missing = SplitStage::run(
        &Config::default(),
        &Inputs::default(),
        &out,
        &Progress::hidden(),
    )
    .unwrap_err();
    assert!(missing.to_string().contains("ingest"), "{missing}");
}

// ---- predefined --------------------------------------------------------------------

/// Users 10, 20, 30 and items 100..400, as an ingest artifact of original ids.
fn small_catalog() -> Fixture {
    let r = Ratings {
        user: vec![0, 1, 2],
        item: vec![0, 1, 2],
        rating: vec![3.0; 3],
        timestamp: Some(vec![1, 2, 3]),
        n_users: 3,
        n_items: 4,
    };
    fixture(&r, &[10, 20, 30], &[100, 200, 300, 400])
}

fn predefined(fx: &Fixture, extra: &str) -> Config {
    let train = fx.path("u1.base");
    let test = fx.path("u1.test");
    cfg(&format!(
        "strategy = \"predefined\"\ntrain_file = {train:?}\ntest_file = {test:?}\n{extra}"
    ))
}

#[test]
fn predefined_maps_original_ids_and_keeps_the_given_parts() {
    let fx = small_catalog();
    fx.write(
        "u1.base",
        "10\t100\t5\t881250949\n20\t200\t3\t891717742\n30\t300\t4\t878887116\n10\t400\t1\t884182806\n",
    );
    fx.write(
        "u1.test",
        "20\t100\t2\t875072262\n\n30\t400\t4.5\t875071561\n",
    );
    let c = predefined(&fx, "valid_fraction = 0");
    assert_eq!(
        <SplitStage as Stage>::external_inputs(&c),
        vec![fx.path("u1.base"), fx.path("u1.test")]
    );
    let s = run(&fx, &c).unwrap();
    let [train, valid, test] = parts(&fx);
    assert_eq!(train.user, vec![0, 1, 2, 0]);
    assert_eq!(train.item, vec![0, 1, 2, 3]);
    assert_eq!(train.rating, vec![5.0, 3.0, 4.0, 1.0]);
    assert_eq!(ts(&train)[0], 881250949);
    assert!(valid.is_empty());
    assert_eq!(test.user, vec![1, 2]);
    assert_eq!(test.item, vec![0, 3]);
    assert_eq!(test.rating, vec![2.0, 4.5]);
    assert_eq!((test.n_users, test.n_items), (3, 4));
    assert_eq!((s.input_rows, s.test.cold_rows), (6, 0));

    // Without valid_fraction = 0, valid is carved from the train file only.
    run(&fx, &predefined(&fx, "valid_fraction = 0.5")).unwrap();
    let [train2, valid2, test2] = parts(&fx);
    assert_eq!((train2.len(), valid2.len()), (2, 2));
    assert_eq!(test2, test);
    assert_partition(&train, &[train2, valid2, Ratings::default()]);
}

#[test]
fn predefined_reads_headers_commas_and_three_field_lines() {
    let fx = small_catalog();
    fx.write("u1.base", "userId,movieId,rating\n10,100,5\n20,300,4\n");
    fx.write("u1.test", "30::200::1\n");
    run(&fx, &predefined(&fx, "valid_fraction = 0")).unwrap();
    let [train, _, test] = parts(&fx);
    assert_eq!((train.user, train.item), (vec![0, 1], vec![0, 2]));
    assert_eq!(train.timestamp, None);
    assert_eq!((test.user, test.item), (vec![2], vec![1]));
}

#[test]
fn predefined_errors_name_the_file_and_line() {
    let fx = small_catalog();
    let base = fx.path("u1.base").display().to_string();
    let cases = [
        (
            "10\t100\t5\t1\n10\t999\t4\t2\n",
            "u1.base:2: item id `999` is not in",
        ),
        (
            "10\t100\t5\t1\n77\t100\t4\t2\n",
            "u1.base:2: user id `77` is not in",
        ),
        (
            "10\t100\t5\t1\n20\t100\t4\n",
            "u1.base:2: found 3 fields where line 1 has 4",
        ),
        (
            "10\t100\tfive\t1\n",
            "u1.base:1: rating `five` is not a number",
        ),
        (
            "10\t100\t5\t1\n20\t200\tx\t2\n",
            "u1.base:2: rating `x` is not a number",
        ),
        (
            "10\t100\t5\tnoon\n",
            "u1.base:1: timestamp `noon` is not an integer",
        ),
        ("10 100\n", "u1.base:1: expected 3 or 4 fields"),
        ("\n", "has no ratings"),
    ];
    fx.write("u1.test", "20\t100\t2\t1\n");
    for (text, want) in cases {
        fx.write("u1.base", text);
        let e = run(&fx, &predefined(&fx, "")).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
        assert!(e.contains(&base), "{e}");
    }
    std::fs::remove_file(fx.path("u1.test")).unwrap();
    fx.write("u1.base", "10\t100\t5\t1\n");
    let e = run(&fx, &predefined(&fx, "")).unwrap_err().to_string();
    assert!(
        e.contains("u1.test") && e.contains("not found") && e.contains("test_file"),
        "{e}"
    );
}

/// `predefined` over folds: `train_file = ".../u{fold}.base"` and `fold = N`.
fn folded(fx: &Fixture, extra: &str) -> Config {
    let train = fx.path("u{fold}.base");
    let test = fx.path("u{fold}.test");
    cfg(&format!(
        "strategy = \"predefined\"\ntrain_file = {train:?}\ntest_file = {test:?}\n{extra}"
    ))
}

#[test]
fn fold_fills_in_the_fold_number_in_the_predefined_paths() {
    let fx = small_catalog();
    // Two folds of the same four ratings: each holds out a different one.
    fx.write("u1.base", "20\t200\t3\t2\n30\t300\t4\t3\n10\t400\t1\t4\n");
    fx.write("u1.test", "10\t100\t5\t1\n");
    fx.write("u2.base", "10\t100\t5\t1\n30\t300\t4\t3\n10\t400\t1\t4\n");
    fx.write("u2.test", "20\t200\t3\t2\n");

    let c = folded(&fx, "fold = 2\nvalid_fraction = 0");
    assert_eq!(c.fold, Some(2));
    // The runner hashes the files of this fold, so folds never share a cache entry.
    assert_eq!(
        <SplitStage as Stage>::external_inputs(&c),
        vec![fx.path("u2.base"), fx.path("u2.test")]
    );
    assert_eq!(c.files(), vec![fx.path("u2.base"), fx.path("u2.test")]);
    let s = run(&fx, &c).unwrap();
    assert_eq!(s.fold, Some(2));
    assert!(
        s.lines()[0].starts_with("predefined split (fold 2):"),
        "{:?}",
        s.lines()
    );
    let [train, valid, test] = parts(&fx);
    assert_eq!(train.user, vec![0, 2, 0]);
    assert_eq!(train.item, vec![0, 2, 3]);
    assert!(valid.is_empty());
    assert_eq!((test.user, test.item), (vec![1], vec![1]));

    run(&fx, &folded(&fx, "fold = 1\nvalid_fraction = 0")).unwrap();
    let [train1, _, test1] = parts(&fx);
    assert_eq!((test1.user, test1.item), (vec![0], vec![0]));
    assert_eq!(train1.len(), 3);

    // valid_file takes the placeholder too; a path without it is used as written.
    fx.write("u2.valid", "30\t100\t2\t5\n");
    fx.write("extra.valid", "30\t200\t2\t5\n");
    let c = folded(
        &fx,
        &format!("fold = 2\nvalid_file = {:?}", fx.path("u{fold}.valid")),
    );
    assert_eq!(
        c.files(),
        vec![fx.path("u2.base"), fx.path("u2.valid"), fx.path("u2.test")]
    );
    run(&fx, &c).unwrap();
    let [_, valid, _] = parts(&fx);
    assert_eq!((valid.user, valid.item), (vec![2], vec![0]));
    let mut c = predefined(&fx, &format!("valid_file = {:?}", fx.path("extra.valid")));
    c.train_file = Some(fx.path("u{fold}.base"));
    c.fold = Some(1);
    assert_eq!(
        c.files(),
        vec![
            fx.path("u1.base"),
            fx.path("extra.valid"),
            fx.path("u1.test")
        ]
    );

    // A missing fold's file names the resolved path and its key.
    let e = run(&fx, &folded(&fx, "fold = 3")).unwrap_err().to_string();
    assert!(
        e.contains(&fx.path("u3.base").display().to_string())
            && e.contains("not found")
            && e.contains("train_file"),
        "{e}"
    );
    // The config round-trips with its fold.
    let c = folded(&fx, "fold = 4");
    assert_eq!(
        toml::from_str::<Config>(&toml::to_string(&c).unwrap()).unwrap(),
        c
    );
}

#[test]
fn fold_config_errors_name_the_key() {
    let fx = small_catalog();
    fx.write("u1.base", "10\t100\t5\t1\n");
    fx.write("u1.test", "20\t200\t3\t2\n");
    let cases = [
        // `{fold}` in a path, but no fold to fill in.
        (
            folded(&fx, ""),
            "`train_file` contains `{fold}` but `fold` is not set",
        ),
        (
            predefined(&fx, &format!("valid_file = {:?}", fx.path("u{fold}.valid"))),
            "`valid_file` contains `{fold}` but `fold` is not set",
        ),
        // A fold with nothing to fill in.
        (predefined(&fx, "fold = 2"), "`fold` = 2 has no effect"),
        // A fold for a strategy without files.
        (
            cfg("fold = 1"),
            "`fold` only applies to strategy `predefined`, not `random`",
        ),
        (
            cfg("strategy = \"user_random\"\nfold = 3"),
            "`fold` only applies to strategy `predefined`, not `user_random`",
        ),
        (folded(&fx, "fold = 0"), "`fold` must be at least 1"),
    ];
    for (c, want) in cases {
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("split config: "), "{e}");
        assert!(e.contains(want), "{want}: {e}");
        // The stage says the same, and reads no files the runner would look for first.
        assert_eq!(run(&fx, &c).unwrap_err().to_string(), e);
        assert!(<SplitStage as Stage>::external_inputs(&c).is_empty(), "{e}");
    }
    assert!(toml::from_str::<Config>("fold = -1").is_err());
    assert!(toml::from_str::<Config>("fold = \"one\"").is_err());
}

// ---- config and data errors ------------------------------------------------------------

#[test]
fn config_errors_name_the_key() {
    let fx = movielens_fixture();
    let cases = [
        ("valid_fraction = 1.2", "`valid_fraction`"),
        ("valid_fraction = -0.1", "`valid_fraction`"),
        ("test_fraction = nan", "`test_fraction`"),
        (
            "valid_fraction = 0.6\ntest_fraction = 0.4",
            "sum must be below 1",
        ),
        ("k = 3", "`k` only applies to strategy `leave_last_k`"),
        (
            "strategy = \"leave_last_k\"\nk = 0",
            "`k` must be at least 1",
        ),
        (
            "strategy = \"leave_last_k\"\nvalid_fraction = 0.2",
            "has no effect",
        ),
        ("train_file = \"u1.base\"", "`train_file` only applies"),
        ("strategy = \"predefined\"", "needs `train_file`"),
        (
            "strategy = \"predefined\"\ntrain_file = \"a\"",
            "needs `test_file`",
        ),
        ("min_ratings = 100000", "`min_ratings`"),
    ];
    for (text, want) in cases {
        let e = run(&fx, &cfg(text)).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    // Unknown keys and strategies are rejected by the parser, naming them.
    let e = toml::from_str::<Config>("valid_fracion = 0.2")
        .unwrap_err()
        .to_string();
    assert!(e.contains("valid_fracion"), "{e}");
    let e = toml::from_str::<Config>("strategy = \"temporal\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("temporal") && e.contains("user_random"), "{e}");
}

#[test]
fn time_based_strategies_need_timestamps() {
    let r = Ratings {
        timestamp: None,
        ..movielens().ratings.clone()
    };
    let fx = fixture(&r, &movielens().user_ids, &movielens().item_ids);
    for strategy in ["chronological", "user_chronological", "leave_last_k"] {
        let e = run(&fx, &cfg(&format!("strategy = \"{strategy}\"")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(strategy) && e.contains("no timestamps") && e.contains("ratings.parquet"),
            "{e}"
        );
    }
    // Shuffles do not need them, and the parts stay timestamp-free.
    run(&fx, &cfg("strategy = \"user_random\"")).unwrap();
    assert_eq!(fx.part("valid.parquet").timestamp, None);
}

#[test]
fn empty_ratings_are_an_error() {
    let r = Ratings {
        n_users: 1,
        n_items: 1,
        timestamp: Some(vec![]),
        ..Default::default()
    };
    let fx = fixture(&r, &[1], &[1]);
    let e = run(&fx, &Config::default()).unwrap_err().to_string();
    assert!(e.contains("no ratings to split"), "{e}");
}

#[test]
fn default_config_round_trips_through_toml() {
    let c = Config::default();
    assert_eq!(c.strategy, Strategy::Random);
    assert_eq!(
        (c.valid_fraction, c.test_fraction, c.seed, c.k),
        (0.1, 0.0, 42, 1)
    );
    let text = toml::to_string(&c).unwrap();
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), c);
    assert_eq!(toml::from_str::<Config>("").unwrap(), c);
}

/// Sum over valid rows of `userId * 1_000_003 + movieId`, in original ids: a fingerprint of
/// the held-out row set.
fn valid_fingerprint(fx: &Fixture) -> (usize, u64) {
    let ml = movielens();
    let valid = fx.part("valid.parquet");
    let sum = valid
        .user
        .iter()
        .zip(&valid.item)
        .map(|(&u, &i)| ml.user_ids[u as usize] as u64 * 1_000_003 + ml.item_ids[i as usize] as u64)
        .sum();
    (valid.len(), sum)
}

#[test]
fn compat_reproduces_sklearn_and_pandas_row_sets_on_the_bundled_file() {
    // Reference fingerprints computed with NumPy 2.4 on data/ml-latest-small/ratings.csv
    // (the published 100,836 rows): sklearn's train_test_split(test_size=f, random_state=s)
    // holds out permutation[:ceil(f*n)]; pandas' df.sample(frac=1-f, random_state=s) keeps
    // RandomState(s).choice(n, round((1-f)*n), replace=False).
    let fx = movielens_fixture();
    let cases = [
        ("sklearn", 42, 0.1, (10_084, 3_255_167_524_479)),
        ("pandas", 42, 0.1, (10_084, 3_256_943_834_655)),
        ("sklearn", 2137, 0.15, (15_126, 4_946_770_638_781)),
        ("pandas", 2137, 0.15, (15_125, 4_948_502_240_307)),
    ];
    for (compat, seed, f, want) in cases {
        let c = cfg(&format!(
            "compat = \"{compat}\"\nseed = {seed}\nvalid_fraction = {f}"
        ));
        let s = run(&fx, &c).unwrap();
        assert_eq!(valid_fingerprint(&fx), want, "{compat} seed {seed} {f}");
        assert_eq!(s.train.rows + s.valid.rows, movielens().ratings.len());
        assert_partition(&movielens().ratings, &parts(&fx));
    }
}

#[test]
fn compat_rejects_what_numpy_cannot_reproduce() {
    for (text, key) in [
        ("compat = \"sklearn\"\nseed = 4294967296", "seed"),
        ("compat = \"pandas\"\ntest_fraction = 0.1", "test_fraction"),
        ("compat = \"sklearn\"\nstrategy = \"user_random\"", "compat"),
    ] {
        let err = cfg(text).validate().unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    assert!(toml::from_str::<Config>("compat = \"numpy\"").is_err());
}
