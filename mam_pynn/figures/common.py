"""What every paper figure shares: one output layout (PNG + PDF + the plotted numbers as JSON),
written atomically, and the matplotlib set-up."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import atomic_path, atomic_write_json, make_dir


def plt():
    """pyplot (the user's backend kept, else Agg), with readable default sizes."""
    from ..analysis.plots import pyplot as _pyplot
    pyplot = _pyplot()
    pyplot.rcParams.update({'font.size': 9, 'axes.titlesize': 10, 'axes.labelsize': 9,
                            'xtick.labelsize': 8, 'ytick.labelsize': 8, 'legend.fontsize': 8})
    return pyplot


def jsonable(obj):
    """Plain JSON data (numpy arrays and scalars, NaN as null)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def save(fig, data: dict, out_dir, name: str) -> list[Path]:
    """``name``.png, .pdf and .json (every number the figure plots) in ``out_dir``."""
    out = Path(out_dir)
    make_dir(out)
    paths = []
    for suffix in ('.png', '.pdf'):
        with atomic_path(out / f'{name}{suffix}') as tmp:
            fig.savefig(tmp, dpi=150, format=suffix[1:])
        paths.append(out / f'{name}{suffix}')
    paths.append(atomic_write_json(out / f'{name}.json', jsonable(data)))
    plt().close(fig)
    return paths


def load_data(out_dir, name: str) -> dict:
    return json.loads((Path(out_dir) / f'{name}.json').read_text())


def area_ticks(ax, areas, axis='both', size=6):
    """One tick per area, labelled; x labels vertical so 32 names do not overlap."""
    ticks = np.arange(len(areas)) + 0.5
    if axis in ('x', 'both'):
        ax.set_xticks(ticks)
        ax.set_xticklabels(areas, rotation=90, fontsize=size)
    if axis in ('y', 'both'):
        ax.set_yticks(ticks)
        ax.set_yticklabels(areas, fontsize=size)
