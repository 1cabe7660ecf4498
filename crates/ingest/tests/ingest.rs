use arrow_array::{
    Array, Float32Array, Int16Array, Int32Array, Int64Array, ListArray, StringArray, UInt32Array,
};
use recpipe_core::parquet_io::{column, read_batches};
use recpipe_core::ratings::{Catalog, Ids};
use recpipe_core::{Progress, Ratings, Stage};
use recpipe_ingest::{
    Column, Config, Duplicates, Format, IdOrder, IngestError, IngestStage, OnError, Summary,
    SynthConfig, UnknownItems, ingest,
};
use std::path::{Path, PathBuf};

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(p)
}

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ml-latest-small")
}

fn run(cfg: &Config) -> (tempfile::TempDir, Summary) {
    let dir = tempfile::tempdir().unwrap();
    let s = ingest(cfg, dir.path(), &Progress::hidden()).unwrap();
    (dir, s)
}

fn run_err(cfg: &Config) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let e = ingest(cfg, dir.path(), &Progress::hidden()).unwrap_err();
    (dir, e.to_string())
}

/// One row of items.parquet by original id: (title, year, genres, n_ratings).
fn item_row(dir: &Path, id: &str) -> (Option<String>, Option<i16>, Vec<String>, u32) {
    let path = dir.join("items.parquet");
    let (_, batches) = read_batches(&path).unwrap();
    for b in &batches {
        let ids = b.column_by_name("item_id").unwrap();
        let titles = column::<StringArray>(b, "title", &path).unwrap();
        let years = column::<Int16Array>(b, "year", &path).unwrap();
        let genres = column::<ListArray>(b, "genres", &path).unwrap();
        let n = column::<UInt32Array>(b, "n_ratings", &path).unwrap();
        for i in 0..b.num_rows() {
            let this = match ids.as_any().downcast_ref::<Int64Array>() {
                Some(a) => a.value(i).to_string(),
                None => ids
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .value(i)
                    .to_string(),
            };
            if this == id {
                let g = genres.value(i);
                let g = g.as_any().downcast_ref::<StringArray>().unwrap();
                return (
                    titles.is_valid(i).then(|| titles.value(i).to_string()),
                    years.is_valid(i).then(|| years.value(i)),
                    g.iter().map(|s| s.unwrap().to_string()).collect(),
                    n.value(i),
                );
            }
        }
    }
    panic!("item {id} not in items.parquet");
}

