"""build_network's progress: every simulated area is accounted for."""
import pytest

from net_helpers import sim_params, small_model

pytest.importorskip('pyNN.nest')


def test_progress_names_an_area_without_cortico_cortical_input():
    """MDP receives no cortico-cortical synapses: the progress says so instead of skipping it."""
    from mam_pynn.network import build_network, make_backend, make_plan
    M = small_model()
    into_mdp = [i for i, name in enumerate(M.structure_vec) if name.startswith('MDP-')]
    others = [j for j, name in enumerate(M.structure_vec) if not name.startswith('MDP-')]
    assert M.K_matrix[into_mdp][:, others].sum() == 0     # the data: no cc input to MDP
    p = sim_params(areas_simulated=['V1', 'V2', 'MDP'])
    plan = make_plan(M, p)
    be = make_backend('nest')
    be.setup(p['dt'], p['rng_seed'], p['local_num_threads'])
    said = []
    build_network(plan, be, recorded_areas=['V1', 'V2', 'MDP'], progress=said.append)
    cc = [line for line in said if line.startswith('cortico-cortical connections')]
    assert len(cc) == 3, said
    assert any('(MDP): none' in line for line in cc), cc
    assert any('(V1)' in line and 'synapses' in line for line in cc), cc
