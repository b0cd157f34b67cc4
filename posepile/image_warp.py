"""Warp an image as seen by one camera into the view of another camera at the same optical centre.

Frames: image px, pixel-centre convention (see posepile/camera.py). All geometry comes from
`posepile.camera.Camera`; this module only turns it into OpenCV sampling maps.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from posepile.camera import Camera, homography_between

_BORDER_MODES = {
    'constant': cv2.BORDER_CONSTANT,
    'replicate': cv2.BORDER_REPLICATE,
    'reflect': cv2.BORDER_REFLECT,
    'reflect101': cv2.BORDER_REFLECT_101,
    'wrap': cv2.BORDER_WRAP,
}
_INTERPOLATIONS = {
    'nearest': cv2.INTER_NEAREST,
    'linear': cv2.INTER_LINEAR,
    'cubic': cv2.INTER_CUBIC,
    'lanczos4': cv2.INTER_LANCZOS4,
}
# Tolerance (mm) for "same optical centre": far below any camera's real position error.
_CENTER_TOL_MM = 1e-3
# Sampling coordinate for rays the old camera cannot see: far outside any image, so OpenCV
# fills them with the border value (constant mode).
_OUTSIDE = -1e5


def reproject_image(image: np.ndarray, old_camera: Camera, new_camera: Camera,
                    output_imshape: Sequence[int], border_mode: str = 'constant',
                    border_value: float | Sequence[float] = 0, interp: str = 'linear',
                    antialias_factor: int = 1) -> np.ndarray:
    """Renders `image` (taken by `old_camera`) as `new_camera` would see it.

    Both cameras must share the optical centre (then the warp is exact for any scene depth).
    Without distortion on either camera this is one homography (cv2.warpPerspective); otherwise
    each output pixel is back-projected to a ray (undistorting if `new_camera` has distortion),
    rotated into the old camera and projected with its closed-form distortion (cv2.remap). Rays
    the old camera cannot image (behind it, or beyond the fold-over radius of its distortion)
    get the border value.

    Args:
        image: [H, W] or [H, W, C] array (uint8, uint16, int16, float32, float64 or bool;
            bool masks are warped as 0/255 and thresholded back at half).
        old_camera, new_camera: Camera objects (world mm / image px).
        output_imshape: (H_out, W_out[, ...]) of the result, px.
        border_mode: 'constant', 'replicate', 'reflect', 'reflect101' or 'wrap'.
        border_value: fill value for 'constant' (scalar or per channel).
        interp: 'nearest' (masks, labels), 'linear', 'cubic' or 'lanczos4'.
        antialias_factor: int >= 1; > 1 renders at that many times the resolution and
            downsizes with area averaging (reduces aliasing when shrinking the image a lot).
    Returns:
        [H_out, W_out(, C)] array of the input's dtype.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f'reproject_image: image must be [H, W] or [H, W, C], got {image.shape}')
    if border_mode not in _BORDER_MODES:
        raise ValueError(f'reproject_image: border_mode must be one of {list(_BORDER_MODES)}, '
                         f'got {border_mode!r}')
    if interp not in _INTERPOLATIONS:
        raise ValueError(f'reproject_image: interp must be one of {list(_INTERPOLATIONS)}, '
                         f'got {interp!r}')
    if int(antialias_factor) != antialias_factor or antialias_factor < 1:
        raise ValueError(f'reproject_image: antialias_factor must be an int >= 1, '
                         f'got {antialias_factor}')
    if len(output_imshape) < 2 or min(output_imshape[:2]) <= 0:
        raise ValueError(f'reproject_image: output_imshape must be (H, W[, C]) with positive '
                         f'sides, got {output_imshape}')
    distance = np.linalg.norm(old_camera.t - new_camera.t)
    if distance > _CENTER_TOL_MM:
        raise ValueError(f'reproject_image: the cameras must share the optical centre, but they '
                         f'are {distance:.4g} mm apart')

    if image.dtype == bool:
        warped = reproject_image(image.astype(np.uint8) * 255, old_camera, new_camera,
                                 output_imshape, border_mode, 255 if border_value else 0,
                                 interp, antialias_factor)
        return warped >= 128

    antialias_factor = int(antialias_factor)
    out_h, out_w = int(output_imshape[0]), int(output_imshape[1])
    if antialias_factor > 1:
        render_camera = new_camera.copy().scale_output(antialias_factor)
        render_shape = (out_h * antialias_factor, out_w * antialias_factor)
    else:
        render_camera = new_camera
        render_shape = (out_h, out_w)

    border_value = _as_cv_scalar(border_value)
    flags = _INTERPOLATIONS[interp]
    border = _BORDER_MODES[border_mode]
    if _can_use_homography(old_camera, render_camera, render_shape):
        inverse = np.linalg.inv(homography_between(old_camera, render_camera))
        result = cv2.warpPerspective(
            image, inverse, (render_shape[1], render_shape[0]),
            flags=flags | cv2.WARP_INVERSE_MAP, borderMode=border, borderValue=border_value)
    else:
        map_x, map_y = _sampling_maps(old_camera, render_camera, render_shape)
        result = cv2.remap(image, map_x, map_y, interpolation=flags, borderMode=border,
                           borderValue=border_value)

    if antialias_factor > 1:
        result = cv2.resize(result, (out_w, out_h), interpolation=cv2.INTER_AREA)
    if image.ndim == 3 and result.ndim == 2:
        # OpenCV drops a trailing singleton channel axis.
        result = result[..., np.newaxis]
    return result


def _as_cv_scalar(value) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(value, np.float64)).tolist()
    if len(values) > 4:
        raise ValueError(f'reproject_image: border_value has more than 4 entries: {values}')
    return tuple(values + [values[-1]] * (4 - len(values)))


def _can_use_homography(old_camera: Camera, new_camera: Camera, shape: tuple[int, int]) -> bool:
    """A homography is exact when no camera has distortion and all output rays are in front of
    the old camera (otherwise it would mirror points behind the old camera into view). The rays
    behind form a half-space, so checking the output's four corners suffices."""
    if old_camera.has_distortion or new_camera.has_distortion:
        return False
    height, width = shape
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5],
                        [width - 0.5, height - 0.5]])
    rays = new_camera.image_to_camera(corners)
    z_old = (rays @ (old_camera.R @ new_camera.R.T).T)[:, 2]
    return bool(np.all(z_old > 0))


def _sampling_maps(old_camera: Camera, new_camera: Camera,
                   shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """float32 maps [H, W] giving, per output pixel, the old-image px to sample."""
    height, width = shape
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float64),
                                np.arange(height, dtype=np.float64)), axis=-1)
    rays_new = new_camera.image_to_camera(grid)
    rays_old = rays_new @ (old_camera.R @ new_camera.R.T).T
    valid = old_camera.is_valid_direction(rays_old) & np.all(np.isfinite(rays_old), axis=-1)
    with np.errstate(divide='ignore', invalid='ignore'):
        source = old_camera.camera_to_image(rays_old)
    source[~valid] = _OUTSIDE
    source = np.where(np.isfinite(source), source, _OUTSIDE)
    return source[..., 0].astype(np.float32), source[..., 1].astype(np.float32)
