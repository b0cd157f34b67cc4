"""Atomic file output: write to a temporary name in the target folder, then rename.

A reader (or a rerun after a crash) sees either the old complete file or the new complete file,
never a half-written one. Every module that writes an output file goes through here.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = 'wb') -> Iterator[IO]:
    """Yields a file object on a temporary file next to `path`; renames it onto `path` when the
    block ends normally (after fsync), deletes it when the block raises."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if 'b' in mode else {'encoding': 'utf-8'})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path, 'wb') as f:
        f.write(data)


def write_json_atomic(path: str | os.PathLike, data: Any, **json_kwargs) -> None:
    """JSON-encodes `data` (json.dump keyword arguments pass through; default indent=1)."""
    json_kwargs.setdefault('indent', 1)
    with atomic_output(path, 'w') as f:
        json.dump(data, f, **json_kwargs)
        f.write('\n')


def write_npz_atomic(path: str | os.PathLike, **arrays) -> None:
    """np.savez of `arrays` (uncompressed; np.load(allow_pickle=False) reads it back)."""
    with atomic_output(path, 'wb') as f:
        np.savez(f, **arrays)
