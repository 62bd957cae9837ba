"""From raw anatomical data to completed area-level anatomy (Schmidt et al. 2018, BSF).

``process_raw_data(load_raw_data())`` derives, for the 32 areas:

- neuron densities per layer (NeuN data rescaled to Nissl, filled by architectural type),
- total and laminar thicknesses (data, else fits against log overall density),
- realistic neuron numbers per population,
- CoCoMac laminar patterns completed by Markov et al.'s new connections,
- FLN (Markov et al. 2014, mapped to the FV91 scheme, completed by the exponential
  distance rule),
- SLN (Markov et al. 2014, completed by a probit fit of SLN against the log ratio of
  overall neuron densities).

The output dict keeps upstream's key names and nesting (``processed_data`` of
``VisualCortex_Data.py``), with plain Python values as upstream's JSON file holds
them (so ``category_density`` is keyed by the strings '1'..'8'). Values agree with
upstream's script to ~1e-13; only the order of a few dict keys differs, which is
random (set order) in upstream.
"""
from __future__ import annotations

import math
import re
import numpy as np

from .data.raw import RAW_AREA_LIST, load_raw_data  # noqa: F401  (re-exported)

LAYERS = ['1', '23', '4', '5', '6']
DENSITY_LAYERS = ['23', '4', '5', '6']

# Probit fit of SLN vs. log density ratio, (intercept, slope): upstream's published
# values, the 7-digit output of its R beta-binomial fit (SLN_logdensities.R).
# ``fit_sln`` recomputes them from the data; rounded to 7 significant digits, as R
# prints, it gives exactly these (tests/test_anatomy.py). The constants are the
# default so that processing needs neither the fit (scipy) nor its rounding step.
SLN_FIT_PUBLISHED = (-0.1516142, -1.5343200)

# MIP and MDP have no hierarchy level or architectural type in the data; upstream
# places them like their neighbours PO, MT and V4t.
_COMPLETED_AREAS = {'MIP': (0.5, 5), 'MDP': (0.5, 5)}

# Markov et al.'s M132 names whose key in overlap.json differs from '<name>_M132'.
_M132_OVERLAP_NAMES = {
    'ENTO': 'Entorhinal', 'POLE': 'Temporal-pole', 'Parainsula': 'Insula',
    'SUB': 'Subiculum', 'PIRI': 'Piriform', 'PERI': 'Perirhinal',
    'Pro.St.': 'Prostriate', 'INSULA': 'Insula', 'CORE': 'Aud-core',
    '29/30': '29_30', 'TEa/mp': 'TEam-p', 'TH/TF': 'TH_TF', 'TEa/ma': 'TEam-a',
    '9/46v': '9_46v', '9/46d': '9_46d', 'SII': 'S2',
}


def structural_gradient(type_target, type_source) -> str:
    """HL (from a higher to a lower architectural type), LH, or HZ (equal types)
    (Schmidt, Bakker et al. 2018, BSF; upstream's helpers.structural_gradient)."""
    return 'HL' if type_target < type_source else 'LH' if type_target > type_source else 'HZ'


def _normal_cdf(x) -> np.ndarray:
    """Standard normal CDF (probit link), elementwise; math.erfc keeps the import
    light (scipy.special alone costs more than the whole processing)."""
    return np.array([0.5 * math.erfc(-v / math.sqrt(2.)) for v in np.ravel(x)])