#[test]
fn bundled_ml_latest_small_exact_counts_and_round_trip() {
    let (dir, s) = run(&Config::for_path(bundled()));
    assert_eq!(s.format, "ml-latest");
    // The bundled ratings.csv is GroupLens's file as published: 100,836 ratings of 9,724
    // rated movies by 610 users, every movie listed in movies.csv.
    assert_eq!((s.rows_read, s.rows_kept), (100_836, 100_836));
    assert_eq!((s.users, s.items), (610, 9_724));
    assert_eq!(s.items_unrated, 9_742 - 9_724);
    assert_eq!(
        (s.rejected, s.duplicates, s.items_without_metadata),
        (0, 0, 0)
    );
    assert_eq!(s.rating_histogram.values().sum::<u64>(), 100_836);
    assert_eq!(s.unknown_item_ratings, 0);
    let published = s
        .published
        .as_ref()
        .expect("ml-latest-small is a known release");
    assert_eq!(
        (
            published.ratings,
            published.users,
            published.items,
            published.matches
        ),
        (100_836, 610, 9_724, true)
    );
    assert!(
        !s.lines().iter().any(|l| l.contains("warning")),
        "{:?}",
        s.lines()
    );
    assert_eq!(s.rating_histogram["4.0"], 26_818);
    assert!(s.has_timestamps);
    assert!(!dir.path().join("rejects.csv").exists());

    // Every row maps back to the original ids, in file order.
    let r = Ratings::read(dir.path().join("ratings.parquet")).unwrap();
    assert_eq!((r.n_users, r.n_items, r.len()), (610, 9_724, 100_836));
    let cat = Catalog::read(dir.path()).unwrap();
    let (Ids::Int(users), Ids::Int(items)) = (&cat.user_ids, &cat.item_ids) else {
        panic!("MovieLens ids are integers");
    };
    assert!(users.windows(2).all(|w| w[0] < w[1]), "sorted id order");
    let text = std::fs::read_to_string(bundled().join("ratings.csv")).unwrap();
    let ts = r.timestamp.as_ref().unwrap();
    let mut rows = 0;
    for (row, line) in text.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(users[r.user[row] as usize].to_string(), f[0], "row {row}");
        assert_eq!(items[r.item[row] as usize].to_string(), f[1], "row {row}");
        assert_eq!(r.rating[row], f[2].parse::<f32>().unwrap());
        assert_eq!(ts[row], f[3].parse::<i64>().unwrap());
        rows += 1;
    }
    assert_eq!(rows, r.len());
    let (title, year, genres, n) = item_row(dir.path(), "1");
    assert_eq!(title.as_deref(), Some("Toy Story (1995)"));
    assert_eq!(year, Some(1995));
    assert_eq!(
        genres,
        ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    );
    assert_eq!(n, 215);
    let (title, year, _, n) = item_row(dir.path(), "7789");
    assert_eq!(title.as_deref(), Some("11'09\"01 - September 11 (2002)"));
    assert_eq!((year, n), (Some(2002), 2));
    let (title, ..) = item_row(dir.path(), "11");
    assert_eq!(title.as_deref(), Some("American President, The (1995)"));

    // users: counts add up, means are the means of the user's ratings.
    let path = dir.path().join("users.parquet");
    let (schema, batches) = read_batches(&path).unwrap();
    assert!(
        schema.field_with_name("gender").is_err(),
        "ml-latest has no demographics"
    );
    let n: u64 = batches
        .iter()
        .map(|b| {
            column::<UInt32Array>(b, "n_ratings", &path)
                .unwrap()
                .values()
                .iter()
                .map(|&v| v as u64)
                .sum::<u64>()
        })
        .sum();
    assert_eq!(n, 100_836);
    let mean0 = column::<Float32Array>(&batches[0], "mean_rating", &path)
        .unwrap()
        .value(0);
    let u0: Vec<f32> = (0..r.len())
        .filter(|&i| r.user[i] == 0)
        .map(|i| r.rating[i])
        .collect();
    let expect = u0.iter().sum::<f32>() / u0.len() as f32;
    assert!((mean0 - expect).abs() < 1e-4);

    let summary: Summary =
        recpipe_core::fsutil::read_json(dir.path().join("summary.json")).unwrap();
    // JSON need not round-trip the last bit of a float; the timings are not the point here.
    let timeless = |s: Summary| Summary {
        seconds: 0.0,
        seconds_read: 0.0,
        seconds_prepare: 0.0,
        seconds_write: 0.0,
        mean_rating: (s.mean_rating * 1e9).round(),
        ..s
    };
    assert_eq!(timeless(summary), timeless(s));
}

#[test]
fn ml_1m_dat_latin1_titles_and_demographics() {
    let (dir, s) = run(&Config::for_path(testdata("ml-1m")));
    assert_eq!(s.format, "ml-1m");
    assert_eq!(
        (s.rows_kept, s.users, s.items, s.items_unrated),
        (6, 3, 4, 1)
    );
    let (title, year, genres, n) = item_row(dir.path(), "73");
    assert_eq!(title.as_deref(), Some("Misérables, Les (1995)"));
    assert_eq!(
        (year, genres, n),
        (Some(1995), vec!["Drama".to_string(), "Musical".into()], 2)
    );
    let path = dir.path().join("users.parquet");
    let (_, b) = read_batches(&path).unwrap();
    let occ = column::<StringArray>(&b[0], "occupation", &path).unwrap();
    let age = column::<Int32Array>(&b[0], "age", &path).unwrap();
    let gender = column::<StringArray>(&b[0], "gender", &path).unwrap();
    assert_eq!(occ.value(0), "K-12 student");
    assert_eq!((age.value(1), gender.value(1)), (56, "M"));
    assert_eq!(occ.value(2), "academic/educator");
    // `ml-10m` names the same layout.
    let cfg: Config = toml::from_str(&format!(
        "path = {:?}\nformat = \"ml-10m\"",
        testdata("ml-1m")
    ))
    .unwrap();
    assert_eq!(cfg.format, Format::Ml1m);
    let files = IngestStage::external_inputs(&cfg);
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(names, ["ratings.dat", "movies.dat", "users.dat"]);
}

