"""Mean-field theory: stationary rates (Siegert), stability, stabilization of K.

``Theory(M, theory_spec)`` follows upstream's class (``integrate_siegert``,
``mu_sigma``, ``d_nu``, ``gain_matrix``, ``lambda_max``); ``stabilize(M)`` returns
the stabilized in-degrees K' of Schuecker, Schmidt et al. (2017) (module
``stabilization``); ``write_theory`` writes the results for ``mam theory --out F``.
"""
from .core import Theory, integrate_rate_dynamics, write_theory
from .siegert import LIFParams, siegert_rate
from .stabilization import stabilize

__all__ = ['Theory', 'integrate_rate_dynamics', 'write_theory', 'LIFParams', 'siegert_rate',
           'stabilize']