def _linear_fit(x, y) -> tuple[float, float]:
    """Least-squares (slope, intercept) of y against x (as scipy.stats.linregress)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    dx = x - x.mean()
    slope = float(np.dot(dx, y - y.mean()) / np.dot(dx, dx))
    return slope, float(y.mean() - slope * x.mean())


def _fv91_names(name: str, area_set: set, translation: dict) -> list[str]:
    """FV91 areas a name of another parcellation stands for (itself if FV91)."""
    if name in area_set:
        return [name]
    return list(translation.get(name, []))


# ---------------------------------------------------------------- densities

def _neuronal_densities(raw: dict, area_list: list, architecture: dict) -> dict:
    """Layer-resolved neuron densities (per mm^3) for every area."""
    area_set = set(area_list)
    neun = raw['neuronal_density_data']
    nissl = raw['neuronal_density_data_updated']
    translation = raw['Translation']

    # NeuN undersamples neurons relative to Nissl: linear map fitted where both exist
    both = [a for a in nissl if a in neun]
    gradient, intercept = _linear_fit([neun[a]['overall']['value'] for a in both],
                                      [nissl[a] for a in both])

    def rescaled(value):
        return value * gradient + intercept if value > 0. else 0.

    nissl_fv91 = {}
    for name, density in nissl.items():
        for area in _fv91_names(name, area_set, translation):
            nissl_fv91[area] = density
    neun_fv91 = {}
    for name, layers in neun.items():
        if name not in area_set and name not in translation:
            raise ValueError(f"NeuN density area {name!r} has no FV91 translation")
        for area in _fv91_names(name, area_set, translation):
            neun_fv91[area] = layers

    four_layers = {}
    for area, layers in neun_fv91.items():
        deep = rescaled(layers['56']['value'])  # same density assumed in L5 and L6
        overall = (nissl_fv91[area] if area in nissl_fv91
                   else layers['overall']['value'] * gradient + intercept)
        four_layers[area] = {'23': rescaled(layers['23']['value']), 'overall': overall,
                             '4': rescaled(layers['4']['value']), '5': deep, '6': deep}

    # areas without data get the mean of their architectural type
    keys = ['overall'] + DENSITY_LAYERS
    category_density = {}
    for category in range(1, 9):
        members = [four_layers[a] for a in four_layers if architecture[a] == category]
        category_density[str(category)] = {
            k: float(np.mean([m[k] for m in members])) if members else math.nan for k in keys}

    densities = {}
    for area, category in architecture.items():
        if area in four_layers:
            densities[area] = dict(four_layers[area])
        else:
            densities[area] = dict(category_density[str(category)])
    return {'neuronal_densities': densities,
            'neuronal_density_data_FV91_4layers': four_layers,
            'category_density': category_density}


# ---------------------------------------------------------------- thicknesses

def _thicknesses(raw: dict, area_list: list, densities: dict) -> tuple[dict, dict]:
    """Total thickness (micrometre) and laminar thicknesses (mm) for every area."""
    log_density = np.log10([densities[a]['overall'] for a in area_list])

    total_data = np.array([raw['total_thickness_data'][a] for a in area_list], dtype=float)
    known = np.isfinite(total_data)
    gradient, intercept = _linear_fit(log_density[known], total_data[known])
    total = np.where(known, total_data, intercept + gradient * log_density)
    total_thicknesses = dict(zip(area_list, map(float, total)))

    # fraction of the total thickness per layer: mean over studies with data
    studies = raw['laminar_thicknesses']
    rel = np.full((len(area_list), len(LAYERS)), np.nan)
    for i, area in enumerate(area_list):
        if area not in studies:
            raise ValueError(f"no laminar thickness entry for area {area!r}")
        per_study_total = np.atleast_1d(np.asarray(studies[area]['total'], dtype=float))
        for j, layer in enumerate(LAYERS):
            values = np.atleast_1d(np.asarray(studies[area][layer], dtype=float))
            with np.errstate(invalid='ignore', divide='ignore'):
                frac = values / per_study_total
            frac[values == 0] = 0.  # an absent layer is 0 % even if the total is unknown
            frac = frac[np.isfinite(frac)]
            if frac.size:
                rel[i, j] = frac.mean()

    # L4: regression on log overall density; other layers: mean across areas
    l4 = LAYERS.index('4')
    has4 = np.isfinite(rel[:, l4])
    gradient4, intercept4 = _linear_fit(log_density[has4], rel[has4, l4])
    rel[~has4, l4] = intercept4 + gradient4 * log_density[~has4]
    for j in range(len(LAYERS)):
        if j != l4:
            col = rel[:, j]
            col[~np.isfinite(col)] = col[np.isfinite(col)].mean()

    # normalise the fractions to sum to 1; micrometre -> mm
    absolute = 0.001 * rel * total[:, None] / rel.sum(axis=1, keepdims=True)
    laminar = {a: dict(zip(LAYERS, map(float, row))) for a, row in zip(area_list, absolute)}
    return total_thicknesses, laminar


def _neuron_numbers(raw: dict, densities: dict, laminar: dict) -> dict:
    """N = density * surface * layer thickness * E or I fraction (from cat V1)."""
    num_v1 = raw['num_V1']
    surfaces = raw['surface_data']
    numbers = {}
    for area, nd in densities.items():
        pops = {}
        for layer in DENSITY_LAYERS:
            n_e, n_i = num_v1[layer + 'E']['neurons'], num_v1[layer + 'I']['neurons']
            e_fraction = n_e / (n_e + n_i)
            exc = surfaces[area] * laminar[area][layer] * nd[layer] * e_fraction
            pops[layer + 'E'] = exc
            pops[layer + 'I'] = exc * (1. - e_fraction) / e_fraction
        pops['total'] = sum(pops.values())
        numbers[area] = pops
    return numbers


# ---------------------------------------------------------------- FLN / SLN

def _per_target_means(per_monkey: dict, injection_sites: dict, area_set: set, key: str) -> dict:
    """Average a per-injection quantity over the injections into each FV91 area.

    A source not seen in an injection counts as 0 there (upstream pads with zeros up
    to the largest number of injections reporting any single source).
    """
    collected: dict[str, dict[str, list[float]]] = {}
    for monkey, entry in per_monkey.items():
        target = injection_sites[monkey]['FV91_area']
        if target in area_set:
            sources = collected.setdefault(target, {})
            for source, values in entry['source_areas'].items():
                sources.setdefault(source, []).append(values[key])
    means = {}
    for target, sources in collected.items():
        n = max(len(v) for v in sources.values())
        means[target] = {s: float(np.mean(v + [0.] * (n - len(v)))) for s, v in sources.items()}
    return means


def _overlap_map(overlap: dict, area_set: set):
    """M132 area name -> list of (FV91 area, overlap fraction) within the model."""
    cache: dict[str, list[tuple[str, float]]] = {}

    def fv91_parts(name: str) -> list[tuple[str, float]]:
        if name not in cache:
            key = _M132_OVERLAP_NAMES.get(name, name) + '_M132'
            parts = []
            for fv_key, percent in overlap['all'][key].items():
                area = re.sub('FVE.', '', re.sub('FVE_all.', '', fv_key))
                if area in area_set:
                    parts.append((area, percent / 100.))
            cache[name] = parts
        return cache[name]
    return fv91_parts


def _map_fln_sources(fln_fv91: dict, fv91_parts, area_list: list) -> dict:
    """FLN per FV91 source: M132 source FLN split by the areas' spatial overlap."""
    mapped = {}
    for target, sources in fln_fv91.items():
        out = mapped[target] = {}
        for source, fln in sources.items():
            for area, fraction in fv91_parts(source):
                out[area] = out.get(area, 0.) + fraction * fln
        out.pop(target, None)  # intrinsic FLN is not part of the area-level graph
    for area in area_list:
        mapped.setdefault(area, {})
    return mapped


