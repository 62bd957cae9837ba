"""``mam figures PAPER``: run the paper's Snakemake workflow (figures/<paper>/Snakefile),
so that only what a change touches is redrawn; without Snakemake or the workflow folder
(an installed package), the figures that need no runs are drawn directly, and so are the
dynamics figures from the authors' published data (``original_data``: nothing to simulate)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..faults import run_child
from ..io import make_dir
from . import PAPERS, make_figures, states_needed

#: paper -> its workflow folder under figures/ (named as upstream's)
WORKFLOWS = {'anatomy': 'Schmidt2018', 'meanfield': 'Schuecker2017', 'dynamics': 'Schmidt2018_dyn'}
FIGURES_DIR = Path(__file__).resolve().parents[2] / 'figures'


def snakemake_available() -> bool:
    import importlib.util
    return importlib.util.find_spec('snakemake') is not None


def snakemake_command(paper: str, out, config_file=None, cores: int = 1, data_dir=None) -> list[str]:
    snakefile = FIGURES_DIR / WORKFLOWS[paper] / 'Snakefile'
    cmd = [sys.executable, '-m', 'snakemake', '-s', str(snakefile), '--cores', str(cores),
           '--rerun-triggers', 'mtime', '--quiet', 'rules']
    if config_file is not None:
        cmd += ['--configfile', str(config_file)]
    cmd += ['--config', f'out={out}', f'python={sys.executable}']
    if data_dir:
        cmd.append(f'data_dir={Path(data_dir).resolve()}')
    return cmd


def run_figures(paper: str, out, config_file=None, cores: int = 1, data_dir=None,
                original_data=None, labels: dict | None = None) -> int:
    """Draw a paper's figures into ``out``/<paper>; returns the exit status.

    ``original_data`` (dynamics): the folder of the authors' published runs, read by
    upstream's labels (``labels`` {state: label} overrides them)."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; known: {', '.join(PAPERS)}")
    if original_data is not None or labels:
        if paper != 'dynamics' or original_data is None:
            raise ValueError("--original-data DIR (and --label) are for the dynamics figures")
        from .dynamics import readers
        if not Path(original_data).is_dir():
            raise FileNotFoundError(f"published data folder {original_data} does not exist")
        make_figures(paper, Path(out) / paper, runs=readers(original_data, True, labels))
        return 0
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f"figures config {config_file} does not exist")
    make_dir(Path(out) / paper)    # an --out that is a file: one line, before any work
    if (FIGURES_DIR / WORKFLOWS[paper] / 'Snakefile').is_file() and snakemake_available():
        # Snakemake's log passes through; a figure's one error line ends the command
        sys.stdout.write(run_child(snakemake_command(paper, out, config_file, cores, data_dir),
                                   f"the {paper} workflow", 'mam figures: error: '))
        pngs = sorted((Path(out) / paper).glob('*.png'))
        print(f"mam figures {paper}: done; {len(pngs)} figures in {Path(out) / paper}", flush=True)
        return 0
    if states_needed(paper):
        raise FileNotFoundError(f"the {paper} figures need runs, made by the workflow "
                                f"{FIGURES_DIR / WORKFLOWS[paper] / 'Snakefile'} with Snakemake "
                                f"(pip install 'mam_pynn[workflow]'); neither was found")
    make_figures(paper, Path(out) / paper)
    return 0
