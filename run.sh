#!/usr/bin/env bash
# One-stop entry point: sets up .venv on first use, then runs a job.
#   bash run.sh main   the main job: a down-scaled 32-area MAM on NEST, its summary and figures
#   bash run.sh test   the test suite (what CI runs)
#   bash run.sh setup  only create/refresh the environment
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${MAM_VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac   # absolute: PATH and MAM_VENV=/abs both work

setup() {
  local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "== setting up $VENV (Python: $($PYTHON --version 2>&1))" >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[all]"
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

case "${1:-}" in
  setup) setup ;;
  main)
    setup
    run_dir=${2:-runs/main-$(date +%Y%m%d-%H%M%S)}
    mam simulate --config configs/downscaled.yaml --out "$run_dir"
    mam analyze "$run_dir"
    echo "run directory: $run_dir (summary.json, spikes.h5, figures/)"
    ;;
  test)
    setup
    shift
    "$VENV/bin/python" -m pytest -q "$@"
    ;;
  *) sed -n '2,5p' "$0"; exit 2 ;;
esac