def _map_sln_sources(sln_fv91: dict, fln_fv91: dict, fv91_parts) -> dict:
    """SLN per FV91 source: supra- and infragranular labelled neurons split by overlap."""
    mapped = {}
    for target, sources in sln_fv91.items():
        supra, infra = {}, {}
        for source, sln in sources.items():
            fln = fln_fv91[target][source]
            for area, fraction in fv91_parts(source):
                supra[area] = supra.get(area, 0.) + fraction * sln * fln
                infra[area] = infra.get(area, 0.) + fraction * (1. - sln) * fln
        with np.errstate(invalid='ignore', divide='ignore'):
            mapped[target] = {a: float(np.float64(supra[a]) / (supra[a] + infra[a])) for a in supra}
    return mapped


def _pattern_codes(pattern, unknown: list, cross):
    """CoCoMac laminar pattern with 'X' -> ``cross`` and '?' -> codes by position."""
    if pattern is None:
        return None
    return [cross if c == 'X' else unknown[i] if c == '?' else c for i, c in enumerate(pattern)]


def _cocomac_completed(cocomac: dict, fln_mapped: dict, area_list: list) -> dict:
    """CoCoMac connections plus those found by Markov et al. and self-connections.

    In source patterns '?' becomes 0 in layers 1 and 4 and -1 elsewhere, in target
    patterns -1; 'X' (present, strength unknown) becomes 2.
    """
    completed = {}
    for target, sources in cocomac.items():
        completed[target] = {
            source: {'source_pattern': _pattern_codes(p['source_pattern'], [0, -1, -1, 0, -1, -1], 2),
                     'target_pattern': _pattern_codes(p['target_pattern'], [-1] * 6, 2.)}
            for source, p in sources.items()}
    area_set = set(area_list)
    for target in cocomac:
        for source, fln in fln_mapped[target].items():
            if (source in area_set and source not in cocomac[target]
                    and source != target and fln > 0.):
                completed[target][source] = {'target_pattern': None, 'source_pattern': None}
    for area in area_list:
        completed[area].setdefault(area, {'target_pattern': None, 'source_pattern': None})
    return completed


