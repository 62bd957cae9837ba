"""Time of the default stationary-rate computation: ours vs upstream's NEST way.

Upstream integrates the rate dynamics with a network of NEST ``siegert_neuron``s
(``mam_pynn.theory.nest_reference`` rebuilds that, measured here in the same run);
we step all 254 populations at once with numpy. Default theory params (T = 50 ms,
dt = 0.1 ms) on the default and the ground-state networks.

    python benchmarks/bench_theory.py [--repeat 3]
"""
import argparse
import sys
import time
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np

import mam_pynn
from mam_pynn import params as P
from mam_pynn.structure import structure_vec
from mam_pynn.theory import Theory

REFERENCE = Path(mam_pynn.__file__).resolve().parents[1] / '..' / 'shared' / 'mam-reference'
VARIANTS = {'default': {},
            'ground_state': {'connection_params': {'cc_weights_factor': 1.,
                                                   'cc_weights_I_factor': 1.}}}


def network(name):
    """MultiAreaModel for the variant if it can be built, else upstream's arrays."""
    try:
        from mam_pynn.model import MultiAreaModel
        return MultiAreaModel(VARIANTS[name])
    except Exception as err:
        print(f"(MultiAreaModel unavailable: {type(err).__name__}; using reference arrays)",
              file=sys.stderr)
    d = np.load(REFERENCE / f'{name}.npz')
    structure = OrderedDict((a, [p for p in P.POPULATION_LIST
                                 if not (a == 'TH' and p in ('4E', '4I'))]) for a in P.AREA_LIST)
    return types.SimpleNamespace(
        K_matrix=d['K_matrix'], J_matrix=d['J_matrix'], add_DC_drive=d['add_DC_drive'],
        N_vec=d['N_vec'], params=P.resolve(VARIANTS[name], P.network_defaults()),
        area_list=list(P.AREA_LIST), structure=structure,
        structure_vec=structure_vec(P.AREA_LIST, structure), label=name)


def best_of(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeat', type=int, default=3)
    args = ap.parse_args()
    reference = np.load(REFERENCE / 'meanfield.npz')
    try:
        import nest  # noqa: F401  (import time not counted)
        from mam_pynn.theory.nest_reference import nest_trajectory
    except ImportError:
        nest_trajectory = None
    for name in VARIANTS:
        net = network(name)
        t_ours, (_, rates) = best_of(lambda: Theory(net, {}).integrate_siegert(), args.repeat)
        ref = reference[f'{name}_rates']
        dev = np.max(np.abs(rates[:, -1] - ref) / ref)
        line = (f"{name}: ours {t_ours * 1e3:.0f} ms (T=50 ms, 500 steps, 254 populations; "
                f"best of {args.repeat}); max relative deviation from upstream's rates {dev:.2g}")
        if nest_trajectory is not None:
            theory = Theory(net, {})
            t_nest, nest_rates = best_of(lambda: nest_trajectory(theory), args.repeat)
            same = np.max(np.abs(rates[:, :-1] - nest_rates)[:, :40] /
                          (np.abs(nest_rates[:, :40]) + 1e-12))
            line += (f"; NEST siegert_neuron network {t_nest * 1e3:.0f} ms -> speed-up "
                     f"{t_nest / t_ours:.1f}x (first 4 ms identical to {same:.1g})")
        print(line)


if __name__ == '__main__':
    main()
