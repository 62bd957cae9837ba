"""Stabilized in-degrees K' against upstream's K_prime_original.npy (Schuecker et al. 2017).

Runs the full stabilization (about 30 s on one core) on the network of the paper,
MultiAreaModel(SCHUECKER2017_NETWORK) (g = -16, rate_ext = 8, chi = 1, no extra 5E/6E
drive, raw in-degrees), then prints how K' compares with upstream's
K_prime_original.npy, and the stationary rates the two matrices give.

    python benchmarks/bench_stabilization.py [--iterations 4] [--out K_prime.npy]
                                             [--refinements 7] [--scan-step 0.01]
                                             [--compare-step 0.01]

Fewer refinements and coarser scans of the 5E/6E drive (in the stabilization and in the
comparison of the transitions; upstream's settings are the defaults) give rougher numbers
in less time (the CI's smoke run).
"""
import argparse
import copy
import time
import types

import numpy as np

from mam_pynn.data import data_file
from mam_pynn.model import MultiAreaModel
from mam_pynn.theory import Theory
from mam_pynn.theory.stabilization import (SCAN, SCHUECKER2017_NETWORK, STABILIZATION_THEORY,
                                           TARGET_FACTOR, _Problem, factor_6E, find_transition,
                                           stabilize)

GROUND_STATE = {'connection_params': {'cc_weights_factor': 1., 'cc_weights_I_factor': 1.}}


def with_K(net, K, f5=1.):
    """Copy of ``net`` with population in-degrees K and 5E/6E drive factor f5."""
    new = types.SimpleNamespace(**vars(net))
    new.K_matrix = np.array(net.K_matrix, float)
    new.K_matrix[:, :-1] = K
    pops = np.array([p for a in net.area_list for p in net.structure[a]])
    new.K_matrix[pops == '5E', -1] *= f5
    new.K_matrix[pops == '6E', -1] *= factor_6E(f5)
    return new


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--iterations', type=int, default=4)
    ap.add_argument('--out', help="save our K' (.npy)")
    ap.add_argument('--refinements', type=int, default=7, help='bisections of each transition')
    ap.add_argument('--scan-step', type=float, default=None,
                    help='step of the 5E/6E drive scan (default: stabilization.SCAN)')
    ap.add_argument('--compare-step', type=float, default=0.01,
                    help="step of the scan locating the transitions of K'_orig and K'_ours")
    args = ap.parse_args()
    scan = SCAN if args.scan_step is None else np.arange(1., TARGET_FACTOR, args.scan_step)
    net = MultiAreaModel(copy.deepcopy(SCHUECKER2017_NETWORK))
    K_orig = np.load(data_file('K_prime_original.npy'))
    K_raw = np.array(net.K_matrix)[:, :-1]
    t0 = time.perf_counter()
    history = []
    K_ours = stabilize(net, iterations=args.iterations, history=history, scan=scan,
                       refinements=args.refinements)
    wall = time.perf_counter() - t0
    if args.out:
        np.save(args.out, K_ours)
    print(f"network: MultiAreaModel(SCHUECKER2017_NETWORK); stabilization: {len(history)} iterations, {wall:.1f} s")
    for i, h in enumerate(history, 1):
        print(f"  iteration {i}: transition at f5 = {h['f_low']:.7f}, saddle t = "
              f"{h['t_saddle']:.2f}, mean rate {h['saddle'].mean():.3f}, critical eigenvalue "
              f"{h['eigenvalue'].real:.4f}, |dK|/|K| = {h['relative_change']:.4f}")
    d_ours, d_orig = K_ours - K_raw, K_orig - K_raw
    print(f"|K'_ours - K'_orig|_F / |K'_orig|_F = "
          f"{np.linalg.norm(K_ours - K_orig) / np.linalg.norm(K_orig):.4f}")
    print(f"largest element difference: {np.abs(K_ours - K_orig).max():.1f} "
          f"(largest K' entry {K_orig.max():.1f})")
    print(f"change from raw K: ours {np.linalg.norm(d_ours) / np.linalg.norm(K_raw):.4f}, "
          f"upstream {np.linalg.norm(d_orig) / np.linalg.norm(K_raw):.4f}; correlation of the "
          f"changes {np.corrcoef(d_ours.ravel(), d_orig.ravel())[0, 1]:.4f}; largest element "
          f"change ours {np.abs(d_ours).max():.1f}, upstream {np.abs(d_orig).max():.1f}")
    problem = _Problem(net, STABILIZATION_THEORY)
    for label, K in (("K'_orig", K_orig), ("K'_ours", K_ours)):
        bracket = find_transition(problem, K, np.arange(1., 1.4, args.compare_step),
                                  refinements=min(3, args.refinements), verbose=False)
        where = 'none below 1.4' if bracket is None else f"f5 = {bracket[0]:.4f}"
        print(f"paper network with {label}: transition to high activity at {where} "
              f"(target 1.2; raw K: {history[0]['f_low']:.4f})")
    spec = dict(STABILIZATION_THEORY)
    for f5 in (1., 1.2):
        r = {}
        for label, K in (('ours', K_ours), ('orig', K_orig), ('raw', K_raw)):
            r[label] = Theory(with_K(net, K, f5), spec).stationary_rates()
        rel = np.max(np.abs(r['ours'] - r['orig']) / (r['orig'] + 1e-3))
        print(f"paper network, 5E/6E drive factor {f5}: mean rate raw K {r['raw'].mean():.3f}, "
              f"K'_orig {r['orig'].mean():.3f}, K'_ours {r['ours'].mean():.3f} spikes/s; "
              f"max per-population difference ours vs orig {rel:.3g} (relative)")
    ground = MultiAreaModel(GROUND_STATE)
    r = {label: Theory(with_K(ground, K), {}).stationary_rates()
         for label, K in (('ours', K_ours), ('orig', K_orig))}
    rel = np.max(np.abs(r['ours'] - r['orig']) / (r['orig'] + 1e-3))
    print(f"ground_state network (chi = 1): mean rate with K'_orig {r['orig'].mean():.3f}, with "
          f"K'_ours {r['ours'].mean():.3f} spikes/s; max per-population relative "
          f"difference {rel:.3g}")


if __name__ == '__main__':
    main()
