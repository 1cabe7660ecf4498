#!/usr/bin/env bash
# gpu-check.sh: proves recpipe's CUDA backend on a GPU machine that has no Rust toolchain, from
# the folder `just gpu-bundle` makes (this script is copied there as gpu-bundle/gpu-check.sh):
#
#   bash gpu-bundle/gpu-check.sh          # ~5 minutes on an H200; results/gpu-check.md
#
# Steps, each under its own timeout (the whole run stays within GPU_CHECK_BUDGET_S); a step
# that fails is recorded and the next one runs; the exit status is 1 if any step failed.
#   1. the machine: nvidia-smi, CPU, memory
#   2. `recpipe devices`, and `recpipe devices --check-kernels` when NVRTC is found
#      (RECPIPE_NVRTC_DIR, else the lib folder beside nvcc, else python3's nvidia/cu13/lib)
#   3. every bundled test executable (recpipe-cuda, recpipe-train, recpipe-tests; plain
#      arguments plus --show-output), with
#      RECPIPE_REQUIRE_GPU=1 when a GPU is present, so GPU tests fail instead of skipping
#   4. benchmarks: (a) the notebooks' reference training on ml-latest-small (dot_bias k=50,
#      Adam, batch 64, 5 epochs) on cuda and cpu; (b) per-rating SGD (dot_bias k=64,
#      batch_size 1) on 25M synthetic ratings of ML-25M's shape on cuda and cpu; (c) PyTorch
#      on the GPU, plain SGD on the same rows at several batch sizes (gpu_torch_bench.py)
# Without a GPU, the GPU steps say "skipped: no GPU (...)" and the rest still runs.
#
# Knobs (environment): GPU_CHECK_BUDGET_S (290), GPU_CHECK_TESTS_S (the tests' share, 120),
# GPU_CHECK_RATINGS (25000000), GPU_CHECK_EPOCHS (cuda epochs at that size, 3),
# GPU_CHECK_TORCH_BATCHES ("1024 8192 65536 262144"), GPU_CHECK_SKIP (any of: devices tests
# reference synthetic torch), GPU_CHECK_TESTS_FILTER (a grep -E pattern over the bundled test
# names), GPU_CHECK_FORCE_CPU_BENCH=1 (run the benchmarks' cpu rows without a GPU, to try the
# script), GPU_CHECK_WORK (scratch folder; default a new one under TMPDIR),
# GPU_CHECK_COPY_TO (a folder to copy gpu-check.md and logs.tar.gz into at the end).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bundle=$here
# Run from the repository (scripts/gpu_check.sh), use the bundle beside it.
[ -f "$bundle/BUILD_INFO" ] || bundle=$(cd "$here/.." && pwd)/gpu-bundle
if [ ! -f "$bundle/BUILD_INFO" ]; then
    echo "gpu-check: no bundle at $bundle (make it with \`just gpu-bundle\`)" >&2
    exit 2
