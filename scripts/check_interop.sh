#!/usr/bin/env bash
# Interop check: recpipe's Parquet artifacts must open in DuckDB and Polars as they come from
# PyPI, and a cosine query in DuckDB must find the neighbours recorded in similar_items.
#
#   scripts/check_interop.sh [ARTIFACT_DIR...]
#
# With no argument it checks every stage of every pipeline run: .recpipe/runs/*/*
# (`just pipeline` first). Packages go to a venv in bench/.venv (override: RECPIPE_VENV),
# created on the first run and reused after; PYTHON picks the interpreter (default python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RECPIPE_VENV:-$root/bench/.venv}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "check_interop: $python not found; install Python 3.9+ or set PYTHON=/path/to/python3" >&2
    exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "check_interop: creating a venv in $venv" >&2
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import duckdb, polars, pyarrow" >/dev/null 2>&1; then
    echo "check_interop: installing duckdb, polars, pyarrow from PyPI into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check duckdb polars pyarrow
fi

if [ "$#" -eq 0 ]; then
    shopt -s nullglob
    dirs=("$root"/.recpipe/runs/*/*)
    shopt -u nullglob
    if [ "${#dirs[@]}" -eq 0 ]; then
        echo "check_interop: no artifacts under $root/.recpipe/runs; run \`just pipeline\` first, or pass artifact directories" >&2
        exit 2
    fi
    set -- "${dirs[@]}"
fi

exec "$venv/bin/python" "$root/scripts/check_interop.py" "$@"
