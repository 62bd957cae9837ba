"""Run upstream's tests/test_analysis.py on mam_pynn (issue 22.3).

Upstream's test (INM-6/multi-area-model, tests/test_analysis.py) simulates V1 and V2
down-scaled for 500 ms, builds a second MultiAreaModel with analysis=True that finds the
run by its label, computes every Analysis member (synaptic input included) with
t_min=100 ms, saves them, recomputes them and counts "Loading data from" lines, which
upstream's Analysis prints when it reloads its cached .npy files. mam_pynn's Analysis
keeps no such cache, so that count is the one part not expected to hold: the script runs
the test's code with `multiarea_model` resolving to mam_pynn and that one assertion
replaced by a report of the count.

Upstream's file is read from a path or a git repository given by --upstream (nothing of
upstream is stored in this project). Needs NEST (PyNN's nest backend). About a minute.

    python validation/upstream_analysis/run_upstream_test_analysis.py \
        --upstream /path/to/multi-area-model   # a checkout, a bare git dir, or the .py
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
import types
from contextlib import redirect_stdout
from pathlib import Path

COUNT_ASSERT = 'assert(val.count("Loading data from") == 9)'


def upstream_test_source(upstream: Path) -> str:
    """tests/test_analysis.py from a file, a checkout or a (bare) git directory."""
    if upstream.is_file():
        return upstream.read_text()
    if (upstream / 'tests' / 'test_analysis.py').is_file():
        return (upstream / 'tests' / 'test_analysis.py').read_text()
    out = subprocess.run(['git', '-C', str(upstream), 'show', 'HEAD:tests/test_analysis.py'],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"--upstream {upstream}: no tests/test_analysis.py there ({out.stderr.strip()})")
    return out.stdout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--upstream', type=Path, required=True,
                    help="upstream's repository (checkout or bare git dir) or its tests/test_analysis.py")
    ap.add_argument('--workdir', type=Path, default=None,
                    help='where the run goes (default: a temporary directory, removed afterwards)')
    args = ap.parse_args(argv)

    source = upstream_test_source(args.upstream)
    if source.count(COUNT_ASSERT) != 1:
        sys.exit(f"upstream's test_analysis.py has changed: the line {COUNT_ASSERT!r} is not there once")
    source = source.replace(COUNT_ASSERT, 'LOADING_COUNT.append(val.count("Loading data from"))')

    import mam_pynn.model
    from mam_pynn.data import data_file
    shim = types.ModuleType('multiarea_model')          # `from multiarea_model import MultiAreaModel`
    shim.MultiAreaModel = mam_pynn.model.MultiAreaModel
    sys.modules['multiarea_model'] = shim

    work = args.workdir or Path(tempfile.mkdtemp(prefix='upstream_test_analysis_'))
    work.mkdir(parents=True, exist_ok=True)
    # the test reads fullscale_rates.json from its working directory (upstream: tests/)
    shutil.copy(data_file('fullscale_rates.json'), work / 'fullscale_rates.json')
    namespace = {'__name__': 'upstream_test_analysis', 'LOADING_COUNT': []}
    import os
    cwd, t0 = os.getcwd(), time.time()
    os.chdir(work)
    try:
        exec(compile(source, 'upstream:tests/test_analysis.py', 'exec'), namespace)
        log = io.StringIO()
        with redirect_stdout(log):
            namespace['test_analysis']()
    finally:
        sys.stdout = sys.__stdout__          # upstream's test leaves stdout redirected if it fails
        os.chdir(cwd)
    members = ('pop_rates', 'pop_rate_dists', 'synchrony', 'rate_time_series', 'synaptic_input',
               'pop_cv_isi', 'pop_LvR')
    saved = sorted(p.name for p in work.glob('runs/*/analysis/upstream/*'))
    print(f"upstream's test_analysis ran on mam_pynn in {time.time() - t0:.0f} s: every call passed; "
          f"saved {', '.join(saved)}")
    print(f"'Loading data from' lines on the second pass: {namespace['LOADING_COUNT'][0]} "
          f"(upstream: 9, its .npy cache; mam_pynn recomputes)")
    missing = [m for m in members if not any(s.startswith(m) for s in saved)]
    if missing:
        print(f"not saved: {missing}")
        return 1
    if args.workdir is None:
        shutil.rmtree(work)
    return 0


if __name__ == '__main__':
    sys.exit(main())
