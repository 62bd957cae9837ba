"""Per-population rates from SONATA spike files, and the statistical comparison used by
the reader tests (tests/dev helper)."""
from __future__ import annotations

import h5py
import numpy as np


def population_rates(spikes_file, circuit, t_min: float, t_max: float) -> dict:
    """{(area, pop): per-neuron rates (spikes/s) in [t_min, t_max)} for a circuit's areas."""
    out = {}
    with h5py.File(spikes_file, 'r') as f:
        for area in circuit.areas:
            g = f['spikes'][area]
            ids, ts = g['node_ids'][:].astype(np.int64), g['timestamps'][:]
            keep = (ts >= t_min) & (ts < t_max)
            counts = np.bincount(ids[keep], minlength=sum(circuit.sizes[(area, p)]
                                                           for p in circuit.structure[area]))
            for p in circuit.structure[area]:
                first = circuit.offsets[area][p]
                out[(area, p)] = counts[first:first + circuit.sizes[(area, p)]] / ((t_max - t_min) / 1000.)
    return out


def rates_agree(a: dict, b: dict, z: float = 4.0, floor_hz: float = 1.0) -> list[str]:
    """Populations whose mean rates differ by more than z standard errors (plus a floor
    for the different initial states of the readers); empty when all agree."""
    bad = []
    for key in a:
        ra, rb = a[key], b[key]
        se = np.sqrt(ra.var() / ra.size + rb.var() / rb.size)
        if abs(ra.mean() - rb.mean()) > z * se + floor_hz:
            bad.append(f"{key}: {ra.mean():.2f} vs {rb.mean():.2f} spikes/s (se {se:.2f})")
    return bad
