"""The small model of the exporter tests: a down-scaled MultiAreaModel."""
from __future__ import annotations

from mam_pynn import params as P
from mam_pynn.model import MultiAreaModel

SUBSET = ['V1', 'V2']   # the small network of the exporter tests


def model(N_scaling=0.01, K_scaling=0.01, network_params=None):
    """A down-scaled MultiAreaModel (full-scale rates from the data directory)."""
    prm = {'N_scaling': N_scaling, 'K_scaling': K_scaling, 'fullscale_rates': 'fullscale_rates.json'}
    return MultiAreaModel(P.nested_update(prm, network_params or {}))
