"""Training augmentation of stored crops: exact 3D geometry plus appearance changes (numpy).

Geometry is exact because it never moves pixels in 2D alone: a NEW pinhole crop camera is made
from the stored crop camera (same optical centre) by `posepile.camera.make_crop_camera` with a
random roll, zoom, shift of the aimed-at box centre and horizontal flip; the stored crop is
warped into it with `posepile.image_warp.reproject_image` (a homography, exact for any depth
because the centre is shared); world-frame joints go into the new camera frame with
`Camera.world_to_camera` and 2D labels are their projections. Flips mirror the camera (image x ->
2 cx - x, camera x negated), so only the left/right labels are swapped here (mirror_perm).

Appearance (float32 [0, 1] images, crop px): background replacement through the person mask,
synthetic occluders (`metrabs.data.occlusion`), colour jitter (brightness, contrast, saturation,
hue).

Randomness: every function takes an explicit np.random.Generator; `example_rng` derives it from
(global seed, stream id, position in the stream), so augmentation is a pure function of those.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from posepile.camera import Camera, make_crop_camera, reproject_image_points
from posepile.cropping import box_to_crop
from posepile.image_warp import reproject_image
from posepile.joints import JointInfo
from metrabs.data import occlusion

BackgroundSource = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]
"""(rng, (H, W)) -> float32 [H, W, 3] in [0, 1]; the default is `occlusion.random_texture`."""

# RGB -> YIQ (NTSC); hue rotation is a rotation of the (I, Q) chroma plane about the luma axis.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], np.float64)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)
_LUMA = _RGB_TO_YIQ[0]


@dataclasses.dataclass(frozen=True)
class AugmentationConfig:
    """Augmentation parameters. Probabilities of occlusion (0.5) and background replacement (0.7)
    are DESIGN.md's; the geometric and colour ranges are this module's choice (DESIGN.md gives
    none), in the ballpark of the reference MeTRAbs training.

    Attributes:
        box_scale: the re-crop fits box_scale x the box's larger side into the output (1.25 =
            posepile.cropping.CropConfig's default, so an unaugmented re-crop matches the zoom of
            the stored crops).
        scale_range: (min, max) zoom-out factor on top of box_scale, uniform (> 1 = smaller person).
        rotation_deg: roll uniform in [-rotation_deg, rotation_deg] degrees.
        shift_fraction: aimed-at point moves uniformly by up to this fraction of the box's larger
            side along each image axis.
        flip_prob: probability of a horizontal flip (with left/right joint swap).
        brightness: additive offset uniform in [-brightness, brightness] (image in [0, 1]).
        contrast: factor uniform in [1 - contrast, 1 + contrast] about the mean luma.
        saturation: factor uniform in [1 - saturation, 1 + saturation] about each pixel's luma.
        hue_deg: chroma rotation uniform in [-hue_deg, hue_deg] degrees.
        occlusion_prob: probability of pasting occluders.
        max_occluders: 1..max_occluders occluders when occluding.
        occluder_size_range: occluder side as a fraction of the person box's larger side.
        background_prob: probability of replacing the background (only examples with a mask).
        max_antialias: cap on the supersampling factor used when the re-crop shrinks the image.
    """
    box_scale: float = 1.25
    scale_range: tuple[float, float] = (0.8, 1.25)
    rotation_deg: float = 20.0
    shift_fraction: float = 0.1
    flip_prob: float = 0.5
    brightness: float = 0.15
    contrast: float = 0.3
    saturation: float = 0.3
    hue_deg: float = 15.0
    occlusion_prob: float = 0.5
    max_occluders: int = 3
    occluder_size_range: tuple[float, float] = (0.2, 0.6)
    background_prob: float = 0.7
    max_antialias: int = 4

    def __post_init__(self):
        def fail(field, message):
            raise ValueError(f'AugmentationConfig.{field}: {message}')
        if self.box_scale <= 0:
            fail('box_scale', f'must be > 0, got {self.box_scale}')
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            fail('scale_range', f'must be 0 < min <= max, got {self.scale_range}')
        for field in ('flip_prob', 'occlusion_prob', 'background_prob'):
            if not 0 <= getattr(self, field) <= 1:
                fail(field, f'must be in [0, 1], got {getattr(self, field)}')
        for field in ('rotation_deg', 'shift_fraction', 'brightness', 'contrast', 'saturation',
                      'hue_deg'):
            if getattr(self, field) < 0:
                fail(field, f'must be >= 0, got {getattr(self, field)}')
        if self.contrast > 1 or self.saturation > 1:
            fail('contrast/saturation', 'must be <= 1 (factors would turn negative)')
        if self.max_occluders < 1 or self.max_antialias < 1:
            fail('max_occluders/max_antialias', 'must be >= 1')
        if not 0 < self.occluder_size_range[0] <= self.occluder_size_range[1]:
            fail('occluder_size_range', f'must be 0 < min <= max, got {self.occluder_size_range}')


@dataclasses.dataclass(frozen=True)
class GeometryParams:
    """One draw of the geometric augmentation.

    scale: zoom-out factor (on top of box_scale); rotation_rad: camera roll (image content turns
    by -rotation_rad); shift: (2,) offset of the aimed-at point in units of the box's larger side;
    flip: horizontal mirror.
    """
    scale: float = 1.0
    rotation_rad: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    flip: bool = False


def example_rng(seed: int, stream: int, position: int) -> np.random.Generator:
    """Generator for one example, a pure function of (global seed, stream id, stream position)."""
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFF, int(stream) & 0xFFFFFFFF, int(position)]))


def draw_geometry(rng: np.random.Generator, config: AugmentationConfig) -> GeometryParams:
    return GeometryParams(
        scale=float(rng.uniform(*config.scale_range)),
        rotation_rad=float(np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg))),
        shift=tuple(float(v) for v in rng.uniform(-config.shift_fraction, config.shift_fraction,
                                                  2)),
        flip=bool(rng.uniform() < config.flip_prob))


def usable_box(box_xywh, stored_side: int, box_scale: float) -> np.ndarray:
    """The stored box [x, y, w, h] (crop px), or, if it is missing or degenerate, the centred
    square that `box_scale` maps onto the whole stored crop (how the crops were made)."""
    box = np.asarray(box_xywh, np.float64)
    if box.shape == (4,) and np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0:
        return box
    side = stored_side / box_scale
    corner = (stored_side - 1) / 2 - side / 2 + 0.5
    return np.array([corner, corner, side, side])


def recrop_camera(stored_camera: Camera, box_xywh, stored_side: int, output_side: int,
                  params: GeometryParams, box_scale: float) -> Camera:
    """The augmented crop camera: aimed at the (shifted) box centre of the stored crop, rolled,
    zoomed so box_scale * params.scale * the box's larger side spans `output_side` px, flipped.

    Shares the optical centre with `stored_camera` (world mm; crop px).
    """
    box = usable_box(box_xywh, stored_side, box_scale)
    extent = max(box[2], box[3])
    shifted = box + np.array([params.shift[0] * extent, params.shift[1] * extent, 0, 0])
    return make_crop_camera(stored_camera, shifted, output_side, scale=box_scale * params.scale,
                            rotation_rad=params.rotation_rad, flip=params.flip)


def fixed_camera(stored_camera: Camera, stored_side: int, output_side: int) -> Camera:
    """Test-mode camera: the stored crop itself, resized to `output_side` px."""
    return stored_camera.copy().scale_output(output_side / stored_side)


def transform_labels(world_coords: np.ndarray, valid3d: np.ndarray, coords2d: np.ndarray,
                     is_2d_only: bool, stored_camera: Camera, new_camera: Camera, flip: bool,
                     mirror_perm: np.ndarray) -> dict[str, np.ndarray]:
    """Labels in the new crop camera.

    Args:
        world_coords: [J, 3] world mm (NaN where unlabelled).
        valid3d: [J] bool. coords2d: [J, 2] stored-crop px (used only if is_2d_only).
        flip: whether `new_camera` is mirrored; then rows are permuted by `mirror_perm` [J].
    Returns:
        coords3d_cam [J, 3] float32 new-camera mm (0 where invalid), valid3d [J] bool (all False
        for 2D-only), coords2d [J, 2] float32 new-crop px (0 where invalid), valid2d [J] bool:
        labelled, finite and (3D) in front of the camera. Joints outside the crop stay valid.
    """
    if is_2d_only:
        coords3d = np.full((len(valid3d), 3), np.nan)
        valid3d = np.zeros(len(valid3d), bool)
        points2d = reproject_image_points(np.asarray(coords2d, np.float64), stored_camera,
                                          new_camera)
        valid2d = np.all(np.isfinite(points2d), axis=-1)
    else:
        coords3d = new_camera.world_to_camera(np.asarray(world_coords, np.float64))
        valid3d = np.asarray(valid3d, bool) & np.all(np.isfinite(coords3d), axis=-1)
        points2d = new_camera.camera_to_image(coords3d)
        valid2d = valid3d & (coords3d[:, 2] > 0) & np.all(np.isfinite(points2d), axis=-1)
    if flip:
        coords3d, valid3d = coords3d[mirror_perm], valid3d[mirror_perm]
        points2d, valid2d = points2d[mirror_perm], valid2d[mirror_perm]
    return {
        'coords3d_cam': np.where(valid3d[:, np.newaxis], coords3d, 0).astype(np.float32),
        'valid3d': valid3d,
        'coords2d': np.where(valid2d[:, np.newaxis], points2d, 0).astype(np.float32),
        'valid2d': valid2d,
    }


def color_jitter(image: np.ndarray, rng: np.random.Generator,
                 config: AugmentationConfig) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter of float32 [H, W, 3] RGB in [0, 1];
    the result is clipped to [0, 1]."""
    brightness = rng.uniform(-config.brightness, config.brightness)
    contrast = rng.uniform(1 - config.contrast, 1 + config.contrast)
    saturation = rng.uniform(1 - config.saturation, 1 + config.saturation)
    hue = np.deg2rad(rng.uniform(-config.hue_deg, config.hue_deg))
    return adjust_colors(image, brightness, contrast, saturation, hue)


