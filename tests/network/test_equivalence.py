"""The NEST fast path and the generic PyNN path build the same network statistics."""
import numpy as np
import pytest

from net_helpers import build, connections

nest = pytest.importorskip('nest')
pytest.importorskip('pyNN.nest')


def _standardised(plan, net):
    """Counts per projection; weights and delays as z-scores against the plan, pooled."""
    counts, zw, zd = {}, [], []
    for spec in plan.projections:
        c = connections(net, spec.source, spec.target)
        counts[(spec.source, spec.target)] = len(c['weight'])
        assert np.all(np.sign(c['weight']) * spec.sign >= 0)
        assert np.all(c['delay'] >= plan.dt - 1e-12)
        zw.append((c['weight'] - spec.weight_mean_pa) / spec.weight_sd_pa)
        zd.append((c['delay'] - spec.delay_mean_ms) / spec.delay_sd_ms)
    return counts, np.concatenate(zw), np.concatenate(zd)


def _poisson_rates(net):
    gens = nest.GetNodes({'model': 'poisson_generator'})
    return np.sort(np.asarray(gens.get('rate'), dtype=float))


def test_fast_and_generic_paths_agree(model_v1_v2):
    plan_f, net_f = build(model_v1_v2, 'nest', areas=['V1'], seed=3)
    counts_f, zw_f, zd_f = _standardised(plan_f, net_f)
    rates_f = _poisson_rates(net_f)
    plan_g, net_g = build(model_v1_v2, 'nest-generic', areas=['V1'], seed=3)
    counts_g, zw_g, zd_g = _standardised(plan_g, net_g)
    rates_g = _poisson_rates(net_g)

    assert counts_f == counts_g == {(p.source, p.target): p.n for p in plan_f.projections}
    # the same distributions: pooled z-scores agree within 4 standard errors
    for a, b, what in ((zw_f, zw_g, 'weights'), (zd_f, zd_g, 'delays')):
        se_mean = np.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) < 4 * se_mean, what
        se_sd = np.sqrt(a.var() / (2 * len(a)) + b.var() / (2 * len(b)))
        assert abs(a.std() - b.std()) < 4 * se_sd * 2, what   # SE of SD for non-normal tails
    # the same Poisson drive: one generator per input and population (fast) = one source
    # neuron per target neuron and input, inputs of equal target, weight and delay (on the
    # grid) summed (generic). Expected rates grouped here with numpy, not merged_poisson.
    sizes = {p.key: p.size for p in plan_f.populations}
    targets = sorted(sizes)
    tgt = np.array([targets.index(p.target) for p in plan_f.poisson])
    w = np.array([p.weight_pa for p in plan_f.poisson])
    steps = np.maximum(np.rint(np.array([p.delay_ms for p in plan_f.poisson]) / plan_f.dt), 1)
    _, group = np.unique(np.stack([tgt, w, steps]), axis=1, return_inverse=True)
    group = group.ravel()
    rates = np.bincount(group, weights=[p.rate_hz for p in plan_f.poisson])
    first = np.array([np.flatnonzero(group == g)[0] for g in range(len(rates))])
    assert len(rates) < len(plan_f.poisson)             # some inputs do merge
    expected = np.sort(np.repeat(rates, [sizes[targets[tgt[i]]] for i in first]))
    np.testing.assert_allclose(rates_g, expected)
    np.testing.assert_allclose(rates_f, np.sort([p.rate_hz for p in plan_f.poisson]))