def _fln_completed(fln_mapped: dict, cocomac_completed: dict, raw: dict, area_list: list):
    """FLN of every known connection; missing ones from the exponential distance rule."""
    median = raw['median_distance_data']
    thom = raw['thom_distance_data']
    pairs = [(t, s) for t, sources in fln_mapped.items() for s, v in sources.items()
             if t in thom and s in thom and v]
    distance = np.array([median[t][s] for t, s in pairs])
    log_fln = np.log([fln_mapped[t][s] for t, s in pairs])
    gradient, intercept = _linear_fit(distance, log_fln)

    area_set = set(area_list)
    completed = {}
    for target, sources in cocomac_completed.items():
        fln = dict(fln_mapped[target])
        missing = [s for s in sources if s not in fln and s in median and s != target]
        edr = np.exp(intercept + gradient * np.array([median[target][s] for s in missing]))
        fln.update(zip(missing, map(float, edr)))
        # all input from outside the 32 areas is pooled as 'external'
        external = 0.
        for source in [s for s in fln if s not in area_set]:
            external += fln.pop(source)
        fln['external'] = external
        completed[target] = fln
    return completed


def _sln_completed(sln_mapped: dict, cocomac_completed: dict, densities: dict,
                   area_list: list, fit: tuple[float, float]) -> dict:
    """SLN of every known connection between model areas; missing ones from the fit."""
    intercept, slope = fit
    area_set = set(area_list)
    completed = {}
    for target in area_list:
        measured = sln_mapped.get(target, {})
        sources = [s for s in cocomac_completed[target] if s in area_set and s != target]
        log_ratio = np.log(densities[target]['overall']) - np.log(
            np.array([densities[s]['overall'] for s in sources]))
        predicted = _normal_cdf(slope * log_ratio + intercept)
        completed[target] = {s: measured[s] if s in measured else float(p)
                             for s, p in zip(sources, predicted)}
    return completed


# ---------------------------------------------------------------- SLN fit

