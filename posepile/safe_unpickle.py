"""Loading pickles of plain data (dicts/lists of numpy arrays) without running arbitrary code.

`pickle.load` can call any importable callable (e.g. os.system) while loading, so a dataset file
from the internet must not be unpickled with it. `load_pickle` allows only what a pickle of plain
containers and numpy arrays needs: numpy's array/scalar reconstruction, numpy.dtype, builtin
containers/scalars, and _codecs.encode (how Python 3 stores bytes in protocol-2 pickles).
Anything else raises `UnsafePickleError` naming the module and class.

The 3DPW sequence files are Python-2 pickles; load them with encoding='latin1' (the default here)
so that numpy's byte-string array payloads decode correctly.
"""
from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping
from typing import Any

# (module, name) pairs a pickle of numpy arrays legitimately references. numpy 2 renamed
# numpy.core to numpy._core; old pickles name the former, new ones the latter.
_NUMPY_ALLOWED = {
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    # Protocol-5 pickles (pandas' to_pickle default) store numeric arrays as
    # _frombuffer(bytes, dtype, shape, order), a plain np.frombuffer + reshape.
    ('numpy.core.numeric', '_frombuffer'),
    ('numpy._core.numeric', '_frombuffer'),
}
# Plain builtins only; nothing that evaluates, imports, or touches files.
_BUILTINS_ALLOWED = {
    'dict', 'list', 'tuple', 'set', 'frozenset', 'str', 'bytes', 'bytearray', 'int', 'float',
    'complex', 'bool', 'slice', 'range',
}
_BUILTIN_MODULES = ('builtins', '__builtin__')


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the allowed set."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose find_class admits numpy array reconstruction and plain builtins only.

    `stand_ins` maps further (module, name) globals to objects returned in their place, without
    importing anything: callers pass inert recorders that run no code (posepile.pandas_pickle
    reads pandas DataFrames this way).
    """

    def __init__(self, *args, stand_ins: Mapping[tuple[str, str], Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._stand_ins = dict(stand_ins or {})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._stand_ins:
            return self._stand_ins[module, name]
        if (module, name) in _NUMPY_ALLOWED:
            return super().find_class(module, name)
        if module in _BUILTIN_MODULES and name in _BUILTINS_ALLOWED:
            return super().find_class('builtins', name)
        if (module, name) == ('_codecs', 'encode'):
            # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, 'latin1').
            return super().find_class(module, name)
        raise UnsafePickleError(
            f'refusing to unpickle global {module}.{name}: only numpy arrays and plain builtins '
            f'are allowed')


def loads_pickle(data: bytes, encoding: str = 'latin1', source: str = '<bytes>',
                 stand_ins: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """Restricted `pickle.loads`; `source` names the origin in error messages."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding=encoding,
                                   stand_ins=stand_ins).load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f'{source}: {e}') from None


def load_pickle(path: str | os.PathLike, encoding: str = 'latin1',
                stand_ins: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """Restricted `pickle.load` of the file at `path` (see module docstring).

    Streams from the file, so a multi-GB pickle needs memory for its objects only, not also for
    a copy of its bytes.
    """
    with open(path, 'rb') as f:
        try:
            return RestrictedUnpickler(f, encoding=encoding, stand_ins=stand_ins).load()
        except UnsafePickleError as e:
            raise UnsafePickleError(f'{os.fspath(path)}: {e}') from None
