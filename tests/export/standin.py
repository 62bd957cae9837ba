"""A stand-in for MultiAreaModel built from upstream's reference arrays (tests/dev only).

Used while (or where) ``mam_pynn.model.MultiAreaModel`` is not available. Scaling of
a reference set follows upstream's rule closely enough for exporter tests: neuron
numbers x N_scaling, synapse numbers x N_scaling x K_scaling, in-degrees x K_scaling,
weights / sqrt(K_scaling).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import mam_pynn
from mam_pynn import params as P

SUBSET = ['V1', 'V2']   # the small network of the exporter tests

REFERENCE = Path(mam_pynn.__file__).parents[2] / '..' / 'shared' / 'mam-reference'


def reference_available() -> bool:
    return (REFERENCE / 'default.npz').exists()


class StandInModel:
    def __init__(self, network_params=None, variant='default', N_scaling=1.0, K_scaling=1.0):
        d = np.load(REFERENCE / f'{variant}.npz')
        self.params = P.resolve(network_params or {}, P.network_defaults())
        self.area_list = list(P.AREA_LIST)
        self.structure = {a: [p for p in P.POPULATION_LIST if not (a == 'TH' and p.startswith('4'))]
                          for a in self.area_list}
        self.structure_vec = [f'{a}-{p}' for a in self.area_list for p in self.structure[a]]
        self.N_vec = d['N_vec'] * N_scaling
        self.syn_matrix = d['syn_matrix'] * N_scaling * K_scaling
        self.K_matrix = d['K_matrix'] * K_scaling
        self.W_matrix = d['W_matrix'] / np.sqrt(K_scaling)
        self.W_sd_matrix = d['W_sd_matrix'] / np.sqrt(K_scaling)
        self.J_matrix = d['J_matrix'] / np.sqrt(K_scaling)
        self.add_DC_drive = d['add_DC_drive']
        self.distances = {a: {b: float(d['distances'][i, j]) for j, b in enumerate(self.area_list)}
                          for i, a in enumerate(self.area_list)}
        self.label = P.content_hash({'standin': variant, 'N': N_scaling, 'K': K_scaling,
                                     'params': self.params})


def model(N_scaling=0.01, K_scaling=0.01, network_params=None):
    """MultiAreaModel if it works, else the stand-in (same interface)."""
    prm = {'N_scaling': N_scaling, 'K_scaling': K_scaling, 'fullscale_rates': 'fullscale_rates.json'}
    prm = P.nested_update(prm, network_params or {})
    try:
        from mam_pynn.model import MultiAreaModel
        return MultiAreaModel(prm)
    except Exception:  # noqa: BLE001 - any failure of the Model under construction
        variant = 'scaled_0.1' if (N_scaling, K_scaling) == (0.1, 0.1) else 'default'
        if variant == 'scaled_0.1':
            return StandInModel(prm, 'scaled_0.1')
        return StandInModel(prm, 'default', N_scaling, K_scaling)
