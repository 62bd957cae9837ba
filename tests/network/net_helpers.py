"""Small models and a NEST build helper for the network tests (imported by name)."""
import numpy as np
from mam_pynn.params import resolve, sim_defaults

SMALL = {'N_scaling': 0.002, 'K_scaling': 0.01, 'fullscale_rates': 'fullscale_rates.json'}


def small_model(**connection_params):
    """The model at small scale; subsets replace other areas by Poisson unless told."""
    from mam_pynn.model import MultiAreaModel
    conn = {'replace_non_simulated_areas': 'hom_poisson_stat', **connection_params}
    return MultiAreaModel({**SMALL, 'connection_params': conn})


def sim_params(**custom):
    return resolve(custom, sim_defaults())


def build(M, backend='nest', areas=('V1', 'V2'), seed=1, **sim_custom):
    """Plan and build ``areas`` of M on ``backend``; returns (plan, built network)."""
    from mam_pynn.network import build_network, make_backend, make_plan
    p = sim_params(areas_simulated=list(areas), rng_seed=seed, **sim_custom)
    plan = make_plan(M, p)
    be = make_backend(backend)
    be.setup(p['dt'], p['rng_seed'], p['local_num_threads'])
    return plan, build_network(plan, be, recorded_areas=list(areas), progress=None)


def connections(built, source_key, target_key, fields=('weight', 'delay')):
    """{field: array} of the NEST connections from one population to another."""
    import nest
    conns = nest.GetConnections(source=built.populations[source_key].node_collection,
                                target=built.populations[target_key].node_collection)
    if len(conns) == 0:
        return {f: np.zeros(0) for f in fields}
    values = conns.get(list(fields))
    return {f: np.atleast_1d(np.asarray(values[f], dtype=float)) for f in fields}

