"""Our stabilized in-degrees K' against upstream's K_prime_original.npy (Schuecker et al. 2017).

Runs the full stabilization (about a minute on one core) on the network of the paper,
``paper_network()`` (g = -16, rate_ext = 8, chi = 1, no extra 5E/6E drive, raw
in-degrees), prints every correction, then the table of issue 21 for our K' beside
upstream's and whether each target is met:

- the paper network's transition to high activity lies at f5 >= 1.22;
- the change from the raw K correlates >= 0.97 with upstream's change;
- the model's ground state (its defaults with chi = 1) converges to the low-activity
  state, its mean rate within 10 % of that with upstream's K' and every population's
  rate within 25 % (populations below 0.01 spikes/s with both matrices are listed apart).

    python benchmarks/bench_stabilization.py [--cached] [--out K_prime.npy]
        [--iterations 8] [--refinements 7] [--scan-step STEP] [--compare-step 0.01]

Fewer iterations and refinements and coarser scans of the 5E/6E drive (in the
stabilization and in locating the transitions; the defaults are the stabilization's) give
rougher numbers in less time: CI's smoke run (benchmarks/smoke.sh).

``--cached`` reads K' from the cache that ``K_stable: true`` and the figures use
(computing it if missing) instead of timing a fresh run.
"""
import argparse
import time
import types

import numpy as np

from mam_pynn.data import data_file
from mam_pynn.model import MultiAreaModel
from mam_pynn.theory import Theory
from mam_pynn.theory.stabilization import (HISTORY_KEYS, MARGIN, MAX_ITERATIONS, REFINEMENTS,
                                           STABILIZATION_THEORY,
                                           TARGET_FACTOR, _Problem, cached_stabilization,
                                           factor_6E, find_transition, paper_network,
                                           stabilize)

GROUND_STATE = {'connection_params': {'cc_weights_factor': 1., 'cc_weights_I_factor': 1.}}
TARGETS = {'transition': 1.22, 'correlation': 0.97, 'mean_rate': 0.10, 'population_rate': 0.25}
#: rates below this (spikes/s) with both matrices are compared in absolute terms only
LOW_RATE = 0.01


def with_K(net, K, f5=1.):
    """Copy of ``net`` with population in-degrees K and 5E/6E drive factor f5."""
    new = types.SimpleNamespace(**vars(net))
    new.K_matrix = np.array(net.K_matrix, float)
    new.K_matrix[:, :-1] = K
    pops = np.array([p for a in net.area_list for p in net.structure[a]])
    new.K_matrix[pops == '5E', -1] *= f5
    new.K_matrix[pops == '6E', -1] *= factor_6E(f5)
    return new


def transition(net, K, step=0.01):
    """Drive factor f5 at which the paper network's rates jump to high activity (0.001)."""
    bracket = find_transition(_Problem(net, STABILIZATION_THEORY), K, np.arange(1., 1.5, step),
                              refinements=2, verbose=False)
    return np.inf if bracket is None else bracket[0]


