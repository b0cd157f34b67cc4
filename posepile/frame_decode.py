"""Decoding a source frame for a crop, at reduced resolution when the crop is much smaller.

libjpeg's scaled IDCT decodes a JPEG at 1/2, 1/4 or 1/8 of its size (cv2.IMREAD_REDUCED_*)
for less work than the full decode, and the crop's warp then samples a smaller image with a
lower antialiasing factor. Reduced pixel i covers full pixels N i .. N i + N - 1, so its centre
is full coordinate N i + (N - 1) / 2: exactly `Camera.scale_output(1 / N)` (measured: blob
centroids within 0.01 px of it), and the crop geometry (crop camera, box, joints) does not
change. The reduction is chosen so the reduced frame keeps at least
`MIN_SOURCE_PX_PER_CROP_PX` pixels per crop pixel at the crop centre; bench/README.md gives the
crops' PSNR against the full-resolution path.

Frames: image px, pixel-centre convention (posepile/camera.py).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from posepile.camera import Camera

_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}
# Reduced frames keep at least this many source px per crop px (measured PSNR in
# bench/README.md: below 2 the reduced path loses detail the full path keeps).
MIN_SOURCE_PX_PER_CROP_PX = 2.0
_JPEG_MAGIC = b'\xff\xd8\xff'


def reduction_for(source_camera: Camera, crop_camera: Camera,
                  min_source_px_per_crop_px: float | None = None) -> int:
    """The largest N in 1, 2, 4, 8 such that the frame decoded at 1/N still has
    `min_source_px_per_crop_px` (default MIN_SOURCE_PX_PER_CROP_PX) px per crop px (focal
    lengths, at the crop centre)."""
    if min_source_px_per_crop_px is None:
        min_source_px_per_crop_px = MIN_SOURCE_PX_PER_CROP_PX
    source = abs(np.linalg.det(source_camera.intrinsic_matrix[:2, :2]))
    crop = abs(np.linalg.det(crop_camera.intrinsic_matrix[:2, :2]))
    ratio = np.sqrt(source / crop)
    for factor in (8, 4, 2):
        if ratio / factor >= min_source_px_per_crop_px:
            return factor
    return 1


def read_jpeg_reduced(source: str | os.PathLike | bytes, factor: int,
                      where: str = '') -> np.ndarray | None:
    """[ceil(H / factor), ceil(W / factor), 3] uint8 RGB of a JPEG file or JPEG bytes decoded
    at 1/factor, or None if `source` is not a JPEG (then decode it in full: other formats gain
    nothing from a reduced decode).

    Raises:
        FileNotFoundError / ValueError naming `where` and the file if it cannot be read or
        decoded.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f'{where}: image file {path} does not exist')
        with open(path, 'rb') as f:
            data = f.read()
        origin = f'image file {path}'
    else:
        data = bytes(source)
        origin = f'the {len(data)} image bytes'
    if not data.startswith(_JPEG_MAGIC):
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_FLAGS[factor])
    if image is None:
        raise ValueError(f'{where}: could not decode {origin}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def reduced_camera(camera: Camera, factor: int) -> Camera:
    """The camera of the frame decoded at 1/factor (a copy)."""
    return camera.copy().scale_output(1 / factor)
