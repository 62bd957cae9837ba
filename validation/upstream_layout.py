"""Upstream's own Analysis writes its data layout; our reader gives upstream's numbers (issue 25).

    python validation/upstream_layout.py UPSTREAM_SRC [--work DIR] [--t-sim MS]

UPSTREAM_SRC: a checkout of INM-6/multi-area-model (@355d940), e.g. from the bare mirror
    mkdir /tmp/upstream && git -C /work/.mirror/INM-6+multi-area-model/repo archive HEAD \\
        multiarea_model tests figures/SchueckerSchmidt2017/K_prime_original.npy | tar -x -C /tmp/upstream
Nothing of upstream's is copied into this project: it is imported from UPSTREAM_SRC, run
with NEST 3.10 and numpy 2 through shims set here (np.Inf, np.NINF, np.NaN; Simulation.memory
without NEST 2's SLI call; minimal nested_dict and dicthash modules if those packages are
absent). Upstream writes into UPSTREAM_SRC (its custom_data_files) and into --work.

1. Upstream's tests/test_analysis.py network (V1, V2; N_scaling 0.001, K_scaling 0.0001,
   500 ms) is simulated by upstream's Simulation; its Analysis computes every member with
   t_min 100 ms (as that test) and save() writes <work>/data/<label>/Analysis/.
2. mam_pynn.analysis.layout.LabelledRun reads that folder: every value must be upstream's
   in-memory member (rates, LvR, CV, synchrony, rate distributions, rate and synaptic-input
   series, their parameters, the spike files).
3. The same spikes as one of our run directories, through our Analysis and
   save(layout='upstream'): our files must hold upstream's numbers, up to upstream's use of
   the model's fractional population sizes N where we divide by the simulated int(N)
   (rates and rate series compared as rate x size), and except pop_rate_dists (upstream's
   loop drops each neuron's first spike but the first neuron's; ours counts every spike).
Prints one line per check and a summary; exit status 1 if any check fails. Takes ~1-2 min.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path

import numpy as np

FAILED: list[str] = []


def check(name: str, ok: bool, detail: str = '') -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}", flush=True)
    if not ok:
        FAILED.append(name)


def same(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-12, atol=0., equal_nan=True))


def shims(work: Path, src: Path) -> None:
    """config.py for upstream, numpy 2 names, and the two small packages it imports."""
    (work / 'data').mkdir(parents=True, exist_ok=True)
    (src / 'config_files').mkdir(exist_ok=True)     # upstream keeps each model's parameters there
    (work / 'config.py').write_text(f"base_path = {str(src)!r}\ndata_path = {str(work / 'data')!r}\n"
                                    "jobscript_template = ''\nsubmit_cmd = ''\n")
    sys.path[:0] = [str(work), str(src)]
    np.Inf, np.NINF, np.NaN = np.inf, -np.inf, np.nan
    try:
        import nested_dict  # noqa: F401
    except ImportError:
        from collections import defaultdict

        class NestedDict(defaultdict):
            def __init__(self):
                super().__init__(NestedDict)

            def to_dict(self):
                return {k: v.to_dict() if isinstance(v, NestedDict) else v for k, v in self.items()}
        sys.modules['nested_dict'] = types.SimpleNamespace(nested_dict=NestedDict)
    try:
        import dicthash  # noqa: F401
    except ImportError:
        import hashlib

        def generate_hash_from_dict(d, blacklist=None, whitelist=None, raise_on_raw=False):
            return hashlib.md5(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()
        pkg = types.ModuleType('dicthash')
        pkg.dicthash = types.SimpleNamespace(generate_hash_from_dict=generate_hash_from_dict)
        sys.modules['dicthash'] = pkg


def run_upstream(src: Path, t_sim: float = 500.):
    """Upstream's test_analysis.py (``t_sim``: its 500 ms), its Analysis members computed and saved."""
    from multiarea_model import MultiAreaModel
    from multiarea_model.simulation import Simulation
    Simulation.memory = lambda self: 0.          # NEST 3.10 has no SLI memory_thisjob
    os.chdir(src / 'tests')                        # the test reads fullscale_rates.json from here
    fn = str(src / 'tests' / 'fullscale_rates.json')
    network_params = {'connection_params': {'replace_non_simulated_areas': 'het_poisson_stat',
                                            'replace_cc_input_source': fn},
                      'N_scaling': 0.001, 'K_scaling': 0.0001, 'fullscale_rates': 'fullscale_rates.json'}
    sim_params = {'t_sim': t_sim, 'areas_simulated': ['V1', 'V2']}
    M = MultiAreaModel(network_params, simulation=True, sim_spec=sim_params)
    M.simulation.simulate()
    M = MultiAreaModel(network_params, simulation=True, sim_spec=sim_params, analysis=True)
    a = M.analysis
    for create in (a.create_pop_rates, a.create_pop_rate_dists, a.create_synchrony, a.create_rate_time_series,
                   a.create_synaptic_input, a.create_pop_cv_isi, a.create_pop_LvR):
        create(t_min=100.)
    a.save()
    return M


