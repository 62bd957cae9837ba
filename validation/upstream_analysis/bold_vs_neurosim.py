"""mam_pynn's BOLD (mam_pynn/analysis/bold.py) against R's neuRosim balloon() (issue 22.2).

Calls neuRosim as upstream's compute_bold_signal.R does, ``balloon(d, T, it)`` with the
default parameters, on three stimuli (a 100 ms pulse and a synaptic-input-like signal at
upstream's 1 ms samples, neuRosim's own block-design example at 0.1 s) and compares.
Needs R with deSolve and either the neuRosim package or its R sources
(--neurosim-source DIR: every *.R file there is sourced; neuRosim is GPL, nothing of it
is stored in this project). Writes a JSON report with --out.

    python validation/upstream_analysis/bold_vs_neurosim.py [--neurosim-source DIR] [--out F]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

R_CALL = r'''
args <- commandArgs(trailingOnly=TRUE)
src <- if (length(args) > 4) args[5:length(args)] else character(0)
if (length(src)) { for (f in src) source(f) } else suppressMessages(library(neuRosim))
d <- data.matrix(read.table(args[1]))
t0 <- Sys.time()
out <- suppressWarnings(balloon(d, as.numeric(args[3]), as.numeric(args[4])))
cat(as.numeric(Sys.time() - t0, units="secs"), "\n")
write.table(out, args[2])
'''


def stimuli(seed: int = 0) -> dict:
    from scipy.ndimage import gaussian_filter1d
    rng = np.random.default_rng(seed)
    pulse = np.zeros(20000)
    pulse[1000:1100] = 1.
    x = np.clip(1 + 3 * gaussian_filter1d(rng.standard_normal(20000), 50)
                + 0.2 * rng.standard_normal(20000), 0, None)
    return {'pulse 100 ms, 1 ms samples': (pulse, 0.001),
            'synaptic-input-like / max, 1 ms samples': (x / x.max(), 0.001),
            "neuRosim's example (10 s blocks), 0.1 s samples": (np.tile(np.r_[np.zeros(100), np.ones(100)], 5), 0.1)}


def run_r(stim, acc, sources, tmp: Path) -> tuple[np.ndarray, float]:
    np.savetxt(tmp / 'stim.txt', stim)
    (tmp / 'call.R').write_text(R_CALL)
    cmd = ['Rscript', '--vanilla', str(tmp / 'call.R'), str(tmp / 'stim.txt'), str(tmp / 'bold.txt'),
           repr(len(stim) * acc), repr(acc)] + [str(s) for s in sources]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        sys.exit("Rscript not found: install R with the deSolve package")
    except subprocess.CalledProcessError as err:
        sys.exit(f"R failed: {err.stderr.strip()[-500:]}")
    lines = (tmp / 'bold.txt').read_text().splitlines()[1:]     # as upstream's bold_R_parser
    return np.array([float(ln.split(' ')[-1]) for ln in lines]), float(out.stdout.split()[0])


def main(argv=None) -> int:
    from mam_pynn.analysis.bold import balloon
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--neurosim-source', type=Path, help="directory of neuRosim's R sources")
    ap.add_argument('--out', type=Path, help='JSON report')
    args = ap.parse_args(argv)
    sources = sorted(args.neurosim_source.glob('*.R')) if args.neurosim_source else []
    if args.neurosim_source and not sources:
        sys.exit(f"--neurosim-source {args.neurosim_source}: no *.R files there")
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (stim, acc) in stimuli().items():
            bold_r, t_r = run_r(stim, acc, sources, Path(tmp))
            t0 = time.time()
            ours = balloon(stim, acc)
            t_ours = time.time() - t0
            diff = np.abs(ours - bold_r)
            report[name] = {'samples': len(stim), 'acc_s': acc, 'max_abs_bold': float(np.abs(bold_r).max()),
                            'max_abs_diff': float(diff.max()), 'at_sample': int(diff.argmax()),
                            'max_diff_rel_to_max': float(diff.max() / np.abs(bold_r).max()),
                            'correlation': float(np.corrcoef(ours, bold_r)[0, 1]),
                            'seconds_R': t_r, 'seconds_mam_pynn': t_ours}
            r = report[name]
            print(f"{name}: max |diff| {r['max_abs_diff']:.2e} = {r['max_diff_rel_to_max']:.1e} of max |BOLD| "
                  f"(sample {r['at_sample']}), correlation {r['correlation']:.10f}; R {t_r:.1f} s, ours {t_ours:.1f} s")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
