"""Reading 3D point trajectories from C3D motion-capture files (the c3d.org format).

Several studio datasets ship their ground truth as C3D (ASPset-510 joints_3d, UMPM *_vm.c3d,
Berkeley MHAD markers). Only what they need is supported: Intel byte order (processor type 84),
integer or floating-point 3D point data, the POINT:UNITS / POINT:LABELS / POINT:FRAMES
parameters. Analog data is skipped.

Format summary (C3D User Guide): 512-byte blocks. Block 1 is the header: byte 0 = first
parameter block, byte 1 = 0x50; 16-bit words (1-based) 2 = points per frame, 3 = analog values
per frame, 4/5 = first/last frame, 7-8 = float scale (< 0: float data), 9 = first data block,
11-12 = float frame rate. The parameter section holds groups and parameters (name, group id,
offset to the next item, type -1 char / 1 byte / 2 int16 / 4 float, dimensions, data). Each
frame stores per point X, Y, Z and a residual word (negative: point invalid), then analog values.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import struct

import numpy as np

from posepile.datasets.common import DatasetFormatError, require_file

_BLOCK = 512
_INTEL = 84
_UNIT_TO_MM = {'mm': 1.0, 'cm': 10.0, 'm': 1000.0}


@dataclasses.dataclass
class C3DPoints:
    """points: [T, N, 3] float64 in millimetres (NaN where the residual marks a point invalid);
    labels: N point labels (empty strings if the file has none); frame_rate: Hz;
    first_frame: the file's 1-based number of frame 0."""
    points: np.ndarray
    labels: list[str]
    frame_rate: float
    first_frame: int


def read_parameters(data: bytes, start: int, path) -> dict[tuple[str, str], object]:
    """(GROUP, PARAM) -> value: str for char parameters (list of str for 2D char arrays),
    numpy array otherwise (column-major dimensions as C3D stores them)."""
    groups: dict[int, str] = {}
    raw = []
    pos = start + 4
    while pos + 2 <= len(data):
        nchars, item_id = struct.unpack_from('<bb', data, pos)
        if nchars == 0:
            break
        nchars = abs(nchars)
        name = data[pos + 2:pos + 2 + nchars].decode('ascii', 'replace').upper()
        offset_pos = pos + 2 + nchars
        (offset,) = struct.unpack_from('<h', data, offset_pos)
        body = offset_pos + 2
        if item_id < 0:
            groups[-item_id] = name
        else:
            dtype_code, ndims = struct.unpack_from('<bB', data, body)
            dims = list(data[body + 2:body + 2 + ndims])
            payload = body + 2 + ndims
            size = int(np.prod(dims)) if dims else 1
            nbytes = size * abs(dtype_code)
            raw.append((item_id, name, dtype_code, dims, data[payload:payload + nbytes]))
        if offset == 0:
            break
        pos = offset_pos + offset
    params = {}
    for group_id, name, dtype_code, dims, payload in raw:
        key = (groups.get(group_id, str(group_id)), name)
        if dtype_code == -1:
            text = payload.decode('ascii', 'replace')
            if len(dims) == 2:
                params[key] = [text[i * dims[0]:(i + 1) * dims[0]].strip()
                               for i in range(dims[1])]
            else:
                params[key] = text.strip()
        else:
            dtype = {1: '<i1', 2: '<i2', 4: '<f4'}.get(dtype_code)
            if dtype is None:
                raise DatasetFormatError(f'{path}: parameter {key} has unknown type {dtype_code}')
            params[key] = np.frombuffer(payload, dtype)
    return params


def read_c3d(path: str | os.PathLike) -> C3DPoints:
    """The 3D point trajectories of a C3D file, converted to millimetres via POINT:UNITS."""
    path = require_file(path, 'a C3D motion-capture file')
    data = pathlib.Path(path).read_bytes()
    if len(data) < 2 * _BLOCK or data[1] != 0x50:
        raise DatasetFormatError(f'{path}: not a C3D file (header key byte must be 0x50)')
    param_block = data[0]
    n_points, n_analog, first, last = struct.unpack_from('<HHHH', data, 2)
    (scale,) = struct.unpack_from('<f', data, 12)
    (data_block,) = struct.unpack_from('<H', data, 16)
    (frame_rate,) = struct.unpack_from('<f', data, 20)
    param_start = (param_block - 1) * _BLOCK
    if param_start + 4 > len(data) or data[param_start + 3] != _INTEL:
        raise DatasetFormatError(
            f'{path}: unsupported C3D processor type (only Intel byte order, type {_INTEL})')
    params = read_parameters(data, param_start, path)
    n_frames = last - first + 1
    if ('POINT', 'FRAMES') in params:  # the header's 16-bit frame count can overflow
        n_frames = max(n_frames, int(np.asarray(params['POINT', 'FRAMES']).astype(np.uint16)[0]))
    units = str(params.get(('POINT', 'UNITS'), 'mm')).strip().lower()
    if units not in _UNIT_TO_MM:
        raise DatasetFormatError(f'{path}: POINT:UNITS is {units!r}, expected one of mm, cm, m')
    is_float = scale < 0
    word = 4 if is_float else 2
    per_frame = 4 * n_points + n_analog
    start = (data_block - 1) * _BLOCK
    needed = start + n_frames * per_frame * word
    if needed > len(data):
        raise DatasetFormatError(
            f'{path}: truncated C3D file ({len(data)} bytes, the header promises {needed})')
    values = np.frombuffer(data, '<f4' if is_float else '<i2', n_frames * per_frame, start)
    values = values.reshape(n_frames, per_frame)[:, :4 * n_points].reshape(n_frames, n_points, 4)
    points = values[..., :3].astype(np.float64) * (1.0 if is_float else abs(scale))
    points[values[..., 3] < 0] = np.nan
    points *= _UNIT_TO_MM[units]
    labels = params.get(('POINT', 'LABELS'), [])
    labels = [labels] if isinstance(labels, str) else list(labels)
    labels = (labels + [''] * n_points)[:n_points]
    return C3DPoints(points=points, labels=labels, frame_rate=float(frame_rate),
                     first_frame=int(first))