def ground_state(K):
    theory = Theory(with_K(MultiAreaModel(GROUND_STATE), K), {})
    _, traj, times = theory.integrate_siegert(full_output=True)
    return traj[:, -1], theory.convergence(traj, times)['converged']


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cached', action='store_true', help="use the cached K' (no timing)")
    ap.add_argument('--out', help="save our K' (.npy)")
    ap.add_argument('--iterations', type=int, default=MAX_ITERATIONS, help='most corrections')
    ap.add_argument('--refinements', type=int, default=REFINEMENTS, help='bisections of each transition')
    ap.add_argument('--scan-step', type=float, default=None,
                    help="step of the stabilization's 5E/6E drive scan (default: its own scan)")
    ap.add_argument('--compare-step', type=float, default=0.01,
                    help="step of the scan locating the transitions of upstream's K' and ours")
    args = ap.parse_args()
    net = paper_network()
    K_raw = np.array(net.K_matrix)[:, :-1]
    K_orig = np.load(data_file('K_prime_original.npy'))
    t0 = time.perf_counter()
    if args.cached:
        res = cached_stabilization(net)
        K_ours, wall = res['K_prime'], res['seconds']
        history = [{k: res[k][i] for k in HISTORY_KEYS} for i in range(len(res['f_low']))]
        how = f"cached ({res['path']}; computed in {wall:.1f} s)"
    else:
        history = []
        scan = None if args.scan_step is None else np.arange(1., TARGET_FACTOR + MARGIN, args.scan_step)
        K_ours = stabilize(net, history=history, iterations=args.iterations, scan=scan,
                           refinements=args.refinements)
        wall = time.perf_counter() - t0
        how = f"{wall:.1f} s"
    if args.out:
        np.save(args.out, K_ours)
    print(f"\nnetwork: paper_network() (g -16, rate_ext 8, chi 1, raw K); aim of the corrections "
          f"{TARGET_FACTOR} + {MARGIN}; {len(history)} corrections, {how}")
    print("| correction | transition f5 | unstable fixed point: mean rate (spikes/s) | "
          "max abs(Phi(nu) - nu) | critical eigenvalue | velocity minimum | abs(dK)/abs(K) |")
    print("|---|---|---|---|---|---|---|")
    for i, h in enumerate(history, 1):
        print(f"| {i} | {h['f_low']:.7f} | {np.mean(h['saddle']):.3f} | {h['residual']:.1e} | "
              f"{np.real(h['eigenvalue']):.4f} | {h['nearest_minimum']} | "
              f"{h['relative_change']:.4f} |")

    d_ours, d_orig = K_ours - K_raw, K_orig - K_raw
    corr = np.corrcoef(d_ours.ravel(), d_orig.ravel())[0, 1]
    f_c = {label: transition(net, K, args.compare_step) for label, K in (('orig', K_orig), ('ours', K_ours))}
    rates, conv = {}, {}
    for label, K in (('orig', K_orig), ('ours', K_ours)):
        rates[label], conv[label] = ground_state(K)
    r_o, r_u = rates['orig'], rates['ours']
    low = (r_o < LOW_RATE) & (r_u < LOW_RATE)
    rel_pop = np.abs(r_u - r_o)[~low] / r_o[~low]
    rel_mean = abs(r_u.mean() - r_o.mean()) / r_o.mean()
    print("\n| measure | upstream's K' (K_prime_original.npy) | our K' |")
    print("|---|---|---|")
    print(f"| paper network: drive f5 at which the rates jump to high activity (target 1.2) | "
          f"{f_c['orig']:.3f} | {f_c['ours']:.3f} |")
    print(f"| change from the raw K, relative Frobenius | "
          f"{np.linalg.norm(d_orig) / np.linalg.norm(K_raw):.4f} | "
          f"{np.linalg.norm(d_ours) / np.linalg.norm(K_raw):.4f} |")
    print(f"| correlation of the change with upstream's | 1 | {corr:.4f} |")
    print(f"| the model's ground-state network (chi = 1): mean rate | {r_o.mean():.3f} spikes/s"
          f"{'' if conv['orig'] else ' (NOT converged)'} | {r_u.mean():.3f} spikes/s"
          f"{'' if conv['ours'] else ' (NOT converged)'} |")
    worst = np.argsort(rel_pop)[::-1][:3]
    names = np.array(net.structure_vec)[~low]
    print("\nground state, per population: largest relative differences "
          + ', '.join(f"{names[k]} {rel_pop[k]:.1%} ({r_o[~low][k]:.3f} vs {r_u[~low][k]:.3f})"
                      for k in worst)
          + f"; {int(low.sum())} populations below {LOW_RATE} spikes/s with both "
          f"(max abs difference {np.abs(r_u - r_o)[low].max(initial=0):.2g} spikes/s)")
    checks = [
        (f"paper network's transition >= {TARGETS['transition']}",
         f_c['ours'] >= TARGETS['transition'], f"{f_c['ours']:.3f}"),
        (f"change correlates >= {TARGETS['correlation']} with upstream's",
         corr >= TARGETS['correlation'], f"{corr:.4f}"),
        ("ground state converges (low activity) with our K'",
         conv['ours'] and r_u.mean() < 20., f"mean {r_u.mean():.3f} spikes/s"),
        (f"ground-state mean rate within {TARGETS['mean_rate']:.0%} of upstream's K'",
         rel_mean <= TARGETS['mean_rate'], f"{rel_mean:.1%}"),
        (f"every population's rate within {TARGETS['population_rate']:.0%}",
         rel_pop.max() <= TARGETS['population_rate'], f"max {rel_pop.max():.1%}"),
    ]
    print()
    for what, ok, value in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {value}")
    print(f"\nbench_stabilization: {sum(ok for _, ok, _ in checks)}/{len(checks)} targets met "
          f"(stabilization {how}; total {time.perf_counter() - t0:.1f} s)")


if __name__ == '__main__':
    main()
