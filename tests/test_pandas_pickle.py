"""The inert DataFrame reader on real pandas pickles (tests/data/pandas_pickles/, written by
pandas 1.5.3 (also with pandas 1.1's BlockManager pickling), 2.3.3 and 3.1.1 from the table in
make_agora_fixture.known_table(); see that script to regenerate). No pandas needed here."""
import pickle
import shutil
import sys

import numpy as np
import pytest

from make_agora_fixture import TABLES, known_table
from posepile import pandas_pickle
from posepile.pandas_pickle import DataFramePickleError, load_dataframe
from posepile.safe_unpickle import UnsafePickleError

READABLE = ['table_pandas1.1-layout.pkl', 'table_pandas1.5.3.pkl', 'table_pandas2.3.3_p5.pkl',
            'table_pandas2.3.3_p4.pkl', 'table_pandas2.3.3_p2.pkl', 'table_pandas2.3.3_p1.pkl']


def assert_cells_equal(got, want, where):
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for g, w in zip(got, want):
            assert_cells_equal(g, w, where)
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype, where
        np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, float) and np.isnan(want):
        assert np.isnan(got), where
    else:
        assert got == want and type(got) is not np.ndarray, where


@pytest.mark.parametrize('name', READABLE)
def test_reads_the_known_table(name):
    frame = load_dataframe(TABLES / name)
    table = known_table()
    assert list(frame.columns) == list(table)
    np.testing.assert_array_equal(frame.index, [0, 1, 2])
    assert frame.n_rows == 3
    assert frame.columns['camX'].dtype == np.float64
    assert frame.columns['count'].dtype == np.int64
    assert frame.columns['flag'].dtype == np.bool_
    assert frame.columns['gt_joints_3d'].dtype == object
    for column, values in table.items():
        for row, want in enumerate(values):
            assert_cells_equal(frame.columns[column][row], want, f'{name} {column}[{row}]')
    assert frame.columns['gt_joints_3d'][0][1].shape == (127, 3)
    assert frame.columns['gt_verts'][2][0].dtype == np.float32
    assert 'pandas' not in sys.modules  # nothing imported pandas


def test_reads_a_filtered_frame_with_an_int64_index():
    frame = load_dataframe(TABLES / 'table_pandas1.5.3_filtered.pkl')
    np.testing.assert_array_equal(frame.index, [0, 2])
    table = known_table()
    assert frame.columns['imgPath'].tolist() == [table['imgPath'][0], table['imgPath'][2]]
    np.testing.assert_array_equal(frame.columns['gt_joints_3d'][1][1], table['gt_joints_3d'][2][1])


def test_pandas3_string_columns_are_refused_by_name():
    with pytest.raises(UnsafePickleError, match=r'table_pandas3\.1\.1\.pkl: refusing to unpickle '
                                                r'global pandas\._libs\.arrays\.'):
        load_dataframe(TABLES / 'table_pandas3.1.1.pkl')


def test_bad_files(tmp_path):
    good = (TABLES / 'table_pandas2.3.3_p5.pkl').read_bytes()
    cut = tmp_path / 'cut.pkl'
    cut.write_bytes(good[:len(good) // 2])
    with pytest.raises(DataFramePickleError, match=r'cut\.pkl: not a readable pickle'):
        load_dataframe(cut)
    plain = tmp_path / 'plain.pkl'
    plain.write_bytes(pickle.dumps({'imgPath': ['a.png']}))
    with pytest.raises(DataFramePickleError, match=r'plain\.pkl: holds a dict, expected a '
                                                   r'pickled pandas DataFrame'):
        load_dataframe(plain)
    evil = tmp_path / 'evil.pkl'
    evil.write_bytes(pickle.dumps(shutil.rmtree))
    with pytest.raises(UnsafePickleError, match=r'evil\.pkl: refusing to unpickle global '
                                                r'shutil\.rmtree'):
        load_dataframe(evil)
    with pytest.raises(DataFramePickleError, match='missing.pkl: not a readable pickle'):
        load_dataframe(tmp_path / 'missing.pkl')


def test_a_crafted_file_cannot_change_the_stand_ins_of_later_loads(tmp_path):
    # Protocol 0: push the _new_Index stand-in (a function), BUILD (None, {'__defaults__': (5,)})
    # onto it, i.e. setattr(_new_Index, '__defaults__', (5,)), and return it.
    crafted = tmp_path / 'crafted.pkl'
    crafted.write_bytes(b"cpandas.core.indexes.base\n_new_Index\n(N}S'__defaults__'\n(I5\ntstb.")
    with pytest.raises(DataFramePickleError, match=r'crafted\.pkl: holds a function'):
        load_dataframe(crafted)
    fresh = pandas_pickle._StandIns().table['pandas.core.indexes.base', '_new_Index']
    assert fresh.__defaults__ == (None,)  # every load gets its own stand-ins
    frame = load_dataframe(TABLES / 'table_pandas2.3.3_p5.pkl')
    assert frame.columns['imgPath'].tolist() == known_table()['imgPath']


def test_duplicate_column_names_are_refused(tmp_path):
    raw = (TABLES / 'table_pandas2.3.3_p5.pkl').read_bytes()
    assert raw.count(b'\x8c\x04flag') == 1  # the column label, a 4-character string
    path = tmp_path / 'duplicate.pkl'
    path.write_bytes(raw.replace(b'\x8c\x04flag', b'\x8c\x04camX'))
    with pytest.raises(DataFramePickleError, match=r"duplicate\.pkl: duplicate column names"):
        load_dataframe(path)


def _frame(kinds, blocks, columns, n_rows):
    """A recorded DataFrame as the stand-ins build it for BlockManager(blocks, axes)."""
    axes = [pandas_pickle._IndexRecord(kinds.index, {'data': np.array(columns, object)}),
            pandas_pickle._IndexRecord(kinds.range_index, {'start': 0, 'stop': n_rows, 'step': 1})]
    manager = kinds.manager(tuple(pandas_pickle._BlockRecord(v, p) for v, p in blocks), axes)
    frame = kinds.frame.__new__(kinds.frame)
    frame.__setstate__({'_mgr': manager, '_typ': 'dataframe'})
    return frame


@pytest.mark.parametrize('blocks, message', [
    ([(np.zeros((1, 2)), slice(0, 1, 1))], r"columns \['b'\] are in no block"),
    ([(np.zeros((2, 2)), slice(0, 2, 1)), (np.zeros((1, 2)), np.array([1]))],
     r"column 'b' is stored in two blocks"),
    ([(np.zeros((2, 3)), slice(0, 2, 1))], r'block values have shape \(2, 3\), expected \[2, 2\]'),
    ([(np.zeros((1, 2)), np.array([0])), (np.zeros((1, 2)), np.array([5]))],
     r'block placement \[5\] outside the 2 columns'),
    ([(['not', 'an', 'array'], slice(0, 2, 1))], r'block values are a list'),
])
def test_block_structure_is_checked(blocks, message):
    kinds = pandas_pickle._StandIns()
    with pytest.raises(DataFramePickleError, match=r'x\.pkl: ' + message):
        pandas_pickle._interpret_frame(_frame(kinds, blocks, ['a', 'b'], 2), kinds, 'x.pkl')
    ok = _frame(kinds, [(np.arange(4.0).reshape(2, 2), slice(0, 2, 1))], ['a', 'b'], 2)
    decoded = pandas_pickle._interpret_frame(ok, kinds, 'x.pkl')
    np.testing.assert_array_equal(decoded.columns['b'], [2.0, 3.0])
