"""NativePopulation: a lean pyNN.nest Population that still works as a PyNN population."""
import numpy as np
import pytest

pytest.importorskip('nest')
pytest.importorskip('pyNN.nest')


def test_native_population_is_a_usable_pynn_population():
    import nest
    import pyNN.nest as sim

    from mam_pynn.network.nest_fast import native_population_class
    sim.setup(timestep=0.1, spike_precision='on_grid', verbosity='error')
    Pop = native_population_class()
    a = Pop(20, sim.IF_curr_exp(i_offset=2.0, tau_m=10.), label='a',
            native_init={'V_m': nest.random.uniform(-70., -60.)})
    b = Pop(5, sim.IF_curr_exp(i_offset=0.0), label='b')
    assert a.size == 20 and b.first_id == a.last_id + 1
    assert a.id_to_index(a.first_id + 3) == 3
    np.testing.assert_allclose(a.get('i_offset'), 2.0)            # nA, PyNN units
    np.testing.assert_allclose(a.node_collection.get('I_e'), 2000.)  # pA in NEST
    v = np.asarray(a.node_collection.get('V_m'))
    assert np.all((v >= -70) & (v <= -60)) and v.std() > 0
    assert len(nest.GetNodes({'model': 'spike_recorder'})) == 0   # no devices up front
    a.record('spikes')
    sim.run(100.)
    trains = a.get_data('spikes').segments[0].spiketrains
    assert len(trains) == 20 and sum(len(t) for t in trains) > 0
    sim.end()
