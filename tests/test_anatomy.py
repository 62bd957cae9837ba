"""Processing of the raw data: against upstream's processed backup and by properties.

FLN_completed and cocomac_completed have no published backup; they are checked by
re-deriving their defining rules from the raw data (and, in the slow test, against
upstream's own script when its source is at hand).
"""
import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr

from mam_pynn import anatomy
from mam_pynn.anatomy import SLN_FIT_PUBLISHED, fit_sln, load_raw_data, process_raw_data
from mam_pynn.data import data_file
from nested import assert_nested_close
from mam_pynn.data.raw import load_sln_fit_data

UPSTREAM_MIRROR = Path('/work/.mirror/INM-6+multi-area-model/repo')


@pytest.fixture(scope='module')
def raw(data_dir):
    return load_raw_data(data_dir)


@pytest.fixture(scope='module')
def processed(raw):
    return process_raw_data(raw)


def test_agrees_with_upstream_backup(data_dir, processed):
    backup = json.loads(data_file('viscortex_processed_data_backup.json', data_dir).read_text())
    assert set(backup) == {'SLN_completed', 'realistic_neuronal_numbers',
                           'total_thicknesses', 'laminar_thicknesses'}
    for key, theirs in backup.items():
        assert_nested_close(processed[key], theirs, key)


def test_has_upstream_keys_and_is_json_compatible(processed):
    assert set(processed) == {
        'cocomac_completed', 'architecture_completed', 'hierarchy_completed',
        'SLN_completed', 'SLN_Data_FV91', 'FLN_Data_FV91', 'FLN_completed',
        'neuronal_densities', 'neuronal_density_data_FV91_4layers',
        'realistic_neuronal_numbers', 'total_thicknesses', 'laminar_thicknesses',
        'category_density'}
    assert_nested_close(json.loads(json.dumps(processed)), processed)


def test_does_not_modify_its_input(raw):
    before = copy.deepcopy(raw)
    process_raw_data(raw)
    assert json.dumps(raw, sort_keys=True) == json.dumps(before, sort_keys=True)


def test_rejects_upstream_json_without_processing_extras(data_dir):
    upstream_raw = json.loads(data_file('viscortex_raw_data.json', data_dir).read_text())
    with pytest.raises(ValueError, match='injection_sites'):
        process_raw_data(upstream_raw)


# ---------------------------------------------------------------- neuron numbers

def test_neuron_numbers_are_density_times_volume(raw, processed):
    numbers = processed['realistic_neuronal_numbers']
    lam = processed['laminar_thicknesses']
    dens = processed['neuronal_densities']
    v1 = raw['num_V1']
    assert set(numbers) == set(raw['area_list'])
    for area, pops in numbers.items():
        assert pops['total'] == pytest.approx(sum(v for k, v in pops.items() if k != 'total'))
        for layer in ['23', '4', '5', '6']:
            e, i = pops[layer + 'E'], pops[layer + 'I']
            assert e + i == pytest.approx(
                raw['surface_data'][area] * lam[area][layer] * dens[area][layer], rel=1e-12)
            if e > 0:  # E/I ratio of the layer as in cat V1
                ratio_v1 = v1[layer + 'E']['neurons'] / v1[layer + 'I']['neurons']
                assert e / i == pytest.approx(ratio_v1, rel=1e-12)
    assert numbers['TH']['4E'] == 0 and numbers['TH']['4I'] == 0  # TH has no layer 4
    assert processed['neuronal_densities']['MIP'] == processed['category_density']['5']


def test_laminar_thicknesses_add_up_to_total(processed):
    for area, layers in processed['laminar_thicknesses'].items():
        # laminar in mm, total in micrometre
        assert sum(layers.values()) * 1000 == pytest.approx(processed['total_thicknesses'][area])
        assert all(v >= 0 for v in layers.values())


def test_measured_total_thicknesses_are_kept(raw, processed):
    for area, value in raw['total_thickness_data'].items():
        if not math.isnan(value):
            assert processed['total_thicknesses'][area] == value


# ---------------------------------------------------------------- CoCoMac

