"""Fixtures of the network tests."""
import pytest

from net_helpers import small_model


@pytest.fixture(scope='module')
def model_v1_v2():
    return small_model()
