"""NEURON and Brian2 backends: numpy draws, compiled-code caches, same network on all backends.

The cross-backend builds run each simulator in its own process (as ``mam validate``
does), so NEST, NEURON and Brian2 never share one interpreter.
"""
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from mam_pynn.connectivity import cache_dir
from mam_pynn.network.drawing import draw_projection, on_grid
from mam_pynn.network.neuron_backend import charge_factor

HERE = Path(__file__).parent
BACKENDS = ('nest', 'neuron', 'brian2')


def spec(n=20000, w=87.8, sd=8.78, d=1.5, d_sd=0.75, lognormal=False):
    return SimpleNamespace(source=('V1', '23E'), target=('V1', '4E'), n=n, weight_mean_pa=w,
                           weight_sd_pa=sd, lognormal=lognormal, delay_mean_ms=d, delay_sd_ms=d_sd,
                           sign=-1.0 if w < 0 else 1.0)


# ------------------------------------------------------------------ drawing (no simulator)

@pytest.mark.parametrize('w', [87.8, -351.2])
def test_draw_projection_counts_signs_and_moments(w):
    s = spec(w=w, sd=abs(w) * 0.5)   # wide enough that the sign constraint matters
    d = draw_projection(s, 300, 200, 0.1, np.random.default_rng(1))
    assert len(d.sources) == len(d.targets) == len(d.weights_pa) == s.n
    assert d.sources.min() >= 0 and d.sources.max() < 300 and d.targets.max() < 200
    assert np.all(np.sign(d.weights_pa) * np.sign(w) >= 0)          # sign kept by redrawing
    assert np.all(d.delays_ms >= 0.1 - 1e-12)
    np.testing.assert_allclose(d.delays_ms / 0.1, np.rint(d.delays_ms / 0.1), atol=1e-9)
    # multapses: with 20000 draws among 60000 pairs, repeats must occur
    assert len(np.unique(d.sources * 200 + d.targets)) < s.n
    # uniform sources and targets: Pearson's chi-square against equal counts
    for idx, n_pop in ((d.sources, 300), (d.targets, 200)):
        counts = np.bincount(idx, minlength=n_pop)
        expected = s.n / n_pop
        assert np.sum((counts - expected) ** 2 / expected) < stats.chi2.ppf(0.999, n_pop - 1)


def test_draw_projection_moments_match_untruncated_normal():
    s = spec(n=40000)               # sd = 10 % of the mean: truncation is negligible
    d = draw_projection(s, 100, 100, 0.1, np.random.default_rng(2))
    se = s.weight_sd_pa / math.sqrt(s.n)
    assert abs(d.weights_pa.mean() - s.weight_mean_pa) < 4 * se
    assert abs(d.weights_pa.std() - s.weight_sd_pa) < 0.05 * s.weight_sd_pa


def test_draw_projection_lognormal_keeps_sign_and_mean():
    s = spec(n=40000, w=-100., sd=50., lognormal=True)
    d = draw_projection(s, 100, 100, 0.1, np.random.default_rng(3))
    assert np.all(d.weights_pa < 0)
    assert abs(d.weights_pa.mean() + 100.) < 4 * 50. / math.sqrt(s.n)


def test_draw_is_reproducible_and_seed_dependent():
    a = draw_projection(spec(n=1000), 50, 50, 0.1, np.random.default_rng(7))
    b = draw_projection(spec(n=1000), 50, 50, 0.1, np.random.default_rng(7))
    c = draw_projection(spec(n=1000), 50, 50, 0.1, np.random.default_rng(8))
    assert np.array_equal(a.sources, b.sources) and np.array_equal(a.weights_pa, b.weights_pa)
    assert not np.array_equal(a.sources, c.sources)


def test_impossible_redraw_is_a_clear_error():
    with pytest.raises(ValueError, match='delays'):
        draw_projection(spec(n=10, d=-100., d_sd=1.), 5, 5, 0.1, np.random.default_rng(0))


