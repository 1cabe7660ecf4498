#!/usr/bin/env bash
# `just bench`: regenerates the benchmark table from scratch and writes it into BENCHMARKS.md.
# recpipe and the tools people use instead (Polars, DuckDB, PyTorch CPU) run in the same
# invocation on the same files, so the ratios hold even on a shared, noisy machine.
#
#   BENCH_SIZES="1000000 5000000 25000000" just bench   # the scaling rows (default: 1M 5M)
#   BENCH_SKIP_TORCH=1 just bench                        # no PyTorch install (3 GB of wheels)
#   BENCH_PARTS="ingest" just bench                      # only some parts: ingest train pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sizes=${BENCH_SIZES:-"1000000 5000000"}
parts=${BENCH_PARTS:-"ingest train pipeline"}
want() { [[ " $parts " == *" $1 "* ]]; }
# Synthetic sets keep ML-25M's shape at every size: 25M ratings = 162,541 users x 59,047 items.
users_for() { echo $(($1 * 162541 / 25000095)); }
items_for() { echo $(($1 * 59047 / 25000095 > 2000 ? $1 * 59047 / 25000095 : 2000)); }
work=$root/bench/work
rm -rf "$work"
mkdir -p "$work"
results=$work/results.jsonl
: >"$results"
export RECPIPE_NO_PROGRESS=1 RUST_LOG=${RUST_LOG:-warn}

echo "== building recpipe (optimized profile)" >&2
# The optimized profile (thin LTO): the figures below are the fastest binary recpipe builds.
cargo build --profile optimized -q -p recpipe-runner
bin=$root/target/optimized/recpipe

echo "== python venv (bench/.venv)" >&2
venv=$root/bench/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pkgs="duckdb polars pyarrow numpy"
[ -n "${BENCH_SKIP_TORCH:-}" ] || pkgs="$pkgs torch"
"$venv/bin/pip" install -q $pkgs
py=$venv/bin/python

# measure LABEL TOOL -- CMD...: wall seconds and peak RSS of one command, appended as JSON.
measure() {
    local what=$1 tool=$2
    shift 3
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >"$work/last.log" 2>&1 || {
        echo "FAILED: $*" >&2
        cat "$work/last.log" >&2
        exit 1
    }
    read -r secs kb <"$work/time.txt"
    printf '{"what":"%s","tool":"%s","seconds":%s,"rss_mb":%s}\n' "$what" "$tool" "$secs" "$((kb / 1024))" >>"$results"
    echo "   $what / $tool: ${secs}s, $((kb / 1024)) MB" >&2
}

# The three tools take turns, BENCH_ROUNDS times (default 3); the table gives each one's
# median, so a minute in which this shared machine runs slow does not decide a ratio.
ingest_row() { # LABEL DATA_DIR
    local label=$1 dir=$2 round
    for round in $(seq "${BENCH_ROUNDS:-3}"); do
        rm -rf "$work/ingest-$label" "$work/polars-$label" "$work/duckdb-$label"
        measure "ingest $label" recpipe -- "$bin" ingest "$dir" --out "$work/ingest-$label"
        measure "ingest $label" polars -- "$py" bench/alt_ingest.py polars "$dir/ratings.csv" "$work/polars-$label"
        measure "ingest $label" duckdb -- "$py" bench/alt_ingest.py duckdb "$dir/ratings.csv" "$work/duckdb-$label"
    done
}

