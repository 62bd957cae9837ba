"""Population layout and conversions between nested dicts and vectors/matrices.

The model's arrays have one row per existing population (254: areas in
``area_list`` order, populations in ``structure`` order; TH has no layer 4) and,
for connectivity, one column per source population plus a last column for the
external input. The nested dicts (upstream's layout) hold all 8 populations of
every area, with 0 for populations that do not exist, so that
``M.K['TH']['4E']['V1']['23E']`` is defined like upstream.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .params import AREA_LIST, POPULATION_LIST

# upstream zeroes matrix entries that np.isclose(0, x) calls zero when it turns
# matrices back into dicts (e.g. the ~1e-9 entries of K_prime_original.npy)
ZERO_ATOL = 1e-8
ZERO_RTOL = 1e-5


def structure_from_numbers(numbers: dict, area_list=AREA_LIST) -> OrderedDict:
    """Area -> populations that hold neurons (upstream's ``structure``)."""
    return OrderedDict((area, [pop for pop in POPULATION_LIST if numbers[area][pop] > 0.0])
                       for area in area_list)


def structure_vec(area_list, structure) -> list[str]:
    return [f"{area}-{pop}" for area in area_list for pop in structure[area]]


def grid_index(area_list, structure) -> np.ndarray:
    """Positions of the existing populations in the full (area, 8 populations) grid."""
    n_pop = len(POPULATION_LIST)
    return np.array([a * n_pop + POPULATION_LIST.index(pop)
                     for a, area in enumerate(area_list) for pop in structure[area]], dtype=int)


def zero_tiny(x: np.ndarray) -> np.ndarray:
    """Copy of ``x`` with entries that np.isclose(0, x) calls zero set to 0."""
    x = np.array(x, dtype=float)
    x[np.abs(x) <= ZERO_ATOL + ZERO_RTOL * np.abs(x)] = 0.0
    return x


def vector_to_grid(v, area_list, structure) -> np.ndarray:
    """(n,) population vector -> (areas, 8) array with zeros for missing populations."""
    grid = np.zeros(len(area_list) * len(POPULATION_LIST))
    grid[grid_index(area_list, structure)] = v
    return grid.reshape(len(area_list), len(POPULATION_LIST))


def grid_to_vector(grid, area_list, structure) -> np.ndarray:
    return np.asarray(grid, dtype=float).reshape(-1)[grid_index(area_list, structure)]


def vector_to_dict(v, area_list, structure) -> dict:
    """Population vector -> {area: {pop: value, ..., 'total': sum}}."""
    grid = vector_to_grid(v, area_list, structure)
    out = {}
    for a, area in enumerate(area_list):
        row = dict(zip(POPULATION_LIST, grid[a].tolist()))
        row['total'] = float(np.sum(np.asarray(v)[_area_slice(a, area_list, structure)]))
        out[area] = row
    return out


def _area_slice(a, area_list, structure) -> slice:
    start = sum(len(structure[area]) for area in area_list[:a])
    return slice(start, start + len(structure[area_list[a]]))


def dict_to_vector(d, area_list, structure) -> np.ndarray:
    """{area: {pop: value}} -> population vector (a list value gives its first entry)."""
    values = []
    for area in area_list:
        for pop in structure[area]:
            val = d[area][pop]
            values.append(val[0] if isinstance(val, (list, tuple, np.ndarray)) else val)
    return np.array(values, dtype=float)


def matrix_to_dict(m, area_list, structure, external=True, zero=True) -> dict:
    """(n, n[+1]) matrix -> d[target_area][target_pop][source_area][source_pop].

    With ``external`` the last column becomes d[...]['external']['external'].
    ``zero`` applies upstream's np.isclose(0, x) zeroing to the population part.
    """
    n_area, n_pop = len(area_list), len(POPULATION_LIST)
    m = np.asarray(m, dtype=float)
    n = len(grid_index(area_list, structure))
    pops_part = zero_tiny(m[:, :n]) if zero else m[:, :n]
    idx = grid_index(area_list, structure)
    full = np.zeros((n_area * n_pop, n_area * n_pop))
    full[np.ix_(idx, idx)] = pops_part
    rows = full.reshape(n_area, n_pop, n_area, n_pop).tolist()
    if external:
        ext = np.zeros(n_area * n_pop)
        ext[idx] = m[:, n]
        ext = ext.reshape(n_area, n_pop).tolist()
    out = {}
    for a, area in enumerate(area_list):
        per_area = {}
        for p, pop in enumerate(POPULATION_LIST):
            row = {area2: dict(zip(POPULATION_LIST, rows[a][p][a2]))
                   for a2, area2 in enumerate(area_list)}
            if external:
                row['external'] = {'external': ext[a][p]}
            per_area[pop] = row
        out[area] = per_area
    return out


def dict_to_matrix(d, area_list, structure, external=True) -> np.ndarray:
    """Inverse of :func:`matrix_to_dict` (external column taken when ``external``)."""
    pairs = [(area, pop) for area in area_list for pop in structure[area]]
    n = len(pairs)
    m = np.zeros((n, n + 1 if external else n))
    for i, (ta, tp) in enumerate(pairs):
        row = d[ta][tp]
        m[i, :n] = [row[sa][sp] for sa, sp in pairs]
        if external:
            m[i, n] = row['external']['external']
    return m


def create_vector_mask(structure, pops=POPULATION_LIST, areas=None, area_list=AREA_LIST) -> np.ndarray:
    """Boolean (n,) mask of the populations ``pops`` in ``areas`` (upstream's helper)."""
    areas = area_list if areas is None else areas
    return np.array([area in areas and pop in pops
                     for area in area_list for pop in structure[area]], dtype=bool)


def create_mask(structure, target_pops=POPULATION_LIST, source_pops=POPULATION_LIST,
                target_areas=None, source_areas=None, area_list=AREA_LIST, external=True,
                cortico_cortical=False, internal=False) -> np.ndarray:
    """Boolean (n, n+1) mask of population pairs (upstream's ``create_mask``).

    ``external`` keeps the external column for the selected targets.
    ``cortico_cortical`` drops, and ``internal`` keeps only, the pairs within one
    of the source areas; like upstream, both count the external column of a
    target in a source area as "within" it.
    """
    target = create_vector_mask(structure, target_pops, target_areas, area_list)
    source = create_vector_mask(structure, source_pops, source_areas, area_list)
    mask = np.outer(target, np.append(source, bool(external)))
    if cortico_cortical or internal:
        source_areas = area_list if source_areas is None else source_areas
        area_of = np.array([area for area in area_list for _ in structure[area]])
        in_sources = np.isin(area_of, list(source_areas))
        within = np.zeros_like(mask)
        within[:, :-1] = (area_of[:, None] == area_of[None, :]) & in_sources[:, None]
        within[:, -1] = in_sources
        if cortico_cortical:
            mask &= ~within
        if internal:
            mask &= within
    return mask


def extract_area_dict(d, structure, target_area, source_area) -> dict:
    """d[target_area][pop][source_area][pop2] restricted to existing populations."""
    return {pop: {pop2: d[target_area][pop][source_area][pop2] for pop2 in structure[source_area]}
            for pop in structure[target_area]}
