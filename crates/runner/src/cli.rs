//! Command-line interface definitions.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "recpipe",
    bin_name = "recpipe",
    version,
    about = "Recommender pipelines on MovieLens-style ratings: ingest → split → train → evaluate → export, cached stage by stage",
    long_about = None,
    after_help = "Examples:\n  recpipe run pipelines/quickstart.toml\n  recpipe run pipelines/quickstart.toml --set split.seed=7\n  recpipe status pipelines/quickstart.toml\n  recpipe show pipelines/quickstart.toml split\n  recpipe ingest data/ml-latest-small --out out/ingest\n\nLogs go to stderr: -v for more, -vv for everything (RUST_LOG, if set, decides instead). RECPIPE_NO_PROGRESS=1 hides progress bars."
)]
pub struct Cli {
    /// More log output on stderr: -v debug, -vv trace; `show -v` prints whole schemas and summaries
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Set from the subcommand's `--cache-dir` (only commands that use the cache have one).
    #[arg(skip)]
    pub cache_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a pipeline: every stale stage, independent stages in parallel
    #[command(
        after_help = "Examples:\n  recpipe run pipelines/quickstart.toml\n  recpipe run pipelines/quickstart.toml --stage split          # split and what it needs\n  recpipe run pipelines/quickstart.toml --stage split --force  # rebuild split even if fresh\n  recpipe run pipelines/quickstart.toml --stage split --downstream\n  recpipe run pipelines/quickstart.toml --set split.seed=7 --dry-run"
    )]
    Run(RunArgs),
    /// Run a pipeline once per combination of a grid of keys; rank the trials by a metric
    #[command(after_help = SWEEP_HELP)]
    Sweep(SweepArgs),
    /// Show which stages are fresh and why the others would run
    #[command(
        after_help = "Example:\n  recpipe status pipelines/quickstart.toml --set split.seed=7"
    )]
    Status {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Show a stage's artifact: path, files, rows, Parquet schema, summary
    #[command(after_help = "Example:\n  recpipe show pipelines/quickstart.toml split")]
    Show {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Stage name, as in [stages.NAME]
        stage: String,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Print the pipeline's stage graph
    #[command(
        after_help = "Examples:\n  recpipe dag pipelines/quickstart.toml\n  recpipe dag pipelines/quickstart.toml --format dot | dot -Tsvg > dag.svg"
    )]
    Dag {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: DagFormat,
    },
    /// Remove cached artifacts no kept run uses, old run records, and leftovers of killed runs
    #[command(
        after_help = "Kept for each pipeline: the run its .recpipe/runs/<pipeline> view shows, its latest run without --set (the pipeline file's own configuration), and its last --keep-runs runs (sweep trials count as runs).\n\nExamples:\n  recpipe gc --dry-run\n  recpipe gc --keep-runs 1"
    )]
    Gc {
        /// List what would be removed and why, remove nothing
        #[arg(long)]
        dry_run: bool,
        /// How many of each pipeline's most recent runs to keep
        #[arg(long, value_name = "N", default_value_t = crate::gc::DEFAULT_KEEP_RUNS)]
        keep_runs: usize,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Top-N unseen items for a user, from the pipeline's export (recommendations.parquet)
    #[command(
        after_help = "Reads the export artifact built for this configuration (the file plus --set); run `recpipe run PIPELINE` first. Ids are the data's own (MovieLens userId / movieId). Items the user rated in train are never listed.\n\nExamples:\n  recpipe recommend pipelines/quickstart.toml --user 1\n  recpipe recommend pipelines/quickstart.toml --user 1 -n 5 --json"
    )]
    Recommend(crate::query::RecommendArgs),
    /// Nearest items to an item (by id or title), from the export (similar_items.parquet)
    #[command(
        after_help = "Reads the export artifact built for this configuration; run `recpipe run PIPELINE` first. An id (MovieLens movieId) wins over a title; a title matches exactly (case-insensitive), then without its year, then as a substring of exactly one title; when several match, they are listed with their ids.\n\nExamples:\n  recpipe similar pipelines/quickstart.toml --item 1\n  recpipe similar pipelines/quickstart.toml --item \"toy story\" -n 5"
    )]
    Similar(crate::query::SimilarArgs),
    /// The model's predicted rating for a user and one or more items (train checkpoint)
    #[command(
        after_help = "Scores with the train stage's checkpoint built for this configuration; run `recpipe run PIPELINE` first. An unknown user or item is an error naming it.\n\nExamples:\n  recpipe predict pipelines/quickstart.toml --user 1 --item 1\n  recpipe predict pipelines/quickstart.toml --user 1 --item 1 --item \"Heat (1995)\" --json"
    )]
    Predict(crate::query::PredictArgs),
    /// Show the CPU, CUDA driver, GPUs, NVRTC and shipped GPU kernels; --check-kernels compiles them
    #[command(after_help = crate::commands::DEVICES_HELP)]
    Devices(crate::commands::DevicesArgs),
    /// One-off ingest of a ratings file or MovieLens folder into DIR (no pipeline, no cache)
    #[command(
        after_help = "Examples:\n  recpipe ingest data/ml-latest-small --out out/ingest\n  recpipe ingest data/ml-1m --out out/ml-1m --on-error skip\n  recpipe ingest my_ratings.csv --out out/mine --set id_order=first_seen"
    )]
    Ingest {
        /// Ratings file or MovieLens folder (ml-latest-small, ml-100k, ml-1m, ml-25m)
        path: PathBuf,
        #[command(flatten)]
        out: OutArgs,
        /// Input format [default: detected from the file names]
        #[arg(long)]
        format: Option<String>,
        /// What to do with a malformed row: fail (with file:line) or skip (and count)
        #[arg(long, value_name = "fail|skip")]
        on_error: Option<String>,
        /// What to do with repeated (user, item) pairs
        #[arg(long)]
        duplicates: Option<String>,
        /// How dense ids are assigned: sorted or first_seen
        #[arg(long)]
        id_order: Option<String>,
        #[command(flatten)]
        sets: SetArgs,
    },
    /// Generate a synthetic ratings data set into DIR
    #[command(
        after_help = "Example:\n  recpipe synth --out out/synth --users 10000 --items 2000 --ratings 1000000 --seed 1"
    )]
    Synth {
        /// Output directory: ratings.csv and movies.csv in MovieLens ml-latest layout
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Number of users, each with at least one rating [default: 10000]
        #[arg(long, value_name = "N")]
        users: Option<u64>,
        /// Number of items (movies) [default: 4000]
        #[arg(long, value_name = "N")]
        items: Option<u64>,
        /// Number of ratings: at least --users, at most --users × --items [default: 1500000]
        #[arg(long, value_name = "N")]
        ratings: Option<u64>,
        /// Random seed: the same seed gives the same files [default: 42]
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
    },
    /// One-off split of an ingest artifact
    #[command(
        after_help = "Example:\n  recpipe split --input out/ingest --out out/split --set seed=7"
    )]
    Split(StageArgs),
    /// One-off training run on a split artifact
    #[command(
        after_help = "Example:\n  recpipe train --input out/split --out out/train --set epochs=3"
    )]
    Train(StageArgs),
    /// One-off evaluation of a train artifact
    #[command(after_help = "Example:\n  recpipe evaluate --input out/train --out out/eval")]
    Evaluate(StageArgs),
    /// One-off export of a train artifact
    #[command(after_help = "Example:\n  recpipe export --input out/train --out out/export")]
    Export(StageArgs),
}

