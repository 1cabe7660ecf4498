//! The export stage end to end on a hand-made checkpoint, catalog and split: every file is
//! read back with the parquet crate and checked against the checkpoint.

use arrow_array::{
    Array, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::DataType;
use recpipe_core::model::{Model, ModelKind, ModelMeta, tensor};
use recpipe_core::parquet_io::{read_batches, write_batches};
use recpipe_core::ratings::Ids;
use recpipe_core::testutil::{self, TestCatalog, artifact};
use recpipe_core::{Inputs, OutDir, Progress, Ratings, Stage, schema};
use recpipe_export::{Config, ExportError, ExportStage, Format};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

const N_USERS: usize = 7;
const N_ITEMS: usize = 13;
const K: usize = 4;

struct Fixture {
    _tmp: tempfile::TempDir,
    ingest: PathBuf,
    split: PathBuf,
    model: PathBuf,
    out: PathBuf,
    train: Ratings,
}

impl Fixture {
    fn inputs(&self) -> Inputs {
        let a = |kind: &str, dir: &Path| artifact(kind, kind, dir);
        Inputs::new(vec![
            a("train", &self.model),
            a("split", &self.split),
            a("ingest", &self.ingest),
        ])
    }

    fn run(&self, cfg: &Config) -> Result<recpipe_core::Outputs, ExportError> {
        let out = OutDir::new(&self.out).unwrap();
        ExportStage::run(cfg, &self.inputs(), &out, &Progress::hidden())
    }

    fn read(&self, name: &str) -> (arrow_schema::SchemaRef, RecordBatch) {
        let (schema, batches) = read_batches(self.out.join(name)).unwrap();
        let batch = arrow_select::concat::concat_batches(&schema, &batches).unwrap();
        (schema, batch)
    }

    fn model(&self) -> Model {
        Model::load(&self.model).unwrap()
    }
}

fn item_title(i: usize) -> Option<String> {
    match i {
        // A title with a comma and quotes for the CSV, and one missing title.
        1 => Some("American President, The \"Special\" (1995)".to_string()),
        5 => None,
        _ => Some(format!("Movie {i} ({})", 1990 + i)),
    }
}

/// Deterministic, varied values in [-1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let h = (i.wrapping_add(seed).wrapping_mul(2_654_435_761)) >> 8;
            (h % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn fixture(model_kind: ModelKind, string_user_ids: bool) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let ingest = tmp.path().join("ingest");
    let split = tmp.path().join("split");
    // The model key is the train artifact's directory name.
    let model = tmp.path().join("train-key-0123abcd");
    let out = tmp.path().join("out");

    // Each user rated a few items; user 3 rated all but two, user 6 nothing.
    let mut user = Vec::new();
    let mut item = Vec::new();
    for u in 0..N_USERS as u32 {
        let rated: Vec<u32> = match u {
            3 => (0..N_ITEMS as u32).filter(|&i| i != 4 && i != 9).collect(),
            6 => vec![],
            _ => (0..N_ITEMS as u32).filter(|i| (i + u) % 3 == 0).collect(),
        };
        for i in rated {
            user.push(u);
            item.push(i);
        }
    }
    let train = Ratings {
        rating: values(user.len(), 7)
            .iter()
            .map(|v| 3.0 + 2.0 * v)
            .collect(),
        timestamp: None,
        user,
        item,
        n_users: N_USERS as u32,
        n_items: N_ITEMS as u32,
    };
    std::fs::create_dir_all(&split).unwrap();
    train.write(split.join("train.parquet")).unwrap();

    let mut n_ratings = vec![0u32; N_ITEMS];
    for &i in &train.item {
        n_ratings[i as usize] += 1;
    }
    TestCatalog {
        user_ids: if string_user_ids {
            Ids::Str((0..N_USERS).map(|u| format!("u{u}")).collect())
        } else {
            Ids::Int((0..N_USERS as i64).map(|u| 100 + u).collect())
        },
        item_ids: (0..N_ITEMS as i64).map(|i| 1000 + 10 * i).collect(),
        titles: (0..N_ITEMS).map(item_title).collect(),
        years: vec![None; N_ITEMS],
        genres: (0..N_ITEMS)
            .map(|i| {
                if i % 2 == 0 {
                    vec!["Drama", "Comedy"]
                } else {
                    vec!["Drama"]
                }
            })
            .collect(),
        item_ratings: n_ratings,
        ..TestCatalog::new((N_USERS, 0), (N_ITEMS, 0), 2000)
    }
    .write(&ingest);

    let meta = ModelMeta {
        y_range: Some([0.5, 5.5]),
        global_mean: 3.5,
        ..testutil::meta(model_kind, N_USERS as u32, N_ITEMS as u32, K)
    };
    // Tensor seeds 1, 2, 3, 4 in the filler's call order.
    let mut seed = 0;
    let mut ckpt = testutil::factorization(meta, |_, n| {
        seed += 1;
        values(n, seed)
    });
    // Item 7 duplicates item 2: a cosine of exactly 1 that must not count as "self".
    let item_factors = &mut ckpt.tensors.get_mut(tensor::ITEM_FACTORS).unwrap().data;
    let dup: Vec<f32> = item_factors[2 * K..3 * K].to_vec();
    item_factors[7 * K..8 * K].copy_from_slice(&dup);
    ckpt.save(&model).unwrap();
    Fixture {
        _tmp: tmp,
        ingest,
        split,
        model,
        out,
        train,
    }
}

/// The defaults, but similar items over every item: the fixture's items have 1-3 ratings.
fn cfg() -> Config {
    Config {
        similar_min_ratings: 0,
        ..Config::default()
    }
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("missing column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has another type"))
}

