#!/usr/bin/env bash
# `just gpu-bundle`: everything a GPU machine without Rust needs to prove the CUDA backend, in
# one folder gpu-bundle/ (gitignored): the release `recpipe` binary, `recpipe-e2e` (recpipe
# plus the end-to-end tests' `_test` stage kind), every test executable of recpipe-cuda,
# recpipe-train and recpipe-tests (picked from cargo's JSON messages, so new GPU tests come
# along by themselves), the bundled data and pipelines in a copy of the repository's layout,
# and the entry script gpu-check.sh (scripts/gpu_check.sh) with its PyTorch comparison. The
# executables, data and pipelines are packed into gpu-bundle/payload.tar.xz (80 MiB of
# executables pack to about 15), which gpu-check.sh unpacks into its scratch folder.
#
# Everything is linked against glibc 2.28 with cargo-zigbuild (from PyPI, into
# bench/.venv-zig), so it runs on a GPU image whose system libraries are older than this
# machine's; the build fails if any bundled ELF needs a newer GLIBC_ symbol, or if the packed
# bundle is over 64 MiB. Builds go to target/zig, apart from the everyday target/.
#
#   bash scripts/gpu_bundle.sh               # → gpu-bundle/
#   GPU_BUNDLE_GLIBC=2.31 bash scripts/gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
glibc=${GPU_BUNDLE_GLIBC:-2.28}
limit_mib=${GPU_BUNDLE_LIMIT_MIB:-64}
triple=x86_64-unknown-linux-gnu
target=$triple.$glibc
out=$root/gpu-bundle
venv=${GPU_BUNDLE_VENV:-$root/bench/.venv-zig}
test_packages=(recpipe-cuda recpipe-train recpipe-tests)
say() { echo "gpu-bundle: $*" >&2; }

# --- toolchain: cargo-zigbuild + zig from PyPI -------------------------------------------------
if [ ! -x "$venv/bin/cargo-zigbuild" ] || [ ! -x "$venv/bin/python-zig" ]; then
    say "installing cargo-zigbuild and ziglang into $venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "cargo-zigbuild==0.24.*" "ziglang==0.17.*"
fi
rustup target list --installed 2>/dev/null | grep -qx "$triple" || rustup target add "$triple"
export PATH="$venv/bin:$PATH"
export CARGO_TARGET_DIR="$root/target/zig"
# No debug info: it is most of a test binary's size, and the bundle must travel in 64 MiB.
# Symbol names stay, so a panic's backtrace still names functions.
export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo
# recpipe-cuda-harness (the kernels as host C++ under AddressSanitizer, a CPU-only test crate)
# is never built here; should a bundled package come to depend on it, it builds without ASan,
# which zig's toolchain does not link.
export RECPIPE_HARNESS_ASAN=0
say "zig $(python-zig version), $(cargo-zigbuild --version), $(rustc --version)"

