"""Connections and Poisson drive drawn in numpy, for the NEURON and Brian2 backends.

Both backends need per-synapse arrays (Brian2 to connect a projection in one
call, NEURON to connect each target once): drawing them here, with the same
rules as NEST's native path (``fixed_total_number`` with multapses and
autapses; weights from N(W, W_sd) redrawn until they keep their sign, or
lognormal; delays from N(d, d_sd) redrawn while below the resolution, then
rounded to the time grid as NEST does), gives every backend the same network
statistics from one place. Also the user cache directory where backends keep
compiled code between runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import lognormal_params

MAX_REDRAW_ROUNDS = 1000


def redraw_normal(rng: np.random.Generator, mean: float, sd: float, n: int,
                  low: float = -np.inf, high: float = np.inf, what: str = 'value') -> np.ndarray:
    """``n`` draws from N(mean, sd), each redrawn until it lies in [low, high]."""
    x = rng.normal(mean, sd, n) if sd > 0 else np.full(n, float(mean))
    bad = np.flatnonzero((x < low) | (x > high))
    for _ in range(MAX_REDRAW_ROUNDS):
        if bad.size == 0:
            return x
        x[bad] = rng.normal(mean, sd, bad.size)
        bad = bad[(x[bad] < low) | (x[bad] > high)]
    raise ValueError(f"{what}: N({mean}, {sd}) almost never falls in [{low}, {high}]; "
                     f"{bad.size} draws still outside after {MAX_REDRAW_ROUNDS} rounds")


@dataclass
class DrawnProjection:
    """Per-synapse arrays of one projection: indices within the populations,
    weights in pA (signed), delays in ms (multiples of dt)."""
    sources: np.ndarray
    targets: np.ndarray
    weights_pa: np.ndarray
    delays_ms: np.ndarray


def draw_projection(spec, n_pre: int, n_post: int, dt: float,
                    rng: np.random.Generator) -> DrawnProjection:
    """Exactly ``spec.n`` synapses of a :class:`~mam_pynn.network.plan.ProjectionSpec`."""
    n = int(spec.n)
    if n_pre <= 0 or n_post <= 0:
        raise ValueError(f"projection {spec.source} -> {spec.target}: {n} synapses between "
                         f"populations of sizes {n_pre} and {n_post}")
    sources = rng.integers(0, n_pre, n, dtype=np.int64)
    targets = rng.integers(0, n_post, n, dtype=np.int64)
    where = f"weights of {spec.source} -> {spec.target}"
    if spec.lognormal:
        mu, sigma = lognormal_params(spec.weight_mean_pa, spec.weight_sd_pa)
        weights = spec.sign * rng.lognormal(mu, sigma, n)
    elif spec.sign > 0:
        weights = redraw_normal(rng, spec.weight_mean_pa, spec.weight_sd_pa, n, low=0.0, what=where)
    else:
        weights = redraw_normal(rng, spec.weight_mean_pa, spec.weight_sd_pa, n, high=0.0, what=where)
    delays = redraw_normal(rng, spec.delay_mean_ms, spec.delay_sd_ms, n, low=dt,
                           what=f"delays of {spec.source} -> {spec.target}")
    return DrawnProjection(sources, targets, weights, on_grid(delays, dt))


def on_grid(delays_ms, dt: float) -> np.ndarray:
    """Delays rounded to the nearest multiple of ``dt`` (at least ``dt``), as NEST does."""
    steps = np.maximum(np.rint(np.asarray(delays_ms, float) / dt), 1.0)
    return steps * dt