def check_reader(M, data_path: Path) -> None:
    from mam_pynn.analysis.layout import LabelledRun
    a, r = M.analysis, LabelledRun(data_path, M.simulation.label)
    areas = a.areas_loaded
    rates = r.pop_rates()
    check('pop_rates.json: rate of every population and area', all(
        rates[area][pop] == a.pop_rates[area][pop][0] for area in areas for pop in M.structure[area])
        and all(rates[area]['total'] == a.pop_rates[area]['total'] for area in areas),
        f"{sum(len(M.structure[x]) for x in areas)} populations, "
        f"{sum(a.spike_data[x][q].shape[0] for x in areas for q in M.structure[x])} spikes, "
        f"V1 rate {a.pop_rates['V1']['total']:.3f} spikes/s")
    for name, table in (('pop_LvR', r.pop_LvR()), ('pop_cv_isi', r.pop_cv_isi()), ('synchrony', r.synchrony())):
        member = getattr(a, name)
        values = [table[area][pop] for area in areas for pop in M.structure[area]]
        check(f'{name}.json', all(same(table[area][pop], member[area][pop])
                                  for area in areas for pop in M.structure[area]),
              f"{np.count_nonzero(np.nan_to_num(values))} of {len(values)} populations non-zero")
        check(f'{name} parameters', r.parameters(name) == json.loads(json.dumps(member['Parameters'])))
    for name in ('rate_time_series', 'synaptic_input'):
        member = getattr(a, name)
        check(f'{name}-<area>.npy', all(same(r.analysis_array(name, area), member[area]) for area in areas))
        pops = getattr(a, f'{name}_pops')
        check(f'{name}_pops-<area>-<pop>.npy', all(same(r.analysis_array(f'{name}_pops', area, pop), pops[area][pop])
                                                    for area in areas for pop in M.structure[area]))
        check(f'{name}_pops-parameters', r.parameters(f'{name}_pops')['t_min'] == pops['Parameters']['t_min'] == 100.)
    ok = True
    for area in areas:
        for pop in M.structure[area]:
            d, m = r.pop_rate_dists(area, pop), a.pop_rate_dists[area][pop]
            ok &= same(d['histogram'], m['histogram']) and same(d['stats']['mu'], m['stats']['mu']) \
                and same(d['stats']['sigma'], m['stats']['sigma'])
    check('pop_rate_dists-<area>-<pop>-{histogram,stats-mu,stats-sigma}.npy', ok)
    check('recordings/<label>-spikes-<area>-<pop>.npy', all(
        same(r.spikes(area, pop), a.spike_data[area][pop]) for area in areas for pop in M.structure[area]))


