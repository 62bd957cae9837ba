"""Time of the default stationary-rate computation: ours vs upstream's NEST way.

Upstream integrates the rate dynamics with a network of NEST ``siegert_neuron``s
(``mam_pynn.theory.nest_reference`` rebuilds that, measured here in the same run);
we step all 254 populations at once with numpy. Default theory params (T and dt are
printed) on the default and the ground-state MultiAreaModel networks.

    python benchmarks/bench_theory.py [--repeat 3]
"""
import argparse
import time
from pathlib import Path

import numpy as np

import mam_pynn
from mam_pynn.model import MultiAreaModel
from mam_pynn.theory import Theory

REFERENCE = Path(mam_pynn.__file__).resolve().parents[1] / '..' / 'shared' / 'mam-reference'
VARIANTS = {'default': {},
            'ground_state': {'connection_params': {'cc_weights_factor': 1.,
                                                   'cc_weights_I_factor': 1.}}}


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
        net = MultiAreaModel(VARIANTS[name])
        tp = Theory(net, {}).params
        t_ours, (_, rates) = best_of(lambda: Theory(net, {}).integrate_siegert(), args.repeat)
        ref = reference[f'{name}_rates']
        dev = np.max(np.abs(rates[:, -1] - ref) / (ref + 1e-3))
        line = (f"{name} (MultiAreaModel): ours {t_ours * 1e3:.0f} ms (T={tp['T']:g} ms, "
                f"{int(round(tp['T'] / tp['dt']))} steps, {rates.shape[0]} populations; best "
                f"of {args.repeat}); max deviation from upstream's rates {dev:.2g} "
                f"(|ours - ref| / (ref + 1e-3 spikes/s))")
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