fi
start=$(date +%s)
budget=${GPU_CHECK_BUDGET_S:-290}
tests_budget=${GPU_CHECK_TESTS_S:-120}
ratings=${GPU_CHECK_RATINGS:-25000000}
cuda_epochs=${GPU_CHECK_EPOCHS:-3}
torch_batches=${GPU_CHECK_TORCH_BATCHES:-"1024 8192 65536 262144"}
skip=" ${GPU_CHECK_SKIP:-} "
results=$bundle/results
logs=$results/logs
md=$results/gpu-check.md
rm -rf "$results"
mkdir -p "$logs"
work=${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")}
mkdir -p "$work"
# The executables, data and pipelines travel packed (payload.tar.xz); unpacked here, in the
# scratch folder, so the bundle itself stays small enough to carry again.
unpacked=$bundle
if [ ! -x "$bundle/bin/recpipe" ]; then
    unpacked=$work/bundle
    mkdir -p "$unpacked"
    if command -v xz >/dev/null 2>&1; then
        tar -C "$unpacked" -xJf "$bundle/payload.tar.xz"
    else
        python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
            "$bundle/payload.tar.xz" "$unpacked"
    fi || { echo "gpu-check: cannot unpack $bundle/payload.tar.xz into $unpacked" >&2; exit 2; }
fi
bin=$unpacked/bin/recpipe
repo=$unpacked/repo
export RECPIPE_NO_PROGRESS=1 RUST_LOG=${RUST_LOG:-warn}
export PATH="$PATH:/usr/local/nvidia/bin:/usr/local/cuda/bin"
py=$(command -v python3 || true)

failed=0
steps=()     # markdown rows of the steps table
details=()   # markdown sections appended after the tables
say() { echo "gpu-check: $*" >&2; }
elapsed() { echo $(($(date +%s) - start)); }
left() { echo $((budget - $(elapsed))); }
row() { steps+=("| $1 | $2 | $3 |"); }

# step NAME SECONDS CMD...: runs CMD in repo/ (pipelines' relative paths start there) with a
# timeout (cut to what the budget has left), output to logs/NAME.log; records ok / FAIL /
# TIMEOUT; returns CMD's status.
step() {
    local name=$1 want=$2
    shift 2
    local t rc s0
    t=$(left)
    [ "$want" -lt "$t" ] && t=$want
    if [ "$t" -lt 5 ]; then
        row "$name" "FAIL" "not run: the ${budget}s budget is spent"
        failed=1
        return 124
    fi
    say "$name (timeout ${t}s)"
    s0=$(date +%s)
    (cd "$repo" && exec timeout -k 5 "$t" "$@") >"$logs/$name.log" 2>&1
    rc=$?
    local secs=$(($(date +%s) - s0))
    if [ "$rc" = 0 ]; then
        row "$name" "ok" "${secs}s"
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        row "$name" "**TIMEOUT**" "killed after ${t}s; log: logs/$name.log"
        failed=1
        fail_tail "$name"
    else
        row "$name" "**FAIL** (exit $rc)" "${secs}s; log: logs/$name.log"
        failed=1
        fail_tail "$name"
    fi
    return "$rc"
}
fail_tail() {
    details+=("### $1: last lines of its log" "" '```' "$(tail -n 25 "$logs/$1.log")" '```' "")
}
skipped() { row "$1" "skipped" "$2"; }
wants() { [[ "$skip" != *" $1 "* ]]; }

# --- 1. the machine --------------------------------------------------------------------------------
gpu=""
if command -v nvidia-smi >/dev/null 2>&1; then
    gpu=$(timeout 20 nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>/dev/null)
fi
if [ -n "$gpu" ]; then
    no_gpu=""
    step nvidia-smi 30 nvidia-smi
else
    if command -v nvidia-smi >/dev/null 2>&1; then
        no_gpu="no GPU (nvidia-smi lists none)"
    else
        no_gpu="no GPU (nvidia-smi not found)"
    fi
    skipped nvidia-smi "$no_gpu"
    say "$no_gpu: the GPU steps are skipped"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)

# --- 2. NVRTC, recpipe devices -------------------------------------------------------------------
nvrtc_from=""
has_nvrtc() { compgen -G "$1/libnvrtc.so*" >/dev/null; }
if [ -n "${RECPIPE_NVRTC_DIR:-}" ] && has_nvrtc "$RECPIPE_NVRTC_DIR"; then
    nvrtc_from="RECPIPE_NVRTC_DIR"
else
    cands=()
    if command -v nvcc >/dev/null 2>&1; then
        cuda=$(cd "$(dirname "$(readlink -f "$(command -v nvcc)")")/.." && pwd)
        cands+=("$cuda/lib64" "$cuda/targets/x86_64-linux/lib" "$cuda/lib")
    fi
    if [ -n "$py" ]; then
        site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
        [ -n "$site" ] && cands+=("$site/nvidia/cu13/lib" "$site/nvidia/cuda_nvrtc/lib")
    fi
    cands+=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib)
    for d in "${cands[@]}"; do
        if has_nvrtc "$d"; then
            export RECPIPE_NVRTC_DIR=$d
            nvrtc_from=$d
            break
        fi
    done
fi
if wants devices; then
    step devices 30 "$bin" devices
    if [ -n "$nvrtc_from" ]; then
        step devices-check-kernels 60 "$bin" devices --check-kernels
    else
        skipped devices-check-kernels "no NVRTC found (RECPIPE_NVRTC_DIR, nvcc's lib64, python3's nvidia/cu13/lib)"
    fi
fi

