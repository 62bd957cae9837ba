"""The three papers' figures, recomputed from the raw data (and, for the dynamics, from
analysed runs): one registry, used by ``mam figures`` and the ``figures/`` workflows.

Each figure writes ``<name>.png``, ``.pdf`` and ``.json`` (every number it plots) into
one output folder. Papers and their modules:

- ``anatomy``: Schmidt, Bakker et al. 2018, Brain Struct Funct (:mod:`.anatomy`)
- ``meanfield``: Schuecker, Schmidt et al. 2017, PLoS Comput Biol (:mod:`.meanfield`)
- ``dynamics``: Schmidt, Bakker et al. 2018, PLoS Comput Biol (:mod:`.dynamics`; reads
  labelled runs in upstream's data layout by state, ``{'ground_state': LabelledRun}``)
"""
from __future__ import annotations

import importlib
import time
from pathlib import Path

PAPERS = {'anatomy': 'Schmidt, Bakker et al. 2018, Brain Struct Funct 223:1409',
          'meanfield': 'Schuecker, Schmidt et al. 2017, PLoS Comput Biol 13:e1005179',
          'dynamics': 'Schmidt, Bakker et al. 2018, PLoS Comput Biol 14:e1006359'}


def _registry(paper: str) -> dict:
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; known: {', '.join(PAPERS)}")
    return importlib.import_module(f'.{paper}', __name__).FIGURES


def figure_names(paper: str) -> list[str]:
    return list(_registry(paper))


def states_needed(paper: str, names=None) -> list[str]:
    """The states (labelled runs) the dynamics figures read; none for the other papers."""
    reg = _registry(paper)
    names = list(reg) if names is None else names
    return sorted({state for n in names if isinstance(reg[n], tuple) for state in reg[n][1].values()})


def make_figure(paper: str, name: str, out_dir, runs: dict | None = None) -> list[Path]:
    """Draw one figure into ``out_dir``; ``runs``: {state: LabelledRun} (dynamics)."""
    reg = _registry(paper)
    if name not in reg:
        raise ValueError(f"paper {paper!r} has no figure {name!r}; it has {', '.join(reg)}")
    entry = reg[name]
    if isinstance(entry, tuple):
        from ..analysis.layout import LabelledRun
        func, reads = entry
        missing = [state for state in reads.values() if not runs or state not in runs]
        if missing:
            raise ValueError(f"figure {name} reads the {missing[0]!r} run: give it as runs[{missing[0]!r}]")
        return func(out_dir, **{arg: LabelledRun(runs[state].data_path, runs[state].label, figure=name)
                                for arg, state in reads.items()})
    return entry(out_dir)


def make_figures(paper: str, out_dir, names=None, runs: dict | None = None,
                 progress: bool = True) -> list[Path]:
    """Draw the paper's figures (all, or ``names``), with one line per figure and a summary."""
    names = figure_names(paper) if not names else list(names)
    written, t0 = [], time.perf_counter()
    for k, name in enumerate(names, 1):
        t = time.perf_counter()
        written += make_figure(paper, name, out_dir, runs)
        if progress:
            print(f"[{k}/{len(names)}] {name} ({time.perf_counter() - t:.1f} s)", flush=True)
    if progress:
        print(f"{paper}: {len(names)} figures ({len(written)} files) in {out_dir} in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    return written
