"""Depth-ordered compositing of green-screen person frames (the MuCo-3DHP recipe), decoded lazily.

A `Composite` names, per person slot, the frame of an MPI-INF-3DHP video, the same frame of its
foreground-mask video (FGmasks) and, optionally, of its chair-mask video (ChairMasks), plus the
person's root depth. `render_composite` decodes them and builds the image the way the MuCo-3DHP
authors' script (mpii_create_muco_3dhp_composites.m) does: the farthest person's whole frame is
the canvas; every nearer person is pasted over it, farthest first, nearest last, first the pixels
of its chair, then its foreground pixels. Each person's visible mask is its own foreground minus
everything pasted in front of it (nearer persons and their chairs), as PosePile's MuCo
post-processing computes its "visible boxes".

Mask encoding (3DHP README, "FGmasks" / "ChairMasks"; confirmed by the authors' script): masks are
colour videos; FGmasks' red channel is the person (foreground = bright; green/blue carry
upper/lower-body clothing masks, unused here); ChairMasks' red channel is dark on the chair.

`CompositeImage` and `VisibleMask` are the picklable zero-argument callables a Pose3DExample holds
as `image` and `mask`; a small per-process cache renders a composite once for both.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from posepile.datasets import common

# Red level separating mask from background. The masks are lossy-coded 8-bit video, so values are
# near 0 or 255 but not exactly; the midpoint is the threshold farthest from both.
MASK_THRESHOLD = 128


@dataclasses.dataclass(frozen=True)
class Layer:
    """One person-frame of a composite (hashable and picklable: paths are str).

    Attributes:
        video: the RGB video (imageSequence/video_<c>.avi).
        fg_mask_video: its foreground-mask video (FGmasks/video_<c>.avi).
        chair_mask_video: its chair-mask video (ChairMasks/video_<c>.avi), or None to paste no
            chair.
        frame: frame index in all three videos.
        region: (x0, y0, x1, y1) integer pixel bounds, end-exclusive: foreground pixels outside it
            are not this person (the green-screen key also keeps studio parts that are not green).
        depth_mm: the person's root (pelvis) depth in the camera frame, mm; orders the pasting.
    """
    video: str
    fg_mask_video: str
    chair_mask_video: str | None
    frame: int
    region: tuple[int, int, int, int]
    depth_mm: float


@dataclasses.dataclass(frozen=True)
class Composite:
    """Persons (in slot order) seen by the same camera index, pasted into one image.

    feather_sigma_px: standard deviation (px) of the Gaussian that softens the paste edges
    (0: hard edges). Masks are never feathered, only the blending.
    """
    layers: tuple[Layer, ...]
    feather_sigma_px: float = 0.0

    def back_to_front(self) -> list[int]:
        """Slot indices from the farthest to the nearest person (ties keep slot order)."""
        depths = np.array([layer.depth_mm for layer in self.layers])
        return list(np.argsort(-depths, kind='stable'))


@dataclasses.dataclass(frozen=True)
class Rendered:
    """image: [H, W, 3] uint8 RGB; visible: [P, H, W] bool visible mask per slot. Read-only."""
    image: np.ndarray
    visible: np.ndarray


@dataclasses.dataclass(frozen=True)
class CompositeImage:
    """Pose3DExample.image of a composite: calling it returns [H, W, 3] uint8 RGB."""
    composite: Composite

    def __call__(self) -> np.ndarray:
        return render_composite(self.composite).image.copy()


@dataclasses.dataclass(frozen=True)
class VisibleMask:
    """Pose3DExample.mask of one slot: calling it returns the [H, W] bool visible mask."""
    composite: Composite
    slot: int

    def __call__(self) -> np.ndarray:
        return render_composite(self.composite).visible[self.slot].copy()


@functools.lru_cache(maxsize=2)
def render_composite(composite: Composite) -> Rendered:
    """Decodes and composites (module docstring). Cached: cropping asks for the image and then
    the mask of the same example, which should cost one decode.

    Raises:
        DatasetFormatError naming the file if a video is missing or undecodable, or a mask video's
        frame size differs from its RGB video's.
    """
    decoded = [_decode_layer(layer) for layer in composite.layers]
    shapes = {rgb.shape for rgb, _, _ in decoded}
    if len(shapes) != 1:
        raise common.DatasetFormatError(
            f'composite of {[layer.video for layer in composite.layers]}: frame sizes differ '
            f'({sorted(shapes)}); only videos of the same camera index can be composited')
    order = composite.back_to_front()

    canvas = decoded[order[0]][0].astype(np.float32)
    for slot in order[1:]:
        rgb, person, chair = decoded[slot]
        rgb = rgb.astype(np.float32)
        # The chair goes under its own sitter but over everyone farther away.
        for hard in (chair, person):
            alpha = _alpha(hard, composite.feather_sigma_px)
            canvas += alpha[..., np.newaxis] * (rgb - canvas)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)

    visible = np.zeros((len(decoded), *image.shape[:2]), bool)
    in_front = np.zeros(image.shape[:2], bool)
    for slot in reversed(order):
        _, person, chair = decoded[slot]
        visible[slot] = person & ~in_front
        in_front |= person | chair
    image.setflags(write=False)
    visible.setflags(write=False)
    return Rendered(image, visible)


def _decode_layer(layer: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB [H, W, 3] uint8, person mask [H, W] bool, chair mask [H, W] bool) of one layer."""
    rgb = common.VideoFrame(layer.video, layer.frame)()
    fg_red = _mask_red_channel(layer.fg_mask_video, layer.frame, rgb.shape)
    person = np.zeros(rgb.shape[:2], bool)
    x0, y0, x1, y1 = layer.region
    person[y0:y1, x0:x1] = fg_red[y0:y1, x0:x1] >= MASK_THRESHOLD
    if layer.chair_mask_video is None:
        chair = np.zeros(rgb.shape[:2], bool)
    else:
        chair = _mask_red_channel(layer.chair_mask_video, layer.frame, rgb.shape) < MASK_THRESHOLD
    return rgb, person, chair


def _mask_red_channel(path: str, frame: int, rgb_shape: tuple[int, ...]) -> np.ndarray:
    """[H, W] uint8 red channel of a mask video's frame, checked against the RGB frame size."""
    mask = common.VideoFrame(path, frame)()
    if mask.shape != rgb_shape:
        raise common.DatasetFormatError(
            f'{path}: frame {frame} is {mask.shape[1]}x{mask.shape[0]} but its RGB video\'s is '
            f'{rgb_shape[1]}x{rgb_shape[0]} (mask and image videos must match pixel for pixel)')
    return mask[..., 0]


def _alpha(hard: np.ndarray, sigma: float) -> np.ndarray:
    """[H, W] float32 paste weight from a bool mask, Gaussian-softened if sigma > 0."""
    alpha = hard.astype(np.float32)
    if sigma > 0 and hard.any():
        import cv2  # deferred like common.VideoFrame's
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma),
                                 borderType=cv2.BORDER_REPLICATE)
    return alpha
