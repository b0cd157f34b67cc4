"""The one rule for which image arrays the project takes, and how they become [H, W, 3] uint8 RGB.

Layouts: [H, W] (grey: replicated into R, G, B), [H, W, 1] (the same), [H, W, 3] (RGB) and
[H, W, 4] (RGBA: alpha ignored). Values:
    uint8                as they are;
    other integer types  if every value is in 0..255 (e.g. int64 from some readers);
    float                [0, 1] (the convention of float images: skimage, matplotlib) is scaled
                         by 255, and a float image whose maximum exceeds 1 is taken as 0..255;
                         values outside [0, 255], NaN or inf are refused (there is no way to
                         tell what such an image means).
Anything else (bool, complex, another rank or channel count, an empty image) is refused with a
ValueError naming where the image came from, what it is, and IMAGE_FORM.
metrabs.serving.inference_module.rgb_image is the in-graph twin for the layouts (a SavedModel
sees uint8 only: TensorFlow casts a numpy float image to uint8 before the graph runs).
"""
from __future__ import annotations

import numpy as np

IMAGE_FORM = ('[H, W] (grey), [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] (RGBA); uint8 0..255 '
              'or float 0..1 (or 0..255)')


def as_rgb_uint8(image, where: str = 'image', min_side: int = 1) -> np.ndarray:
    """[H, W, 3] uint8 RGB (contiguous) from an array of any layout and dtype above.

    min_side: the smallest H and W accepted (px); smaller images are refused.
    """
    array = np.asarray(image)
    described = f'{where}: got shape {list(array.shape)} {array.dtype}; expected {IMAGE_FORM}'
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(described)
    if min(array.shape[:2]) < max(min_side, 1):
        raise ValueError(f'{where}: the image is {array.shape[1]}x{array.shape[0]} px, smaller '
                         f'than {max(min_side, 1)} px on a side' if array.size else
                         f'{where}: the image is empty (shape {list(np.shape(image))})')
    kind = array.dtype.kind
    if kind == 'u' and array.dtype.itemsize == 1:
        pixels = array
    elif kind in 'ui':
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f'{where}: integer pixel values {low}..{high} are outside 0..255; '
                             f'expected {IMAGE_FORM}')
        pixels = array.astype(np.uint8)
    elif kind == 'f':
        if not np.all(np.isfinite(array)):
            raise ValueError(f'{where}: the float image has NaN or inf values')
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 255:
            raise ValueError(f'{where}: float pixel values {low:g}..{high:g} are outside both '
                             f'0..1 and 0..255; expected {IMAGE_FORM}')
        scale = 255.0 if high <= 1.0 else 1.0
        pixels = np.round(array.astype(np.float64) * scale).astype(np.uint8)
    else:
        raise ValueError(described)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3])
