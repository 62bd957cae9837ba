"""The NEST fast path's cheap spike recording records the same spikes as before (issue 24)."""
import numpy as np
import pytest

from net_helpers import build

nest = pytest.importorskip('nest')


def _run(M, monkeypatch, legacy, areas, threads, t_ms=200.):
    from mam_pynn.network.nest_fast import NestBackend
    monkeypatch.setattr(NestBackend, 'legacy_recording', legacy)
    plan, net = build(M, areas=areas, local_num_threads=threads)
    be = net.backend
    models = {str(m) for sr in be.recorders().values()
              for m in np.atleast_1d(nest.GetConnections(target=sr).get('synapse_model'))}
    first_gid = min(int(h.first_id) for h in net.populations.values())
    be.prepare()
    be.run(t_ms)
    be.cleanup()
    spikes = {a: be.spikes(a) for a in areas}
    be.end()
    return spikes, models, first_gid


@pytest.mark.parametrize('areas, threads', [(('V1', 'V2'), 1), (('V1',), 2), (('V1', 'V2'), 3)])
def test_cheap_recording_gives_the_same_spikes(model_v1_v2, monkeypatch, areas, threads):
    """Same senders and times, in the same order, as recorders made after the neurons and
    reached through static_synapse; with 2 and 3 threads the recorders made first shift
    the neurons' node ids, which must not move a neuron to another virtual process."""
    from mam_pynn.network.nest_fast import RECORDER_SYNAPSE
    old, old_models, old_first = _run(model_v1_v2, monkeypatch, True, areas, threads)
    new, new_models, new_first = _run(model_v1_v2, monkeypatch, False, areas, threads)
    assert old_models == {'static_synapse'} and new_models == {RECORDER_SYNAPSE}
    assert new_first > old_first     # the neurons' node ids did move
    total = 0
    for area in areas:
        (ids_old, t_old), (ids_new, t_new) = old[area], new[area]
        np.testing.assert_array_equal(ids_new, ids_old)
        np.testing.assert_array_equal(t_new, t_old)
        total += len(t_new)
    assert total > 100


def test_recorder_synapse_is_the_smallest_static_model():
    """The model named for recorders is the smallest of NEST's static synapse models."""
    from mam_pynn.network.nest_fast import RECORDER_SYNAPSE
    sizes = {m: nest.GetDefaults(m, 'sizeof') for m in nest.synapse_models
             if m.startswith('static_synapse')}
    assert sizes[RECORDER_SYNAPSE] == min(sizes.values()) < sizes['static_synapse']
