"""NEST units (the model's) to PyNN units: the one place for these conversions.

The model, like upstream, speaks NEST: currents and synaptic weights in pA,
capacitances in pF. PyNN's current-based cells want nA and nF. Times (ms) and
potentials (mV) are the same in both.
"""
from __future__ import annotations

import numpy as np

PA_PER_NA = 1000.0
PF_PER_NF = 1000.0

# NEST iaf_psc_exp parameter -> PyNN IF_curr_exp parameter (and the divisor to PyNN units)
_NEST_TO_PYNN = {
    'C_m': ('cm', PF_PER_NF),
    'tau_m': ('tau_m', 1.0),
    't_ref': ('tau_refrac', 1.0),
    'tau_syn_ex': ('tau_syn_E', 1.0),
    'tau_syn_in': ('tau_syn_I', 1.0),
    'E_L': ('v_rest', 1.0),
    'V_reset': ('v_reset', 1.0),
    'V_th': ('v_thresh', 1.0),
    'I_e': ('i_offset', PA_PER_NA),
}


def pa_to_na(current_pa):
    """Current or current-based weight: pA -> nA (works on scalars and arrays)."""
    return np.asarray(current_pa, dtype=float) / PA_PER_NA if np.ndim(current_pa) \
        else float(current_pa) / PA_PER_NA


def na_to_pa(current_na):
    return np.asarray(current_na, dtype=float) * PA_PER_NA if np.ndim(current_na) \
        else float(current_na) * PA_PER_NA


def pf_to_nf(capacitance_pf):
    return float(capacitance_pf) / PF_PER_NF


def if_curr_exp_params(single_neuron_dict: dict) -> dict:
    """PyNN ``IF_curr_exp`` parameters from upstream's NEST ``single_neuron_dict``."""
    out = {}
    for name, value in single_neuron_dict.items():
        if name not in _NEST_TO_PYNN:
            raise KeyError(f"neuron parameter {name!r} has no IF_curr_exp counterpart; "
                           f"known: {', '.join(_NEST_TO_PYNN)}")
        pynn_name, divisor = _NEST_TO_PYNN[name]
        out[pynn_name] = float(value) / divisor
    return out
