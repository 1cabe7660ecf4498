#!/usr/bin/env bash
# The Python the interop check and the README snippets test use: a venv in bench/.venv
# (override: RECPIPE_VENV) with duckdb, polars, pyarrow and numpy from PyPI, created on the
# first call and reused after; PYTHON picks the interpreter that makes it (default python3).
# Prints the venv's python on stdout:
#
#   export RECPIPE_PYTHON="$(bash scripts/python_env.sh)"
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RECPIPE_VENV:-$root/bench/.venv}"
python="${PYTHON:-python3}"
packages=(duckdb polars pyarrow numpy)

if [ ! -x "$venv/bin/python" ]; then
    if ! command -v "$python" >/dev/null 2>&1; then
        echo "python_env: $python not found; install Python 3.9+ or set PYTHON=/path/to/python3" >&2
        exit 2
    fi
    echo "python_env: creating a venv in $venv" >&2
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import duckdb, polars, pyarrow, numpy" >/dev/null 2>&1; then
    echo "python_env: installing ${packages[*]} from PyPI into $venv" >&2
    # Once more without pip's cache if the first try fails: a download cut short on a
    # flaky network fails its hash check and would otherwise be reused from the cache.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" >&2 ||
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
            "${packages[@]}" >&2
fi
echo "$venv/bin/python"