# --- 3. the test executables ---------------------------------------------------------------------
# They read data through the repository root compiled into them: RECPIPE_WORKSPACE_ROOT
# names the bundle's copy (repo/); where the compiled-in root does not exist here, a link
# made there for the run's length stands in for the tests that do not read the variable.
build_root=$(sed -n 's/^build_root=//p' "$bundle/BUILD_INFO" 2>/dev/null)
made_link=""
if [ -n "$build_root" ] && [ ! -e "$build_root" ] && mkdir -p "$(dirname "$build_root")" 2>/dev/null &&
    ln -s "$repo" "$build_root" 2>/dev/null; then
    made_link=$build_root
fi
cleanup() { [ -n "$made_link" ] && [ -L "$made_link" ] && rm -f "$made_link"; }
trap cleanup EXIT
test_rows=()
if wants tests; then
    tests_end=$(($(elapsed) + tests_budget))
    test_env=(env RECPIPE_BIN="$unpacked/bin/recpipe-e2e" RECPIPE_WORKSPACE_ROOT="$repo")
    if [ -z "$no_gpu" ]; then
        test_env+=(RECPIPE_REQUIRE_GPU=1)
        [ -n "$nvrtc_from" ] && test_env+=(RECPIPE_REQUIRE_NVRTC=1)
    fi
    # recpipe-cuda first, then recpipe-train, then the end-to-end tests.
    while IFS=$'\t' read -r pkg kind name _; do
        exe="$pkg.$kind.$name"
        [ -n "${GPU_CHECK_TESTS_FILTER:-}" ] && ! grep -qE "$GPU_CHECK_TESTS_FILTER" <<<"$exe" && continue
        t=$((tests_end - $(elapsed)))
        if [ "$t" -lt 5 ]; then
            row "test $exe" "FAIL" "not run: the tests' ${tests_budget}s share is spent"
            failed=1
            continue
        fi
        # --show-output: what passing tests print (a skip's reason, a GPU test's figures) stays in the log.
        step "test-$exe" "$t" "${test_env[@]}" "$unpacked/tests/$exe" --show-output
        rc=$?
        log=$logs/test-$exe.log
        counts=$(grep -E '^test result:' "$log" | awk '{p += $4; f += $6; i += $8} END {printf "%d passed, %d failed, %d ignored", p, f, i}')
        skips=$(grep -c 'skipped: no GPU' "$log")
        test_rows+=("| $exe | $([ "$rc" = 0 ] && echo ok || echo "**FAIL**") | $counts | $skips |")
    done < <(sort -t$'\t' -k1,1 -s "$unpacked/tests/list.tsv" | awk -F'\t' '
        $1 == "recpipe-cuda" {print "0\t" $0; next} $1 == "recpipe-train" {print "1\t" $0; next} {print "2\t" $0}' |
        sort -t$'\t' -k1,1 -s | cut -f2-)
fi

# --- 4. benchmarks -------------------------------------------------------------------------------
cache=$work/cache
# summary PIPELINE STAGE: the stage's summary from its manifest, as one JSON line.
summary() {
    "$py" - "$cache/.recpipe/runs/$1/$2/manifest.json" <<'PY'
import json, sys
print(json.dumps(json.load(open(sys.argv[1]))["summary"]))
PY
}
# bench_row LABEL DEVICE_WANTED JSON_FILE: one markdown row of a training run; exit 3 when
# the run reports another device than the one asked for.
bench_rows=()
bench_row() {
    local label=$1 want=$2 file=$3
    "$py" - "$label" "$want" "$file" <<'PY'
import json, sys
label, want, path = sys.argv[1:]
s = json.load(open(path))
secs, n = s.get("seconds") or 0.0, s.get("epochs_run") or 0
rmse = s.get("valid_rmse")
dev = s.get("device", "?")
warn = "" if dev.startswith(want) else f" (**asked for {want}**)"
print(f"| {label} | {dev}{warn} | {s.get('threads', '?')} | {n} | {secs / max(n, 1):.3f} | "
      f"{n / secs if secs else 0:.2f} | {s.get('ratings_per_s', 0):,.0f} | "
      f"{'%.4f' % rmse if rmse is not None else '-'} |")
if not dev.startswith(want):
    sys.exit(3)
PY
}
# train_on NAME PIPELINE DEVICE LABEL SECONDS SETS...: trains (forced), one table row.
train_on() {
    local name=$1 pipe=$2 dev=$3 label=$4 t=$5
    shift 5
    local stem
    stem=$(basename "$pipe" .toml)
    if step "$name" "$t" "$bin" run --cache-dir "$cache" "$pipe" --stage train --force \
        --set "train.device=$dev" "$@"; then
        local line=""
        summary "$stem" train >"$work/$name.json" 2>>"$logs/$name.log" &&
            line=$(bench_row "$label" "$dev" "$work/$name.json" 2>>"$logs/$name.log")
        local rc=$?
        [ -n "$line" ] && bench_rows+=("$line")
        if [ "$rc" != 0 ]; then
            row "$name summary" "**FAIL**" "no summary in the manifest, or trained on another device than $dev"
            failed=1
        fi
    else
        bench_rows+=("| $label | $dev | | | | | **failed**, see logs/$name.log | |")
    fi
}
bench_cpu=""
[ -z "$no_gpu" ] || [ "${GPU_CHECK_FORCE_CPU_BENCH:-}" = 1 ] && bench_cpu=1
if [ -z "$py" ]; then
    skipped benchmarks "no python3 to read the runs' summaries"