if want ingest; then
    echo "== ingest" >&2
    ingest_row ml-latest-small data/ml-latest-small
    for n in $sizes; do
        measure "synth $n" recpipe -- "$bin" synth --out "$work/synth-$n" --ratings "$n" \
            --users "$(users_for "$n")" --items "$(items_for "$n")" --seed 1
        ingest_row "$n" "$work/synth-$n"
        rm -rf "$work/synth-$n" "$work"/*-"$n"
    done
fi

cache=$work/cache
run() { "$bin" --cache-dir "$cache" run "$@"; }
if want train; then
echo "== train: the notebooks' reference setting on ml-latest-small" >&2
run pipelines/ml-latest-small.toml --stage split >/dev/null
measure "train ml-latest-small dot_bias k=50 bs=64 5 epochs" recpipe -- "$bin" --cache-dir "$cache" run pipelines/ml-latest-small.toml --stage train
split=$cache/.recpipe/runs/ml-latest-small/split
"$py" bench/history.py "$cache/.recpipe/runs/ml-latest-small/train/history.parquet" recpipe \
    "train ml-latest-small dot_bias k=50 bs=64 5 epochs" >>"$results"
# recpipe's y_range = "auto" on 0.5..5 stars is [0.05, 5.45]; PyTorch gets the same sigmoid.
yr=(--y-range 0.05 5.45)
if [ -z "${BENCH_SKIP_TORCH:-}" ]; then
    "$py" bench/torch_mf.py --train "$split/train.parquet" --valid "$split/valid.parquet" \
        --k 50 --batch 64 --epochs 5 --lr 1e-3 --wd 1e-4 "${yr[@]}" --threads "$(nproc)" >"$work/torch.json"
    "$py" bench/history.py "$work/torch.json" pytorch "train ml-latest-small dot_bias k=50 bs=64 5 epochs" >>"$results"
fi

echo "== train: the notebooks' mlp and the classifier on ml-latest-small" >&2
for spec in "mlp 50 8" "classifier 32 3"; do
    read -r model k epochs <<<"$spec"
    what="train ml-latest-small $model k=$k bs=64 $epochs epochs"
    measure "$what" recpipe -- "$bin" --cache-dir "$cache" run pipelines/ml-latest-small.toml --stage train \
        --set "train.model=\"$model\"" --set "train.k=$k" --set "train.epochs=$epochs"
    "$py" bench/history.py "$cache/.recpipe/runs/ml-latest-small/train/history.parquet" recpipe "$what" >>"$results"
    if [ -z "${BENCH_SKIP_TORCH:-}" ]; then
        "$py" bench/torch_mf.py --model "$model" --train "$split/train.parquet" --valid "$split/valid.parquet" \
            --k "$k" --batch 64 --epochs "$epochs" --lr 1e-3 --wd 1e-4 "${yr[@]}" --threads "$(nproc)" >"$work/torch.json"
        "$py" bench/history.py "$work/torch.json" pytorch "$what" >>"$results"
    fi
done

echo "== quality: the tuned pipeline (mf + I-AutoRec blend) on the same split" >&2
measure "pipeline ml-latest-small-best" recpipe -- "$bin" --cache-dir "$cache" run pipelines/ml-latest-small-best.toml
# The mlp/classifier runs moved runs/ml-latest-small/train; point it back at the reference run
# (a cache hit) before reading its summary.
run pipelines/ml-latest-small.toml --stage train >/dev/null
"$py" - "$cache/.recpipe/runs" >>"$results" <<'PY'
import json, sys
runs = sys.argv[1]
rows = [("ml-latest-small", "train", "dot_bias, the notebooks' setting (best of 5 epochs)"),
        ("ml-latest-small-best", "mf", "dot_bias tuned, no sigmoid, early stopping"),
        ("ml-latest-small-best", "autorec", "I-AutoRec k=200, early stopping"),
        ("ml-latest-small-best", "blend", "blend of the two (50/50)")]
for pipe, stage, label in rows:
    m = json.load(open(f"{runs}/{pipe}/{stage}/manifest.json"))["summary"]
    print(json.dumps({"what": "quality", "tool": "recpipe", "label": label,
                      "valid_rmse": m["valid_rmse"], "train_seconds": m["seconds"]}))
ev = json.load(open(f"{runs}/ml-latest-small-best/evaluate/metrics.json"))
for r in ev["parts"][0]["rating"]:
    if r["name"] == "bias_baseline":
        print(json.dumps({"what": "quality", "tool": "recpipe", "label": "bias baseline (regularised ALS)",
                          "valid_rmse": r["rmse"], "train_seconds": None}))
PY

echo "== train: one epoch, dot_bias k=64, synthetic (recpipe per-rating SGD; PyTorch Adam batch 16384)" >&2
for n in $sizes; do
    # pipelines/synthetic.toml trains with the per-rating SGD path (the big-data setting).
    sets=(--set "ingest.synthetic.n_ratings=$n" --set "ingest.synthetic.n_users=$(users_for "$n")"
        --set "ingest.synthetic.n_items=$(items_for "$n")" --set train.epochs=1 --set train.k=64)
    run pipelines/synthetic.toml "${sets[@]}" --stage split >/dev/null
    measure "train epoch $n" recpipe -- "$bin" --cache-dir "$cache" run pipelines/synthetic.toml "${sets[@]}" --stage train
    "$py" bench/history.py "$cache/.recpipe/runs/synthetic/train/history.parquet" recpipe "train epoch $n" >>"$results"
    if [ -z "${BENCH_SKIP_TORCH:-}" ]; then
        s=$cache/.recpipe/runs/synthetic/split
        "$py" bench/torch_mf.py --train "$s/train.parquet" --valid "$s/valid.parquet" \
            --k 64 --batch 16384 --epochs 1 --threads "$(nproc)" >"$work/torch.json"
        "$py" bench/history.py "$work/torch.json" pytorch "train epoch $n" >>"$results"
    fi
done
fi

if want pipeline; then
    echo "== quickstart pipeline: cold, per stage, warm" >&2
    qs=$work/qs
    measure "pipeline quickstart cold" recpipe -- "$bin" --cache-dir "$qs" run pipelines/quickstart.toml
    measure "pipeline quickstart warm" recpipe -- "$bin" --cache-dir "$qs" run pipelines/quickstart.toml
    for stage in ingest split train evaluate export; do
        measure "stage $stage (quickstart)" recpipe -- "$bin" --cache-dir "$qs" run pipelines/quickstart.toml --stage "$stage" --force
    done
fi

"$py" bench/report.py "$results" "$sizes" >"$work/table.md"
cat "$work/table.md"
if [ -z "${BENCH_PARTS:-}" ]; then
    "$py" bench/report.py --update BENCHMARKS.md "$work/table.md"
    echo "== table written into BENCHMARKS.md" >&2
else
    echo "== partial run (BENCH_PARTS=$parts): BENCHMARKS.md left as it is" >&2
fi