def test_cocomac_completed_rules(raw, processed):
    coco = processed['cocomac_completed']
    mapped = processed['FLN_Data_FV91']
    areas = set(raw['area_list'])
    source_codes = {'0', '1', '2', '3', 2, 0, -1}
    target_codes = {'0', '1', '2', '3', 2.0, -1}
    for target, sources in coco.items():
        assert target in sources  # self-connection added for consistency
        # every CoCoMac connection is kept, new ones come from Markov et al.'s FLN
        assert set(raw['cocomac_data'][target]) <= set(sources)
        for source in set(sources) - set(raw['cocomac_data'][target]) - {target}:
            assert source in areas and mapped[target][source] > 0
            assert sources[source] == {'source_pattern': None, 'target_pattern': None}
        for source, p in sources.items():
            sp, tp = p['source_pattern'], p['target_pattern']
            if sp is not None:
                assert len(sp) == 6 and set(sp) <= source_codes
                assert sp[0] != -1 and sp[3] != -1  # unknown in L1/L4 of the source is 0
            if tp is not None:
                assert len(tp) == 6 and set(tp) <= target_codes
    # the patterns map 'X' -> 2 and '?' -> codes, position by position
    for target, sources in raw['cocomac_data'].items():
        for source, p in sources.items():
            if p['source_pattern'] is not None:
                codes = coco[target][source]['source_pattern']
                for i, (c, code) in enumerate(zip(p['source_pattern'], codes)):
                    unknown = 0 if i in (0, 3) else -1
                    assert code == {'X': 2, '?': unknown}.get(c, c)
            if p['target_pattern'] is not None:
                codes = coco[target][source]['target_pattern']
                for c, code in zip(p['target_pattern'], codes):
                    assert code == {'X': 2.0, '?': -1}.get(c, c)


# ---------------------------------------------------------------- FLN

def test_fln_completed_rules(raw, processed):
    fln = processed['FLN_completed']
    mapped = processed['FLN_Data_FV91']
    coco = processed['cocomac_completed']
    median = raw['median_distance_data']
    areas = set(raw['area_list'])
    assert set(fln) == areas
    filled_d, filled_log = [], []
    for target, sources in fln.items():
        model_sources = set(sources) - {'external'}
        assert model_sources <= areas and target not in model_sources
        # measured where Markov et al. injected, else every CoCoMac connection
        expected = set(mapped[target]) | {s for s in coco[target]
                                          if s in areas and s in median and s != target}
        assert model_sources == expected
        assert sum(sources.values()) <= 1.0  # fractions of all labelled neurons
        assert sources['external'] >= 0
        for source in model_sources:
            if source in mapped[target]:
                assert sources[source] == mapped[target][source]
            else:
                filled_d.append(median[target][source])
                filled_log.append(math.log(sources[source]))
    # all filled values lie on one exponential distance rule, decaying with distance
    slope, intercept = np.polyfit(filled_d, filled_log, 1)
    assert slope < 0
    assert np.allclose(intercept + slope * np.array(filled_d), filled_log, rtol=0, atol=1e-10)
    # ... which is the least-squares fit to the measured (nonzero) values
    thom = raw['thom_distance_data']
    d, y = zip(*[(median[t][s], math.log(v)) for t, ss in mapped.items() for s, v in ss.items()
                 if v and t in thom and s in thom])
    assert np.allclose(np.polyfit(d, y, 1), [slope, intercept], rtol=1e-9)


def test_fln_data_mapped_from_injections(raw, processed):
    """V1's input from V2: per M132 source, the mean FLN over the V1 injections, times
    the percentage of that M132 area lying in FV91 V2 ('FVE.' and 'FVE_all.' parts)."""
    v1_monkeys = [m for m, s in raw['injection_sites'].items()
                  if s['FV91_area'] == 'V1' and m in raw['FLN_Data']]
    assert len(v1_monkeys) == 5
    m132_name = {v: k for k, v in anatomy._M132_OVERLAP_NAMES.items() if v != 'Insula'}
    expected = 0.
    for m132, parts in raw['overlap']['all'].items():
        percent = parts.get('FVE.V2', 0) + parts.get('FVE_all.V2', 0)
        name = m132[:-len('_M132')]
        name = m132_name.get(name, name)
        values = [raw['FLN_Data'][m]['source_areas'].get(name, {'FLN': 0.})['FLN']
                  for m in v1_monkeys]
        expected += percent / 100. * np.mean(values)
    assert expected > 0.5
    assert processed['FLN_Data_FV91']['V1']['V2'] == pytest.approx(expected, rel=1e-12)
    assert 'V1' not in processed['FLN_Data_FV91']['V1']  # intrinsic FLN removed


# ---------------------------------------------------------------- SLN

