"""Transient stimuli from the configuration: ``sim_params.stimulus``.

A list of entries, each a Poisson or current pulse into chosen populations::

    sim_params:
      stimulus:
        - label: v1_l4          # optional name (default stimulus<k>)
          kind: poisson         # poisson | current
          targets: [V1-4E, V1-4I]
          start: 300.0          # ms
          duration: 50.0        # ms
          rate: 1000.0          # poisson: spikes/s into every neuron, an independent train each
          weight: 87.8          # poisson, optional: pA per spike (default: the target's
                                # external-input weight of the model)
          repeat: 10            # optional: that many pulses (trials), one every
          interval: 200.0       # ms (needed when repeat > 1; at least the duration)
        - kind: current
          targets: [V1-4E]
          start: 300.0
          duration: 50.0
          amplitude: 200.0      # current: pA into every neuron

They are applied after the model's network is built, through the PyNN API on the
populations of :class:`mam_pynn.network.handles.Network` (so they work on every
backend and are listed in the run's provenance). Unknown keys and bad values are
errors naming the entry and the key, raised before anything is built.
"""
from __future__ import annotations

import math

KINDS = {'poisson': ('rate',), 'current': ('amplitude',)}
OPTIONAL = {'poisson': ('weight',), 'current': ()}
COMMON = ('label', 'kind', 'targets', 'start', 'duration', 'repeat', 'interval')


def _number(entry: dict, key: str, where: str, low: float = -math.inf, positive=False) -> float:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}.{key} must be a finite number, got {value!r}")
    if value < low or (positive and value <= 0):
        raise ValueError(f"{where}.{key} must be {'> 0' if positive else f'>= {low:g}'}, "
                         f"got {value!r}")
    return float(value)


def _count(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be a whole number >= 1, got {value!r}")
    return value


def onsets(entry: dict) -> list[float]:
    """Start times (ms) of each pulse of a normalised entry."""
    return [entry['start'] + k * (entry['interval'] or 0.) for k in range(entry['repeat'])]


def _target(item, structure: dict, where: str) -> tuple:
    """'V1-4E' or [V1, 4E] -> ('V1', '4E'), checked against the simulated populations."""
    if isinstance(item, str) and '-' in item:
        key = tuple(item.split('-', 1))
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        key = tuple(map(str, item))
    else:
        raise ValueError(f"{where}.targets: {item!r} is not 'AREA-POP' or [AREA, POP]")
    area, pop = key
    if area not in structure:
        raise ValueError(f"{where}.targets: area {area!r} is not simulated "
                         f"(areas_simulated: {', '.join(structure)})")
    if pop not in structure[area]:
        raise ValueError(f"{where}.targets: {area} has no population {pop!r} "
                         f"(it has {', '.join(structure[area])})")
    return key


def check_stimuli(entries, structure: dict, where: str = 'sim_params.stimulus') -> list:
    """Validated, normalised stimulus entries; ``structure``: {simulated area: [pops]}."""
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"{where} must be a list of stimulus entries, got {entries!r}")
    out = []
    for k, entry in enumerate(entries):
        at = f"{where}[{k}]"
        if not isinstance(entry, dict):
            raise TypeError(f"{at} must be a mapping, got {entry!r}")
        kind = entry.get('kind')
        if kind not in KINDS:
            raise ValueError(f"{at}.kind must be one of {', '.join(KINDS)}, got {kind!r}")
        allowed = COMMON + KINDS[kind] + OPTIONAL[kind]
        unknown = [key for key in entry if key not in allowed]
        if unknown:
            raise KeyError(f"unknown key {at}.{unknown[0]} for a {kind} stimulus; "
                           f"valid keys: {', '.join(allowed)}")
        missing = [key for key in ('targets', 'start', 'duration') + KINDS[kind] if key not in entry]
        if missing:
            raise KeyError(f"{at} ({kind}) needs {', '.join(missing)}")
        targets = entry['targets']
        if isinstance(targets, str) or not isinstance(targets, (list, tuple)) or not targets:
            raise ValueError(f"{at}.targets must be a non-empty list of 'AREA-POP', got {targets!r}")
        norm = {'label': str(entry.get('label', f'stimulus{k}')), 'kind': kind,
                'targets': [_target(t, structure, at) for t in targets],
                'start': _number(entry, 'start', at, low=0.),
                'duration': _number(entry, 'duration', at, positive=True)}
        norm['repeat'] = _count(entry.get('repeat', 1), f"{at}.repeat")
        norm['interval'] = None
        if norm['repeat'] > 1:
            if 'interval' not in entry:
                raise KeyError(f"{at} repeats {norm['repeat']} times and needs an interval (ms)")
            norm['interval'] = _number(entry, 'interval', at, low=norm['duration'])
        if kind == 'poisson':
            norm['rate'] = _number(entry, 'rate', at, low=0.)
            norm['weight'] = _number(entry, 'weight', at) if entry.get('weight') is not None else None
        else:
            norm['amplitude'] = _number(entry, 'amplitude', at)
        out.append(norm)
    return out


def apply_stimulus(net, entry: dict, weight_of=None) -> list:
    """Create one (normalised) stimulus entry on a built network through PyNN; returns
    the PyNN objects made. ``weight_of(key)``: the default Poisson weight (pA)."""
    from .units import pa_to_na
    sim, made = net.sim, []
    starts = onsets(entry)
    for key in entry['targets']:
        pop = net.populations[key]
        if entry['kind'] == 'current':
            # one DCSource per pulse: pyNN.neuron's StepCurrentSource loses its steps
            # across the chunked runs of a simulation (its playback is re-made per run)
            for t0 in starts:
                source = sim.DCSource(amplitude=pa_to_na(entry['amplitude']), start=t0,
                                      stop=t0 + entry['duration'])
                source.inject_into(pop)
                made.append(source)
            continue
        weight = entry['weight'] if entry['weight'] is not None else weight_of(key)
        for k, t0 in enumerate(starts):   # one source population per pulse: its own window
            src = sim.Population(pop.size, sim.SpikeSourcePoisson(
                rate=entry['rate'], start=t0, duration=entry['duration']),
                label=f"{entry['label']}[{k}]->{key[0]}-{key[1]}")
            prj = sim.Projection(src, pop, sim.OneToOneConnector(),
                                 sim.StaticSynapse(weight=net.backend.stimulus_weight_na(weight),
                                                   delay=net.plan.dt),
                                 receptor_type='inhibitory' if weight < 0 else 'excitatory')
            made += [src, prj]
    return made
