#!/usr/bin/env bash
# Interop check: recpipe's Parquet artifacts must open in DuckDB and Polars as they come from
# PyPI, and a cosine query in DuckDB must find the neighbours recorded in similar_items.
#
#   scripts/check_interop.sh [ARTIFACT_DIR...]
#
# With no argument it checks every stage of every pipeline run: .recpipe/runs/*/*/
# (`just pipeline` first). Packages go to a venv in bench/.venv, made by scripts/python_env.sh
# (RECPIPE_VENV and PYTHON as there).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$(bash "$root/scripts/python_env.sh")"

if [ "$#" -eq 0 ]; then
    shopt -s nullglob
    dirs=("$root"/.recpipe/runs/*/*/)
    shopt -u nullglob
    if [ "${#dirs[@]}" -eq 0 ]; then
        echo "check_interop: no artifacts under $root/.recpipe/runs; run \`just pipeline\` first, or pass artifact directories" >&2
        exit 2
    fi
    set -- "${dirs[@]}"
fi

exec "$python" "$root/scripts/check_interop.py" "$@"