fn names(s: &arrow_schema::Schema) -> Vec<&str> {
    s.fields().iter().map(|f| f.name().as_str()).collect()
}

fn embeddings(b: &RecordBatch) -> Vec<Vec<f32>> {
    let list = col::<FixedSizeListArray>(b, "embedding");
    (0..list.len())
        .map(|r| {
            let v = list.value(r);
            v.as_any()
                .downcast_ref::<Float32Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn embeddings_are_the_checkpoints_vectors_with_ids_titles_and_metadata() {
    let fx = fixture(ModelKind::DotBias, false);
    fx.run(&cfg()).unwrap();
    let model = fx.model();

    let (schema, b) = fx.read("item_embeddings.parquet");
    assert_eq!(
        names(&schema),
        [
            "item_idx",
            "item_id",
            "title",
            "genres",
            "n_ratings",
            "bias",
            "embedding"
        ]
    );
    let emb = schema.field_with_name("embedding").unwrap();
    assert_eq!(emb.data_type(), &schema::embedding_type(K));
    assert!(!emb.is_nullable());
    let meta = schema.metadata();
    assert_eq!(meta[schema::META_EMBEDDING_DIM], K.to_string());
    assert_eq!(meta[schema::META_MODEL_KEY], "train-key-0123abcd");
    assert_eq!(meta[schema::META_VERSION], recpipe_core::VERSION);
    assert_eq!(b.num_rows(), N_ITEMS);
    let factors = model.item_factors().unwrap();
    for (i, v) in embeddings(&b).iter().enumerate() {
        assert_eq!(v.as_slice(), factors.row(i).as_slice().unwrap(), "item {i}");
    }
    assert_eq!(
        col::<Float32Array>(&b, "bias").values().as_ref(),
        model.item_bias().unwrap()
    );
    assert_eq!(col::<Int64Array>(&b, "item_id").value(3), 1030);
    let titles = col::<StringArray>(&b, "title");
    assert_eq!(titles.value(1), item_title(1).unwrap());
    assert!(titles.is_null(5));
    let genres = col::<arrow_array::ListArray>(&b, "genres");
    assert_eq!(genres.value(0).len(), 2);
    assert_eq!(genres.value(1).len(), 1);

    let (schema, b) = fx.read("user_embeddings.parquet");
    assert_eq!(names(&schema), ["user_idx", "user_id", "bias", "embedding"]);
    assert_eq!(schema.metadata()[schema::META_EMBEDDING_DIM], K.to_string());
    assert_eq!(b.num_rows(), N_USERS);
    let factors = model.user_factors().unwrap();
    for (u, v) in embeddings(&b).iter().enumerate() {
        assert_eq!(v.as_slice(), factors.row(u).as_slice().unwrap(), "user {u}");
    }
    assert_eq!(col::<Int64Array>(&b, "user_id").value(6), 106);
    assert!(!fx.out.join("item_embeddings_normalized.parquet").exists());
}

#[test]
fn similar_items_are_sorted_exact_cosines_without_self_and_symmetric() {
    let fx = fixture(ModelKind::DotBias, false);
    // More neighbours than other items: every pair appears, so symmetry is checked in full.
    let cfg = Config {
        neighbors: 50,
        ..cfg()
    };
    fx.run(&cfg).unwrap();
    let model = fx.model();
    let factors = model.item_factors().unwrap();
    let (schema, b) = fx.read("similar_items.parquet");
    assert_eq!(
        names(&schema),
        [
            "item_idx",
            "item_id",
            "title",
            "rank",
            "neighbor_idx",
            "neighbor_id",
            "neighbor_title",
            "score"
        ]
    );
    assert_eq!(
        schema.metadata()[schema::META_MODEL_KEY],
        "train-key-0123abcd"
    );
    assert_eq!(b.num_rows(), N_ITEMS * (N_ITEMS - 1));
    let item = col::<UInt32Array>(&b, "item_idx");
    let rank = col::<UInt32Array>(&b, "rank");
    let nb = col::<UInt32Array>(&b, "neighbor_idx");
    let nb_id = col::<Int64Array>(&b, "neighbor_id");
    let score = col::<Float32Array>(&b, "score");
    let mut pairs = HashMap::new();
    for r in 0..b.num_rows() {
        let (a, n) = (item.value(r) as usize, nb.value(r) as usize);
        assert_ne!(a, n, "row {r}: an item is not its own neighbour");
        assert_eq!(nb_id.value(r), 1000 + 10 * n as i64);
        let expect = cosine(
            factors.row(a).as_slice().unwrap(),
            factors.row(n).as_slice().unwrap(),
        );
        assert!((score.value(r) as f64 - expect).abs() < 1e-5, "row {r}");
        if rank.value(r) > 1 {
            assert_eq!(item.value(r - 1) as usize, a);
            assert_eq!(rank.value(r - 1) + 1, rank.value(r));
            assert!(score.value(r - 1) >= score.value(r), "sorted, row {r}");
        } else {
            assert_eq!(rank.value(r), 1);
        }
        pairs.insert((a, n), score.value(r));
    }
    for (&(a, n), &s) in &pairs {
        let back = pairs[&(n, a)];
        assert!((s - back).abs() <= 1e-6, "score({a},{n})={s} vs {back}");
    }
    // The duplicate pair (2, 7) is each other's nearest at cosine 1.
    assert!((pairs[&(2, 7)] - 1.0).abs() < 1e-6);
    let first_of = |a: u32| (0..b.num_rows()).find(|&r| item.value(r) == a).unwrap();
    assert_eq!(nb.value(first_of(2)), 7);
    assert_eq!(nb.value(first_of(7)), 2);
}

#[test]
fn similar_items_keeps_the_true_top_k_for_the_most_rated_items() {
    let fx = fixture(ModelKind::Dot, false);
    let cfg = Config {
        neighbors: 3,
        similar_items_top: 4,
        ..cfg()
    };
    let outputs = fx.run(&cfg).unwrap();
    let model = fx.model();
    let f = model.item_factors().unwrap();
    let (_, b) = fx.read("similar_items.parquet");
    assert_eq!(b.num_rows(), 4 * 3);
    let item = col::<UInt32Array>(&b, "item_idx");
    let nb = col::<UInt32Array>(&b, "neighbor_idx");
    let mut n_ratings = [0u32; N_ITEMS];
    for &i in &fx.train.item {
        n_ratings[i as usize] += 1;
    }
    let mut by_count: Vec<usize> = (0..N_ITEMS).collect();
    by_count.sort_by_key(|&i| (std::cmp::Reverse(n_ratings[i]), i));
    let queries: HashSet<u32> = (0..b.num_rows()).map(|r| item.value(r)).collect();
    let expect: HashSet<u32> = by_count[..4].iter().map(|&i| i as u32).collect();
    assert_eq!(queries, expect);
    for q in queries {
        let mut brute: Vec<(usize, f64)> = (0..N_ITEMS)
            .filter(|&j| j != q as usize)
            .map(|j| {
                let c = cosine(
                    f.row(q as usize).as_slice().unwrap(),
                    f.row(j).as_slice().unwrap(),
                );
                (j, c)
            })
            .collect();
        brute.sort_by(|a, b| b.1.total_cmp(&a.1));
        let got: Vec<u32> = (0..b.num_rows())
            .filter(|&r| item.value(r) == q)
            .map(|r| nb.value(r))
            .collect();
        let want: Vec<u32> = brute[..3].iter().map(|&(j, _)| j as u32).collect();
        assert_eq!(got, want, "neighbours of {q}");
    }
    // The terminal lines name the files and show the most-rated item's neighbours.
    let text = outputs.lines.join("\n");
    assert!(text.contains("similar_items.parquet"), "{text}");
    assert!(text.contains("most similar to"), "{text}");
    // A model without biases exports bias 0.
    let (_, b) = fx.read("item_embeddings.parquet");
    assert!(
        col::<Float32Array>(&b, "bias")
            .values()
            .iter()
            .all(|&v| v == 0.0)
    );
}

#[test]
fn recommendations_are_the_best_unseen_items_and_never_train_items() {
    let fx = fixture(ModelKind::DotBias, false);
    let cfg = Config {
        recommendations_n: 5,
        ..cfg()
    };
    fx.run(&cfg).unwrap();
    let model = fx.model();
    let (schema, b) = fx.read("recommendations.parquet");
    assert_eq!(
        names(&schema),
        [
            "user_idx", "user_id", "rank", "item_idx", "item_id", "title", "score"
        ]
    );
    let seen: HashSet<(u32, u32)> = fx
        .train
        .user
        .iter()
        .copied()
        .zip(fx.train.item.iter().copied())
        .collect();
    let user = col::<UInt32Array>(&b, "user_idx");
    let item = col::<UInt32Array>(&b, "item_idx");
    let score = col::<Float32Array>(&b, "score");
    let rank = col::<UInt32Array>(&b, "rank");
    let mut per_user: BTreeMap<u32, Vec<(u32, f32, u32)>> = BTreeMap::new();
    for r in 0..b.num_rows() {
        let (u, i) = (user.value(r), item.value(r));
        assert!(!seen.contains(&(u, i)), "user {u} rated item {i} in train");
        per_user
            .entry(u)
            .or_default()
            .push((i, score.value(r), rank.value(r)));
    }
    assert_eq!(
        per_user.len(),
        N_USERS,
        "every user, even one without ratings"
    );
    for (u, recs) in &per_user {
        let unseen: Vec<u32> = (0..N_ITEMS as u32)
            .filter(|&i| !seen.contains(&(*u, i)))
            .collect();
        // User 3 has seen all but two items: two rows, not seen items to fill the list.
        assert_eq!(recs.len(), unseen.len().min(5), "user {u}");
        let predicted = model.predict(&vec![*u; unseen.len()], &unseen);
        let mut brute: Vec<(u32, f32)> = unseen.iter().copied().zip(predicted).collect();
        brute.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (n, (&(i, s, rk), &(bi, bs))) in recs.iter().zip(&brute).enumerate() {
            assert_eq!(rk as usize, n + 1);
            assert!((s - bs).abs() < 1e-5, "user {u} rank {rk}: {s} vs {bs}");
            assert_eq!(i, bi, "user {u} rank {rk}");
        }
    }
    assert_eq!(per_user[&3].len(), 2);
}

#[test]
fn pca_columns_are_uncorrelated_and_variance_ordered() {
    let fx = fixture(ModelKind::DotBias, false);
    let outputs = fx.run(&cfg()).unwrap();
    let model = fx.model();
    let (schema, b) = fx.read("pca.parquet");
    assert_eq!(
        names(&schema),
        ["item_idx", "item_id", "title", "pc1", "pc2", "pc3"]
    );
    assert_eq!(b.num_rows(), N_ITEMS);
    let pcs: Vec<&[f32]> = ["pc1", "pc2", "pc3"]
        .iter()
        .map(|n| col::<Float32Array>(&b, n).values().as_ref())
        .collect();
    let cov = |a: &[f32], b: &[f32]| -> f64 {
        let ma = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        let mb = b.iter().map(|&v| v as f64).sum::<f64>() / b.len() as f64;
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - ma) * (y as f64 - mb))
            .sum::<f64>()
            / (a.len() - 1) as f64
    };
    for i in 0..3 {
        assert!(cov(pcs[i], pcs[i]) > 1e-4, "pc{} has variance", i + 1);
        for j in i + 1..3 {
            assert!(cov(pcs[i], pcs[i]) >= cov(pcs[j], pcs[j]));
            assert!(
                cov(pcs[i], pcs[j]).abs() < 1e-4,
                "pc{} vs pc{}",
                i + 1,
                j + 1
            );
        }
    }
    // The components themselves are orthonormal.
    let p = recpipe_export::pca::pca(model.item_factors().unwrap(), 3);
    let g = p.components.t().dot(&p.components);
    for ((i, j), v) in g.indexed_iter() {
        assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-9);
    }
    // The summary names the extreme titles of every component.
    let pca = outputs.summary["pca"].as_array().unwrap();
    assert_eq!(pca.len(), 3);
    let top = pca[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 10, "pca_titles = 10 by default");
    let best = (0..N_ITEMS)
        .max_by(|&a, &b| pcs[0][a].total_cmp(&pcs[0][b]))
        .unwrap();
    let best_title = item_title(best).unwrap_or_else(|| format!("item {}", 1000 + 10 * best));
    assert_eq!(top[0], best_title.as_str());
}