def test_sln_completed_rules(processed):
    sln = processed['SLN_completed']
    measured = processed['SLN_Data_FV91']
    coco = processed['cocomac_completed']
    dens = processed['neuronal_densities']
    b0, b1 = SLN_FIT_PUBLISHED
    for target, sources in sln.items():
        assert set(sources) == {s for s in coco[target] if s in sln and s != target}
        for source, value in sources.items():
            assert 0. <= value <= 1.
            if source in measured.get(target, {}):
                assert value == measured[target][source]
            else:
                x = b1 * math.log(dens[target]['overall'] / dens[source]['overall']) + b0
                assert value == pytest.approx(float(ndtr(x)), rel=1e-12)


def test_custom_sln_fit_changes_only_fitted_values(raw, processed):
    other = process_raw_data(raw, sln_fit=(0.0, -1.0))
    measured = processed['SLN_Data_FV91']
    changed = 0
    for target, sources in other['SLN_completed'].items():
        for source, value in sources.items():
            if source in measured.get(target, {}):
                assert value == processed['SLN_completed'][target][source]
            else:
                changed += value != processed['SLN_completed'][target][source]
    assert changed > 100


@pytest.fixture(scope='module')
def sln_table(data_dir):
    return load_sln_fit_data(data_dir)


def _significant(value, digits):
    return float(f"{value:.{digits}g}")


@pytest.mark.parametrize('exact', [False, True])
def test_python_sln_fit_reproduces_published_parameters(sln_table, exact):
    fit = fit_sln(sln_table['S'], sln_table['I'], sln_table['log_density_ratio'], exact=exact)
    assert _significant(fit['intercept'], 3) == _significant(SLN_FIT_PUBLISHED[0], 3)
    assert _significant(fit['slope'], 3) == _significant(SLN_FIT_PUBLISHED[1], 3)
    assert 0 < fit['phi'] < 1


def test_r_like_sln_fit_gives_the_published_digits(sln_table):
    """With R's start values and Nelder-Mead stopping rule, all 7 printed digits."""
    fit = fit_sln(sln_table['S'], sln_table['I'], sln_table['log_density_ratio'])
    assert fit['intercept'] == pytest.approx(SLN_FIT_PUBLISHED[0], abs=1e-7)
    assert fit['slope'] == pytest.approx(SLN_FIT_PUBLISHED[1], abs=1e-7)


def test_sln_fit_rejects_inconsistent_input():
    with pytest.raises(ValueError, match='one entry per connection'):
        fit_sln([1, 2], [3, 4], [0.1])
    with pytest.raises(ValueError, match='S \\+ I > 0'):
        fit_sln([0], [0], [0.1])


def test_sln_fit_from_data_feeds_processing(data_dir, raw, processed):
    refit = anatomy.sln_fit_from_data(data_dir)
    assert np.allclose(refit, SLN_FIT_PUBLISHED, rtol=0, atol=1e-7)
    # the published values are the refit rounded: SLN agrees to the rounding error
    assert_nested_close(process_raw_data(raw, sln_fit=refit)['SLN_completed'],
                 processed['SLN_completed'], 'SLN_completed', rel=1e-6)


# ---------------------------------------------------------------- upstream's own script

_NESTED_DICT_STANDIN = '''
from collections import defaultdict
class nested_dict(defaultdict):
    def __init__(self):
        super().__init__(nested_dict)
    def to_dict(self):
        return {k: v.to_dict() if isinstance(v, nested_dict) else v for k, v in self.items()}
'''


@pytest.mark.slow
def test_every_key_equals_upstream_script(data_dir, processed, tmp_path):
    """Run upstream's VisualCortex_Data.py (from its git mirror) and compare all keys."""
    if not (UPSTREAM_MIRROR / 'HEAD').exists():
        pytest.skip(f"upstream mirror not found at {UPSTREAM_MIRROR}")
    source = subprocess.run(
        ['git', '-C', str(UPSTREAM_MIRROR), 'show',
         'HEAD:multiarea_model/data_multiarea/VisualCortex_Data.py'],
        check=True, capture_output=True, text=True).stdout
    (tmp_path / 'VisualCortex_Data.py').write_text(source)
    (tmp_path / 'config.py').write_text("base_path = '/nonexistent'\n")  # no R: published fit
    (tmp_path / 'nested_dict.py').write_text(_NESTED_DICT_STANDIN)
    (tmp_path / 'raw_data').symlink_to((data_dir / 'raw_data').resolve())
    subprocess.run([sys.executable, '-c', 'import VisualCortex_Data as V; V.process_raw_data()'],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    theirs = json.loads((tmp_path / 'viscortex_processed_data.json').read_text())
    assert_nested_close(json.loads(json.dumps(processed)), theirs, rel=1e-12)
