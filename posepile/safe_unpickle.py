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
    """Unpickler whose find_class admits numpy array reconstruction and plain builtins only."""

    def find_class(self, module: str, name: str) -> Any:
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


def loads_pickle(data: bytes, encoding: str = 'latin1', source: str = '<bytes>') -> Any:
    """Restricted `pickle.loads`; `source` names the origin in error messages."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f'{source}: {e}') from None


def load_pickle(path: str | os.PathLike, encoding: str = 'latin1') -> Any:
    """Restricted `pickle.load` of the file at `path` (see module docstring)."""
    with open(path, 'rb') as f:
        data = f.read()
    return loads_pickle(data, encoding=encoding, source=os.fspath(path))