# --- build ---------------------------------------------------------------------------------------
json=$CARGO_TARGET_DIR/gpu-bundle-tests.jsonl
say "building recpipe (release, $target)"
cargo zigbuild --release --target "$target" -p recpipe-runner --bin recpipe
say "building recpipe-e2e (release, --features test-stages)"
cargo zigbuild --release --target "$target" -p recpipe-runner --features test-stages --bin recpipe-e2e
say "building the test executables of ${test_packages[*]}"
# Only the packages this workspace has (recpipe-cuda is new; a checkout without it still builds).
members=$(cargo metadata --no-deps --format-version 1 | python3 -c \
    'import json, sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
pkg_args=()
for p in "${test_packages[@]}"; do
    if grep -qx "$p" <<<"$members"; then pkg_args+=(-p "$p"); else say "warning: no package $p in this workspace"; fi
done
cargo-zigbuild test --release --target "$target" --no-run --message-format=json-render-diagnostics \
    "${pkg_args[@]}" >"$json"
bindir=$CARGO_TARGET_DIR/$triple/release

# --- lay out the bundle --------------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out/bin" "$out/tests" "$out/repo"
cp "$bindir/recpipe" "$bindir/recpipe-e2e" "$out/bin/"
# One line per test executable: package, target kind, target name, path. Only the packages
# asked for (cargo also reports dependencies' artifacts, never as tests).
python3 - "$json" "${test_packages[@]}" >"$out/tests/list.tsv" <<'PY'
import json, sys
wanted = set(sys.argv[2:])
seen = set()
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("profile", {}).get("test"):
        continue
    exe = m.get("executable")
    # package_id: "path+file:///…/crates/train#recpipe-train@0.1.0" (or "name version (…)")
    pid = m["package_id"]
    name = pid.split("#", 1)[1].split("@", 1)[0] if "#" in pid else pid.split(" ", 1)[0]
    if not exe or name not in wanted or exe in seen:
        continue
    seen.add(exe)
    t = m["target"]
    print(f"{name}\t{t['kind'][0]}\t{t['name']}\t{exe}")
PY
[ -s "$out/tests/list.tsv" ] || { say "no test executables in cargo's output ($json)"; exit 1; }
while IFS=$'\t' read -r pkg kind name exe; do
    cp "$exe" "$out/tests/$pkg.$kind.$name"
done <"$out/tests/list.tsv"
list=$CARGO_TARGET_DIR/gpu-bundle-tests.tsv
cp "$out/tests/list.tsv" "$list"
# Test executables find data through paths compiled in (CARGO_MANIFEST_DIR): this machine's
# repository root. repo/ mirrors the layout they read: data/ml-latest-small, pipelines/,
# README.md, docs/, and every file under crates/ and tests/ but Rust sources (kernel sources,
# shipped PTX, test data; each crate's folder too, since `crates/core/../../data` needs
# crates/core to exist). gpu-check.sh points the tests at it (RECPIPE_WORKSPACE_ROOT, and a
# link at the compiled-in root when that path does not exist there).
mkdir -p "$out/repo/data" "$out/repo/tests"
cp -r data/ml-latest-small "$out/repo/data/"
cp -r pipelines "$out/repo/"
cp README.md "$out/repo/"
[ -d docs ] && cp -r docs "$out/repo/"
for c in crates/*/; do mkdir -p "$out/repo/$c"; done
git ls-files -z --cached --others --exclude-standard crates tests | grep -zv '\.rs$' |
    while IFS= read -r -d '' f; do
        [ -f "$f" ] || continue
        mkdir -p "$out/repo/$(dirname "$f")"
        cp "$f" "$out/repo/$f"
    done
cp scripts/gpu_check.sh "$out/gpu-check.sh"
cp scripts/gpu_torch_bench.py "$out/gpu_torch_bench.py"
chmod +x "$out/gpu-check.sh" "$out"/bin/* "$out"/tests/*.*.*

# --- checks: glibc baseline, size ----------------------------------------------------------------
max_seen=0
bad=0
for f in "$out"/bin/* "$out"/tests/*; do
    head -c 4 "$f" | grep -q $'\x7fELF' || continue
    # Versions of the GLIBC_ symbols this ELF imports (undefined, "*UND*" in objdump -T).
    need=$(objdump -T "$f" | awk '/\*UND\*/' | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV || true)
    top=$(printf '%s\n' "$need" | sed 's/GLIBC_//' | sort -V | tail -n1)
    [ -n "$top" ] && max_seen=$(printf '%s\n%s\n' "$max_seen" "$top" | sort -V | tail -n1)
    newer=$(printf '%s\n' "$need" | sed 's/GLIBC_//' | awk -v g="$glibc" 'NF' |
        while read -r v; do
            [ "$(printf '%s\n%s\n' "$v" "$glibc" | sort -V | tail -n1)" = "$glibc" ] || echo "$v"
        done)
    if [ -n "$newer" ]; then
        bad=1
        say "FAIL: ${f#"$root"/} needs GLIBC newer than $glibc:"
        for v in $newer; do
            objdump -T "$f" | awk '/\*UND\*/' | grep -F "GLIBC_$v)" | awk '{print "    " $NF " (GLIBC_'"$v"')"}' >&2
        done
    fi
done
# Shared libraries: only glibc's own (zig links C++ and compiler runtimes statically), so
# nothing else has to be on the GPU image, in whatever version.
needed_all=""
for f in "$out"/bin/* "$out"/tests/*; do
    head -c 4 "$f" | grep -q $'\x7fELF' || continue
    needed=$(objdump -p "$f" | awk '$1 == "NEEDED" {print $2}')
    needed_all=$(printf '%s\n%s\n' "$needed_all" "$needed" | awk 'NF' | sort -u)
    other=$(grep -vE '^(libc|libm|libpthread|libdl|librt|libutil|libgcc_s)\.so\.[0-9]+$|^ld-linux-x86-64\.so\.2$' <<<"$needed" || true)
    if [ -n "$other" ]; then
        bad=1
        say "FAIL: ${f#"$root"/} needs shared libraries beyond glibc's: $(tr "\n" " " <<<"$other")"
    fi
done
[ "$bad" = 0 ] || exit 1
say "glibc: every bundled ELF needs GLIBC <= $glibc (highest seen: GLIBC_$max_seen); libraries: $(tr "\n" " " <<<"$needed_all")"

# What travels is packed: xz makes the ~80 MiB of executables about a fifth of that.
# gpu-check.sh unpacks payload.tar.xz into its scratch folder at each run.
unpacked=$(du -sb "$out" | cut -f1)
sizes=$(find "$out/bin" "$out/tests" "$out/repo" -type f -printf '%s %p\n' | sort -rn |
    awk '{printf "    %6.1f MiB  %s\n", $1 / 1048576, $2}' | sed "s|$root/||" | head -n 10)
say "packing payload.tar.xz ($(awk "BEGIN {printf \"%.1f\", $unpacked / 1048576}") MiB unpacked)"
tar -C "$out" -cf - bin tests repo | xz -T0 -6 >"$out/payload.tar.xz"
rm -rf "${out:?}/bin" "${out:?}/tests" "${out:?}/repo"
bytes=$(du -sb "$out" | cut -f1)
limit=$((limit_mib * 1024 * 1024))
if [ "$bytes" -gt "$limit" ]; then
    say "FAIL: gpu-bundle is $((bytes / 1048576)) MiB packed, over $limit_mib MiB; the largest files unpacked:"
    echo "$sizes" >&2
    exit 1
fi

{
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "build_root=$root"
    echo "target=$target"
    echo "glibc_max=GLIBC_$max_seen"
    echo "rustc=$(rustc --version | tr ' ' '_')"
    echo "zig=$(python-zig version)"
    echo "tests=$(grep -c . "$list")"
    echo "unpacked_bytes=$unpacked"
    echo "bytes=$bytes"
} >"$out/BUILD_INFO"
cp "$list" "$out/tests.tsv"
say "$(grep -c . "$list") test executables; bundle $(awk "BEGIN {printf \"%.1f\", $bytes / 1048576}") MiB packed (limit $limit_mib MiB), $(awk "BEGIN {printf \"%.1f\", $unpacked / 1048576}") MiB unpacked; the largest files:"
echo "$sizes" >&2
say "done: bash gpu-bundle/gpu-check.sh on the GPU machine (results in gpu-bundle/results/gpu-check.md)"