def adjust_colors(image: np.ndarray, brightness: float = 0.0, contrast: float = 1.0,
                  saturation: float = 1.0, hue_rad: float = 0.0) -> np.ndarray:
    """Deterministic colour change of float [H, W, 3] RGB in [0, 1], clipped to [0, 1].

    Saturation and hue act linearly on the colour (one 3x3 matrix): saturation scales the
    chroma about each pixel's luma, hue rotates the YIQ chroma plane by `hue_rad`. Then contrast
    scales about the mean luma and brightness adds an offset.
    """
    chroma = np.diag([1.0, saturation, saturation])
    c, s = math.cos(hue_rad), math.sin(hue_rad)
    chroma[1:, 1:] = saturation * np.array([[c, -s], [s, c]])
    color_matrix = _YIQ_TO_RGB @ chroma @ _RGB_TO_YIQ
    out = np.asarray(image, np.float32) @ color_matrix.T.astype(np.float32)
    mean_luma = float(np.mean(out @ _LUMA.astype(np.float32)))
    out = (out - mean_luma) * np.float32(contrast) + np.float32(mean_luma + brightness)
    return np.clip(out, 0, 1).astype(np.float32)


def _antialias_factor(stored_camera: Camera, new_camera: Camera, max_factor: int) -> int:
    """About how many stored px fall on one new px (rounded, capped)."""
    shrink = abs(stored_camera.intrinsic_matrix[0, 0] / new_camera.intrinsic_matrix[0, 0])
    return int(min(max_factor, max(1, math.floor(shrink + 0.5))))


