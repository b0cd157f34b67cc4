"""Warp an image as seen by one camera into the view of another camera at the same optical centre.

Frames: image px, pixel-centre convention (see posepile/camera.py). All geometry comes from
`posepile.camera.Camera`; the per-pixel sampling maps from `posepile.sampling_maps`.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from posepile import sampling_maps
from posepile.camera import Camera, apply_matrix, homography_between

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


def reproject_image(image: np.ndarray, old_camera: Camera, new_camera: Camera,
                    output_imshape: Sequence[int], border_mode: str = 'constant',
                    border_value: float | Sequence[float] = 0, interp: str = 'linear',
                    antialias_factor: int = 1,
                    max_map_error_px: float = sampling_maps.MAX_ERROR_PX) -> np.ndarray:
    """Renders `image` (taken by `old_camera`) as `new_camera` would see it.

    Both cameras must share the optical centre (then the warp is exact for any scene depth).
    Without distortion on either camera this is one homography (cv2.warpPerspective); otherwise
    each output pixel is back-projected to a ray (undistorting if `new_camera` has distortion),
    rotated into the old camera and projected with its closed-form distortion (cv2.remap), with
    the per-pixel map interpolated from a coarse grid within `max_map_error_px`
    (`posepile.sampling_maps.interpolated_maps`). Rays the old camera cannot image (behind it,
    or beyond the fold-over radius of its distortion) get the border value.
    `Reprojection` does the same for several images of one camera pair (a crop and its mask)
    with the sampling maps computed once.

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
        max_map_error_px: bound (old-image px) on the sampling map's interpolation error at
            its check points; 0 evaluates the camera maths at every pixel (20-50x slower).
    Returns:
        [H_out, W_out(, C)] array of the input's dtype.
    """
    return Reprojection(old_camera, new_camera, output_imshape, max_map_error_px)(
        image, border_mode, border_value, interp, antialias_factor)


class Reprojection:
    """The warp from `old_camera`'s image to `new_camera`'s at `output_imshape` (see
    `reproject_image`), for any number of images.

    Sampling maps are computed on first use per antialias factor and kept; computing them at
    a factor k > 1 also gives those at factor 1 (`sampling_maps.render_and_output_maps`), so a
    crop's mask costs no camera maths after its image.
    """

    def __init__(self, old_camera: Camera, new_camera: Camera, output_imshape: Sequence[int],
                 max_map_error_px: float = sampling_maps.MAX_ERROR_PX):
        if len(output_imshape) < 2 or min(output_imshape[:2]) <= 0:
            raise ValueError(f'reproject_image: output_imshape must be (H, W[, C]) with '
                             f'positive sides, got {output_imshape}')
        distance = np.linalg.norm(old_camera.t - new_camera.t)
        if distance > _CENTER_TOL_MM:
            raise ValueError(f'reproject_image: the cameras must share the optical centre, but '
                             f'they are {distance:.4g} mm apart')
        self.old_camera = old_camera
        self.new_camera = new_camera
        self.shape = (int(output_imshape[0]), int(output_imshape[1]))
        self.max_map_error_px = max_map_error_px
        self._maps: dict[int, np.ndarray] = {}

    def __call__(self, image: np.ndarray, border_mode: str = 'constant',
                 border_value: float | Sequence[float] = 0, interp: str = 'linear',
                 antialias_factor: int = 1, source_scale: int = 1) -> np.ndarray:
        """`image` [H, W] or [H, W, C] warped; arguments as in `reproject_image`.
        `source_scale`: `image` has that many times the resolution of `old_camera`'s image
        (old_camera describes a frame decoded at reduced resolution, `image` is the full frame,
        e.g. its mask): a full-frame pixel coordinate is s * (u + 0.5) - 0.5."""
        image = np.asarray(image)
        if image.ndim not in (2, 3):
            raise ValueError(f'reproject_image: image must be [H, W] or [H, W, C], got '
                             f'{image.shape}')
        if border_mode not in _BORDER_MODES:
            raise ValueError(f'reproject_image: border_mode must be one of '
                             f'{list(_BORDER_MODES)}, got {border_mode!r}')
        if interp not in _INTERPOLATIONS:
            raise ValueError(f'reproject_image: interp must be one of {list(_INTERPOLATIONS)}, '
                             f'got {interp!r}')
        if int(antialias_factor) != antialias_factor or antialias_factor < 1:
            raise ValueError(f'reproject_image: antialias_factor must be an int >= 1, '
                             f'got {antialias_factor}')
        if image.dtype == bool:
            warped = self(image.astype(np.uint8) * 255, border_mode, 255 if border_value else 0,
                          interp, antialias_factor, source_scale)
            return warped >= 128

        factor = int(antialias_factor)
        out_h, out_w = self.shape
        render_camera = (self.new_camera.copy().scale_output(factor) if factor > 1
                         else self.new_camera)
        render_shape = (out_h * factor, out_w * factor)
        border_value = _as_cv_scalar(border_value)
        flags = _INTERPOLATIONS[interp]
        border = _BORDER_MODES[border_mode]
        offset = (source_scale - 1) / 2
        if _can_use_homography(self.old_camera, render_camera, render_shape):
            inverse = np.linalg.inv(homography_between(self.old_camera, render_camera))
            if source_scale != 1:
                inverse = np.array([[source_scale, 0, offset], [0, source_scale, offset],
                                    [0, 0, 1]]) @ inverse
            result = cv2.warpPerspective(
                image, inverse, (render_shape[1], render_shape[0]),
                flags=flags | cv2.WARP_INVERSE_MAP, borderMode=border, borderValue=border_value)
        else:
            maps = self._maps_at(factor, render_camera, render_shape)
            if source_scale != 1:
                # OUTSIDE stays far outside.
                maps = maps * np.float32(source_scale) + np.float32(offset)
            result = cv2.remap(image, maps, None, interpolation=flags, borderMode=border,
                               borderValue=border_value)

        if factor > 1:
            result = cv2.resize(result, (out_w, out_h), interpolation=cv2.INTER_AREA)
        if image.ndim == 3 and result.ndim == 2:
            # OpenCV drops a trailing singleton channel axis.
            result = result[..., np.newaxis]
        return result

    def _maps_at(self, factor: int, render_camera: Camera,
                 render_shape: tuple[int, int]) -> np.ndarray:
        if factor not in self._maps:
            if factor > 1:
                render, output = sampling_maps.render_and_output_maps(
                    self.old_camera, self.new_camera, self.shape, factor, self.max_map_error_px)
                self._maps[factor] = render
                self._maps.setdefault(1, output)
            else:
                self._maps[1] = sampling_maps.interpolated_maps(
                    self.old_camera, render_camera, render_shape, self.max_map_error_px)
        return self._maps[factor]


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
    z_old = apply_matrix(rays, old_camera.R @ new_camera.R.T)[:, 2]
    return bool(np.all(z_old > 0))
