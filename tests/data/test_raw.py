"""The raw-data parser against upstream's own parse, and its handling of bad input."""
import json
import math
import shutil

import numpy as np
import pytest

from mam_pynn.data import DataFileError, data_file, registry
from mam_pynn.data import raw
from nested import assert_nested_close


@pytest.fixture(scope='module')
def parsed(data_dir):
    return raw.load_raw_data(data_dir)


def assert_same(ours, theirs, path='', rel=1e-12):
    """Equal structure, key order, types; floats to ``rel``, NaN equal to NaN."""
    assert_nested_close(ours, theirs, path, rel, strict=True)


def test_equals_upstream_parse(data_dir, parsed):
    upstream = json.loads(data_file('viscortex_raw_data.json', data_dir).read_text())
    assert set(upstream) <= set(parsed)
    for key in upstream:
        assert_same(parsed[key], upstream[key], key)


def test_extra_keys_for_processing(parsed):
    assert parsed['injection_sites']['M81LH'] == {'injected_area': 'V1', 'FV91_area': 'V1'}
    nissl = parsed['neuronal_density_data_updated']
    # aliases upstream stores twice, and the renamed TEr
    assert nissl['MT'] == nissl['V5/MT'] and nissl['7a'] == nissl['A7a']
    assert 'Te1' in nissl and 'TEr' not in nissl
    assert 'V3' not in nissl  # '—': no measurement


def test_result_is_json_compatible(parsed):
    again = json.loads(json.dumps(parsed))
    assert_same(again, parsed)


def test_sln_fit_table(data_dir):
    table = raw.load_sln_fit_data(data_dir)
    assert len(table['S']) == len(table['I']) == len(table['log_density_ratio']) == 188
    assert np.all(table['S'] >= 0) and np.all(table['I'] >= 0)
    # natural log of the density ratio: MT <- V1 from the Nissl densities
    i = table['source_area'].index('V1')
    assert table['target_area'][i] == 'MT'
    assert table['log_density_ratio'][i] == pytest.approx(math.log(81153 / 173360), abs=1e-6)


def _copy_of_data_dir(src, dst, leave_out=()):
    for name in registry():
        if name in leave_out:
            continue
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        (dst / name).symlink_to((src / name).resolve())
    return dst


def test_missing_file_is_a_data_file_error(data_dir, tmp_path):
    copy = _copy_of_data_dir(data_dir, tmp_path, leave_out={'raw_data/SLN_Data.csv'})
    with pytest.raises(DataFileError, match='SLN_Data.csv'):
        raw.load_raw_data(copy)


def test_corrupt_file_is_a_data_file_error(data_dir, tmp_path):
    copy = _copy_of_data_dir(data_dir, tmp_path, leave_out={'raw_data/Numbers_V1.csv'})
    shutil.copy(data_dir / 'raw_data/Numbers_V1.csv', copy / 'raw_data/Numbers_V1.csv')
    with open(copy / 'raw_data/Numbers_V1.csv', 'a') as f:
        f.write('extra\n')
    with pytest.raises(DataFileError, match='Numbers_V1.csv'):
        raw.load_raw_data(copy)


@pytest.mark.parametrize('name, corrupt', [
    ('NeuronalDensities_NeuN.csv', lambda t: t.replace('161365.313353296', 'many')),
    ('SLN_Data.csv', lambda t: t.replace(' M133LH ', ' ', 1)),
    ('Median_Distances_81areas.csv', lambda t: '\n'.join(t.splitlines()[:40])),
    ('overlap.json', lambda t: t[:-5]),
    ('laminar_thicknesses_macaque.csv', lambda t: t.replace('\t710\t', '\tabc\t', 1)),
])
def test_malformed_content_is_a_value_error_naming_the_file(data_dir, monkeypatch, name, corrupt):
    original = raw._text

    def tampered(file_name, directory):
        text = original(file_name, directory)
        return corrupt(text) if file_name == name else text

    monkeypatch.setattr(raw, '_text', tampered)
    with pytest.raises(ValueError, match=name.replace('.', r'\.')):
        raw.load_raw_data(data_dir)
