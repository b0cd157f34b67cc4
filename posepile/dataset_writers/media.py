"""Image, video and C3D files for the dataset-format writers (posepile/dataset_writers/)."""
from __future__ import annotations

import pathlib

import numpy as np


def write_video(path, frames: np.ndarray, fourcc: str = 'mp4v', fps: float = 25.0) -> None:
    """Writes RGB uint8 frames [T, H, W, 3] as a video (mp4v .mp4 or MJPG .avi)."""
    import cv2
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'cannot write video {path}')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def write_jpeg(path, image: np.ndarray, quality: int = 95) -> None:
    """Writes one RGB uint8 image [H, W, 3] as JPEG."""
    import cv2
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]),
                       [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise RuntimeError(f'cannot write {path}')


def read_image(path) -> np.ndarray:
    import cv2
    return cv2.imread(str(path))[..., ::-1]


def write_c3d(path: pathlib.Path, points_mm: np.ndarray, labels, units='mm', rate=50.0,
              use_float=True, invalid=None, n_analog=0):
    """A C3D file per the c3d.org user guide (Intel): header, POINT parameters, point data.

    points_mm: [T, N, 3] in mm; written in `units`. invalid: [T, N] bool -> residual -1.
    """
    import struct
    T, N, _ = points_mm.shape
    values = points_mm / {'mm': 1.0, 'cm': 10.0, 'm': 1000.0}[units]
    scale = -0.01 if use_float else 0.1

    def param(group_id, name, type_code, dims, payload):
        body = struct.pack('<bB', type_code, len(dims)) + bytes(dims) + payload + b'\x00'
        return struct.pack('<bb', len(name), group_id) + name.encode() + \
            struct.pack('<h', 2 + len(body)) + body

    def group(group_id, name):
        return (struct.pack('<bb', len(name), -group_id) + name.encode() + struct.pack('<h', 3)
                + b'\x00')

    width = max(len(s) for s in labels)
    items = [group(1, 'POINT'),
             param(1, 'USED', 2, [], struct.pack('<h', N)),
             param(1, 'SCALE', 4, [], struct.pack('<f', scale)),
             param(1, 'RATE', 4, [], struct.pack('<f', rate)),
             param(1, 'FRAMES', 2, [], struct.pack('<h', T)),
             param(1, 'UNITS', -1, [len(units)], units.encode()),
             param(1, 'LABELS', -1, [width, N], b''.join(s.ljust(width).encode() for s in labels))]
    params = b''.join(items) + b'\x00\x00'
    params = struct.pack('<BBBB', 1, 0x50, 1, 84) + params
    n_param_blocks = -(-len(params) // 512)
    params = bytearray(params.ljust(512 * n_param_blocks, b'\x00'))
    params[2] = n_param_blocks
    data_block = 2 + n_param_blocks
    header = bytearray(512)
    header[0], header[1] = 2, 0x50
    struct.pack_into('<HHHHH', header, 2, N, n_analog, 1, T, 0)
    struct.pack_into('<f', header, 12, scale)
    struct.pack_into('<H', header, 16, data_block)
    struct.pack_into('<f', header, 20, rate)
    residual = np.zeros((T, N, 1))
    if invalid is not None:
        residual[invalid] = -1
    frame = np.concatenate([values if use_float else values / scale, residual], axis=2)
    frame = np.concatenate([frame.reshape(T, -1), np.zeros((T, n_analog))], axis=1)
    data = frame.astype('<f4' if use_float else '<i2').tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(header) + bytes(params) + data)
