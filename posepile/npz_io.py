"""Reading .npz archives a user hands in (predictions, poses, weights): never unpickled, and
every error names the file and says what is wrong with it.

np.load(allow_pickle=False) on something that is not an .npz says "This file contains pickled
(object) data. If you trust the file you can load it unsafely using the allow_pickle= keyword
argument or pickle.load()" (for a text file, a truncated download, anything without the zip or
.npy magic bytes), without the file name, and suggests the unsafe load this project never
does. `read_npz` answers instead with the path and the real reason.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

_ZIP_MAGIC = b'PK\x03\x04'
_EMPTY_ZIP_MAGIC = b'PK\x05\x06'
_NPY_MAGIC = b'\x93NUMPY'


def read_npz(path: str | os.PathLike, required: Sequence[str] = (),
             what: str = 'an .npz archive') -> dict[str, np.ndarray]:
    """All arrays of the archive at `path`, as {key: array}.

    Args:
        required: keys that must be present (KeyError naming the file, the keys and those it has).
        what: what the file should be, for the messages ('a predictions .npz (eval/predictions.py)').
    Raises:
        FileNotFoundError / IsADirectoryError naming the path; ValueError naming it when the file
        is not a zip archive of .npy arrays (with the magic bytes it does have), is truncated or
        damaged, or holds Python objects (never unpickled here: store strings as a str array,
        np.asarray(names, dtype=str)).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f'{path}: no such file (expected {what})')
    if os.path.isdir(path):
        raise IsADirectoryError(f'{path}: is a directory, expected {what}')
    with open(path, 'rb') as f:
        head = f.read(8)
    if head.startswith(_NPY_MAGIC):
        raise ValueError(f'{path}: is a single .npy array, expected {what} (np.savez of named '
                         f'arrays)')
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_EMPTY_ZIP_MAGIC)):
        kind = 'is empty' if not head else f'starts with {head!r}'
        raise ValueError(f'{path}: not {what}: the file {kind}, not a zip archive of .npy '
                         f'arrays (np.savez writes those)')
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                try:
                    arrays[key] = data[key]
                except ValueError as error:
                    if 'allow_pickle' in str(error) or 'pickled' in str(error):
                        raise ValueError(
                            f'{path}: key {key!r} holds Python objects, which are never '
                            f'unpickled; store text as a str array (np.asarray(values, '
                            f'dtype=str)) and numbers as numeric arrays') from None
                    raise ValueError(f'{path}: key {key!r} cannot be read: {error}') from None
                if not isinstance(arrays[key], np.ndarray):
                    raise ValueError(f'{path}: member {key!r} is not an .npy array (expected '
                                     f'{what})')
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ValueError(f'{path}: not {what}: damaged or truncated zip archive ({error})'
                         ) from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise KeyError(f'{path}: missing keys {missing} (has {sorted(arrays)}; expected {what})')
    return arrays
