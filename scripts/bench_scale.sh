#!/usr/bin/env bash
# `just bench-scale`: MovieLens-shaped synthetic ratings end to end on this machine (issue
# #18): synth → ingest → split (random 90/10) → one epoch of dot_bias k=64 per-rating SGD,
# each stage a one-off `recpipe` command under RECPIPE_MEMORY_LIMIT (8G by default), so a
# stage that cannot hold its data in memory streams it. Prints wall time, peak RSS
# (/usr/bin/time, as scripts/bench.sh takes it) and ns per rating of every stage.
#
#   just bench-scale                               # 250M ratings, 1.6M users, 600k items
#   just bench-scale "25000000 250000000"          # the 25M row next to it (same shape)
#   SCALE_WORK=/tmp/scale SCALE_MEMORY_LIMIT=8G SCALE_BIN=target/release/recpipe just bench-scale
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-250000000}
work=${SCALE_WORK:-$PWD/target/bench-scale}
export RECPIPE_MEMORY_LIMIT=${SCALE_MEMORY_LIMIT:-8G} RUST_LOG=${RUST_LOG:-warn}
profile=${RECPIPE_PROFILE:-optimized}
# SCALE_BIN: a recpipe binary already built (no cargo build).
if [ -n "${SCALE_BIN:-}" ]; then
    bin=$SCALE_BIN
else
    cargo build --profile "$profile" -q -p recpipe-runner
    bin=$PWD/target/$profile/recpipe
fi
# 250M ratings = 1.6M users x 600k items (ML-25M's 162k x 59k shape, ten times over).
users_for() { echo $(($1 * 16 / 2500)); }
items_for() { echo $(($1 * 6 / 2500)); }

rows=()
# measure N STAGE CMD...: one stage's wall seconds and peak RSS; bars stay on stderr.
measure() {
    local n=$1 stage=$2
    shift 2
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >"$work/$stage.log"
    read -r secs kb <"$work/time.txt"
    local ns
    ns=$(awk -v s="$secs" -v n="$n" 'BEGIN { printf "%.1f", s * 1e9 / n }')
    rows+=("| $(printf "%'d" "$n") | $stage | ${secs} s | $((kb / 1024)) MB | $ns |")
    echo "   $n $stage: ${secs}s, $((kb / 1024)) MB, $ns ns/rating" >&2
}

for n in $sizes; do
    rm -rf "$work"
    mkdir -p "$work"
    echo "== $n ratings, $(users_for "$n") users, $(items_for "$n") items, memory limit $RECPIPE_MEMORY_LIMIT" >&2
    measure "$n" synth "$bin" synth --out "$work/synth" --ratings "$n" \
        --users "$(users_for "$n")" --items "$(items_for "$n")" --seed 1
    measure "$n" ingest "$bin" ingest "$work/synth" --out "$work/ingest"
    rm -rf "$work/synth"
    measure "$n" split "$bin" split --input "$work/ingest" --out "$work/split" \
        --set strategy='"random"' --set valid_fraction=0.1 --set seed=42
    measure "$n" "train 1 epoch" "$bin" train --input "$work/split" --out "$work/train" \
        --set model='"dot_bias"' --set k=64 --set optimizer='"sgd"' --set batch_size=1 \
        --set momentum=0.0 --set weight_decay=0.0 --set l2=0.05 --set lr=0.01 --set epochs=1 \
        --set device='"cpu"'
    rps=$(grep -o '"ratings_per_s": *[0-9.e+]*' "$work/train/manifest.json" | grep -o '[0-9.e+]*$' || true)
    [ -n "$rps" ] && echo "   $n train epoch alone: $(awk -v r="$rps" 'BEGIN { printf "%.1f", 1e9 / r }') ns/rating" >&2
    rm -rf "$work"
done
echo "| ratings | stage | wall | peak RSS | ns/rating |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
