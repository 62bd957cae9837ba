"""Cross-simulator validation: the same network on several backends, compared statistically.

``validate(config, backends, seeds, out_dir)`` runs the network of ``config``
(usually a down-scaled subset) once per backend and seed, each run in its own
process and run directory (``out_dir/runs/<backend>-seed<k>``; a finished run is
reused, never overwritten), and compares per population three statistics after
the initial transient: single-neuron firing rates, CV of the inter-spike
intervals and LvR (:mod:`mam_pynn.analysis.statistics`).

Seeds are the independent units (each seed draws a new network and new inputs,
and neurons of one run are not independent of each other), so:

- means: the per-seed population means of each backend give a mean with a 95 %
  t confidence interval; two backends are compared with Welch's t-test on the
  per-seed means; Holm's method controls the family-wise error over all
  populations x statistics x backend pairs;
- distributions: the Kolmogorov-Smirnov distance between the per-neuron values
  pooled over seeds, with its p-value from permuting the backend labels of whole
  runs (exact over all relabellings when feasible), so seed-to-seed variability
  is part of the null; Benjamini-Hochberg controls the false discovery rate;
- overall level: per seed, the mean over populations of each population's mean
  relative to its mean over both backends; Welch's t-test per statistic and pair
  (Holm). A small bias shared by all populations (e.g. an integrator that injects
  10 % more charge per synapse) is found here long before any single population
  shows it.

Each of the three families is tested at alpha / 3, so the verdict "disagree" is a
false alarm with probability at most alpha. The permutation p-values are discrete:
with n runs per backend the smallest is 2 / C(2n, n) (the observed split and its
mirror image), e.g. 2/252 for 5 seeds, so Benjamini-Hochberg can reject only when
many comparisons reach it at once; the report states the smallest attainable p and
that least number of rejections (``ks_min_p``, ``bh_min_rejections``), and
``validate`` warns when a single comparison cannot be rejected on its own. The simulators *disagree* when any
test rejects after correction; ``report['agree']``
is False then and ``mam validate`` exits non-zero. Outputs (atomic):
``report.json``, ``report.md`` and ``report.png``.
"""
from __future__ import annotations

import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .faults import ChildFailed, run_child
from .io import read_json, read_yaml

METRICS = ('rate', 'cv_isi', 'lvr')
METRIC_LABELS = {'rate': 'rate (spikes/s)', 'cv_isi': 'CV ISI', 'lvr': 'LvR'}
DEFAULT_TRANSIENT_MS = 500.0
MAX_PERMUTATIONS = 2000


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- runs

def _seed_list(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)):
        if seeds < 2:
            raise ValueError(f"validation needs at least 2 seeds per backend, got {seeds}")
        return list(range(1, int(seeds) + 1))
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be at least 2 distinct integers, got {seeds}")
    return seeds


def _check_backends(backends) -> list[str]:
    from .network import check_backend
    if isinstance(backends, str):
        backends = backends.split(',')
    backends = [check_backend(b.strip()) for b in backends]
    if len(backends) < 2 or len(set(backends)) != len(backends):
        raise ValueError(f"validation needs at least 2 distinct backends, got {backends}")
    return backends


_RUN_ONE = """
import json, sys
from mam_pynn.faults import run_command
from mam_pynn.model import MultiAreaModel
from mam_pynn.simulation import Simulation
cfg, backend, run_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
def run():
    M = MultiAreaModel(cfg.get('network_params', {}))
    Simulation(M, cfg.get('sim_params', {}), backend=backend).simulate(run_dir)
sys.exit(run_command('run', run))
"""