def test_on_grid_rounds_and_floors_at_dt():
    np.testing.assert_allclose(on_grid([0.01, 0.14, 0.16, 2.0], 0.1), [0.1, 0.1, 0.2, 2.0])


def test_charge_factor_makes_fixed_step_charge_exact():
    dt, tau = 0.1, 0.5
    f = charge_factor(tau, dt)
    # NEURON's fixed step injects w dt sum_k exp(-k dt / tau) = w dt / (1 - exp(-dt/tau))
    assert f * dt / (1 - math.exp(-dt / tau)) == pytest.approx(tau)
    assert charge_factor(tau, 1e-4) == pytest.approx(1.0, abs=1e-3)


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv('MAM_CACHE_DIR', str(tmp_path / 'c'))
    assert cache_dir('x') == tmp_path / 'c' / 'x' and (tmp_path / 'c' / 'x').is_dir()


@pytest.mark.parametrize('module, cls', [('generic', 'PyNNBackend'), ('neuron_backend', 'NeuronBackend'),
                                         ('brian2_backend', 'Brian2Backend')])
def test_python_backends_refuse_too_many_synapses(module, cls, monkeypatch):
    """Checked before any simulator is touched (no __init__ here: the plan check alone)."""
    import importlib
    from mam_pynn.network import base
    be = object.__new__(getattr(importlib.import_module(f'mam_pynn.network.{module}'), cls))
    be.name, be.max_synapses = cls, 1000
    plan = SimpleNamespace(dt=0.1, n_synapses=1000, currents=[])
    be.check_plan(plan)                                   # at the limit: fine
    plan.n_synapses = 1001
    with pytest.raises(ValueError, match=r'1,001 synapses, above the limit of 1,000.*use backend nest'):
        be.check_plan(plan)
    be.max_synapses = None                                # the module constant
    monkeypatch.setattr(base, 'MAX_SYNAPSES_PYTHON_BACKENDS', 500)
    with pytest.raises(ValueError, match='limit of 500'):
        be.check_plan(SimpleNamespace(dt=0.1, n_synapses=501, currents=[]))
    be.check_plan(SimpleNamespace(dt=0.1, n_synapses=500, currents=[]))


# ------------------------------------------------------------------ compiled code is cached

def test_neuron_mechanisms_compiled_once():
    from mam_pynn.network.neuron_backend import _compiled_lib, mechanisms_dir
    first = mechanisms_dir()           # compiles (about a minute) only on the very first use
    lib = _compiled_lib(first)
    assert lib is not None
    mtime = lib.stat().st_mtime_ns
    assert mechanisms_dir() == first and lib.stat().st_mtime_ns == mtime


_LOAD_FROM_CACHE = r"""
import io, contextlib, sys
import neuron
from mam_pynn.network import neuron_backend as nb
pynn_dir = nb._pynn_mechanism_dir()
real = nb._compiled_lib
nb._compiled_lib = lambda p: None if p == pynn_dir else real(p)   # as if pyNN had compiled nothing
nb.load_mechanisms()
with contextlib.redirect_stdout(io.StringIO()):
    import pyNN.neuron as sim
sim.setup(timestep=0.1)
p = sim.Population(2, sim.IF_curr_exp())
sim.run(1.0)
print('LOADED', str(nb.mechanisms_dir()) in neuron.nrn_dll_loaded, len(p))
"""


