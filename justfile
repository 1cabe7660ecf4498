# recpipe tasks: thin wrappers over cargo. `just --list` shows them all.

# RECPIPE_PROFILE: release (default), optimized (thin LTO, for long runs and benchmarks) or dev.
profile := env_var_or_default("RECPIPE_PROFILE", "release")
bin := if profile == "dev" { "target/debug/recpipe" } else { "target/" + profile + "/recpipe" }
cargo_profile := "--profile " + profile

# Run the quick-start pipeline on the bundled MovieLens data (ingest → split → train → evaluate → export).
pipeline *ARGS: build
    {{bin}} run pipelines/quickstart.toml {{ARGS}}

# Build the recpipe binary.
build:
    cargo build {{cargo_profile}} -p recpipe-runner

# Ingest the bundled ml-latest-small into out/ingest (one-off, no pipeline cache).
ingest *ARGS: build
    {{bin}} ingest data/ml-latest-small --out out/ingest {{ARGS}}

# Run one stage of a pipeline (and what it needs): just stage train
stage STAGE PIPELINE="pipelines/quickstart.toml": build
    {{bin}} run {{PIPELINE}} --stage {{STAGE}}

# The whole test suite (what CI runs).
test:
    cargo test --workspace

# Regenerate the shipped GPU kernels, crates/cuda/ptx/*.ptx, from crates/cuda/kernels/*.cu with NVRTC 12.0 from PyPI (scripts/nvrtc_env.sh 12.0): PTX ISA 8.0 for compute_75, which every driver for CUDA 12.0 or newer loads. Run after editing a kernel; CI checks the files are current.
kernels:
    dir="$(bash scripts/nvrtc_env.sh 12.0)" && RECPIPE_NVRTC_DIR="$dir" cargo run -q -p recpipe-cuda --example kernels

# Formatting and clippy, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    # The whole workspace again, so features unify as above and only the runner is re-checked.
    cargo clippy --workspace --all-targets --features recpipe-runner/test-stages -- -D warnings

# Benchmarks against Polars, DuckDB and PyTorch CPU; writes the table into BENCHMARKS.md.
bench:
    bash scripts/bench.sh

# Criterion micro-benchmarks of the stage crates.
bench-criterion:
    cargo bench -p recpipe-ingest -p recpipe-evaluate -p recpipe-export -p recpipe-train

# Rewrite the README's and docs' `<!-- output: COMMAND -->` blocks from a real run (tests/tests/readme.rs).
readme:
    RECPIPE_PYTHON="$(bash scripts/python_env.sh)" cargo test -p recpipe-tests --test readme -- --ignored regenerate_output_blocks --nocapture

# Open the quick-start artifacts with DuckDB and Polars (installed into bench/.venv from PyPI).
check-interop: pipeline
    bash scripts/check_interop.sh .recpipe/runs/quickstart/*/

# 5-fold cross-validation on MovieLens 100K's official folds u1..u5 (mean ± sd of the test RMSE); needs data/ml-100k from https://grouplens.org/datasets/movielens/.
cv-ml100k *ARGS: build
    {{bin}} sweep pipelines/ml-100k.toml --grid split.fold=1,2,3,4,5 --metric evaluate.parts.test.blend.rmse {{ARGS}}

# Only the ingest rows of `just bench` (25M synthetic ratings vs Polars and DuckDB by default; each tool run BENCH_ROUNDS=3 times, interleaved, median reported).
bench-ingest SIZES="25000000":
    BENCH_PARTS=ingest BENCH_SIZES="{{SIZES}}" bash scripts/bench.sh

# Only the training rows of `just bench` (vs PyTorch CPU; 25M synthetic ratings by default).
bench-train SIZES="25000000":
    BENCH_PARTS=train BENCH_SIZES="{{SIZES}}" bash scripts/bench.sh

# gpu-bundle/ for a GPU machine without Rust (≤ 64 MiB, glibc ≥ 2.28): release recpipe, the test executables of recpipe-cuda/-train/-tests, data, pipelines, gpu-check.sh; built with cargo-zigbuild (PyPI, bench/.venv-zig) into target/zig.
gpu-bundle:
    bash scripts/gpu_bundle.sh

# On the GPU machine (no `just` there: `bash gpu-bundle/gpu-check.sh`): nvidia-smi, recpipe devices, the bundled tests with RECPIPE_REQUIRE_GPU=1, cuda-vs-cpu and PyTorch benchmarks, under 5 min; writes gpu-bundle/results/gpu-check.md.
gpu-check:
    bash gpu-bundle/gpu-check.sh

# 250M MovieLens-shaped ratings (1.6M users, 600k items) end to end under an 8 GiB memory limit: synth → ingest → split → one epoch of dot_bias k=64 per-rating SGD, time, peak RSS and ns/rating per stage (scripts/bench_scale.sh; ~6 GB of CSV under target/bench-scale, deleted after).
bench-scale SIZES="250000000":
    bash scripts/bench_scale.sh "{{SIZES}}"
