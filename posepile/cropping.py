"""Perspective crop of one Pose3DExample: a new pinhole camera aimed at the person.

The crop camera comes from `posepile.camera.make_crop_camera` (turn towards the box centre, zoom
so that `box_scale` times the box's larger side spans the crop, no distortion); the pixels are
warped with `posepile.image_warp.reproject_image`. World coordinates stay in the world frame:
the crop camera (world mm -> crop px) is stored with them, so the geometry stays exact.

Margin and resolution (the defaults, 640 px at box_scale 2): training re-crops these stored crops
(metrabs.data.augmentation) with the box's larger side spanning the output, a magnification down
to 0.75, a roll up to 20 degrees and a shift up to 10 % of the box. Its footprint in the stored
crop is then at most (1 / 0.75) * (cos 20 + sin 20) + 2 * 0.1 = 1.91 box sides, so a margin of 2
box sides shows real pixels (not black borders) in every augmented crop; and 640 px put the box at
320 px, the output's own resolution at the largest zoom (256 px x 1.25), so no training crop is
upsampled from the stored one. The released code stores about 1.5-1.6 box sides at up to 384 px
per box (PosePile preproc_for_efficiency); bench/black_borders.py measures what is left.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_lib

from posepile import frame_decode
from posepile.camera import Camera, make_crop_camera, reproject_image_points
from posepile.example import Pose3DExample
from posepile.image_input import as_rgb_uint8
from posepile.image_warp import Reprojection

# Points per box edge when mapping the box into the crop: box edges are straight in the crop only
# without lens distortion, so the crop box is the bounding box of densely sampled edge points.
_BOX_EDGE_SAMPLES = 16


@dataclasses.dataclass(frozen=True)
class CropConfig:
    """How crops are made.

    Attributes:
        crop_size: side of the square crop, px (default: see the module docstring).
        box_scale: the box's larger side times this spans the crop (> 1 leaves a margin).
        jpeg_quality: 0..100 for the stored JPEG.
        max_antialias: cap on `reproject_image`'s supersampling factor (chosen per crop from how
            much the image shrinks; 1 disables antialiasing).
        border_value: grey level (0..255) for crop pixels outside the original image.
        reduced_decode: decode JPEG frames at 1/2, 1/4 or 1/8 of their size when the crop keeps
            >= 2 frame px per crop px even so (`posepile.frame_decode`; crops' PSNR against the
            full decode in bench/README.md).
    """
    crop_size: int = 640
    box_scale: float = 2.0
    jpeg_quality: int = 95
    max_antialias: int = 4
    border_value: int = 0
    reduced_decode: bool = True

    def __post_init__(self):
        if self.crop_size <= 0:
            raise ValueError(f'CropConfig.crop_size must be positive, got {self.crop_size}')
        if self.box_scale <= 0:
            raise ValueError(f'CropConfig.box_scale must be positive, got {self.box_scale}')
        if not 0 <= self.jpeg_quality <= 100:
            raise ValueError(f'CropConfig.jpeg_quality must be in 0..100, got {self.jpeg_quality}')
        if self.max_antialias < 1:
            raise ValueError(f'CropConfig.max_antialias must be >= 1, got {self.max_antialias}')


@dataclasses.dataclass
class CroppedExample:
    """One example after cropping: what a TFRecord holds (see `posepile.tfrecord_schema`).

    Attributes:
        image_jpeg: JPEG bytes of the [crop_size, crop_size, 3] RGB crop.
        camera: the crop camera (world mm -> crop px, no distortion).
        world_coords: [J, 3] float32 mm, world frame; NaN for unlabelled joints.
        joint_names: union joint names of the rows of `world_coords` (and `coords2d`).
        box: [4] float32 person box [x, y, w, h] in crop px.
        crop_size: crop side, px.
        dataset, dataset_index, sequence, person, camera_id, frame, split: as in Pose3DExample
            (dataset_index is the dataset's position in the build's dataset list).
        mask: COCO RLE {'size': [crop_size, crop_size], 'counts': bytes} in crop px, or None.
        coords2d: [J, 2] float32 crop px for 2D-only examples (NaN where unlabelled), else None.
    """
    image_jpeg: bytes
    camera: Camera
    world_coords: np.ndarray
    joint_names: tuple[str, ...]
    box: np.ndarray
    crop_size: int
    dataset: str
    dataset_index: int = 0
    sequence: str = ''
    person: int = 0
    camera_id: str = ''
    frame: int = 0
    split: str = 'train'
    mask: dict[str, Any] | None = None
    coords2d: np.ndarray | None = None


def crop_example(example: Pose3DExample, config: CropConfig = CropConfig(),
                 dataset_index: int = 0,
                 joint_names: tuple[str, ...] | None = None) -> CroppedExample:
    """Crops `example` around its box (see module docstring).

    Args:
        example: the converter's example (image in any of its lazy forms).
        config: crop size, margin, JPEG quality.
        dataset_index: stored with the crop (position of the dataset in the build).
        joint_names: union names for the example's joints if its own `joint_names` are skeleton
            names (the build maps them); defaults to `example.joint_names`.
    Returns:
        CroppedExample.
    Raises:
        ValueError naming the example if the image cannot be decoded or the mask does not
        match the image size.
    """
    where = f'{example.dataset} {example.sequence!r} person {example.person} ' \
            f'camera {example.camera_id!r} frame {example.frame}'
    side = config.crop_size
    try:
        crop_camera = make_crop_camera(example.camera, example.box, side, scale=config.box_scale)
    except ValueError as error:
        raise ValueError(f'{where}: field box {example.box.tolist()}: {error}') from error
    image, reduction = _decode_for_crop(
        example.image, frame_decode.reduction_for(example.camera, crop_camera)
        if config.reduced_decode else 1, where)
    source_camera = (example.camera if reduction == 1
                     else frame_decode.reduced_camera(example.camera, reduction))

    # One Reprojection for the image and its mask: with lens distortion the sampling map is
    # the costly part, and the mask's comes from the image's.
    warp = Reprojection(source_camera, crop_camera, (side, side))
    crop = warp(image, border_value=config.border_value, interp='linear',
                antialias_factor=antialias_factor_for(np.asarray(example.box) / reduction,
                                                      config))

    mask = None
    if example.mask is not None:
        full_mask = load_mask(example.mask, where)
        if tuple(-(-np.array(full_mask.shape) // reduction)) != image.shape[:2]:
            decoded = '' if reduction == 1 else f' (decoded at 1/{reduction})'
            raise ValueError(f'{where}: mask size {list(full_mask.shape)} differs from the image '
                             f'size {list(image.shape[:2])}{decoded}')
        crop_mask = warp(full_mask.astype(bool), interp='nearest', source_scale=reduction)
        mask = encode_rle(crop_mask)

    coords2d = None
    if example.coords2d is not None:
        coords2d = reproject_image_points(
            example.coords2d.astype(np.float64), example.camera, crop_camera).astype(np.float32)

    return CroppedExample(
        image_jpeg=encode_jpeg(crop, config.jpeg_quality),
        camera=crop_camera,
        world_coords=example.world_coords.astype(np.float32),
        joint_names=tuple(joint_names) if joint_names is not None else example.joint_names,
        box=box_to_crop(example.box, example.camera, crop_camera),
        crop_size=side,
        dataset=example.dataset,
        dataset_index=int(dataset_index),
        sequence=str(example.sequence),
        person=int(example.person),
        camera_id=str(example.camera_id),
        frame=int(example.frame),
        split=example.split,
        mask=mask,
        coords2d=coords2d)


def _decode_for_crop(source, reduction: int, where: str) -> tuple[np.ndarray, int]:
    """(frame [H', W', 3] uint8 RGB, the reduction it was decoded at): JPEG files and bytes at
    1/`reduction` (`frame_decode`), everything else in full (reduction 1)."""
    if reduction > 1 and isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        image = frame_decode.read_jpeg_reduced(source, reduction, where)
        if image is not None:
            return image, reduction
    return load_image(source, where), 1


def crop_task(task: tuple[Pose3DExample, CropConfig, int, tuple[str, ...] | None]
              ) -> CroppedExample:
    """`crop_example(*task)`: the unit of work of a process pool (picklable, importable without
    TensorFlow)."""
    return crop_example(*task)


def init_crop_worker() -> None:
    """Pool initializer: each worker process is one core's worth of work; OpenCV's own thread
    pool would oversubscribe the machine."""
    cv2.setNumThreads(1)


def box_to_crop(box_xywh: np.ndarray, old_camera: Camera, crop_camera: Camera) -> np.ndarray:
    """[4] box [x, y, w, h] in old image px -> [4] float32 box in crop px.

    The bounding box of the mapped box outline (sampled densely: with distortion or a rotated
    view the outline is no longer an axis-aligned rectangle).
    """
    x, y, w, h = np.asarray(box_xywh, np.float64)
    t = np.linspace(0, 1, _BOX_EDGE_SAMPLES)
    outline = np.concatenate([
        np.stack([x + w * t, np.full_like(t, y)], -1),
        np.stack([x + w * t, np.full_like(t, y + h)], -1),
        np.stack([np.full_like(t, x), y + h * t], -1),
        np.stack([np.full_like(t, x + w), y + h * t], -1)])
    mapped = reproject_image_points(outline, old_camera, crop_camera)
    mapped = mapped[np.all(np.isfinite(mapped), axis=1)]
    if not len(mapped):
        return np.full(4, np.nan, np.float32)
    lo, hi = mapped.min(axis=0), mapped.max(axis=0)
    return np.concatenate([lo, hi - lo]).astype(np.float32)


def load_image(source: str | os.PathLike | bytes | np.ndarray | Callable[[], np.ndarray],
               where: str = '') -> np.ndarray:
    """Pose3DExample.image in any of its forms -> [H, W, 3] uint8 RGB (arrays: any layout and
    dtype of posepile.image_input)."""
    if callable(source):
        image = np.asarray(source())
        origin = 'the image callable'
    elif isinstance(source, (bytes, bytearray, memoryview)):
        image = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f'{where}: could not decode the {len(source)} image bytes')
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        origin = 'image bytes'
    elif isinstance(source, (str, os.PathLike)):
        if not os.path.exists(source):
            raise FileNotFoundError(f'{where}: image file {os.fspath(source)} does not exist')
        image = cv2.imread(os.fspath(source), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f'{where}: could not decode image file {os.fspath(source)}')
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        origin = os.fspath(source)
    else:
        image = np.asarray(source)
        origin = 'the image array'
    return as_rgb_uint8(image, f'{where}: {origin}' if where else origin)


def encode_jpeg(image_rgb: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode('.jpg', cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f'JPEG encoding failed for an image of shape {image_rgb.shape}')
    return buffer.tobytes()


def decode_jpeg(data: bytes, where: str = '') -> np.ndarray:
    """JPEG bytes -> [H, W, 3] uint8 RGB; `where` names the source in the error."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'{where + ": " if where else ""}could not decode {len(data)} JPEG bytes')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_mask(source: dict[str, Any] | Callable[[], np.ndarray], where: str = '') -> np.ndarray:
    """Pose3DExample.mask in either form (COCO RLE, or a callable returning [H, W] bool/uint8 for
    masks computed with the image, e.g. of composites) -> [H, W] uint8."""
    if not callable(source):
        return decode_rle(source, where)
    mask = np.asarray(source())
    if mask.ndim != 2:
        raise ValueError(f'{where}: the mask callable must give [H, W], got shape {mask.shape}')
    return mask.astype(np.uint8)


