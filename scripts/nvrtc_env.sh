#!/usr/bin/env bash
# NVRTC from PyPI, made on the first call; prints the wheel's lib folder on stdout.
#
#   bash scripts/nvrtc_env.sh [13.0]   nvidia-cuda-nvrtc==13.0.* in bench/.venv-nvrtc
#                                      (override: RECPIPE_NVRTC_VENV): recpipe-cuda's tests
#   bash scripts/nvrtc_env.sh 12.0     nvidia-cuda-nvrtc-cu12==12.0.140 in bench/.venv-nvrtc12
#                                      (override: RECPIPE_NVRTC12_VENV): the compiler of the
#                                      shipped PTX (`just kernels`, tests/ptx.rs)
#
#   export RECPIPE_NVRTC_DIR="$(bash scripts/nvrtc_env.sh)"
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"

case "${1:-13.0}" in
13.0)
    venv="${RECPIPE_NVRTC_VENV:-$root/bench/.venv-nvrtc}"
    wheel="nvidia-cuda-nvrtc==13.0.*"
    sub="nvidia/cu13/lib"
    so="libnvrtc.so.13"
    ;;
12.0)
    venv="${RECPIPE_NVRTC12_VENV:-$root/bench/.venv-nvrtc12}"
    wheel="nvidia-cuda-nvrtc-cu12==12.0.140"
    sub="nvidia/cuda_nvrtc/lib"
    so="libnvrtc.so.12"
    ;;
*)
    echo "nvrtc_env: unknown NVRTC version '$1' (expected 13.0 or 12.0)" >&2
    exit 2
    ;;
esac

if [ ! -x "$venv/bin/python" ]; then
    echo "nvrtc_env: creating a venv in $venv" >&2
    "$python" -m venv "$venv"
fi
lib="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/$sub"
if [ ! -e "$lib/$so" ]; then
    echo "nvrtc_env: installing $wheel into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" >&2
fi
echo "$lib"
