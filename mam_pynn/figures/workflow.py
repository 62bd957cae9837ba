"""``mam figures PAPER``: run the paper's Snakemake workflow (figures/<paper>/Snakefile),
so that only what a change touches is redrawn; without Snakemake or the workflow folder
(an installed package), the figures that need no runs are drawn directly, and so are the
dynamics figures from the authors' published data (``original_data``: nothing to simulate)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..faults import run_child
from ..io import make_dir
from . import PAPERS, figure_names, make_figures, states_needed

#: paper -> its workflow folder under figures/ (named as upstream's)
WORKFLOWS = {'anatomy': 'Schmidt2018', 'meanfield': 'Schuecker2017', 'dynamics': 'Schmidt2018_dyn'}
FIGURES_DIR = Path(__file__).resolve().parents[2] / 'figures'


def snakemake_available() -> bool:
    import importlib.util
    return importlib.util.find_spec('snakemake') is not None


def output_folder(paper: str, k_prime: str | None = None) -> str:
    """Subfolder of the output a paper's figures go to: the paper's name, and for the
    mean-field figures drawn with upstream's K' (``k_prime='upstream'``) a folder of their own."""
    return f'{paper}_upstream_K' if k_prime == 'upstream' else paper


def snakemake_command(paper: str, out, config_file=None, cores: int = 1, data_dir=None,
                      k_prime: str | None = None) -> list[str]:
    snakefile = FIGURES_DIR / WORKFLOWS[paper] / 'Snakefile'
    cmd = [sys.executable, '-m', 'snakemake', '-s', str(snakefile), '--cores', str(cores),
           '--rerun-triggers', 'mtime', '--quiet', 'rules']
    if config_file is not None:
        cmd += ['--configfile', str(config_file)]
    cmd += ['--config', f'out={out}', f'python={sys.executable}']
    if data_dir:
        cmd.append(f'data_dir={Path(data_dir).resolve()}')
    if k_prime:
        cmd.append(f'k_prime={k_prime}')
    return cmd


def run_figures(paper: str, out, config_file=None, cores: int = 1, data_dir=None,
                original_data=None, labels: dict | None = None, k_prime: str | None = None) -> int:
    """Draw a paper's figures into ``out``/<paper>; returns the exit status.

    ``original_data`` (dynamics): the folder of the authors' published runs, read by
    upstream's labels (``labels`` {state: label} overrides them). ``k_prime`` ('ours' or
    'upstream', mean-field figures only): the final K' they draw first."""
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
    if k_prime is not None:
        from ..theory.stabilization import K_PRIME_CHOICES
        if paper != 'meanfield':
            raise ValueError(f"k_prime applies to the meanfield figures, not to {paper!r}")
        if k_prime not in K_PRIME_CHOICES:
            raise ValueError(f"k_prime must be one of {', '.join(K_PRIME_CHOICES)}, got {k_prime!r}")
    folder = Path(out) / output_folder(paper, k_prime)
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f"figures config {config_file} does not exist")
    make_dir(folder)    # an --out that is a file: one line, before any work
    if (FIGURES_DIR / WORKFLOWS[paper] / 'Snakefile').is_file() and snakemake_available():
        # Snakemake's log passes through; a figure's one error line ends the command
        sys.stdout.write(run_child(snakemake_command(paper, out, config_file, cores, data_dir, k_prime),
                                   f"the {paper} workflow", 'mam figures: error: '))
        pngs = sorted(folder.glob('*.png'))
        print(f"mam figures {paper}: done; {len(pngs)} figures in {folder}", flush=True)
        return 0
    names = [n for n in figure_names(paper) if not states_needed(paper, [n])]
    need_runs = states_needed(paper)
    message = (f"the {paper} figures that need runs ({', '.join(need_runs)}) are made by the "
               f"workflow {FIGURES_DIR / WORKFLOWS[paper] / 'Snakefile'} with Snakemake "
               f"(pip install 'mam_pynn[workflow]'); neither was found")
    if not names:
        raise FileNotFoundError(message)
    if k_prime is not None:
        from .meanfield import K_PRIME_ENV
        os.environ[K_PRIME_ENV] = k_prime
    make_figures(paper, folder, names)
    if need_runs:
        print(f"mam figures {paper}: not drawn: {message}", flush=True)
    return 0
