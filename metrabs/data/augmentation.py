"""Training augmentation of stored crops: exact 3D geometry plus appearance changes (numpy).

Geometry is exact because it never moves pixels in 2D alone: a NEW pinhole crop camera is made
from the stored crop camera (same optical centre) by `posepile.camera.make_crop_camera` with a
random roll, zoom, shift of the aimed-at box centre and horizontal flip; the stored crop is
warped into it with `posepile.image_warp.reproject_image` (a homography, exact for any depth
because the centre is shared); world-frame joints go into the new camera frame with
`Camera.world_to_camera` and 2D labels are their projections. Flips mirror the camera (image x ->
2 cx - x, camera x negated), so only the left/right labels are swapped here (mirror_perm).

Framing follows the released MeTRAbs code (metrabs_tf/data_loading.py): the person box's larger
side spans the whole output crop (box_scale 1), then a magnification uniform in zoom_range
(0.75..1.25) zooms in or out, so half of the examples show the person truncated by the crop
border (the "truncation-robust" part of MeTRAbs), and the test-time crop (training=False) is
the box filling the crop. The stored crops (posepile.cropping) carry enough margin and
resolution for this (see bench/black_borders.py).

Appearance (float32 [0, 1] images, crop px), as released: background replacement through the
person mask (photos from a directory, or synthetic textures), occlusion (p = 0.5; half of the
time 1-6 object cut-outs anywhere in the crop, Pascal VOC or synthetic shapes, else one random-
erase rectangle of uniform noise), and colour (brightness, contrast, hue, saturation in random
order; for object occlusion after it, for random erasing before it).

Randomness: every function takes an explicit np.random.Generator; `example_rng` derives it from
(global seed, stream id, position in the stream), so augmentation is a pure function of those.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from posepile.camera import Camera, make_crop_camera, reproject_image_points
from posepile.cropping import CropConfig
from posepile.image_warp import reproject_image
from posepile.joints import JointInfo
from metrabs.data import occlusion

BackgroundSource = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]
"""(rng, (H, W)) -> float32 [H, W, 3] in [0, 1]; the default is `occlusion.random_texture`."""

_STORED_BOX_SCALE = CropConfig().box_scale


@dataclasses.dataclass(frozen=True)
class AugmentationConfig:
    """Augmentation parameters, the released code's defaults (metrabs_tf/init.py flags and
    metrabs_tf/augmentation/*.py).

    Attributes:
        box_scale: the box's larger side times box_scale spans the output crop before the zoom
            (1: the box fills the crop, as released and as the exported model crops).
        zoom_range: (min, max) magnification, uniform (> 1 = larger person, truncated by the
            crop border); released: 1 -/+ 25 %.
        rotation_deg: roll uniform in [-rotation_deg, rotation_deg] degrees.
        shift_fraction: the aimed-at point moves by a vector uniform in the disc of this radius,
            as a fraction of the box's larger side (released: 10 %).
        flip_prob: probability of a horizontal flip (with left/right joint swap).
        color: whether to jitter colours (brightness, contrast, hue, saturation in random order).
        brightness: additive offset uniform in [-brightness, brightness] (image in [0, 1]).
        contrast: factor uniform in [1 - contrast, 1 + contrast] about 0.5.
        saturation: HSV saturation factor uniform in [1 - saturation, 1 + saturation].
        hue_deg: HSV hue shift uniform in [-hue_deg, hue_deg] degrees.
        occlusion_prob: probability of occluding (objects or random erasing, 50/50).
        max_occluders: 1..max_occluders object cut-outs when occluding with objects.
        occluder_scale_range: each cut-out is resized by a factor uniform in this range times
            output_side / 256 (released: VOC objects at half resolution, x U(0.2, 1)).
        erase_area_range: random-erase rectangle area as a fraction of the crop area.
        erase_aspect_range: its height / width ratio.
        background_prob: probability of replacing the background (only examples with a mask);
            a dataset part may override it (input_pipeline.DatasetPart.background_prob).
        background_zoom_range: the background photo is scaled to cover the crop, times this.
        max_antialias: cap on the supersampling factor used when the re-crop shrinks the image.
    """
    box_scale: float = 1.0
    zoom_range: tuple[float, float] = (0.75, 1.25)
    rotation_deg: float = 20.0
    shift_fraction: float = 0.1
    flip_prob: float = 0.5
    color: bool = True
    brightness: float = 0.125
    contrast: float = 0.5
    saturation: float = 0.5
    hue_deg: float = 72.0
    occlusion_prob: float = 0.5
    max_occluders: int = 6
    occluder_scale_range: tuple[float, float] = (0.2, 1.0)
    erase_area_range: tuple[float, float] = (0.0, 1 / 3)
    erase_aspect_range: tuple[float, float] = (0.3, 1 / 0.3)
    background_prob: float = 0.7
    background_zoom_range: tuple[float, float] = (1.2, 1.5)
    max_antialias: int = 4

    def __post_init__(self):
        def fail(field, message):
            raise ValueError(f'AugmentationConfig.{field}: {message}')

        def check_range(field, low_bound=0.0, strict=True):
            low, high = getattr(self, field)
            if not ((low > low_bound if strict else low >= low_bound) and low <= high):
                fail(field, f'must be {low_bound} {"<" if strict else "<="} min <= max, got '
                            f'{getattr(self, field)}')

        if self.box_scale <= 0:
            fail('box_scale', f'must be > 0, got {self.box_scale}')
        check_range('zoom_range')
        check_range('occluder_scale_range')
        check_range('erase_area_range', strict=False)
        check_range('erase_aspect_range')
        check_range('background_zoom_range')
        if self.erase_area_range[1] >= 1:
            fail('erase_area_range', f'max must be < 1, got {self.erase_area_range}')
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


@dataclasses.dataclass(frozen=True)
class GeometryParams:
    """One draw of the geometric augmentation.

    zoom: magnification (on top of box_scale; > 1 = larger person); rotation_rad: camera roll
    (image content turns by -rotation_rad); shift: (2,) offset of the aimed-at point in units of
    the box's larger side; flip: horizontal mirror.
    """
    zoom: float = 1.0
    rotation_rad: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    flip: bool = False


def example_rng(seed: int, stream: int, position: int) -> np.random.Generator:
    """Generator for one example, a pure function of (global seed, stream id, stream position)."""
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFF, int(stream) & 0xFFFFFFFF, int(position)]))


def uniform_disc(rng: np.random.Generator, radius: float = 1.0) -> np.ndarray:
    """(2,) uniform in the disc of `radius` (area-uniform: radius * sqrt(u))."""
    angle = rng.uniform(0, 2 * np.pi)
    r = radius * math.sqrt(rng.uniform())
    return np.array([r * math.cos(angle), r * math.sin(angle)])


def draw_geometry(rng: np.random.Generator, config: AugmentationConfig) -> GeometryParams:
    return GeometryParams(
        zoom=float(rng.uniform(*config.zoom_range)),
        rotation_rad=float(np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg))),
        shift=tuple(float(v) for v in uniform_disc(rng, config.shift_fraction)),
        flip=bool(rng.uniform() < config.flip_prob))


def usable_box(box_xywh, stored_side: int) -> np.ndarray:
    """The stored box [x, y, w, h] (crop px), or, if it is missing or degenerate, the centred
    square that the stored crops' default margin (posepile.cropping.CropConfig.box_scale) maps
    onto the whole stored crop."""
    box = np.asarray(box_xywh, np.float64)
    if box.shape == (4,) and np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0:
        return box
    side = stored_side / _STORED_BOX_SCALE
    corner = (stored_side - 1) / 2 - side / 2 + 0.5
    return np.array([corner, corner, side, side])


def recrop_camera(stored_camera: Camera, box_xywh, stored_side: int, output_side: int,
                  params: GeometryParams, box_scale: float) -> Camera:
    """The augmented crop camera: aimed at the (shifted) box centre of the stored crop, rolled,
    zoomed so box_scale / params.zoom * the box's larger side spans `output_side` px, flipped.
    With GeometryParams() it is the test-time crop (the box filling the crop for box_scale 1).

    Shares the optical centre with `stored_camera` (world mm; crop px).
    """
    box = usable_box(box_xywh, stored_side)
    extent = max(box[2], box[3])
    shifted = box + np.array([params.shift[0] * extent, params.shift[1] * extent, 0, 0])
    return make_crop_camera(stored_camera, shifted, output_side, scale=box_scale / params.zoom,
                            rotation_rad=params.rotation_rad, flip=params.flip)


def transform_labels(world_coords: np.ndarray, valid3d: np.ndarray, labels2d: np.ndarray,
                     is_2d_only: bool, stored_camera: Camera, new_camera: Camera, flip: bool,
                     mirror_perm: np.ndarray, mirror_perm_2d: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """Labels in the new crop camera.

    Args:
        world_coords: [J, 3] world mm (NaN where unlabelled), the model's joints.
        valid3d: [J] bool.
        labels2d: [K, 2] stored-crop px of the 2D label names (metrabs.data.labels2d; NaN where
            unlabelled); used only if is_2d_only.
        flip: whether `new_camera` is mirrored; then rows are permuted by `mirror_perm` [J] and
            `mirror_perm_2d` [K].
    Returns:
        coords3d_cam [J, 3] float32 new-camera mm (0 where invalid), valid3d [J] bool (all False
        for 2D-only), coords2d [J, 2] float32 new-crop px, the projections of the 3D labels (0
        where invalid), valid2d [J] bool: labelled, finite and in front of the camera (all False
        for 2D-only); labels2d [K, 2] float32 new-crop px of a 2D-only example's labels (0 where
        invalid), valid_labels2d [K] bool (all False for 3D examples). Joints outside the crop
        stay valid.
    """
    n_joints, n_labels = len(valid3d), len(labels2d)
    if is_2d_only:
        coords3d = np.full((n_joints, 3), np.nan)
        valid3d = np.zeros(n_joints, bool)
        points2d = np.full((n_joints, 2), np.nan)
        valid2d = np.zeros(n_joints, bool)
        labels = reproject_image_points(np.asarray(labels2d, np.float64), stored_camera,
                                        new_camera)
        valid_labels = np.all(np.isfinite(labels), axis=-1)
    else:
        coords3d = new_camera.world_to_camera(np.asarray(world_coords, np.float64))
        valid3d = np.asarray(valid3d, bool) & np.all(np.isfinite(coords3d), axis=-1)
        points2d = new_camera.camera_to_image(coords3d)
        valid2d = valid3d & (coords3d[:, 2] > 0) & np.all(np.isfinite(points2d), axis=-1)
        labels = np.zeros((n_labels, 2))
        valid_labels = np.zeros(n_labels, bool)
    if flip:
        coords3d, valid3d = coords3d[mirror_perm], valid3d[mirror_perm]
        points2d, valid2d = points2d[mirror_perm], valid2d[mirror_perm]
        labels, valid_labels = labels[mirror_perm_2d], valid_labels[mirror_perm_2d]
    return {
        'coords3d_cam': np.where(valid3d[:, np.newaxis], coords3d, 0).astype(np.float32),
        'valid3d': valid3d,
        'coords2d': np.where(valid2d[:, np.newaxis], points2d, 0).astype(np.float32),
        'valid2d': valid2d,
        'labels2d': np.where(valid_labels[:, np.newaxis], labels, 0).astype(np.float32),
        'valid_labels2d': valid_labels,
    }


# ------------------------------------------------------------------------------------- colour
def adjust_brightness(image: np.ndarray, offset: float) -> np.ndarray:
    return image + np.float32(offset)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Scales about 0.5 (not the mean), as released."""
    return (image - np.float32(0.5)) * np.float32(factor) + np.float32(0.5)


def adjust_hue(image: np.ndarray, degrees: float) -> np.ndarray:
    """Shifts the HSV hue (OpenCV float HSV: H in [0, 360)) of an RGB image clipped to [0, 1]."""
    hsv = cv2.cvtColor(np.clip(image, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = np.mod(hsv[..., 0] + np.float32(degrees), 360)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Scales the HSV saturation (capped at 1) of an RGB image clipped to [0, 1]."""
    hsv = cv2.cvtColor(np.clip(image, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 1] = np.minimum(hsv[..., 1] * np.float32(factor), 1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def color_jitter(image: np.ndarray, rng: np.random.Generator,
                 config: AugmentationConfig) -> np.ndarray:
    """The released colour augmentation of float32 [H, W, 3] RGB in [0, 1]: brightness,
    contrast, hue and saturation, each with its random factor, in a random order; clipped to
    [0, 1] at the end (hue and saturation clip their input, as the HSV conversion needs)."""
    steps = [(adjust_brightness, rng.uniform(-config.brightness, config.brightness)),
             (adjust_contrast, rng.uniform(1 - config.contrast, 1 + config.contrast)),
             (adjust_hue, rng.uniform(-config.hue_deg, config.hue_deg)),
             (adjust_saturation, rng.uniform(1 - config.saturation, 1 + config.saturation))]
    out = np.asarray(image, np.float32)
    for index in rng.permutation(len(steps)):
        function, value = steps[index]
        out = function(out, value)
    return np.clip(out, 0, 1).astype(np.float32)


def _antialias_factor(stored_camera: Camera, new_camera: Camera, max_factor: int) -> int:
    """About how many stored px fall on one new px (rounded, capped)."""
    shrink = abs(stored_camera.intrinsic_matrix[0, 0] / new_camera.intrinsic_matrix[0, 0])
    return int(min(max_factor, max(1, math.floor(shrink + 0.5))))


def augment_appearance(image: np.ndarray, rng: np.random.Generator, config: AugmentationConfig,
                       occluder_source: occlusion.OccluderSource | None = None) -> np.ndarray:
    """Occlusion and colour, in the released order: object occlusion before the colour change
    (the occluders take on the image's colour cast), random erasing after it (the noise stays
    uniform). float32 [S, S, 3] in [0, 1] -> same."""
    # All draws happen whether or not they are used, so one draw's meaning never depends on
    # another branch.
    use_objects = rng.uniform() < 0.5
    occlude = rng.uniform() < config.occlusion_prob
    if use_objects:
        if occlude:
            image = occlusion.occlude_with_objects(
                image, rng, config.max_occluders, config.occluder_scale_range, occluder_source)
        return color_jitter(image, rng, config) if config.color else image
    if config.color:
        image = color_jitter(image, rng, config)
    if occlude:
        image = occlusion.random_erase(image, rng, config.erase_area_range,
                                       config.erase_aspect_range)
    return image


def augment(image: np.ndarray, stored_camera: Camera, world_coords: np.ndarray,
            valid3d: np.ndarray, labels2d: np.ndarray, is_2d_only: bool, box_xywh,
            mask: np.ndarray | None, mirror_perm: np.ndarray, mirror_perm_2d: np.ndarray,
            rng: np.random.Generator | None, config: AugmentationConfig, output_side: int,
            training: bool = True, occluder_source: occlusion.OccluderSource | None = None,
            background_source: BackgroundSource | None = None,
            geometry: GeometryParams | None = None,
            background_prob: float | None = None) -> dict[str, np.ndarray]:
    """One training (or test) example from a stored crop.

    Args:
        image: uint8 [S, S, 3] stored crop (RGB). stored_camera: its crop camera (world mm).
        world_coords [J, 3] world mm, valid3d [J]: the 3D labels in the model's joint order;
            labels2d [K, 2] stored-crop px, is_2d_only: the 2D labels of a 2D-only example
            (see `transform_labels`).
        box_xywh: (4,) person box in stored-crop px. mask: bool [S, S] person mask or None.
        mirror_perm: [J] left/right swap of the model's joints (JointInfo.mirror_perm);
            mirror_perm_2d: [K] that of the 2D label names (labels2d.mirror_perm).
        rng: randomness; required when training, unused (may be None) otherwise.
        output_side: P, side of the output crop, px.
        training: False = test mode (the box filling the crop at box_scale, no randomness).
        occluder_source, background_source: hooks (default: synthetic shapes / textures).
        geometry: fixes the geometric draw (tests); None draws it from rng.
        background_prob: overrides config.background_prob (per dataset).
    Returns:
        dict: image float32 [P, P, 3] in [0, 1]; intrinsics float32 [3, 3] (new crop K);
        coords3d_cam, valid3d, coords2d, valid2d, labels2d, valid_labels2d as in
        `transform_labels`; plus 'camera' (the new Camera) and 'mask' (float32 [P, P] warped
        person mask in [0, 1], or None).
    """
    if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 3:
        raise ValueError(f'augment: the stored crop must be square [S, S, 3], got {image.shape}')
    if training and rng is None:
        raise ValueError('augment: training mode needs an rng (see example_rng)')
    stored_side = image.shape[0]
    params = (geometry if geometry is not None else draw_geometry(rng, config)) if training \
        else GeometryParams()
    camera = recrop_camera(stored_camera, box_xywh, stored_side, output_side, params,
                           config.box_scale)
    antialias = _antialias_factor(stored_camera, camera, config.max_antialias)
    warped = reproject_image(image, stored_camera, camera, (output_side, output_side),
                             antialias_factor=antialias)
    result = transform_labels(world_coords, valid3d, labels2d, is_2d_only, stored_camera,
                              camera, params.flip, mirror_perm, mirror_perm_2d)
    out_image = warped.astype(np.float32) / 255
    warped_mask = None
    if mask is not None:
        # A soft (linearly interpolated) mask, as released: the pasted person has no jagged edge.
        warped_mask = reproject_image(mask.astype(np.uint8) * 255, stored_camera, camera,
                                      (output_side, output_side)).astype(np.float32) / 255

    if training:
        probability = config.background_prob if background_prob is None else background_prob
        do_background = rng.uniform() < probability
        if warped_mask is not None and do_background:
            shape = (output_side, output_side)
            background = (background_source or occlusion.random_texture)(rng, shape)
            out_image = occlusion.replace_background(out_image, warped_mask, background)
        out_image = augment_appearance(out_image, rng, config, occluder_source)

    result.update(image=out_image, intrinsics=camera.intrinsic_matrix.astype(np.float32),
                  camera=camera, mask=warped_mask)
    return result


def mirror_perm_for(joint_names: Sequence[str]) -> np.ndarray:
    """[J] left/right swap of a list of (union) joint names, from posepile.joints' convention."""
    return JointInfo(joint_names).mirror_perm