#[test]
fn ml_100k_layout() {
    let (dir, s) = run(&Config::for_path(testdata("ml-100k")));
    assert_eq!(s.format, "ml-100k");
    assert_eq!((s.rows_kept, s.users, s.items), (4, 3, 3));
    let (title, year, genres, _) = item_row(dir.path(), "302");
    assert_eq!(title.as_deref(), Some("L.A. Confidential (1997)"));
    assert_eq!(year, Some(1997));
    assert_eq!(genres, ["Crime", "Film-Noir", "Mystery", "Thriller"]);
    // No year in the title: the release date gives it. Latin-1 decodes to UTF-8.
    let (title, year, ..) = item_row(dir.path(), "377");
    assert_eq!(
        (title.as_deref(), year),
        (Some("Señorita Extraviada"), Some(2001))
    );
    let path = dir.path().join("users.parquet");
    let (_, b) = read_batches(&path).unwrap();
    let zip = column::<StringArray>(&b[0], "zip", &path).unwrap();
    let ids = column::<Int64Array>(&b[0], "user_id", &path).unwrap();
    assert_eq!((ids.value(0), zip.value(0)), (22, "40206"));
}

#[test]
fn generic_crlf_bom_text_ids_sniffed() {
    let (dir, s) = run(&Config::for_path(testdata("generic/crlf_bom.csv")));
    assert_eq!(s.format, "generic");
    assert_eq!((s.rows_kept, s.users, s.items), (4, 3, 2));
    assert!(s.has_timestamps);
    let cat = Catalog::read(dir.path()).unwrap();
    assert_eq!(
        cat.user_ids,
        Ids::Str(vec!["alice".into(), "bob".into(), "álvaro".into()])
    );
    assert_eq!(cat.item_ids, Ids::Str(vec!["m1".into(), "m2".into()]));
    let r = Ratings::read(dir.path().join("ratings.parquet")).unwrap();
    assert_eq!(r.rating, [4.5, 3.0, 5.0, 2.5]);
    assert_eq!(r.timestamp, Some(vec![1000, 1001, 1002, 1003]));

    // Columns by name, no timestamp, first-seen order.
    let cfg = Config {
        user_col: Column::Name("item".into()),
        item_col: Column::Name("user".into()),
        rating_col: Column::Name("score".into()),
        no_timestamp: true,
        id_order: IdOrder::FirstSeen,
        ..Config::for_path(testdata("generic/crlf_bom.csv"))
    };
    let (dir, s) = run(&cfg);
    assert_eq!((s.users, s.items, s.has_timestamps), (2, 3, false));
    let cat = Catalog::read(dir.path()).unwrap();
    assert_eq!(
        cat.item_ids,
        Ids::Str(vec!["alice".into(), "bob".into(), "álvaro".into()])
    );
    assert_eq!(cat.user_ids, Ids::Str(vec!["m1".into(), "m2".into()]));

    let cfg = Config {
        rating_col: Column::Name("stars".into()),
        ..Config::for_path(testdata("generic/crlf_bom.csv"))
    };
    let (_, e) = run_err(&cfg);
    assert!(
        e.contains("ingest.rating_col") && e.contains("no column `stars`"),
        "{e}"
    );
}

#[test]
fn bad_rows_fail_with_location_and_leave_nothing() {
    let (dir, e) = run_err(&Config::for_path(testdata("bad")));
    assert!(
        e.contains("bad/ratings.csv:3:9: fewer fields than expected: found 3, expected 4"),
        "{e}"
    );
    assert!(
        e.contains("`1,11,4.0`") && e.contains("on_error = \"skip\""),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no output after a failure"
    );
}

#[test]
fn bad_rows_skipped_into_rejects() {
    let cfg = Config {
        on_error: OnError::Skip,
        ..Config::for_path(testdata("bad"))
    };
    let (dir, s) = run(&cfg);
    assert_eq!(
        (s.rows_read, s.rows_kept, s.rejected, s.blank_lines),
        (8, 2, 6, 1)
    );
    let rejects = std::fs::read_to_string(dir.path().join("rejects.csv")).unwrap();
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines.len(), 7, "{rejects}");
    assert_eq!(lines[0], "file,line,column,reason,text");
    let loc: Vec<(String, String)> = lines[1..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_string(), f[2].to_string())
        })
        .collect();
    let expect = [
        ("3", "9"),
        ("4", "3"),
        ("5", "6"),
        ("6", "6"),
        ("8", "10"),
        ("9", "14"),
    ];
    assert_eq!(loc, expect.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(lines[2].contains("empty item id"));
    assert!(lines[3].contains("rating `abc` is not a number"));
    assert!(lines[4].contains("rating 7.5 is outside rating_range [0.5, 5]"));
    assert!(lines[5].contains("timestamp `1x4` is not an integer"));
    assert!(lines[6].contains("more fields than expected"));
    let r = Ratings::read(dir.path().join("ratings.parquet")).unwrap();
    assert_eq!(r.rating, [4.0, 0.5]);

    // Each failure mode is also what `fail` reports for a file holding only that row.
    let cfg = Config {
        rating_range: [1.0, 5.0],
        on_error: OnError::Skip,
        ..Config::for_path(testdata("bad"))
    };
    let (_, s) = run(&cfg);
    assert_eq!((s.rows_kept, s.rejected), (1, 7));
}