#[derive(Args)]
pub struct PipelineArgs {
    /// Pipeline TOML file, e.g. pipelines/quickstart.toml
    pub pipeline: PathBuf,
    /// Override a stage key: STAGE.KEY=VALUE (VALUE as TOML, else a string); repeatable
    #[arg(long = "set", value_name = "STAGE.KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Args)]
pub struct CacheArgs {
    /// Directory holding the `.recpipe` cache folder [default: the current directory]
    #[arg(long, env = "RECPIPE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Run only this stage (and the stages it needs); repeatable
    #[arg(long, value_name = "STAGE")]
    pub stage: Vec<String>,
    /// Rebuild the selected stages even when fresh (all stages without --stage)
    #[arg(long)]
    pub force: bool,
    /// With --stage: also run every stage downstream of it
    #[arg(long, requires = "stage")]
    pub downstream: bool,
    /// Say what would run and why; run nothing
    #[arg(long)]
    pub dry_run: bool,
}

const SWEEP_HELP: &str = "\
Each trial is a normal cached run of the metric's stage (and what it needs, and any --stage)
with the trial's values added to the --set flags, so stages a trial does not change (ingest,
split) are built once and reused, and running the same sweep again builds nothing.

Grid values are read like --set values: TOML (16, 1e-3, true, [32, 16], \"adam\"), else a
plain string. Commas inside [...], {...} or quotes do not separate values, so
  --grid 'train.hidden=[10],[32,16]'      two values: [10] and [32,16]
  --grid 'ingest.path=\"a,b\",c'          two values: the string a,b and c
Repeating a key adds values to it (--grid train.k=32 --grid train.k=64). Several keys form
the cartesian product; --random N runs N distinct combinations of it, drawn with --seed.

The metric is STAGE.PATH, a dotted path into the summary the stage recorded in its
manifest.json (`recpipe show PIPELINE STAGE -v` prints it; list indices are numbers), e.g.
train.valid_rmse, or an evaluate stage's evaluate.parts.PART.MODEL.rmse, .mae, .p@K or
.ndcg@K (PART valid or test, MODEL a train stage's name or a baseline, K the stage's k).
Default: the train stage's valid_rmse (the validation RMSE of its best epoch). Errors
(RMSE, MAE) are minimized and P@k, NDCG@k and accuracy maximized; any other number is
minimized; --maximize or --minimize decides instead.

A trial that fails (e.g. a diverging learning rate) is recorded with its error and the sweep
goes on; the sweep itself fails only when every trial failed. The table (Parquet, one row per trial, best first) has the
columns trial, one per swept key (the value as TOML text), metric (null for a failed
trial), error, seconds, train_key and metric_key (cache keys of the artifacts).

The last line is the mean and sample standard deviation of the metric over the successful
trials (`mean over 5 trials: 0.912345 ± 0.007123 (sd)`), also in the table's metadata
(recpipe.sweep.metric_mean, metric_sd, metric_n). Over the folds of a `predefined` split
(split.fold fills in {fold} in its file paths) that is a cross-validation; MovieLens 100K's
official five folds u1..u5, scored by the evaluate stage's test RMSE:
  recpipe sweep pipelines/ml-100k.toml --grid split.fold=1,2,3,4,5 --metric evaluate.parts.test.blend.rmse

Examples:
  recpipe sweep pipelines/quickstart.toml --set train.epochs=5 --grid train.k=16,32,64 --grid train.lr=1e-3,3e-3
  recpipe sweep pipelines/quickstart.toml --grid train.k=8,16,32,64,128 --grid train.weight_decay=0,1e-5,1e-4 --random 6 --seed 1
  recpipe sweep pipelines/quickstart.toml --grid split.seed=1,2,3 --metric split.train.rows --maximize";

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// A swept key and its values; repeatable (one axis per key)
    #[arg(long = "grid", value_name = "STAGE.KEY=V1,V2,...", required = true)]
    pub grid: Vec<String>,
    /// Run N combinations of the grid drawn at random (with --seed) instead of all of them
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub random: Option<u64>,
    /// Seed of --random
    #[arg(long, default_value_t = 0, value_name = "S", requires = "random")]
    pub seed: u64,
    /// What to rank trials by: STAGE.PATH into a stage's summary [default: train.valid_rmse]
    #[arg(long, value_name = "STAGE.PATH")]
    pub metric: Option<String>,
    /// Lower is better (the default, except for P@k, NDCG@k and accuracy)
    #[arg(long, conflicts_with = "maximize")]
    pub minimize: bool,
    /// Higher is better (the default for P@k, NDCG@k and accuracy)
    #[arg(long)]
    pub maximize: bool,
    /// Also run this stage in every trial (the metric's stage always runs); repeatable
    #[arg(long, value_name = "STAGE")]
    pub stage: Vec<String>,
    /// Where to write the results table [default: .recpipe/sweeps/<pipeline>-<unix time>.parquet]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// How many of the best trials to print
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
}

