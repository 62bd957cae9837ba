"""From the Model to a PyNN network: a simulator-free plan, then a backend builds it.

``make_plan(M, sim_params)`` lists populations, projections and inputs;
``make_backend(name)`` picks the adapter (the NEST fast path or the generic PyNN
path); ``build_network(plan, backend, ...)`` creates everything on it.
"""
from .builder import BACKENDS, build_network, check_backend, make_backend
from .inputs import REPLACEMENT_MODES, InputSourceError, load_replacement_input
from .plan import NetworkPlan, make_plan

__all__ = ['BACKENDS', 'build_network', 'check_backend', 'make_backend', 'REPLACEMENT_MODES',
           'InputSourceError', 'load_replacement_input', 'NetworkPlan', 'make_plan']