def _first_difference(stored, expected, path: str = '') -> str | None:
    """Key path of the first difference between two nested parameter structures, or None
    (lists and tuples compare alike; numbers by value)."""
    if isinstance(stored, dict) and isinstance(expected, dict):
        for k in sorted(set(stored) | set(expected), key=str):
            sub = f'{path}.{k}' if path else str(k)
            if k not in stored or k not in expected:
                return sub
            diff = _first_difference(stored[k], expected[k], sub)
            if diff is not None:
                return diff
        return None
    if isinstance(stored, (list, tuple)) and isinstance(expected, (list, tuple)):
        if len(stored) != len(expected):
            return path
        for i, (a, b) in enumerate(zip(stored, expected)):
            diff = _first_difference(a, b, f'{path}[{i}]')
            if diff is not None:
                return diff
        return None
    if isinstance(stored, float) and isinstance(expected, float) and math.isnan(stored) and math.isnan(expected):
        return None
    return None if stored == expected else path


def _check_reused(run_dir: Path, config: dict, backend: str, seed: int) -> None:
    """A finished run is reused only if it ran this configuration: its config.yaml must
    hold the backend and the resolved network and simulation parameters of this seed."""
    from .params import network_defaults, resolve, sim_defaults
    path = run_dir / 'config.yaml'
    if not path.exists():
        raise ValueError(f"{run_dir} holds a finished run without config.yaml; remove it or "
                         f"choose another --out")
    stored = read_yaml(path) or {}
    expected = {'backend': backend,
                'network_params': resolve(config.get('network_params', {}), network_defaults()),
                'sim_params': resolve(dict(config.get('sim_params', {}), rng_seed=int(seed)),
                                      sim_defaults())}
    diff = _first_difference({k: stored.get(k) for k in expected}, expected)
    if diff is not None:
        raise ValueError(f"{run_dir} holds a finished run of another configuration (first "
                         f"difference: {diff}); remove it or choose another --out")


def run_once(config: dict, backend: str, seed: int, run_dir: Path, progress: bool = True) -> Path:
    """One simulation in its own process (isolated simulator state and peak memory)."""
    run_dir = Path(run_dir)
    if (run_dir / 'summary.json').exists():
        _check_reused(run_dir, config, backend, seed)
        if progress:
            _say(f"reusing the finished run {run_dir}")
        return run_dir
    if run_dir.exists():               # an unfinished earlier attempt: start it afresh
        import shutil
        shutil.rmtree(run_dir)
    cfg = json.loads(json.dumps(config))
    cfg.setdefault('sim_params', {})['rng_seed'] = int(seed)
    stdout = run_child([sys.executable, '-c', _RUN_ONE, json.dumps(cfg), backend, str(run_dir)],
                       f"the {backend} run with seed {seed} (see {run_dir})", 'run: error: ',
                       progress=progress)
    if not (run_dir / 'summary.json').exists():
        raise ChildFailed(f"the {backend} run with seed {seed} wrote no summary.json ({run_dir})", 1, bug=True)
    if progress and stdout.strip():
        _say(stdout.strip().splitlines()[-1])
    return run_dir


# ----------------------------------------------------------------------------- statistics