#[test]
fn normalized_npy_and_csv_copies_match_the_parquet_tables() {
    let fx = fixture(ModelKind::DotBias, true);
    let cfg = Config {
        normalized: true,
        format: vec![Format::Parquet, Format::Npy, Format::Csv],
        ..cfg()
    };
    let outputs = fx.run(&cfg).unwrap();
    let model = fx.model();
    let (schema, b) = fx.read("item_embeddings_normalized.parquet");
    assert_eq!(schema.metadata()[recpipe_export::META_NORMALIZED], "true");
    for (i, v) in embeddings(&b).iter().enumerate() {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "row {i}");
        let raw = model.item_factors().unwrap();
        assert!((cosine(v, raw.row(i).as_slice().unwrap()) - 1.0).abs() < 1e-5);
    }
    let (schema, b) = fx.read("user_embeddings.parquet");
    assert_eq!(
        schema.field_with_name("user_id").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(col::<StringArray>(&b, "user_id").value(2), "u2");
    fx.read("user_embeddings_normalized.parquet");

    // npy: header then float32 rows equal to the checkpoint.
    let bytes = std::fs::read(fx.out.join("item_embeddings.npy")).unwrap();
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(
        header.contains(&format!("'shape': ({N_ITEMS}, {K})")),
        "{header}"
    );
    let data: Vec<f32> = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(
        data.as_slice(),
        model.item_factors().unwrap().as_slice().unwrap()
    );
    assert!(fx.out.join("user_embeddings.npy").exists());
    assert!(fx.out.join("item_embeddings_normalized.npy").exists());

    // csv: one line per row plus the header; embeddings spread over e0..e{k-1}.
    let csv = std::fs::read_to_string(fx.out.join("item_embeddings.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), N_ITEMS + 1);
    assert_eq!(
        lines[0],
        "item_idx,item_id,title,genres,n_ratings,bias,e0,e1,e2,e3"
    );
    assert!(
        lines[2].starts_with("1,1010,\"American President, The \"\"Special\"\" (1995)\",Drama,3,"),
        "{}",
        lines[2]
    );
    assert!(lines[6].starts_with("5,1050,,Drama,"), "{}", lines[6]);
    assert!(
        lines[1].starts_with("0,1000,Movie 0 (1990),Drama|Comedy,"),
        "{}",
        lines[1]
    );
    let last: f32 = lines[1].rsplit(',').next().unwrap().parse().unwrap();
    assert_eq!(last, model.item_factors().unwrap()[[0, K - 1]]);
    for table in ["similar_items", "recommendations", "pca", "user_embeddings"] {
        let (_, b) = fx.read(&format!("{table}.parquet"));
        let csv = std::fs::read_to_string(fx.out.join(format!("{table}.csv"))).unwrap();
        assert_eq!(csv.lines().count(), b.num_rows() + 1, "{table}.csv");
    }
    // Every file is listed in the summary with its row count.
    let files = outputs.summary["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["name"] == "pca.csv" && f["rows"] == N_ITEMS)
    );
    assert_eq!(
        files.len(),
        4 * 2 + 3 * 2 + 4,
        "parquet+csv of 7 tables, 4 npy"
    );
}

#[test]
fn skipped_tables_are_not_written_and_the_split_is_then_optional() {
    let fx = fixture(ModelKind::DotBias, false);
    let skip = Config {
        neighbors: 0,
        recommendations_n: 0,
        pca_components: 0,
        ..cfg()
    };
    let inputs = Inputs::new(
        fx.inputs()
            .artifacts
            .into_iter()
            .filter(|a| a.kind != "split")
            .collect(),
    );
    let out = OutDir::new(&fx.out).unwrap();
    ExportStage::run(&skip, &inputs, &out, &Progress::hidden()).unwrap();
    assert_eq!(
        testutil::file_names(&fx.out),
        ["item_embeddings.parquet", "user_embeddings.parquet"]
    );
    // Recommendations need the split, and say so.
    let err = ExportStage::run(&cfg(), &inputs, &out, &Progress::hidden())
        .unwrap_err()
        .to_string();
    assert!(err.contains("split"), "{err}");
}

#[test]
fn config_is_strict_and_mismatched_inputs_are_reported() {
    let parsed: Config = toml::from_str("neighbors = 5\nformat = [\"parquet\", \"npy\"]").unwrap();
    assert_eq!(parsed.neighbors, 5);
    assert_eq!(parsed.recommendations_n, 10);
    assert_eq!(parsed.similar_min_ratings, 10);
    let err = toml::from_str::<Config>("neighbours = 5")
        .unwrap_err()
        .to_string();
    assert!(err.contains("neighbours"), "{err}");
    let err = toml::from_str::<Config>("format = [\"jsonl\"]")
        .unwrap_err()
        .to_string();
    assert!(err.contains("jsonl"), "{err}");

    let fx = fixture(ModelKind::DotBias, false);
    let err = fx
        .run(&Config {
            format: vec![Format::Csv],
            ..cfg()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("`format`") && err.contains("parquet"), "{err}");

    // An ingest artifact with another id space than the model's.
    let other = fixture(ModelKind::DotBias, false);
    let (_, items) = read_batches(other.ingest.join("items.parquet")).unwrap();
    write_batches(
        fx.ingest.join("items.parquet"),
        &[items[0].slice(0, N_ITEMS - 1)],
    )
    .unwrap();
    let err = fx.run(&cfg()).unwrap_err().to_string();
    assert!(
        err.contains("12 items but the model was trained on 7 users and 13 items"),
        "{err}"
    );
    assert!(
        !fx.out.join("item_embeddings.parquet").exists(),
        "nothing written"
    );
}

#[test]
fn similar_min_ratings_leaves_rarely_rated_items_out_on_both_sides() {
    let fx = fixture(ModelKind::DotBias, false);
    let mut n_ratings = [0u32; N_ITEMS];
    for &i in &fx.train.item {
        n_ratings[i as usize] += 1;
    }
    let eligible: HashSet<u32> = (0..N_ITEMS as u32)
        .filter(|&i| n_ratings[i as usize] >= 3)
        .collect();
    assert!(
        eligible.len() > 2 && eligible.len() < N_ITEMS,
        "{n_ratings:?}"
    );
    fx.run(&Config {
        similar_min_ratings: 3,
        ..cfg()
    })
    .unwrap();
    let (schema, b) = fx.read("similar_items.parquet");
    assert_eq!(schema.metadata()[recpipe_export::META_MIN_RATINGS], "3");
    let item = col::<UInt32Array>(&b, "item_idx");
    let nb = col::<UInt32Array>(&b, "neighbor_idx");
    let items: HashSet<u32> = item.values().iter().copied().collect();
    assert_eq!(items, eligible);
    assert!(nb.values().iter().all(|n| eligible.contains(n)));
    assert_eq!(b.num_rows(), eligible.len() * (eligible.len() - 1));
    // item_embeddings carries n_ratings, so a DuckDB query can apply the same filter.
    let (_, b) = fx.read("item_embeddings.parquet");
    assert_eq!(
        col::<UInt32Array>(&b, "n_ratings").values().as_ref(),
        &n_ratings
    );
}

#[test]
fn a_split_from_another_id_space_fails_before_anything_is_written() {
    let fx = fixture(ModelKind::DotBias, false);
    let other = Ratings {
        n_items: N_ITEMS as u32 + 5,
        ..fx.train.clone()
    };
    other.write(fx.split.join("train.parquet")).unwrap();
    let err = fx.run(&cfg()).unwrap_err().to_string();
    assert!(
        err.contains("train.parquet") && err.contains("18 items but the model was trained on"),
        "{err}"
    );
    assert!(!fx.out.join("item_embeddings.parquet").exists());
}
