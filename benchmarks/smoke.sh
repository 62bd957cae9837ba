#!/usr/bin/env bash
# Every benchmark at its smallest size (seconds each; the numbers are not judged), so that a
# refactoring that breaks a benchmark fails CI (.ci/run). A benchmarks/bench_*.py without a
# line here fails too.
#   bash benchmarks/smoke.sh [PYTHON]      (default: python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mam-bench-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
done_list=()

smoke() {   # smoke NAME ARGS...: NAME is the script's file name
  local name=$1 start=$SECONDS
  shift
  if ! timeout 900 "$PY" "$name" "$@" >"$tmp/log" 2>&1; then
    echo "benchmark smoke run FAILED: $PY $name $*" >&2
    tail -40 "$tmp/log" >&2
    exit 1
  fi
  done_list+=("$name")
  echo "  ok  $name ($((SECONDS - start)) s)"
}

echo "== benchmark smoke runs"
smoke benchmarks/bench_anatomy.py
smoke benchmarks/bench_derivation.py --repeat 1
smoke benchmarks/bench_theory.py --repeat 1
smoke benchmarks/bench_stabilization.py --iterations 1 --refinements 4 --scan-step 0.02 --compare-step 0.2
smoke benchmarks/bench_nest_build.py --scaling 0.001 --t-sim 10 --threads 1
smoke benchmarks/bench_backends.py --areas V1 --n-scaling 0.001 --k-scaling 0.001 --t-sim 20 --repeats 1
smoke benchmarks/bench_sonata_export.py --scales 0.001 --areas V1 --workers 1,2 --dir "$tmp"
smoke benchmarks/bench_analysis.py --neurons-per-area 60 --activity-ms 600 --no-figures \
  --elephant-sample 20 --dir "$tmp"
smoke hpc/calibrate_memory.py --sizes tiny_V1 --t-sim 10 --out "$tmp/calibration.json"

for script in benchmarks/bench_*.py; do
  case " ${done_list[*]} " in
    *" $script "*) ;;
    *) echo "benchmark $script has no smoke run in benchmarks/smoke.sh" >&2; exit 1 ;;
  esac
done
echo "== benchmark smoke runs: all ${#done_list[@]} passed"