else
    if wants reference; then
        ref=pipelines/ml-latest-small.toml
        ref_label="ml-latest-small, dot_bias k=50, Adam, batch 64, 5 epochs"
        if [ -n "$bench_cpu" ] && step reference-split 60 "$bin" run --cache-dir "$cache" "$ref" --stage split; then
            if [ -z "$no_gpu" ]; then
                train_on reference-cuda "$ref" cuda "$ref_label" 60
            else
                skipped reference-cuda "$no_gpu"
            fi
            train_on reference-cpu "$ref" cpu "$ref_label" 60
        elif [ -z "$bench_cpu" ]; then
            skipped reference "$no_gpu"
        fi
    fi
    syn_split=""
    if wants synthetic; then
        users=$((ratings * 162541 / 25000095))
        items=$((ratings * 59047 / 25000095))
        [ "$items" -lt 2000 ] && items=2000
        syn_sets=(--set "ingest.synthetic.n_ratings=$ratings" --set "ingest.synthetic.n_users=$users"
            --set "ingest.synthetic.n_items=$items" --set train.k=64 --set train.batch_size=1
            --set train.optimizer=sgd --set train.momentum=0.0)
        syn_label="synthetic $ratings ratings ($users x $items), dot_bias k=64, per-rating SGD"
        if [ -n "$bench_cpu" ] && step synthetic-split 120 "$bin" run --cache-dir "$cache" \
            pipelines/synthetic.toml "${syn_sets[@]}" --stage split; then
            syn_split=$cache/.recpipe/runs/synthetic/split
            if [ -z "$no_gpu" ]; then
                train_on synthetic-cuda pipelines/synthetic.toml cuda "$syn_label" 90 "${syn_sets[@]}" \
                    --set "train.epochs=$cuda_epochs"
            else
                skipped synthetic-cuda "$no_gpu"
            fi
            train_on synthetic-cpu pipelines/synthetic.toml cpu "$syn_label" 60 "${syn_sets[@]}" --set train.epochs=1
        elif [ -z "$bench_cpu" ]; then
            skipped synthetic "$no_gpu"
        fi
    fi
    torch_rows=()
    if wants torch; then
        why=$("$py" -c 'import torch, sys; ok = torch.cuda.is_available(); print(torch.__version__ if ok else "torch.cuda.is_available() is False"); sys.exit(0 if ok else 1)' 2>&1)
        torch_ok=$?
        why=$(tail -n1 <<<"$why")
        if [ "$torch_ok" != 0 ] || [ -n "$no_gpu" ]; then
            skipped torch "${no_gpu:-no GPU for PyTorch ($why)}"
        else
            data=(--synthetic "$ratings" "$((ratings * 162541 / 25000095))" "$((ratings * 59047 / 25000095))")
            [ -n "$syn_split" ] && [ -f "$syn_split/train.parquet" ] &&
                data=(--train "$syn_split/train.parquet" --valid "$syn_split/valid.parquet" "${data[@]}")
            step torch 100 "$py" "$bundle/gpu_torch_bench.py" "${data[@]}" --k 64 --lr 0.01 --l2 0.05 \
                --batches $torch_batches --max-seconds 10 --json "$work/torch.json"
            [ -f "$work/torch.json" ] && torch_rows=("$("$py" - "$work/torch.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"Data: {r['data']}; PyTorch {r['torch']} on {r['device']}; {r['n_train']:,} training rows, "
      f"{r['epochs']} epoch(s) per batch size after a warm-up.")
