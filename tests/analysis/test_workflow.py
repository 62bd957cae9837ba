"""The analysis/ Snakemake workflow: config -> simulate -> analyze, rerunning only what changed.

`mam simulate` is replaced by the synthetic run writer (no simulator needed) through the
workflow's `simulate_cmd` setting; the analysis is the real one.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / 'analysis' / 'Snakefile'
SNAKEMAKE = Path(sys.executable).with_name('snakemake')


def snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    py = sys.executable
    cmd = [str(SNAKEMAKE), '-s', str(SNAKEFILE), '--directory', str(workdir), '--cores', '1',
           '--config', 'configs=configs/*.yaml', 'runs_dir=runs',
           f'simulate_cmd={py} -m mam_pynn.analysis.synthetic --config {{config}} --out {{run}}',
           f'analyze_cmd={py} -m mam_pynn.analysis {{run}} --t-min {{t_min}} --no-figures', *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason=f"snakemake is not installed next to {sys.executable}")
def test_workflow_runs_and_reruns_only_what_changed(tmp_path):
    configs = tmp_path / 'configs'
    configs.mkdir()
    for name, seed in (('a', 1), ('b', 2)):
        (configs / f'{name}.yaml').write_text(
            f"t_sim: 1200.\nareas: [V1, V2, FEF]\nneurons_per_area: 80\nseed: {seed}\n")
    snakemake(tmp_path)
    runs = tmp_path / 'runs'
    for name in 'ab':
        for f in ('config.yaml', 'summary.json', 'spikes.h5', 'analysis/statistics.json',
                  'analysis/series.npz', 'analysis/manifest.json'):
            assert (runs / name / f).stat().st_size > 0, f
    stamps = {n: (runs / n / 'spikes.h5').stat().st_mtime_ns for n in 'ab'}
    stats_b = (runs / 'b' / 'analysis' / 'statistics.json').stat().st_mtime_ns

    assert 'Nothing to be done' in (lambda p: p.stdout + p.stderr)(snakemake(tmp_path, '-n'))

    time.sleep(0.05)
    (configs / 'a.yaml').write_text("t_sim: 1300.\nareas: [V1, V2, FEF]\nneurons_per_area: 80\nseed: 1\n")
    snakemake(tmp_path)
    assert (runs / 'a' / 'spikes.h5').stat().st_mtime_ns != stamps['a']
    assert (runs / 'b' / 'spikes.h5').stat().st_mtime_ns == stamps['b']
    assert (runs / 'b' / 'analysis' / 'statistics.json').stat().st_mtime_ns == stats_b
    assert '"t_max": 1300.0' in (runs / 'a' / 'analysis' / 'statistics.json').read_text()

    # an analysis setting reruns the analyses only
    snakemake(tmp_path, 't_min=300')
    assert (runs / 'b' / 'spikes.h5').stat().st_mtime_ns == stamps['b']
    assert '"t_min": 300.0' in (runs / 'b' / 'analysis' / 'statistics.json').read_text()
    shutil.rmtree(runs)