def augment(image: np.ndarray, stored_camera: Camera, world_coords: np.ndarray,
            valid3d: np.ndarray, coords2d: np.ndarray, is_2d_only: bool, box_xywh,
            mask: np.ndarray | None, mirror_perm: np.ndarray, rng: np.random.Generator | None,
            config: AugmentationConfig, output_side: int, training: bool = True,
            occluder_source: occlusion.OccluderSource | None = None,
            background_source: BackgroundSource | None = None,
            geometry: GeometryParams | None = None) -> dict[str, np.ndarray]:
    """One training (or test) example from a stored crop.

    Args:
        image: uint8 [S, S, 3] stored crop (RGB). stored_camera: its crop camera (world mm).
        world_coords [J, 3] world mm, valid3d [J], coords2d [J, 2] stored-crop px, is_2d_only:
            the labels in the model's joint order (see `transform_labels`).
        box_xywh: (4,) person box in stored-crop px. mask: bool [S, S] person mask or None.
        mirror_perm: [J] left/right swap of the model's joints (JointInfo.mirror_perm).
        rng: randomness; required when training, unused (may be None) otherwise.
        output_side: P, side of the output crop, px.
        training: False = test mode (the stored crop resized to P, no randomness).
        occluder_source, background_source: hooks (default: random shapes / textures).
        geometry: fixes the geometric draw (tests); None draws it from rng.
    Returns:
        dict: image float32 [P, P, 3] in [0, 1]; intrinsics float32 [3, 3] (new crop K);
        coords3d_cam, valid3d, coords2d, valid2d as in `transform_labels`; plus 'camera' (the
        new Camera) and 'mask' (bool [P, P] warped person mask, or None).
    """
    if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 3:
        raise ValueError(f'augment: the stored crop must be square [S, S, 3], got {image.shape}')
    if training and rng is None:
        raise ValueError('augment: training mode needs an rng (see example_rng)')
    stored_side = image.shape[0]
    if training:
        params = geometry if geometry is not None else draw_geometry(rng, config)
        camera = recrop_camera(stored_camera, box_xywh, stored_side, output_side, params,
                               config.box_scale)
        flip = params.flip
    else:
        camera = fixed_camera(stored_camera, stored_side, output_side)
        flip = False

    same_view = not training and output_side == stored_side
    if same_view:
        warped, warped_mask = image, mask
    else:
        antialias = _antialias_factor(stored_camera, camera, config.max_antialias)
        warped = reproject_image(image, stored_camera, camera, (output_side, output_side),
                                 antialias_factor=antialias)
        warped_mask = None if mask is None else reproject_image(
            mask.astype(bool), stored_camera, camera, (output_side, output_side),
            interp='nearest')
    result = transform_labels(world_coords, valid3d, coords2d, is_2d_only, stored_camera,
                              camera, flip, mirror_perm)
    out_image = warped.astype(np.float32) / 255

    if training:
        # All coin flips first, so the draws' meaning does not depend on earlier branches.
        do_background = rng.uniform() < config.background_prob
        do_occlusion = rng.uniform() < config.occlusion_prob
        if warped_mask is not None and do_background:
            shape = (output_side, output_side)
            background = (background_source or occlusion.random_texture)(rng, shape)
            out_image = occlusion.replace_background(out_image, warped_mask, background)
        if do_occlusion:
            new_box = box_to_crop(usable_box(box_xywh, stored_side, config.box_scale),
                                  stored_camera, camera)
            if np.all(np.isfinite(new_box)):
                out_image, _ = occlusion.occlude(
                    out_image, rng, new_box, config.max_occluders, config.occluder_size_range,
                    occluder_source)
        out_image = color_jitter(out_image, rng, config)

    result.update(image=out_image, intrinsics=camera.intrinsic_matrix.astype(np.float32),
                  camera=camera, mask=warped_mask)
    return result


def mirror_perm_for(joint_names: Sequence[str]) -> np.ndarray:
    """[J] left/right swap of a list of (union) joint names, from posepile.joints' convention."""
    return JointInfo(joint_names).mirror_perm