def ours_from_upstreams_spikes(M, work: Path) -> Path:
    """Our run directory holding upstream's spikes (area-local ids from its network_gids.txt)."""
    import yaml
    from mam_pynn.io import atomic_write_json, write_sonata_spikes
    from mam_pynn.params import network_defaults, sim_defaults
    run = work / 'ours_run'
    run.mkdir(parents=True, exist_ok=True)
    rec = Path(M.simulation.data_dir) / 'recordings'
    gids = [line.split(',') for line in (rec / 'network_gids.txt').read_text().split()]
    layout, area_spikes = {}, {}
    for area, pop, g0, g1 in gids:
        first = min(int(g[2]) for g in gids if g[0] == area)
        layout.setdefault(area, {})[pop] = {'first_id': int(g0) - first, 'size': int(g1) - int(g0) + 1}
        d = M.analysis.spike_data[area][pop]
        ids, t = area_spikes.get(area, (np.empty(0, np.int64), np.empty(0)))
        area_spikes[area] = (np.concatenate([ids, d[:, 0].astype(np.int64) - first]), np.concatenate([t, d[:, 1]]))
    write_sonata_spikes(run / 'spikes.h5', {a: (ids[np.argsort(t, kind='stable')], np.sort(t, kind='stable'))
                                            for a, (ids, t) in area_spikes.items()})
    sim = sim_defaults()
    sim.update(t_sim=M.simulation.T, areas_simulated=list(layout))
    (run / 'config.yaml').write_text(yaml.safe_dump({'label': 'upstream-spikes', 'backend': 'nest',
                                                     'network_params': network_defaults(), 'sim_params': sim,
                                                     'populations': layout}, sort_keys=False))
    atomic_write_json(run / 'summary.json', {'status': 'completed', 't_sim_ms': M.simulation.T,
                                             't_sim_requested_ms': M.simulation.T})
    return run


def check_ours(M, work: Path) -> None:
    from mam_pynn.analysis import Analysis
    from mam_pynn.analysis.layout import LabelledRun
    run = ours_from_upstreams_spikes(M, work)
    ours = Analysis(None, run_dir=run)
    for create in (ours.create_pop_rates, ours.create_synchrony, ours.create_rate_time_series,
                   ours.create_pop_cv_isi, ours.create_pop_LvR):
        create(t_min=100.)
    ours.save(layout='upstream', data_path=work / 'data', label='ours')
    r, u = LabelledRun(work / 'data', 'ours'), LabelledRun(work / 'data', M.simulation.label)
    areas, N = M.analysis.areas_loaded, M.N
    size = {(x, p): ours._size(x, p) for x in areas for p in M.structure[x]}
    ratio = [N[x][p] / size[(x, p)] for (x, p) in size]
    check('our sizes are int(N) of upstream', all(size[(x, p)] == int(N[x][p]) for (x, p) in size),
          f"N / int(N) from {min(ratio):.4f} to {max(ratio):.4f}")
    ra, ua = r.pop_rates(), u.pop_rates()
    check('our pop_rates x int(N) == upstream rate x N', all(
        np.isclose(ra[x][p] * size[(x, p)], ua[x][p] * N[x][p], rtol=1e-12, atol=0) for (x, p) in size))
    for name in ('pop_LvR', 'pop_cv_isi', 'synchrony'):
        ours_t, theirs = getattr(r, name)(), getattr(u, name)()
        check(f'our {name} == upstream', all(same(ours_t[x][p], theirs[x][p]) for (x, p) in size))
    check('our rate_time_series_pops x int(N) == upstream x N', all(
        same(r.analysis_array('rate_time_series_pops', x, p) * size[(x, p)],
             u.analysis_array('rate_time_series_pops', x, p) * N[x][p]) for (x, p) in size))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('upstream', type=Path, help="upstream's source checkout (multiarea_model/, tests/)")
    p.add_argument('--work', type=Path, default=None, help='working folder (default: a new temporary one)')
    p.add_argument('--t-sim', type=float, default=500., help="ms simulated (default 500, upstream's test)")
    args = p.parse_args(argv)
    import tempfile
    src = args.upstream.resolve()
    work = (args.work or Path(tempfile.mkdtemp(prefix='mam_upstream_layout_'))).resolve()
    shims(work, src)
    M = run_upstream(src, args.t_sim)
    print(f"upstream's layout: {work / 'data' / M.simulation.label}", flush=True)
    check_reader(M, work / 'data')
    check_ours(M, work)
    print(f"upstream layout check: {'all checks passed' if not FAILED else f'{len(FAILED)} FAILED: ' + ', '.join(FAILED)}")
    return 1 if FAILED else 0


if __name__ == '__main__':
    sys.exit(main())
