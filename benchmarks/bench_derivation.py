"""Time to get a Model: cold (raw files -> anatomy -> connectivity) and warm (disk cache).

Each measurement runs in a fresh Python process (imports included), with an empty
cache directory for "cold" and the one filled by the cold run for "warm"; the
time inside the process is split into import and construction.

    .venv/bin/python benchmarks/bench_derivation.py [--repeat 3] [--params JSON]

Upstream (INM-6/multi-area-model) needs about 6 s for the same step
(compute_Model_params + MultiAreaModel); it is not run here.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from mam_pynn.model import MultiAreaModel
t1 = time.perf_counter()
M = MultiAreaModel(json.loads(sys.argv[1]))
t2 = time.perf_counter()
print(json.dumps({'import_s': t1 - t0, 'model_s': t2 - t1, 'label': M.label,
                  'synapses': float(M.syn_matrix[:, :-1].sum())}))
"""

UPSTREAM_S = 6.0  # approximate, measured elsewhere; for orientation only


def run_child(params: dict, cache: str) -> dict:
    env = dict(os.environ, MAM_CACHE_DIR=cache)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, '-c', CHILD, json.dumps(params)], env=env,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result['process_s'] = time.perf_counter() - t0
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--params', default='{}', help='network_params as JSON')
    args = parser.parse_args(argv)
    params = json.loads(args.params)

    cold, warm = [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix='mam_bench_') as cache:
            cold.append(run_child(params, cache))
            warm.append(run_child(params, cache))
        print(f"run {i + 1}/{args.repeat}: cold {cold[-1]['import_s'] + cold[-1]['model_s']:.3f} s, "
              f"warm {warm[-1]['import_s'] + warm[-1]['model_s']:.3f} s", file=sys.stderr)
    assert len({r['label'] for r in cold + warm}) == 1, "cold and warm models differ"

    def line(name, runs):
        total = [r['import_s'] + r['model_s'] for r in runs]
        return (f"{name:5s} median {statistics.median(total):.3f} s "
                f"(import {statistics.median(r['import_s'] for r in runs):.3f} s + "
                f"MultiAreaModel {statistics.median(r['model_s'] for r in runs):.3f} s; "
                f"min {min(total):.3f} s, whole process {statistics.median(r['process_s'] for r in runs):.3f} s)")

    print(f"MultiAreaModel({args.params}) over {args.repeat} fresh processes:")
    print(line('cold', cold))
    print(line('warm', warm))
    cold_med = statistics.median(r['import_s'] + r['model_s'] for r in cold)
    warm_med = statistics.median(r['import_s'] + r['model_s'] for r in warm)
    print(f"upstream ~{UPSTREAM_S:.0f} s (not measured here): cold {UPSTREAM_S / cold_med:.1f}x, "
          f"warm {UPSTREAM_S / warm_med:.0f}x faster; {warm[0]['synapses']:.6g} synapses, "
          f"label {warm[0]['label']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
