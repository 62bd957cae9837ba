"""Evoked responses: the latency rule on series with a known answer."""
import numpy as np
import pytest

from mam_pynn.analysis.evoked import latency


def test_latency_is_the_first_sustained_crossing_after_the_onset():
    t = np.arange(-50., 100., 2.)
    rate = np.zeros_like(t)
    rate[t == -10.] = 100.                 # before the onset: ignored
    rate[t == 4.] = 100.                   # one bin only: not sustained
    rate[(t >= 12.) & (t < 20.)] = 100.    # sustained from 12 ms
    assert latency(rate, t, 0., mean=0., sd=1.) == 12.
    assert np.isnan(latency(np.zeros_like(t), t, 0., mean=0., sd=1.))


@pytest.mark.parametrize('threshold, expected', [(3., 12.), (60., 12.), (150., np.nan)])
def test_latency_threshold_is_mean_plus_k_sd(threshold, expected):
    t = np.arange(0., 40., 2.)
    rate = np.where((t >= 12.) & (t < 20.), 100., 10.)
    got = latency(rate, t, 0., mean=10., sd=1., threshold_sd=threshold)
    assert (np.isnan(got) and np.isnan(expected)) or got == expected