def run_statistics(run_dir: Path, t_min_ms: float | None = None) -> dict:
    """{'area-pop': {'rate'|'cv_isi'|'lvr': per-neuron array}} of one finished run,
    plus '_meta' (window, summary)."""
    import h5py
    from .analysis import statistics as st
    run_dir = Path(run_dir)
    cfg, summary = read_yaml(run_dir / 'config.yaml'), read_json(run_dir / 'summary.json')
    t_max = float(summary['t_sim_ms'])
    t_min = min(DEFAULT_TRANSIENT_MS, t_max / 4.) if t_min_ms is None else float(t_min_ms)
    if not 0 <= t_min < t_max:
        raise ValueError(f"transient {t_min} ms must lie within the simulated {t_max} ms")
    t_ref = float(cfg['network_params']['neuron_params']['single_neuron_dict']['t_ref'])
    out = {'_meta': {'t_min_ms': t_min, 't_max_ms': t_max, 'summary': summary}}
    with h5py.File(run_dir / 'spikes.h5', 'r') as f:
        for area, pops in cfg['populations'].items():
            if f'spikes/{area}' not in f:
                continue
            ids = np.asarray(f[f'spikes/{area}/node_ids'][:], dtype=np.int64)
            times = np.asarray(f[f'spikes/{area}/timestamps'][:], dtype=np.float64)
            keep = (times >= t_min) & (times < t_max)
            ids, times = ids[keep], times[keep]
            for pop, entry in pops.items():
                first, size = int(entry['first_id']), int(entry['size'])
                sel = (ids >= first) & (ids < first + size)
                neuron, t = ids[sel] - first, times[sel]
                order = np.lexsort((t, neuron))
                neuron, t = neuron[order], t[order]
                out[f'{area}-{pop}'] = {
                    'rate': st.neuron_rates(neuron, size, t_max - t_min),
                    'cv_isi': st.cv_isi(neuron, t, size),
                    'lvr': st.lvr(neuron, t, size, t_ref=t_ref),
                }
    return out


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper): t confidence interval of the mean of finite ``values``."""
    from scipy import stats
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan,) * 3
    m = float(v.mean())
    if v.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


def welch_p(a, b) -> float:
    """Two-sided p of Welch's t-test on finite values; 1 when both are constant and equal."""
    from scipy import stats
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def ks_distance(x, y) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (sup distance of the empirical CDFs)."""
    x, y = np.sort(x), np.sort(y)
    if x.size == 0 or y.size == 0:
        return math.nan
    grid = np.concatenate([x, y])
    return float(np.max(np.abs(np.searchsorted(x, grid, side='right') / x.size
                               - np.searchsorted(y, grid, side='right') / y.size)))


def ks_permutation(runs_a: list, runs_b: list, rng: np.random.Generator) -> tuple[float, float]:
    """(KS distance of the pooled samples, p-value from relabelling whole runs)."""
    runs = [np.asarray(r, float)[np.isfinite(r)] for r in list(runs_a) + list(runs_b)]
    na = len(runs_a)
    pooled = lambda idx: np.concatenate([runs[i] for i in idx]) if len(idx) else np.zeros(0)
    observed = ks_distance(pooled(range(na)), pooled(range(na, len(runs))))
    if not np.isfinite(observed):
        return math.nan, math.nan
    everyone = range(len(runs))
    if math.comb(len(runs), na) <= MAX_PERMUTATIONS:
        splits = [list(c) for c in itertools.combinations(everyone, na)]
    else:
        splits = [list(rng.permutation(len(runs))[:na]) for _ in range(MAX_PERMUTATIONS)]
    null = np.array([ks_distance(pooled(s), pooled([i for i in everyone if i not in set(s)]))
                     for s in splits])
    null = null[np.isfinite(null)]
    p = (np.sum(null >= observed - 1e-12) + (0 if len(splits) < MAX_PERMUTATIONS else 1)) / \
        (null.size + (0 if len(splits) < MAX_PERMUTATIONS else 1))
    return observed, float(p)


def ks_min_p(n_a: int, n_b: int) -> float:
    """The smallest p-value ``ks_permutation`` can return for n_a and n_b runs: the
    observed split always counts, and its mirror image too when n_a == n_b (same distance)."""
    n = math.comb(n_a + n_b, n_a)
    if n <= MAX_PERMUTATIONS:
        return (2 if n_a == n_b else 1) / n
    return 1 / (MAX_PERMUTATIONS + 1)


def bh_min_rejections(p_min: float, m: int, level: float) -> int:
    """Least k such that k p-values at ``p_min`` among m let Benjamini-Hochberg reject
    (q = p_min m / k < level); k > m means the family can reject nothing."""
    return math.floor(p_min * m / level) + 1


def distribution_power_warning(report: dict) -> str | None:
    """A warning when the distribution family cannot reject a single comparison on its own."""
    k, m, p = report.get('bh_min_rejections'), report['n_tested_distributions'], report.get('ks_min_p')
    if k is None or k <= 1:
        return None
    head = (f"warning: the smallest attainable permutation p is {p:.3g} (too few seeds), so "
            f"Benjamini-Hochberg at {report['alpha_per_family']:.3g}")
    if k > m:
        return f"{head} cannot reject any of the {m} distribution comparisons"
    return (f"{head} rejects only when at least {k} of the {m} distribution comparisons reach it; "
            f"a distribution difference confined to fewer goes undetected")


def _adjust_finite(pvalues, adjust) -> np.ndarray:
    """``adjust`` applied to the finite p-values only; NaN stay NaN and are not counted."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, math.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = adjust(p[finite])
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p)
    adj = np.empty_like(p)
    adj[order] = np.minimum(np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]), 1.0)
    return adj


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (NaN stay NaN and are not counted)."""
    return _adjust_finite(pvalues, _holm)


def benjamini_hochberg(pvalues) -> np.ndarray:
    """BH-adjusted p-values (q-values, scipy's false_discovery_control); NaN stay NaN."""
    from scipy.stats import false_discovery_control
    return _adjust_finite(pvalues, false_discovery_control)


def _relative_levels(populations: list, metric: str, backend: str, pair) -> np.ndarray:
    """Per seed of ``backend``: the mean over populations of its population mean divided
    by that population's mean over all runs of ``pair`` (1 = the common level)."""
    rows = []
    for entry in populations:
        ps = entry['metrics'][metric]['per_seed']
        ref = np.nanmean(np.concatenate([np.asarray(ps[x], float) for x in pair]))
        if np.isfinite(ref) and ref > 0:
            rows.append(np.asarray(ps[backend], float) / ref)
    if not rows:
        return np.full(0, math.nan)
    with np.errstate(invalid='ignore'):
        return np.nanmean(np.vstack(rows), axis=0)


def compare(stats_by_backend: dict, alpha: float = 0.05, seed: int = 0) -> dict:
    """Compare per-run statistics: {backend: [run_statistics(...) per seed]} -> report dict."""
    backends = list(stats_by_backend)
    rng = np.random.default_rng(seed)
    pops = [k for k in stats_by_backend[backends[0]][0] if not k.startswith('_')]
    for b in backends:
        for run in stats_by_backend[b]:
            missing = set(pops) - set(run)
            if missing:
                raise ValueError(f"backend {b}: a run lacks populations {sorted(missing)[:3]}")
    populations = []
    tests = []
    for pop in pops:
        entry = {'population': pop, 'metrics': {}}
        for metric in METRICS:
            per_seed = {b: [float(np.nanmean(r[pop][metric])) if np.isfinite(r[pop][metric]).any()
                            else math.nan for r in stats_by_backend[b]] for b in backends}
            m = {'per_seed': per_seed,
                 'mean_ci': {b: mean_ci(per_seed[b]) for b in backends},
                 'n_neurons': {b: int(sum(np.isfinite(r[pop][metric]).sum() for r in stats_by_backend[b]))
                               for b in backends},
                 'comparisons': []}
            for a, b in itertools.combinations(backends, 2):
                d, p_ks = ks_permutation([r[pop][metric] for r in stats_by_backend[a]],
                                         [r[pop][metric] for r in stats_by_backend[b]], rng)
                c = {'pair': [a, b], 'welch_p': welch_p(per_seed[a], per_seed[b]),
                     'ks_distance': d, 'ks_perm_p': p_ks,
                     'ks_min_p': ks_min_p(len(stats_by_backend[a]), len(stats_by_backend[b]))}
                m['comparisons'].append(c)
                tests.append(c)
            entry['metrics'][metric] = m
        populations.append(entry)
    overall = []
    for metric in METRICS:
        for a, b in itertools.combinations(backends, 2):
            rel = {x: _relative_levels(populations, metric, x, (a, b)) for x in (a, b)}
            overall.append({'metric': metric, 'pair': [a, b], 'relative_level': {
                x: mean_ci(rel[x]) for x in (a, b)}, 'welch_p': welch_p(rel[a], rel[b])})
    # three families (population means, distributions, overall levels), each at alpha / 3,
    # so that the verdict "disagree" has a false-alarm probability of at most alpha
    level = alpha / 3
    p_holm = holm([t['welch_p'] for t in tests])
    q_bh = benjamini_hochberg([t['ks_perm_p'] for t in tests])
    p_overall = holm([t['welch_p'] for t in overall])
    for t, ph, qb in zip(tests, p_holm, q_bh):
        t['welch_p_holm'], t['ks_q_bh'] = float(ph), float(qb)
        t['means_differ'] = bool(np.isfinite(ph) and ph < level)
        t['distributions_differ'] = bool(np.isfinite(qb) and qb < level)
    for t, ph in zip(overall, p_overall):
        t['welch_p_holm'] = float(ph)
        t['differ'] = bool(np.isfinite(ph) and ph < level)
    n_means = sum(t['means_differ'] for t in tests)
    n_dist = sum(t['distributions_differ'] for t in tests)
    n_overall = sum(t['differ'] for t in overall)
    # what the discrete permutation p-values allow BH to reject at all
    p_mins = [t['ks_min_p'] for t in tests if np.isfinite(t['ks_perm_p'])]
    p_min = min(p_mins) if p_mins else math.nan
    k_min = bh_min_rejections(p_min, len(p_mins), level) if p_mins else None
    return {'backends': backends, 'alpha': alpha, 'alpha_per_family': level, 'metrics': list(METRICS),
            'n_tests': len(tests), 'n_tested_means': int(np.isfinite(p_holm).sum()),
            'n_tested_distributions': int(np.isfinite(q_bh).sum()),
            'n_means_differ': int(n_means), 'n_distributions_differ': int(n_dist),
            'ks_min_p': p_min, 'bh_min_rejections': k_min,
            'overall': overall, 'n_overall_differ': int(n_overall),
            'agree': bool(n_means == 0 and n_dist == 0 and n_overall == 0),
            'populations': populations}


# ----------------------------------------------------------------------------- outputs

def _plain(obj):
    """JSON-safe copy; unlike simulation._plain, NaN becomes None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _fmt(x, digits=3) -> str:
    return '–' if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def report_markdown(report: dict) -> str:
    b = report['backends']
    lines = [f"# Cross-simulator validation: {', '.join(b)}", '',
             f"**Verdict: {'the simulators agree' if report['agree'] else 'THE SIMULATORS DISAGREE'}** "
             f"(alpha = {report['alpha']}; {report['n_means_differ']} of {report['n_tested_means']} "
             f"mean comparisons differ after Holm, {report['n_distributions_differ']} of "
             f"{report['n_tested_distributions']} distribution comparisons differ after "
             f"Benjamini-Hochberg), {report['n_overall_differ']} of {len(report['overall'])} overall "
             f"levels differ after Holm; each family at alpha/3 = {report['alpha_per_family']:.4g}).", '',
             f"Smallest attainable permutation p: {_fmt(report.get('ks_min_p'))}; Benjamini-Hochberg "
             f"rejects a distribution comparison only when at least {report.get('bh_min_rejections')} of "
             f"{report['n_tested_distributions']} reach it.", '',
             '## Overall level (mean over populations of the population mean relative to the pair\'s '
             'common mean; 1 = equal)', '', '| statistic | pair | level (first) | level (second) | p (Holm) |',
             '|---|---|---|---|---|']
    for t in report['overall']:
        a, b2 = t['pair']
        lv = lambda x: '{} [{}, {}]'.format(*(_fmt(v) for v in t['relative_level'][x]))
        lines.append(f"| {METRIC_LABELS[t['metric']]} | {a}–{b2} | {lv(a)} | {lv(b2)} | "
                     f"{_fmt(t['welch_p_holm'], 2)}{'*' if t['differ'] else ''} |")
    lines.append('')
    warning = distribution_power_warning(report)
    if warning:
        lines += [f"**{warning[0].upper() + warning[1:]}.**", '']
    run = report.get('run', {})
    if run:
        lines += [f"Seeds: {run.get('seeds')}; simulated {run.get('t_sim_ms')} ms per run, statistics "
                  f"over [{run.get('t_min_ms')}, {run.get('t_sim_ms')}) ms; "
                  f"{run.get('neurons')} neurons, {run.get('synapses')} synapses. "
                  f"Command: `{run.get('command', '')}`", '']
    lines += ['Means over seeds with 95 % t confidence intervals; p: Welch t-test on the per-seed means '
              '(Holm-adjusted); q: permutation KS test on the per-neuron distributions pooled over '
              'seeds (BH-adjusted). * marks a rejection.', '']
    pairs = [f"{c['pair'][0]}–{c['pair'][1]}" for c in
             report['populations'][0]['metrics']['rate']['comparisons']] if report['populations'] else []
    for metric in report['metrics']:
        lines += [f"## {METRIC_LABELS[metric]}", '',
                  '| population | ' + ' | '.join(b) + ' | ' + ' | '.join(f'{p} p / q' for p in pairs) + ' |',
                  '|---' * (1 + len(b) + len(pairs)) + '|']
        for entry in report['populations']:
            m = entry['metrics'][metric]
            cells = []
            for be in b:
                mean, lo, hi = m['mean_ci'][be]
                cells.append(f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}]")
            for c in m['comparisons']:
                star = lambda flag: '*' if flag else ''
                cells.append(f"{_fmt(c['welch_p_holm'], 2)}{star(c['means_differ'])} / "
                             f"{_fmt(c['ks_q_bh'], 2)}{star(c['distributions_differ'])}")
            lines.append(f"| {entry['population']} | " + ' | '.join(cells) + ' |')
        lines.append('')
    timing = report.get('timing')
    if timing:
        lines += ['## Cost per run (median over seeds; a first run that compiled code counts as one)', '',
                  '| backend | build s | sim s | peak RSS MB |',
                  '|---|---|---|---|']
        for be, t in timing.items():
            lines.append(f"| {be} | {_fmt(t['build_s'])} | {_fmt(t['sim_s'])} | {_fmt(t['peak_rss_mb'])} |")
        lines.append('')
    return '\n'.join(lines)


def report_figure(report: dict, path: Path) -> None:
    from .analysis.plots import pyplot
    plt = pyplot()
    pops = [e['population'] for e in report['populations']]
    b = report['backends']
    fig, axes = plt.subplots(len(report['metrics']), 1, figsize=(max(6, 0.45 * len(pops) + 2), 7.5),
                             sharex=True)
    x = np.arange(len(pops))
    for ax, metric in zip(np.atleast_1d(axes), report['metrics']):
        for k, be in enumerate(b):
            mci = np.array([e['metrics'][metric]['mean_ci'][be] for e in report['populations']], float)
            off = (k - (len(b) - 1) / 2) * 0.22
            err = np.abs(np.vstack([mci[:, 0] - mci[:, 1], mci[:, 2] - mci[:, 0]]))
            ax.errorbar(x + off, mci[:, 0], yerr=np.nan_to_num(err), fmt='o', ms=3.5, capsize=2, label=be)
            for s_vals in zip(*[e['metrics'][metric]['per_seed'][be] for e in report['populations']]):
                ax.plot(x + off, s_vals, '.', ms=1.5, color=ax.lines[-1].get_color(), alpha=0.5)
        for i, e in enumerate(report['populations']):
            if any(c['means_differ'] or c['distributions_differ'] for c in e['metrics'][metric]['comparisons']):
                ax.axvspan(i - 0.5, i + 0.5, color='red', alpha=0.08)
        ax.set_ylabel(METRIC_LABELS[metric])
    axes[0].legend(fontsize=8, ncol=len(b))
    axes[0].set_title('mean over seeds, 95 % CI (dots: seeds; red: populations that differ)', fontsize=9)
    axes[-1].set_xticks(x, pops, rotation=60, fontsize=8)
    fig.tight_layout()
    from .io import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format='png')
    plt.close(fig)


# ----------------------------------------------------------------------------- entry point

def _invocation() -> str:
    """The `mam ...` command line when called from the CLI, else ''."""
    if sys.argv and Path(sys.argv[0]).name == 'mam':
        return ' '.join(['mam'] + sys.argv[1:])
    return ''


def validate(config: dict | None = None, backends=('nest', 'neuron', 'brian2'), seeds=5,
             out_dir='validation', alpha: float = 0.05, t_min_ms: float | None = None,
             progress: bool = True, command: str | None = None) -> dict:
    """Run ``config`` on every backend with every seed and compare them (see the module doc).

    config: {'network_params': ..., 'sim_params': ...} as ``mam`` reads it (the
        seed is set per run); seeds: a count n (seeds 1..n) or a list;
    out_dir: gets runs/, report.json, report.md, report.png; refused if it already
        holds a report. Returns the report dict; ``report['agree']``.
    """
    config = dict(config or {})
    unknown = set(config) - {'network_params', 'sim_params', 'theory_params', 'backend'}
    if unknown:
        raise KeyError(f"unknown config section(s) {sorted(unknown)}; expected network_params, sim_params")
    backends, seeds = _check_backends(backends), _seed_list(seeds)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    out = Path(out_dir)
    if (out / 'report.json').exists():
        raise FileExistsError(f"{out} already holds a validation report; choose another --out")
    cfg = {k: v for k, v in config.items() if k in ('network_params', 'sim_params')}
    # check the parameters once, here, before any run
    from .params import resolve, sim_defaults
    sim = resolve(cfg.get('sim_params', {}), sim_defaults())
    t0 = time.perf_counter()
    stats, summaries = {}, {}
    for b in backends:
        stats[b], summaries[b] = [], []
        for s in seeds:
            if progress:
                _say(f"validate: {b}, seed {s} ({len(seeds) * backends.index(b) + seeds.index(s) + 1}"
                     f"/{len(seeds) * len(backends)})")
            run_dir = run_once(cfg, b, s, out / 'runs' / f'{b}-seed{s}', progress)
            st = run_statistics(run_dir, t_min_ms)
            summaries[b].append(st.pop('_meta'))
            stats[b].append(st)
    report = compare(stats, alpha=alpha)
    meta0 = summaries[backends[0]][0]
    report['run'] = {'seeds': seeds, 't_sim_ms': meta0['t_max_ms'], 't_min_ms': meta0['t_min_ms'],
                     'neurons': meta0['summary'].get('neurons'),
                     'synapses': meta0['summary'].get('synapses'),
                     'areas_simulated': meta0['summary'].get('areas_simulated', sim['areas_simulated']),
                     'config': cfg, 'command': command or _invocation(), 'wall_s': time.perf_counter() - t0}
    report['timing'] = {b: {k: float(np.median([m['summary'].get(k, math.nan) for m in summaries[b]]))
                            for k in ('build_s', 'sim_s', 'peak_rss_mb')} for b in backends}
    from .io import atomic_write_json, atomic_write_text
    report = _plain(report)
    report_figure(report, out / 'report.png')
    atomic_write_text(out / 'report.md', report_markdown(report))
    atomic_write_json(out / 'report.json', report)
    warning = distribution_power_warning(report)
    if warning:
        _say(f"validate: {warning}")
    if progress:
        _say(f"validate: {'AGREE' if report['agree'] else 'DISAGREE'}: "
             f"{report['n_means_differ']}/{report['n_tested_means']} means, "
             f"{report['n_distributions_differ']}/{report['n_tested_distributions']} distributions and "
             f"{report['n_overall_differ']}/{len(report['overall'])} overall levels "
             f"differ after correction; report in {out}")
    return report