def test_neuron_loads_mechanisms_from_the_cache():
    """pyNN.neuron imports and runs on the cached mechanisms without compiling its own."""
    res = subprocess.run([sys.executable, '-c', _LOAD_FROM_CACHE], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'LOADED True 2' in res.stdout
    assert 'nrnivmodl' not in res.stderr


# ------------------------------------------------------------------ the same network everywhere

_BUILD = r"""
import json, sys
sys.path.insert(0, sys.argv[2])
from net_helpers import small_model, build
backend = sys.argv[1]
M = small_model()
plan, built = build(M, backend, areas=('V1',), seed=3)
sizes = {f"{a}-{p}": int(len(h.all_cells) if hasattr(h, 'all_cells') and backend != 'brian2' else h.size)
         for (a, p), h in built.populations.items()}
if backend == 'nest':
    import nest
    pairs = {(s.source, s.target) for s in plan.projections}
    n = sum(len(nest.GetConnections(source=built.populations[s].node_collection,
                                    target=built.populations[t].node_collection)) for s, t in pairs)
elif backend == 'brian2':
    n = built.backend.count_connections()
    sizes['_group'] = int(len(built.backend.pop.brian2_group))
else:
    n = built.backend.count_connections()
print('RESULT' + json.dumps({'sizes': sizes, 'connections': int(n), 'planned': int(plan.n_synapses),
      'planned_sizes': {f"{p.area}-{p.pop}": p.size for p in plan.populations}}))
"""


@pytest.fixture(scope='module')
def builds():
    out = {}
    for b in BACKENDS:
        res = subprocess.run([sys.executable, '-c', _BUILD, b, str(HERE)], capture_output=True,
                             text=True, timeout=900)
        assert res.returncode == 0, f"{b} build failed:\n{res.stderr[-3000:]}"
        line = [ln for ln in res.stdout.splitlines() if ln.startswith('RESULT')][-1]
        out[b] = json.loads(line[len('RESULT'):])
    return out


def test_same_neurons_on_all_backends(builds):
    planned = builds['nest']['planned_sizes']
    for b in BACKENDS:
        sizes = {k: v for k, v in builds[b]['sizes'].items() if not k.startswith('_')}
        assert sizes == planned, b
    assert builds['brian2']['sizes']['_group'] == sum(planned.values())


def test_same_connections_on_all_backends(builds):
    planned = builds['nest']['planned']
    assert planned > 0
    for b in BACKENDS:
        assert builds[b]['connections'] == planned, b


def test_rates_agree_across_backends(tmp_path):
    """A tiny V1 on the three backends, 3 seeds each: mam validate finds no disagreement."""
    from mam_pynn.validate import validate
    cfg = {'network_params': {'N_scaling': 0.002, 'K_scaling': 0.01,
                              'fullscale_rates': 'fullscale_rates.json',
                              'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
           'sim_params': {'t_sim': 300., 'areas_simulated': ['V1'],
                          'recording_dict': {'areas_recorded': ['V1']}}}
    report = validate(cfg, backends=BACKENDS, seeds=3, out_dir=tmp_path / 'v', progress=False)
    assert report['n_tested_means'] > 0
    assert report['agree'], [c for e in report['populations'] for m in e['metrics'].values()
                             for c in m['comparisons'] if c['means_differ'] or c['distributions_differ']]
    rates = {b: np.nanmean([e['metrics']['rate']['mean_ci'][b][0] for e in report['populations']])
             for b in BACKENDS}
    assert all(r > 0.5 for r in rates.values()), rates     # the network is active at all
    assert (tmp_path / 'v' / 'report.md').exists() and (tmp_path / 'v' / 'report.png').exists()


_DRIVE = r"""
import sys, numpy as np
from mam_pynn.network import build_network, make_backend
from mam_pynn.network.plan import NetworkPlan, PopulationSpec, PoissonSpec
from mam_pynn.params import SINGLE_NEURON_DICT
nrn = dict(SINGLE_NEURON_DICT, V_th=1000.)          # never fires: V_m integrates the drive
plan = NetworkPlan(areas=['V1'], structure={'V1': ['23E']}, neuron_params=nrn, v0_mean=-65.,
                   v0_sd=0., dt=0.1)
plan.populations.append(PopulationSpec('V1', '23E', 200, 0.))
# 20 kHz per neuron, split in two inputs that merge (same weight and delay), one that does not
plan.poisson += [PoissonSpec(('V1', '23E'), 12000., 10., 1.0, 'a'),
                 PoissonSpec(('V1', '23E'), 8000., 10., 1.0, 'b'),
                 PoissonSpec(('V1', '23E'), 1000., -20., 3.0, 'c')]
be = make_backend(sys.argv[1]); be.setup(0.1, 5, 1)
build_network(plan, be, recorded_areas=['V1'], progress=None,
              vm={'fraction': 1.0, 'dict': {'start': 0., 'stop': 1000., 'interval': 0.1}})
be.prepare(); be.run(300.)
ids, t, v = be.vm('V1')
late = t >= 50.
print('VM', v[late].mean(), v[late].std(), v[t < 0.95].mean())
"""


@pytest.mark.parametrize('backend', BACKENDS)
def test_poisson_drive_above_one_spike_per_step_is_exact(backend):
    """20 kHz into each neuron (2 inputs per 0.1 ms step): the mean membrane potential is
    that of the exact shot noise (pyNN.brian2's SpikeSourcePoisson would saturate at 10 kHz),
    and nothing arrives before the delay."""
    res = subprocess.run([sys.executable, '-c', _DRIVE, backend], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    mean, sd, early = map(float, [ln for ln in res.stdout.splitlines() if ln.startswith('VM')][-1].split()[1:])
    # mean input current = sum rate * w * tau_syn = (20000 * 10 - 1000 * 20) pA/s * 0.5 ms = 90 pA
    expected = -65. + 10. / 250. * 90.    # E_L + tau_m / C_m * I  (mV)
    sem = sd / math.sqrt(200 * 250 / 5)   # ~5 ms correlation time of V_m
    assert abs(mean - expected) < max(5 * sem, 0.05), (mean, expected)
    assert early == pytest.approx(-65., abs=1e-6)


_MARGIN = r"""
import hashlib, sys, numpy as np
from mam_pynn.network import neuron_backend as nb
nb.DELAY_MARGIN_MS = float(sys.argv[1])
from mam_pynn.model import MultiAreaModel
M = MultiAreaModel({'N_scaling': 0.002, 'K_scaling': 0.005, 'fullscale_rates': 'fullscale_rates.json',
                    'connection_params': {'replace_non_simulated_areas': 'hom_poisson_stat'}},
                   simulation=True, backend='neuron',
                   sim_spec={'areas_simulated': ['V1'], 't_sim': 100., 'rng_seed': 3})
M.simulation.simulate(sys.argv[2], progress=False)
from neuron import h
d = np.array([nc.delay for nc in h.List('NetCon') if nc.syn() is not None])
ids, t = M.simulation.spikes['V1']
print('DELAYS', d.min(), int(np.sum(np.abs(d - 0.1 - nb.DELAY_MARGIN_MS) < 1e-12)))
print('SPIKES', len(t), hashlib.sha256(ids.tobytes() + t.tobytes()).hexdigest())
"""


def _neuron_margin_run(margin, out):
    res = subprocess.run([sys.executable, '-c', _MARGIN, str(margin), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = {ln.split()[0]: ln.split()[1:] for ln in res.stdout.splitlines() if ln[:1].isupper()}
    return float(lines['DELAYS'][0]), int(lines['DELAYS'][1]), tuple(lines['SPIKES'])


def test_neuron_delays_exceed_dt_without_moving_any_spike(tmp_path):
    """NEURON's parallel solver refuses a minimum delay not longer than dt ("mindelay is 0
    (or less than dt for fixed step method)" under mpirun); delays of exactly dt are common
    (clipped at the resolution, as in NEST). The backend's margin makes every delay longer
    than dt + 1e-10 and changes no spike."""
    from mam_pynn.network.neuron_backend import DELAY_MARGIN_MS
    d_min, n_at_dt, spikes = _neuron_margin_run(DELAY_MARGIN_MS, tmp_path / 'margin')
    assert d_min - 1e-10 >= 0.1            # what pc.psolve requires with dt = 0.1 ms
    assert n_at_dt > 0                     # delays of one step exist: the margin is needed
    _, _, spikes_without = _neuron_margin_run(0.0, tmp_path / 'none')
    assert int(spikes[0]) > 0 and spikes == spikes_without