def _probit_glm(successes, failures, X) -> np.ndarray:
    """Binomial GLM with probit link by iteratively reweighted least squares.

    Follows R's ``glm.fit`` (start, weights, deviance convergence test), because
    upstream's R fit starts its likelihood search from these coefficients.
    """
    from scipy.special import ndtr, ndtri, xlogy

    n = successes + failures
    y = successes / n
    eps = np.finfo(float).eps
    eta_max = -ndtri(eps)

    def deviance(mu):
        return np.sum(2 * n * (xlogy(y, y / mu) + xlogy(1 - y, (1 - y) / (1 - mu))))

    mu = (n * y + 0.5) / (n + 1)
    eta = ndtri(mu)
    dev_old = deviance(mu)
    for _ in range(25):
        dmu_deta = np.maximum(np.exp(-0.5 * eta ** 2) / math.sqrt(2 * math.pi), eps)
        z = eta + (y - mu) / dmu_deta
        w = np.sqrt(n * dmu_deta ** 2 / (mu * (1 - mu)))
        coef = np.linalg.lstsq(X * w[:, None], z * w, rcond=None)[0]
        eta = X @ coef
        mu = ndtr(np.clip(eta, -eta_max, eta_max))
        dev = deviance(mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < 1e-8:
            break
        dev_old = dev
    return coef


def _nelder_mead(fn, x0, maxit: int, reltol: float = math.sqrt(np.finfo(float).eps),
                 alpha: float = 1., beta: float = 0.5, gamma: float = 2.) -> np.ndarray:
    """Nelder-Mead simplex search in Nash's (1990) variant, the one R's ``optim`` uses.

    It stops when the simplex's function values agree to ``reltol`` (relative), so on
    a flat likelihood it ends before the exact optimum; reproducing upstream's R
    numbers needs this very stopping rule, not scipy's.
    """
    big = 1.0e35
    n = len(x0)
    point = np.array(x0, dtype=float)

    def value(x):
        f = fn(x)
        return f if np.isfinite(f) else big

    f = fn(point)
    if not np.isfinite(f):
        raise ValueError("function cannot be evaluated at the initial parameters")
    count = 1
    tolerance = reltol * (abs(f) + reltol)
    # simplex: columns 0..n are vertices, column n+1 the centroid; row n the values
    P = np.zeros((n + 1, n + 2))
    P[:n, 0], P[n, 0] = point, f
    low = 0
    step = max(0.1 * np.max(np.abs(point)), 0.) or 0.1
    size = 0.
    for j in range(1, n + 1):
        P[:n, j] = point
        trial = step
        while P[j - 1, j] == point[j - 1]:
            P[j - 1, j] = point[j - 1] + trial
            trial *= 10
        size += trial
    old_size = size
    evaluate_vertices = True
    while True:
        if evaluate_vertices:
            for j in range(n + 1):
                if j != low:
                    P[n, j] = value(P[:n, j])
                    count += 1
            evaluate_vertices = False
        v_low = v_high = P[n, low]
        high = low
        for j in range(n + 1):
            if j != low:
                if P[n, j] < v_low:
                    low, v_low = j, P[n, j]
                if P[n, j] > v_high:
                    high, v_high = j, P[n, j]
        if v_high <= v_low + tolerance:
            break
        centroid = -P[:n, high]
        for j in range(n + 1):
            centroid = centroid + P[:n, j]
        centroid = centroid / n
        P[:n, n + 1] = centroid
        point = (1. + alpha) * centroid - alpha * P[:n, high]
        v_reflect = value(point)
        count += 1
        if v_reflect < v_low:
            P[:n, n + 1], P[n, n + 1] = point, v_reflect
            point = gamma * point + (1. - gamma) * centroid
            f = value(point)
            count += 1
            if f < v_reflect:
                P[:n, high], P[n, high] = point, f
            else:
                P[:n, high], P[n, high] = P[:n, n + 1], v_reflect
        else:
            if v_reflect < v_high:
                P[:n, high], P[n, high] = point, v_reflect
            point = (1. - beta) * P[:n, high] + beta * centroid
            f = value(point)
            count += 1
            if f < P[n, high]:
                P[:n, high], P[n, high] = point, f
            elif v_reflect >= v_high:  # shrink towards the best vertex
                evaluate_vertices = True
                size = 0.
                for j in range(n + 1):
                    if j != low:
                        P[:n, j] = beta * (P[:n, j] - P[:n, low]) + P[:n, low]
                        size += np.sum(np.abs(P[:n, j] - P[:n, low]))
                if size >= old_size:
                    break
                old_size = size
        if count > maxit:
            break
    return P[:n, low].copy()


def fit_sln(S, I, log_density_ratio, exact: bool = False) -> dict:
    """Beta-binomial probit regression of SLN on the log density ratio.

    The Python counterpart of upstream's R fit (SLN_logdensities.R with aod's
    ``betabin``): the number S of supragranular among S + I labelled neurons is
    beta-binomial with mean SLN = Phi(intercept + slope * log ratio) and constant
    overdispersion phi, fitted by maximum likelihood from the binomial GLM's
    coefficients and phi = 0.1 with R's Nelder-Mead search and stopping rule.
    ``exact=True`` continues to the exact likelihood maximum (the likelihood is
    flat there: the two differ in the 3rd-4th digit). Returns {'intercept',
    'slope', 'phi'}.
    """
    from scipy.special import betaln, gammaln, ndtr

    S = np.asarray(S, dtype=float)
    I = np.asarray(I, dtype=float)
    x = np.asarray(log_density_ratio, dtype=float)
    if not (S.shape == I.shape == x.shape) or np.any(S + I <= 0):
        raise ValueError("S, I and log_density_ratio must have one entry per connection "
                         "with S + I > 0")
    n = S + I
    log_choose = gammaln(n + 1) - gammaln(S + 1) - gammaln(I + 1)

    def minus_log_likelihood(params):
        b0, b1, phi = params
        p = ndtr(b0 + b1 * x)
        with np.errstate(all='ignore'):
            a, b = p * (1 - phi) / phi, (1 - p) * (1 - phi) / phi
            ll = np.sum(log_choose + betaln(a + S, b + I) - betaln(a, b))
        return -ll if np.isfinite(ll) and 0 < phi < 1 else 1e20

    start = _probit_glm(S, I, np.column_stack([np.ones_like(x), x]))
    best = _nelder_mead(minus_log_likelihood, [start[0], start[1], 0.1], maxit=100000)
    if exact:
        from scipy.optimize import minimize
        for _ in range(2):
            best = minimize(minus_log_likelihood, best, method='Nelder-Mead',
                            options={'xatol': 1e-12, 'fatol': 1e-13,
                                     'maxiter': 100000, 'maxfev': 100000}).x
    b0, b1, phi = best
    return {'intercept': float(b0), 'slope': float(b1), 'phi': float(phi)}


def sln_fit_from_data(data_dir=None, exact: bool = False) -> tuple[float, float]:
    """(intercept, slope) of ``fit_sln`` on the raw data file upstream's R fit reads."""
    from .data.raw import load_sln_fit_data

    table = load_sln_fit_data(data_dir)
    fit = fit_sln(table['S'], table['I'], table['log_density_ratio'], exact=exact)
    return fit['intercept'], fit['slope']


# ---------------------------------------------------------------- public API

def process_raw_data(raw: dict, sln_fit: tuple[float, float] | None = None) -> dict:
    """Complete the raw data (``load_raw_data()``) into upstream's processed data.

    ``sln_fit`` is (intercept, slope) of the probit SLN fit; default: the published
    values ``SLN_FIT_PUBLISHED`` (use ``sln_fit_from_data()`` for a refit). The input
    dict is not modified.
    """
    missing = [k for k in ('neuronal_density_data_updated', 'injection_sites') if k not in raw]
    if missing:
        raise ValueError(f"raw data lacks {missing}: pass the output of load_raw_data(), "
                         "not upstream's viscortex_raw_data.json")
    area_list = list(raw['area_list'])
    area_set = set(area_list)

    hierarchy = dict(raw['hierarchy'])
    architecture = dict(raw['architecture'])
    for area, (level, category) in _COMPLETED_AREAS.items():
        hierarchy[area] = level
        architecture[area] = category

    dens = _neuronal_densities(raw, area_list, architecture)
    densities = dens['neuronal_densities']
    total, laminar = _thicknesses(raw, area_list, densities)
    numbers = _neuron_numbers(raw, densities, laminar)

    fv91_parts = _overlap_map(raw['overlap'], area_set)
    fln_fv91 = _per_target_means(raw['FLN_Data'], raw['injection_sites'], area_set, 'FLN')
    fln_mapped = _map_fln_sources(fln_fv91, fv91_parts, area_list)
    cocomac = _cocomac_completed(raw['cocomac_data'], fln_mapped, area_list)
    fln = _fln_completed(fln_mapped, cocomac, raw, area_list)

    sln_fv91 = _per_target_means(raw['SLN_Data'], raw['injection_sites'], area_set, 'SLN')
    sln_mapped = _map_sln_sources(sln_fv91, fln_fv91, fv91_parts)
    sln = _sln_completed(sln_mapped, cocomac, densities, area_list,
                         SLN_FIT_PUBLISHED if sln_fit is None else tuple(sln_fit))

    return {'cocomac_completed': cocomac,
            'architecture_completed': architecture,
            'hierarchy_completed': hierarchy,
            'SLN_completed': sln,
            'SLN_Data_FV91': sln_mapped,
            'FLN_Data_FV91': fln_mapped,
            'FLN_completed': fln,
            'neuronal_densities': densities,
            'neuronal_density_data_FV91_4layers': dens['neuronal_density_data_FV91_4layers'],
            'realistic_neuronal_numbers': numbers,
            'total_thicknesses': total,
            'laminar_thicknesses': laminar,
            'category_density': dens['category_density']}
