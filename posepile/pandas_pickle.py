"""Reading pickled pandas DataFrames without pandas and without running code from the file.

Some datasets (AGORA) ship their annotations as `DataFrame.to_pickle` files. `pandas.read_pickle`
would import and call whatever the file names; this module instead unpickles through
`posepile.safe_unpickle` with the few pandas globals a DataFrame pickle references mapped to
INERT stand-ins: they record the arguments and `__setstate__` state the pickle hands them and
execute nothing. Numpy arrays are rebuilt by the restricted unpickler's own allowlist. The
recorded tree (frame -> block manager -> blocks + axes) is then interpreted with plain
Python/numpy into {column name: [N] numpy array}.

What pandas writes (checked on pickles written by pandas 1.5.3 and 2.3.3, and by pandas 1.5.3
with the BlockManager pickling of pandas 1.1/1.2, which AGORA's 2021 files use):
    DataFrame            pandas.core.frame.DataFrame, made by NEWOBJ (protocol >= 2) or
                         copyreg._reconstructor(DataFrame, object, None) (protocol 0/1); its
                         state is a dict whose '_mgr' (pandas < 1.1: '_data') is the manager.
    BlockManager         pandas.core.internals.managers.BlockManager, either
                         called as BlockManager(blocks, axes) (pandas >= 1.3: its __reduce__),
                         each block _unpickle_block(values, placement, ndim) from
                         pandas._libs.internals; or made by NEWOBJ with the state
                         (axes, values, items, {'0.14.1': {'axes': [...], 'blocks':
                         [{'values': ..., 'mgr_locs': ...}]}}) (pandas <= 1.2).
    axes                 [columns, row index], each pandas.core.indexes.base._new_Index(cls, d):
                         cls Index / Int64Index / UInt64Index / Float64Index with d['data'], or
                         RangeIndex with d['start'], d['stop'], d['step'].
    block values         2D arrays [columns in the block, rows]; placement is a slice or an
                         integer array of column positions.
Extension arrays (categoricals, datetimes with time zones, pandas >= 3's string columns), Series
and MultiIndex are not understood: their globals are refused (UnsafePickleError naming the
file and the global) or their structure raises DataFramePickleError.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from posepile.safe_unpickle import UnsafePickleError, load_pickle


class DataFramePickleError(ValueError):
    """The file is not a pickled DataFrame of the structure this module understands."""


class _Recorder:
    """Base of the inert stand-ins: construction and unpickling only store what they are given.

    The unpickler creates instances through NEWOBJ (`cls.__new__(cls, *args)`), REDUCE
    (`cls(*args)`) or BUILD (`obj.__setstate__(state)`); none of these runs pandas code.
    """

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args, **kwargs):
        pass  # __new__ recorded the arguments

    def __setstate__(self, state):
        self.state = state


@dataclasses.dataclass
class _BlockRecord:
    values: Any
    placement: Any


@dataclasses.dataclass
class _IndexRecord:
    cls: type
    attributes: Any


class _StandIns:
    """Fresh inert stand-ins for one load.

    Fresh per load because a pickle can BUILD onto any object it can name, including a class or
    function it received from find_class (setting attributes on it): whatever a crafted file does
    to these objects stays inside its own, failed, decode.
    """

    def __init__(self):
        class DataFrame(_Recorder):
            pass

        class BlockManager(_Recorder):
            pass

        class Index(_Recorder):
            """Stands for Index and its numeric variants; only passed to _new_Index."""

        class RangeIndex(_Recorder):
            """Stands for RangeIndex; only passed to _new_Index."""

        class ObjectBase:
            """Stands for builtins.object, the base class copyreg._reconstructor receives."""

        def unpickle_block(values, placement, ndim=None):
            return _BlockRecord(values, placement)

        def new_index(cls, attributes=None):
            return _IndexRecord(cls, attributes)

        def reconstructor(cls, base, state):
            """copyreg._reconstructor (protocol 0/1), for the stand-in classes only."""
            if cls not in (DataFrame, BlockManager) or base is not ObjectBase or state is not None:
                raise DataFramePickleError(
                    f'copyreg._reconstructor({getattr(cls, "__name__", cls)!r}, ...) is not the '
                    f'reconstruction of a pandas DataFrame part')
            return cls.__new__(cls)

        self.frame, self.manager, self.index, self.range_index = (
            DataFrame, BlockManager, Index, RangeIndex)
        index_classes = {'Index': Index, 'Int64Index': Index, 'UInt64Index': Index,
                         'Float64Index': Index, 'NumericIndex': Index, 'RangeIndex': RangeIndex}
        index_modules = ('pandas.core.indexes.base', 'pandas.core.indexes.numeric',
                         'pandas.core.indexes.range', 'pandas')
        # (module, name) -> stand-in; pandas >= 3 names some classes by their public path.
        self.table: dict[tuple[str, str], Any] = {
            ('pandas.core.frame', 'DataFrame'): DataFrame,
            ('pandas', 'DataFrame'): DataFrame,
            ('pandas.core.internals.managers', 'BlockManager'): BlockManager,
            ('pandas._libs.internals', '_unpickle_block'): unpickle_block,
            ('pandas.core.indexes.base', '_new_Index'): new_index,
            **{(module, name): cls for module in index_modules
               for name, cls in index_classes.items()},
            ('copyreg', '_reconstructor'): reconstructor,
            ('copy_reg', '_reconstructor'): reconstructor,  # protocol < 3: Python 2 names
            ('builtins', 'object'): ObjectBase,
            ('__builtin__', 'object'): ObjectBase,
        }


@dataclasses.dataclass
class DecodedFrame:
    """A DataFrame's content as plain numpy.

    Attributes:
        columns: {column name: [N] array} in the frame's column order; object columns hold the
            cells' Python objects (e.g. lists of arrays).
        index: [N] row labels.
    """
    columns: dict[str, np.ndarray]
    index: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.index)


def load_dataframe(path: str | os.PathLike) -> DecodedFrame:
    """The DataFrame pickled at `path` (see module docstring), read without running its code.

    Raises:
        UnsafePickleError: the pickle references a global outside numpy's arrays, plain
            builtins and the DataFrame parts above (the message names file and global).
        DataFramePickleError: not a readable pickle, or not a DataFrame of plain numpy columns
            (the message names the file and what was found).
    """
    path = os.fspath(path)
    kinds = _StandIns()
    try:
        root = load_pickle(path, stand_ins=kinds.table)
    except UnsafePickleError as e:
        raise UnsafePickleError(
            f'{e} (the inert DataFrame reader understands DataFrames of numpy columns written by '
            f'pandas 1.x/2.x; extension arrays and pandas 3 string columns are not supported)'
        ) from None
    except DataFramePickleError as e:
        raise DataFramePickleError(f'{path}: {e}') from None
    except Exception as e:  # truncated or not a pickle: EOFError, UnpicklingError, ValueError...
        raise DataFramePickleError(
            f'{path}: not a readable pickle ({type(e).__name__}: {e})') from None
    return _interpret_frame(root, kinds, path)


def _interpret_frame(root: Any, kinds: _StandIns, source: str) -> DecodedFrame:
    """The recorded stand-in tree of a DataFrame pickle -> DecodedFrame; `source` names the file
    in errors."""
    def fail(what: str):
        raise DataFramePickleError(f'{source}: {what}')

    if type(root) is not kinds.frame:
        fail(f'holds a {type(root).__name__}, expected a pickled pandas DataFrame')
    state = root.state
    if not isinstance(state, dict):
        fail('DataFrame state is not a dict (pandas < 0.12 pickles are not supported)')
    manager = state.get('_mgr', state.get('_data'))
    if type(manager) is not kinds.manager:
        fail(f'DataFrame state has no BlockManager (found {type(manager).__name__})')
    blocks, axes = _manager_parts(manager, fail)
    if not isinstance(axes, (list, tuple)) or len(axes) != 2:
        fail('BlockManager does not have 2 axes (a Series or panel, not a DataFrame)')
    names = _index_values(axes[0], 'columns', kinds, fail)
    index = _index_values(axes[1], 'row index', kinds, fail)
    n_rows = len(index)
    columns: list[np.ndarray | None] = [None] * len(names)
    for block in blocks:
        values, positions = _block_values(block, len(names), n_rows, fail)
        for row_in_block, position in enumerate(positions):
            if columns[position] is not None:
                fail(f'column {names[position]!r} is stored in two blocks')
            columns[position] = values[row_in_block]
    missing = [str(names[i]) for i, c in enumerate(columns) if c is None]
    if missing:
        fail(f'columns {missing} are in no block')
    if len(set(names.tolist())) != len(names):
        fail(f'duplicate column names {names.tolist()}')
    return DecodedFrame({str(name): col for name, col in zip(names.tolist(), columns)}, index)


def _manager_parts(manager: _Recorder, fail) -> tuple[list, Any]:
    """([(values, placement)], axes) from either pickling of a BlockManager."""
    if manager.args:  # pandas >= 1.3: BlockManager(blocks, axes)
        if len(manager.args) != 2 or not isinstance(manager.args[0], (tuple, list)):
            fail('BlockManager arguments are not (blocks, axes)')
        blocks, axes = manager.args
        for block in blocks:
            if not isinstance(block, _BlockRecord):
                fail(f'block of type {type(block).__name__}, expected _unpickle_block(...)')
        return [(b.values, b.placement) for b in blocks], axes
    state = manager.state  # pandas <= 1.2: (axes, values, items, {'0.14.1': {...}})
    if not (isinstance(state, tuple) and len(state) >= 4 and isinstance(state[3], dict)
            and isinstance(state[3].get('0.14.1'), dict)):
        fail('BlockManager state is neither BlockManager(blocks, axes) nor the 0.14.1 layout')
    layout = state[3]['0.14.1']
    blocks = layout.get('blocks')
    if not isinstance(blocks, (list, tuple)) or not all(
            isinstance(b, dict) and 'values' in b and 'mgr_locs' in b for b in blocks):
        fail("BlockManager state 'blocks' is not a list of {'values', 'mgr_locs'}")
    return [(b['values'], b['mgr_locs']) for b in blocks], layout.get('axes')


def _index_values(record: Any, what: str, kinds: _StandIns, fail) -> np.ndarray:
    """[N] labels of an Index or RangeIndex record."""
    if not isinstance(record, _IndexRecord) or not isinstance(record.attributes, dict):
        fail(f'{what} is a {type(record).__name__}, expected a pandas Index')
    attributes = record.attributes
    if record.cls is kinds.range_index:
        bounds = [attributes.get(k) for k in ('start', 'stop', 'step')]
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                   for v in bounds) or bounds[2] == 0:
            fail(f'{what} RangeIndex has start/stop/step {bounds}')
        return np.arange(*bounds)
    if record.cls is kinds.index:
        data = attributes.get('data')
        if isinstance(data, np.ndarray) and data.ndim == 1:
            return data
        fail(f'{what} Index data is a {type(data).__name__}, expected a 1D numpy array')
    fail(f'{what} is an index of unsupported kind {getattr(record.cls, "__name__", record.cls)}')


def _block_values(block: tuple, n_columns: int, n_rows: int, fail) -> tuple[np.ndarray, list]:
    """(values [k, n_rows], the k column positions) of one block, checked."""
    values, placement = block
    if not isinstance(values, np.ndarray):
        fail(f'block values are a {type(values).__name__}, not a numpy array (extension '
             f'arrays are not supported)')
    if isinstance(placement, slice):
        positions = list(range(*placement.indices(n_columns)))
        if placement.stop is not None and placement.stop > n_columns:
            fail(f'block placement {placement} exceeds the {n_columns} columns')
    elif isinstance(placement, np.ndarray) and placement.dtype.kind in 'iu' \
            and placement.ndim == 1:
        positions = placement.tolist()
        if positions and not 0 <= min(positions) <= max(positions) < n_columns:
            fail(f'block placement {positions} outside the {n_columns} columns')
    else:
        fail(f'block placement is a {type(placement).__name__}, expected a slice or int array')
    if values.ndim == 1 and len(positions) == 1:
        values = values[None]
    if values.shape != (len(positions), n_rows):
        fail(f'block values have shape {values.shape}, expected [{len(positions)}, {n_rows}] '
             f'(columns in the block, rows)')
    return values, positions