#[derive(Args)]
pub struct OutArgs {
    /// Output directory (replaced if it holds an earlier recpipe artifact)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct SetArgs {
    /// Set a stage config key: KEY=VALUE (VALUE as TOML, else a string); repeatable
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Args)]
pub struct StageArgs {
    /// Upstream artifact directories (written by recpipe; kind read from manifest.json)
    #[arg(long, required = true, num_args = 1.., value_name = "DIR")]
    pub input: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutArgs,
    #[command(flatten)]
    pub sets: SetArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DagFormat {
    Text,
    Mermaid,
    Dot,
}

impl Command {
    /// The `--cache-dir` of commands that use the cache; `RECPIPE_CACHE_DIR` for the others.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        match self {
            Command::Run(RunArgs { cache, .. })
            | Command::Sweep(SweepArgs { cache, .. })
            | Command::Status { cache, .. }
            | Command::Show { cache, .. }
            | Command::Gc { cache, .. } => cache.cache_dir.clone(),
            Command::Recommend(a) => a.export.flags.cache.cache_dir.clone(),
            Command::Similar(a) => a.export.flags.cache.cache_dir.clone(),
            Command::Predict(a) => a.flags.cache.cache_dir.clone(),
            #[allow(unreachable_patterns)]
            _ => std::env::var_os("RECPIPE_CACHE_DIR").map(PathBuf::from),
        }
    }
}
