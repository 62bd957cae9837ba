"""Parse the raw anatomical data files into one nested dict.

The result has the keys, nesting and values of upstream's ``viscortex_raw_data.json``
(areas as keys, NaN where a value is missing), so that code written for upstream's
data structures keeps working. Two extra keys hold what the processing stage needs
but upstream never stored: ``neuronal_density_data_updated`` (Nissl-stained overall
densities) and ``injection_sites`` (monkey -> injected area and its FV91 area).

Upstream's quirks are kept on purpose, because the published model was built from
them: e.g. the header line of SchemeTranslation.csv becomes an entry, the last row
of laminar_thicknesses_macaque.csv is counted twice, and a few Nissl areas are
stored under both their own and their FV91 name.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from . import data_file

# The 32 areas in upstream's raw-data order (the order of its dict keys).
RAW_AREA_LIST = ['V1', 'V2', 'VP', 'V3', 'PIP', 'V3A', 'MT', 'V4t', 'V4',
                 'PO', 'VOT', 'DP', 'MIP', 'MDP', 'MSTd', 'VIP', 'LIP',
                 'PITv', 'PITd', 'AITv', 'MSTl', 'FST', 'CITv', 'CITd',
                 '7a', 'STPp', 'STPa', 'FEF', '46', 'TF', 'TH', 'AITd']

# Areas without a hierarchy level in Reid et al. (2009): placed like their neighbours.
_UNKNOWN_HIERARCHY_LEVEL = 0.5

# Nissl table names that upstream also stores under another (FV91 or NeuN) name.
_NISSL_ALIASES = {'V5/MT': 'MT', 'A46v': 'area 46v', 'A7a': '7a', 'LIPv': 'LIP'}
_NISSL_RENAMED = {'TEr': 'Te1'}  # stored under the new name only


@contextmanager
def _parsing(name: str) -> Iterator[None]:
    """Turn any parsing failure into a ValueError that names the file."""
    try:
        yield
    except (ValueError, IndexError, KeyError, TypeError, StopIteration,
            AttributeError, UnicodeDecodeError) as err:
        raise ValueError(f"malformed content in data file {name!r}: "
                         f"{type(err).__name__}: {err}") from err


def _text(name: str, directory) -> str:
    return data_file(f'raw_data/{name}', directory).read_text(encoding='utf-8')


def _rows(text: str, delimiter: str = '\t', skip: int = 2) -> list[list[str]]:
    """csv rows after ``skip`` header rows (csv module semantics, as upstream)."""
    rows = list(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter))
    return rows[skip:]


def _table_rows(text: str, delimiter: str = '\t', skip: int = 2,
                ncols: int | None = None) -> list[list[str]]:
    """Rows after ``skip`` lines, blank lines dropped (pandas.read_csv semantics).

    With ``ncols``, only the first ``ncols`` fields of each row are split off.
    """
    lines = text.splitlines()[skip:]
    maxsplit = -1 if ncols is None else ncols
    rows = [line.split(delimiter, maxsplit) for line in lines if line.strip()]
    if ncols is not None:
        short = [r for r in rows if len(r) < ncols]
        if short:
            raise ValueError(f"row {short[0][:3]} has fewer than {ncols} fields")
        rows = [r[:ncols] for r in rows]
    return rows


def _square_matrix(text: str, n: int) -> dict[str, dict[str, float]]:
    """An n x n labelled distance table -> {row area: {column area: value}}.

    Rows are labelled by the header (as upstream does), not by their first cell.
    """
    rows = _rows(text)
    areas = rows[0][1:n + 1]
    if len(areas) != n or len(rows) < n + 1:
        raise ValueError(f"expected a {n} x {n} table")
    values = np.array([row[1:n + 1] for row in rows[1:n + 1]], dtype=float)
    return {a: dict(zip(areas, map(float, vals))) for a, vals in zip(areas, values)}


def _float_or_raw(s: str):
    try:
        return float(s)
    except ValueError:
        return s


# ---------------------------------------------------------------- file parsers

def _hierarchy(text: str) -> dict:
    hierarchy = {}
    for area, level in (r[:2] for r in _table_rows(text)):
        hierarchy[area] = level if level == '?' else float(level)
    for area, level in hierarchy.items():
        if level == '?':
            hierarchy[area] = _UNKNOWN_HIERARCHY_LEVEL
    return hierarchy


def _hierarchy_markov(text: str) -> dict:
    return {r[0]: {'level': float(r[1]), 'rescaled level': float(r[2])}
            for r in _table_rows(text, delimiter=',')}


def _neun_densities(text: str) -> dict:
    out = {}
    for r in _table_rows(text):
        v = [float(x) for x in r[1:9]]
        if len(v) != 8:
            raise ValueError(f"row {r[0]!r} has {len(v)} values, expected 8")
        out[r[0]] = {layer: {'value': v[2 * i], 'error': v[2 * i + 1]}
                     for i, layer in enumerate(['overall', '23', '4', '56'])}
    return out


def _nissl_densities(text: str) -> dict:
    out = {}
    for r in _rows(text, delimiter=','):
        if not r:
            continue
        try:
            density = float(r[2])
        except ValueError:  # '—': no measurement
            continue
        if r[0] in _NISSL_ALIASES:
            out[_NISSL_ALIASES[r[0]]] = density
        out[_NISSL_RENAMED.get(r[0], r[0])] = density
    return out


def _architecture(text: str) -> dict:
    return {r[0]: r[1] if r[1] == '?' else int(r[1]) for r in _table_rows(text)}


def _surfaces(text: str) -> dict:
    return {r[0]: float(r[1]) for r in _table_rows(text)}


def _cocomac(text: str, confirmative_text: str) -> dict:
    """Laminar patterns of known connections: {target: {source: patterns}}.

    Connections without any laminar pattern are kept only where a study confirms
    them. Names are FV91 names with the 'FV91-' style prefix removed.
    """
    data = json.loads(text)
    confirmative = json.loads(confirmative_text)
    area_set = set(RAW_AREA_LIST)
    out = {target: {} for target in RAW_AREA_LIST}
    for source, targets in data.items():
        src = source.split('-')[-1]
        for target, (sp, tp) in targets.items():
            tgt = target.split('-')[-1]
            if tgt not in area_set:
                continue
            if sp is None and tp is None and not confirmative[source][target] > 0:
                continue
            out[tgt][src] = {'source_pattern': None if sp is None else list(sp),
                             'target_pattern': None if tp is None else list(tp)}
    return out


def _markov_fln(text: str) -> tuple[dict, dict, dict]:
    """FLN_Data, NLN_Data (per monkey) from Markov et al. (2014)."""
    fln, nln = {}, {}
    for _, monkey, source, target, value, neurons, status in _table_rows(text, ncols=7):
        if monkey not in fln:
            fln[monkey] = {'target_area': target, 'source_areas': {}}
            nln[monkey] = {'target_area': target, 'source_areas': {}}
        fln[monkey]['source_areas'][source] = {'FLN': float(value), 'status': status}
        nln[monkey]['source_areas'][source] = {'NLN': float(neurons), 'status': status}
    return fln, nln


def _injection_sites(text: str) -> dict:
    return {r[2]: {'injected_area': r[0], 'FV91_area': r[8]}
            for r in _table_rows(text, skip=3, ncols=9)}


def _intrinsic_fln(text: str) -> dict:
    return {r[0]: {'mean': float(r[1]), 'error': float(r[2])} for r in _rows(text)[:4]}


def _sln(text: str) -> dict:
    out = {}
    for r in _table_rows(text, delimiter=' ', skip=3):
        if len(r) != 14:
            raise ValueError(f"row {r[:3]} has {len(r)} fields, expected 14")
        target, source, monkey = r[1], r[2], r[8]
        entry = out.setdefault(monkey, {'target_area': target, 'source_areas': {}})
        entry['source_areas'][source] = {'FLN': float(r[12]), 'S': int(r[3]), 'I': int(r[4]),
                                         'TOT': int(r[5]), 'SLN': float(r[10])}
    return out


def _intrinsic_connectivity(text: str) -> dict:
    rows = _rows(text)
    header = rows[0]
    return {header[i]: {header[j]: float(rows[i][j]) for j in range(1, 10)}
            for i in range(1, 9)}


def _numbers_v1(text: str) -> dict:
    return {r[0]: {'neurons': float(r[1]), 'ext_inputs': float(r[2])} for r in _rows(text)[:9]}


def _laminar_thickness_cat(text: str) -> dict:
    return {r[0]: {'thickness': float(r[1]), 'error': float(r[2])} for r in _rows(text)[:10]}


def _laminar_thicknesses(text: str) -> dict:
    """{area: {layer: value or list of values (one per study)}}, NaN where not given.

    Layer names drop 'L' and '/' ('L2/3' -> '23'). As upstream, the last row of the
    file is read twice.
    """
    rows = _rows(text)
    names = [re.sub('/', '', re.sub('L', '', n)) for n in rows[0][1:16]]
    body = rows[1:]
    if body:
        body = body + [body[-1]]  # upstream's loop repeats its last row
    studies: dict[str, dict[str, list[float]]] = {}
    for r in body:
        area = studies.setdefault(r[0], {})
        for j in range(len(r) - 3):
            area.setdefault(names[j], []).append(float(r[j + 1]) if r[j + 1] else math.nan)
    return {a: {layer: v[0] if len(v) == 1 else v for layer, v in layers.items()}
            for a, layers in studies.items()}


def _total_thicknesses(text: str) -> dict:
    out = {area: math.nan for area in RAW_AREA_LIST}
    for r in _rows(text, skip=3)[:30]:
        if r[4]:
            out[r[0]] = float(r[4]) * 1000.  # mm -> micrometre
    return out


def _translation(text: str) -> dict:
    out: dict[str, list[str]] = {}
    for r in _table_rows(text):
        out.setdefault(r[0], []).append(r[1])
    return {k: sorted(set(v)) for k, v in out.items()}


def _binzegger(text: str) -> dict:
    """Binzegger et al. (2004): per cell type, occurrence and synapse distribution."""
    rows = _rows(text)
    pre_cells = rows[0]
    out = {}
    for r in rows[1:38]:
        if r[0] == '':
            continue
        # layer of the synapses: from column 2 ('L2/3'), else from the cell name
        syn_layer = re.sub(r"\D", "", r[1]) if r[1] else re.sub(r"\D", "", re.sub(r".*\(", "", r[0]))
        subdict = {pre_cells[j]: _float_or_raw(r[j]) for j in range(3, len(r))}
        if r[0] in out:
            out[r[0]]['syn_dict'][syn_layer] = subdict
        else:
            out[r[0]] = {'occurrence': float(r[2]), 'syn_dict': {syn_layer: subdict}}
    return out


def _single_number(text: str) -> float:
    return float(text.splitlines()[2].strip())


# ---------------------------------------------------------------- public API

def _parse(data_dir, name: str, parser, *extra_files):
    """``parser`` applied to the text of ``name`` (and of ``extra_files``)."""
    with _parsing(name):
        return parser(_text(name, data_dir), *(_text(e, data_dir) for e in extra_files))


def load_raw_data(data_dir: str | os.PathLike | None = None) -> dict:
    """All raw anatomical data as upstream's ``viscortex_raw_data.json`` structure.

    ``data_dir`` defaults to the package's data directory. Raises DataFileError for
    a missing or corrupt file and ValueError naming the file for malformed content.
    """
    def parse(name, parser, *extra_files):
        return _parse(data_dir, name, parser, *extra_files)

    def matrix(n):
        return lambda text: _square_matrix(text, n)

    fln, nln = parse('Markov2014_FLN_rawdata.csv', _markov_fln)
    return {
        'area_list': list(RAW_AREA_LIST),
        'hierarchy': parse('hierarchy_Reid.csv', _hierarchy),
        'neuronal_density_data': parse('NeuronalDensities_NeuN.csv', _neun_densities),
        'architecture': parse('ArchitecturalTypes.csv', _architecture),
        'euclidean_distance_data': parse('Euclidean_Distances.csv', matrix(32)),
        'thom_distance_data': parse('Thom_Distances.csv', matrix(32)),
        'thom_distance_data_markov': parse('Thom_Distances_MERetal12.csv', matrix(92)),
        'median_distance_data': parse('Median_Distances_81areas.csv', matrix(81)),
        'surface_data': parse('cortical_surface.csv', _surfaces),
        'cocomac_data': parse('CoCoMac_complete_81.json', _cocomac,
                              'cocomac_confirmative_studies.json'),
        'FLN_Data': fln,
        'Intrinsic_FLN_Data': parse('Intrinsic_FLN_Data.csv', _intrinsic_fln),
        'SLN_Data': parse('SLN_Data.csv', _sln),
        'NLN_Data': nln,
        'Intrinsic_Connectivity': parse('Intrinsic_Connectivity.csv', _intrinsic_connectivity),
        'num_V1': parse('Numbers_V1.csv', _numbers_v1),
        'Laminar_Thickness_cat': parse('Laminar_Thickness_cat.csv', _laminar_thickness_cat),
        'laminar_thicknesses': parse('laminar_thicknesses_macaque.csv', _laminar_thicknesses),
        'Binzegger_Data': parse('BinzeggerData.csv', _binzegger),
        'av_indegree_Cragg': parse('SynapticDensity_Cragg.csv', _single_number),
        'av_indegree_OKusky': parse('SynapticDensity_OKusky.csv', _single_number),
        'hierarchy_markov': parse('hierarchy_Markov.csv', _hierarchy_markov),
        'Translation': parse('SchemeTranslation.csv', _translation),
        'overlap': parse('overlap.json', json.loads),
        'total_thickness_data': parse('CorticalThickness.csv', _total_thicknesses),
        # not in upstream's raw JSON, needed by the processing stage
        'neuronal_density_data_updated': parse('NeuronalDensities_Nissl.csv', _nissl_densities),
        'injection_sites': parse('Markov2014_InjectionSites.csv', _injection_sites),
    }


def _sln_fit_table(text: str) -> dict:
    lines = [line.split() for line in text.splitlines() if line.strip()]
    header, body = lines[0], lines[1:]
    # R's read.table layout: rows carry one more field (their name) than the header
    bad = [r[0] for r in body if len(r) != len(header) + 1]
    if bad:
        raise ValueError(f"rows {bad[:3]} do not have {len(header) + 1} fields")
    columns = {name: [r[i + 1] for r in body] for i, name in enumerate(header)}
    return {'S': np.array(columns['S'], dtype=float),
            'I': np.array(columns['I'], dtype=float),
            'log_density_ratio': np.array(columns['DENS'], dtype=float),
            'target_area': columns['TO'], 'source_area': columns['FROM']}


def load_sln_fit_data(data_dir: str | os.PathLike | None = None) -> dict:
    """Input of the SLN fit: supra- (S) and infragranular (I) labelled neuron counts
    and the log ratio of target to source neuron density per connection
    (RData_prepared_logdensities.txt, the table upstream's R fit reads)."""
    return _parse(data_dir, 'RData_prepared_logdensities.txt', _sln_fit_table)