def decode_rle(rle: dict[str, Any], where: str = '') -> np.ndarray:
    """COCO RLE (compressed str/bytes counts, or uncompressed list counts) -> [H, W] uint8."""
    if 'size' not in rle or 'counts' not in rle:
        raise KeyError(f'{where}: mask RLE needs "size" and "counts", has {sorted(rle)}')
    height, width = (int(v) for v in rle['size'])
    counts = rle['counts']
    if isinstance(counts, list):
        rle = mask_lib.frPyObjects({'size': [height, width], 'counts': counts}, height, width)
    else:
        rle = {'size': [height, width],
               'counts': counts.encode('ascii') if isinstance(counts, str) else bytes(counts)}
    return mask_lib.decode(rle)


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """[H, W] bool/uint8 -> COCO RLE {'size': [H, W], 'counts': bytes} (compressed)."""
    rle = mask_lib.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': bytes(rle['counts'])}


def antialias_factor_for(box_xywh, config: CropConfig) -> int:
    """Supersampling factor for `reproject_image`: about how many original px fall on one crop
    px along a side (so shrinking a large person does not alias), capped by the config."""
    shrink = max(box_xywh[2], box_xywh[3]) * config.box_scale / config.crop_size
    return int(min(config.max_antialias, max(1, math.floor(shrink + 0.5))))