print()
print("| batch size | s/epoch | ratings/s | epoch trained | valid RMSE |")
print("| ---: | ---: | ---: | ---: | ---: |")
for b in r["runs"]:
    if "error" in b:
        print(f"| {b['batch']} | | {b['error']} | | |")
    else:
        print(f"| {b['batch']} | {b['seconds']:.3f} | {b['ratings_per_s']:,.0f} | "
              f"{100 * b['epoch_fraction']:.0f} % | {b['valid_rmse']:.4f} |")
best = r.get("best")
if best:
    print()
    print(f"Best: batch {best['batch']}, {best['ratings_per_s']:,.0f} ratings/s.")
PY
)")
        fi
    fi
fi

# --- the report ----------------------------------------------------------------------------------
status=$([ "$failed" = 0 ] && echo "all steps passed" || echo "**some steps FAILED**")
[ -n "$no_gpu" ] && status="$status; $no_gpu: nothing GPU-specific was checked"
{
    echo "# GPU check"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(elapsed) s in all"
    echo "- machine: $(hostname 2>/dev/null), $(nproc) cores ($cpu), $mem memory, kernel $(uname -r)"
    if [ -n "$gpu" ]; then
        while IFS= read -r g; do echo "- GPU: $g"; done <<<"$gpu"
    else
        echo "- GPU: $no_gpu"
    fi
    if [ -n "$nvrtc_from" ]; then
        echo "- NVRTC: $RECPIPE_NVRTC_DIR$([ "$nvrtc_from" = RECPIPE_NVRTC_DIR ] && echo " (RECPIPE_NVRTC_DIR as given)")"
    else
        echo "- NVRTC: not found"
    fi
    echo "- bundle: $(tr '\n' ' ' <"$bundle/BUILD_INFO" 2>/dev/null | sed 's/build_root=[^ ]* //')"
    [ -n "$made_link" ] && echo "- test data: linked $made_link -> bundle's repo/ for the run"
    echo "- result: $status"
    echo
    echo "## Steps"
    echo
    echo "| step | result | notes |"
    echo "| --- | --- | --- |"
    printf '%s\n' "${steps[@]}"
    if [ "${#test_rows[@]}" -gt 0 ]; then
        echo
        echo "## Tests"
        echo
        echo "Environment: RECPIPE_BIN=bin/recpipe-e2e, RECPIPE_WORKSPACE_ROOT=repo$([ -z "$no_gpu" ] && echo ", RECPIPE_REQUIRE_GPU=1")$([ -z "$no_gpu" ] && [ -n "$nvrtc_from" ] && echo ", RECPIPE_REQUIRE_NVRTC=1")."
        echo
        echo "| test executable | result | tests | 'skipped: no GPU' lines |"
        echo "| --- | --- | --- | ---: |"
        printf '%s\n' "${test_rows[@]}"
    fi
    if [ "${#bench_rows[@]}" -gt 0 ]; then
        echo
        echo "## Training: recpipe cuda vs cpu"
        echo
        echo "| run | device | threads | epochs | s/epoch | epochs/s | ratings/s | best valid RMSE |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        printf '%s\n' "${bench_rows[@]}"
    fi
    if [ "${#torch_rows[@]}" -gt 0 ]; then
        echo
        echo "## PyTorch on the GPU: dot_bias k=64, plain SGD"
        echo
        printf '%s\n' "${torch_rows[@]}"
    fi
    if [ "${#details[@]}" -gt 0 ]; then
        echo
        echo "## Failures"
        echo
        printf '%s\n' "${details[@]}"
    fi
} >"$md"
cat "$md"
if [ -n "${GPU_CHECK_COPY_TO:-}" ]; then
    mkdir -p "$GPU_CHECK_COPY_TO"
    cp "$md" "$GPU_CHECK_COPY_TO/"
    tar -czf "$GPU_CHECK_COPY_TO/gpu-check-logs.tar.gz" -C "$results" logs
fi
[ -z "${GPU_CHECK_WORK:-}" ] && rm -rf "$work"
say "$status ($(elapsed)s); report: $md"
exit "$failed"