#[test]
fn duplicate_policies() {
    let base = Config::for_path(testdata("dups"));
    let read = |policy| {
        let (dir, s) = run(&Config {
            duplicates: policy,
            ..base.clone()
        });
        let r = Ratings::read(dir.path().join("ratings.parquet")).unwrap();
        (s.duplicates, r.rating, r.timestamp.unwrap())
    };
    assert_eq!(
        read(Duplicates::KeepLast),
        (2, vec![2.0, 4.0, 5.0], vec![200, 400, 150])
    );
    assert_eq!(
        read(Duplicates::KeepFirst),
        (2, vec![1.0, 2.0, 4.0], vec![100, 200, 400])
    );
    assert_eq!(
        read(Duplicates::Mean),
        (2, vec![3.0, 2.0, 4.0], vec![300, 200, 400])
    );
    let (dir, e) = run_err(&Config {
        duplicates: Duplicates::Error,
        ..base
    });
    assert!(
        e.contains("dups/ratings.csv:4: user 1 rated item 10 again (first at line 2)"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn id_order_first_seen() {
    let cfg = Config {
        id_order: IdOrder::FirstSeen,
        ..Config::for_path(testdata("ml-1m"))
    };
    let (dir, _) = run(&cfg);
    let cat = Catalog::read(dir.path()).unwrap();
    assert_eq!(cat.item_ids, Ids::Int(vec![1193, 661, 73, 3408]));
    assert_eq!(cat.titles[2].as_deref(), Some("Misérables, Les (1995)"));
    let r = Ratings::read(dir.path().join("ratings.parquet")).unwrap();
    assert_eq!(r.item, [0, 1, 2, 0, 2, 3]);
}

#[test]
fn config_is_strict_and_errors_are_helpful() {
    let e = toml::from_str::<Config>("path = \"x\"\nformat = \"csv\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown variant `csv`"), "{e}");
    let e = toml::from_str::<Config>("pth = \"x\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `pth`"), "{e}");
    let cfg: Config = toml::from_str(
        "on_error = \"skip\"\nduplicates = \"mean\"\nid_order = \"first_seen\"\nrating_range = [1, 5]\nuser_col = \"u\"\nitem_col = 1\n[synthetic]\nn_users = 50\nseed = 7",
    )
    .unwrap();
    assert_eq!(cfg.user_col, Column::Name("u".into()));
    assert_eq!(cfg.item_col, Column::Index(1));
    assert_eq!(cfg.synthetic.as_ref().unwrap().n_users, 50);
    assert_eq!(cfg.synthetic.as_ref().unwrap().k, SynthConfig::default().k);
    assert!(toml::from_str::<Config>("[synthetic]\nusers = 5").is_err());

    let (_, e) = run_err(&Config::for_path(testdata("nope")));
    assert!(e.contains("no such file or folder"), "{e}");
    // Pointing at the folder above the data set suggests the right one.
    let (_, e) = run_err(&Config::for_path(bundled().join("..")));
    assert!(
        e.contains("did you mean") && e.contains("ml-latest-small"),
        "{e}"
    );
    let (_, e) = run_err(&Config {
        rating_range: [5.0, 1.0],
        ..Config::for_path(testdata("ml-1m"))
    });
    assert!(e.starts_with("ingest.rating_range"), "{e}");
}

#[test]
fn synth_is_deterministic() {
    let cfg = SynthConfig {
        n_users: 200,
        n_items: 150,
        n_ratings: 8_000,
        ..SynthConfig::default()
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = recpipe_ingest::synth::generate(&cfg, a.path()).unwrap();
    recpipe_ingest::synth::generate(&cfg, b.path()).unwrap();
    let ra = std::fs::read(a.path().join("ratings.csv")).unwrap();
    assert_eq!(ra, std::fs::read(b.path().join("ratings.csv")).unwrap());
    assert_eq!(
        std::fs::read(a.path().join("movies.csv")).unwrap(),
        std::fs::read(b.path().join("movies.csv")).unwrap()
    );
    assert_eq!(sa.n_ratings, 8_000);
    assert_eq!(ra.iter().filter(|&&c| c == b'\n').count(), 8_001);
    let other = SynthConfig { seed: 43, ..cfg };
    recpipe_ingest::synth::generate(&other, b.path()).unwrap();
    assert_ne!(ra, std::fs::read(b.path().join("ratings.csv")).unwrap());
}

/// Bias-only baseline fitted by alternating least squares on the ingested data.
fn bias_only_rmse(r: &Ratings) -> f64 {
    let mu = r.mean_rating();
    let mut bu = vec![0f64; r.n_users as usize];
    let mut bi = vec![0f64; r.n_items as usize];
    for _ in 0..10 {
        let mut s = vec![0f64; bi.len()];
        let mut c = vec![0f64; bi.len()];
        for k in 0..r.len() {
            let (u, i) = (r.user[k] as usize, r.item[k] as usize);
            s[i] += r.rating[k] as f64 - mu - bu[u];
            c[i] += 1.0;
        }
        for i in 0..bi.len() {
            bi[i] = s[i] / (c[i] + 5.0);
        }
        let mut s = vec![0f64; bu.len()];
        let mut c = vec![0f64; bu.len()];
        for k in 0..r.len() {
            let (u, i) = (r.user[k] as usize, r.item[k] as usize);
            s[u] += r.rating[k] as f64 - mu - bi[i];
            c[u] += 1.0;
        }
        for u in 0..bu.len() {
            bu[u] = s[u] / (c[u] + 5.0);
        }
    }
    let se: f64 = (0..r.len())
        .map(|k| {
            (r.rating[k] as f64 - mu - bu[r.user[k] as usize] - bi[r.item[k] as usize]).powi(2)
        })
        .sum();
    (se / r.len() as f64).sqrt()
}

#[test]
fn synthetic_stage_is_learnable_and_movielens_shaped() {
    let cfg = Config {
        synthetic: Some(SynthConfig {
            n_users: 1_000,
            n_items: 500,
            n_ratings: 60_000,
            ..SynthConfig::default()
        }),
        ..Config::default()
    };
    assert!(IngestStage::external_inputs(&cfg).is_empty());
    let (dir, s) = run(&cfg);
    assert!(
        !dir.path().join(".synthetic").exists(),
        "generated source removed"
    );
    let synth = s.synthetic.clone().unwrap();
    assert_eq!(
        (s.rows_kept, s.users, s.duplicates, s.rejected),
        (60_000, 1_000, 0, 0)
    );
    assert_eq!(s.items, synth.items_rated);
    assert!(s.rating_histogram.keys().all(|k| {
        let v: f32 = k.parse().unwrap();
        (0.5..=5.0).contains(&v) && (v * 2.0).fract() == 0.0
    }));
    let r = Ratings::read(dir.path().join("ratings.parquet")).unwrap();
    // Power-law activity: the busiest tenth of users hold far more than a tenth of ratings.
    let mut per_user = vec![0usize; r.n_users as usize];
    r.user.iter().for_each(|&u| per_user[u as usize] += 1);
    per_user.sort_unstable_by(|a, b| b.cmp(a));
    assert!(per_user[..100].iter().sum::<usize>() > 60_000 / 4);
    assert!(*per_user.last().unwrap() >= 20);
    // A rank-k model can beat the best bias-only model by a wide margin.
    let baseline = bias_only_rmse(&r);
    assert!(
        baseline > 1.3 * synth.oracle_rmse,
        "bias-only {baseline:.3} vs planted {:.3}",
        synth.oracle_rmse
    );
    assert!(synth.signal_std > 0.5);
}

#[test]
fn ingest_error_is_send_and_sync() {
    fn check<T: Send + Sync + std::error::Error + 'static>() {}
    check::<IngestError>();
}

/// A copy of the bundled release with one rating planted on a new last line (no final
/// newline): user 999 rating movie 999999, which movies.csv does not list.
fn bundled_with_unlisted_movie() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml-latest-small");
    std::fs::create_dir(&data).unwrap();
    for name in ["ratings.csv", "movies.csv"] {
        std::fs::copy(bundled().join(name), data.join(name)).unwrap();
    }
    let mut text = std::fs::read_to_string(data.join("ratings.csv")).unwrap();
    text.push_str("999,999999,5.0,1493846415");
    std::fs::write(data.join("ratings.csv"), text).unwrap();
    (dir, data)
}

#[test]
fn ratings_of_unlisted_movies_are_kept_rejected_with_their_line_or_stop_the_run() {
    let (_tmp, data) = bundled_with_unlisted_movie();
    // keep (the default): a well-formed row, its movie rated without metadata, and the
    // published-count check says the file is not the release.
    let (_, s) = run(&Config::for_path(&data));
    assert_eq!((s.rows_kept, s.users, s.items), (100_837, 611, 9_725));
    assert_eq!((s.unknown_item_ratings, s.items_without_metadata), (1, 1));
    assert!(!s.published.as_ref().unwrap().matches, "{:?}", s.published);
    assert!(
        s.lines()
            .iter()
            .any(|l| l.contains("warning: ml-latest-small as published"))
    );
    // reject: the published release, and the planted row in rejects.csv with its place.
    let cfg = Config {
        unknown_items: UnknownItems::Reject,
        ..Config::for_path(&data)
    };
    let (dir, s) = run(&cfg);
    assert_eq!(
        (s.rows_read, s.rows_kept, s.rejected),
        (100_837, 100_836, 1)
    );
    assert_eq!(
        (s.users, s.items, s.items_without_metadata),
        (610, 9_724, 0)
    );
    assert_eq!(s.unknown_item_ratings, 1);
    assert!(s.published.as_ref().unwrap().matches, "{:?}", s.published);
    let rejects = std::fs::read_to_string(dir.path().join("rejects.csv")).unwrap();
    let rows: Vec<&str> = rejects.lines().collect();
    assert_eq!(rows.len(), 2, "{rejects}");
    assert!(
        rows[1]
            .ends_with(",100838,2,item 999999 is not in movies.csv,\"999,999999,5.0,1493846415\""),
        "{rejects}"
    );
    let r = Ratings::read(dir.path().join("ratings.parquet")).unwrap();
    assert_eq!((r.n_users, r.n_items, r.len()), (610, 9_724, 100_836));
    let cat = Catalog::read(dir.path()).unwrap();
    let (Ids::Int(users), Ids::Int(items)) = (&cat.user_ids, &cat.item_ids) else {
        panic!("MovieLens ids are integers");
    };
    assert_eq!((users[0], users[609]), (1, 610));
    assert!(!items.contains(&999_999) && items.windows(2).all(|w| w[0] < w[1]));
    assert!(cat.titles.iter().all(Option::is_some));

    // error: the file, line and column of the row, and nothing written.
    let cfg = Config {
        unknown_items: UnknownItems::Error,
        ..Config::for_path(&data)
    };
    let (dir, e) = run_err(&cfg);
    assert!(
        e.contains("ratings.csv:100838:2: item 999999 is not in"),
        "{e}"
    );
    assert!(e.contains("unknown_items"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn rejected_unlisted_movies_keep_later_line_numbers_right() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml-latest-small");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("ratings.csv"),
        "userId,movieId,rating,timestamp\n1,10,4.0,1\n\n2,99,3.0,2\n1,20,5.0,3\n1,10,2.0,4\n",
    )
    .unwrap();
    std::fs::write(
        data.join("movies.csv"),
        "movieId,title,genres\n10,A (1990),Drama\n20,B (1991),Comedy\n",
    )
    .unwrap();
    let cfg = Config {
        unknown_items: UnknownItems::Reject,
        duplicates: Duplicates::Error,
        ..Config::for_path(&data)
    };
    // Line 4 (after a blank line) is rejected; the repeat on line 6 is still named right.
    let (_, e) = run_err(&cfg);
    assert!(
        e.contains("ratings.csv:6: user 1 rated item 10 again (first at line 2)"),
        "{e}"
    );
    let cfg = Config {
        duplicates: Duplicates::KeepLast,
        ..cfg
    };
    let (out, s) = run(&cfg);
    assert_eq!((s.rows_kept, s.rejected, s.users, s.items), (2, 1, 1, 2));
    let rejects = std::fs::read_to_string(out.path().join("rejects.csv")).unwrap();
    assert!(
        rejects.contains(",4,2,item 99 is not in movies.csv,\"2,99,3.0,2\""),
        "{rejects}"
    );
    // Without an items file there is nothing to check against: a config error.
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, "1,10,4.0\n").unwrap();
    let cfg = Config {
        unknown_items: UnknownItems::Reject,
        ..Config::for_path(&plain)
    };
    let (_, e) = run_err(&cfg);
    assert!(
        e.contains("unknown_items") && e.contains("no items file"),
        "{e}"
    );
}
