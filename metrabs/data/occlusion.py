"""Synthetic occluders, random textures and background replacement for training crops (numpy).

All images here are float32 [H, W, 3] RGB in [0, 1] in crop pixels; masks are bool [H, W].

No object data set ships with this project, so the default occluders are random polygons and
ellipses filled with random textures (`random_occluder`). Real object cut-outs (the reference
MeTRAbs pastes Pascal VOC objects) plug in through the `OccluderSource` hook:

    cutouts = []
    for image, instance_mask in voc_segmentation_object_pairs:       # user's own loader
        cutouts += cutouts_from_instance_mask(image, instance_mask)  # (rgb, alpha) per object
    source = CutoutOccluderSource(cutouts)
    ... pass `occluder_source=source` to `metrabs.data.augmentation.augment`
    (and to `metrabs.data.input_pipeline.make_training_dataset`).

Backgrounds default to random textures; `ImageBackgroundSource(paths)` pastes the person onto
random windows of the user's own photos instead (pass it as `background_source`).

An OccluderSource is any callable (rng, max_side_px) -> (rgb float32 [h, w, 3] in [0, 1],
alpha float32 [h, w] in [0, 1]) with max(h, w) <= max_side_px.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import cv2
import numpy as np

OccluderSource = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]

# Below ~12 px an occluder is a speck that hides nothing a heatmap cell (32 px) would notice.
_MIN_OCCLUDER_SIDE = 12


def random_texture(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    """A random texture float32 [H, W, 3] in [0, 1] for occluders and backgrounds.

    A blend of three layers with random weights, so textures range from flat colour to busy:
    a random base colour, smooth coloured noise (a random low-resolution grid upsampled with
    bilinear interpolation) and oriented stripes (a sinusoid of random period, angle and colours).
    """
    height, width = int(shape[0]), int(shape[1])
    base = rng.uniform(0, 1, 3).astype(np.float32)

    grid = int(rng.integers(2, 12))
    coarse = rng.uniform(0, 1, (grid, grid, 3)).astype(np.float32)
    noise = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)

    angle = rng.uniform(0, np.pi)
    period = rng.uniform(4, max(8.0, 0.5 * max(height, width)))
    # sin(a x + b y) = sin(a x) cos(b y) + cos(a x) sin(b y): two outer products instead of a
    # full-image trigonometric pass (this runs once per example and per occluder).
    a, b = (np.array([np.cos(angle), np.sin(angle)]) * (2 * np.pi / period)).astype(np.float32)
    ax, by = a * np.arange(width, dtype=np.float32), b * np.arange(height, dtype=np.float32)
    wave = np.outer(np.cos(by), np.sin(ax)) + np.outer(np.sin(by), np.cos(ax))
    wave = 0.5 + 0.5 * wave
    colour_a, colour_b = rng.uniform(0, 1, (2, 3)).astype(np.float32)

    weights = rng.dirichlet([1.0, 1.0, 1.0]).astype(np.float32)
    # = w0 * base + w1 * noise + w2 * (wave * colour_a + (1 - wave) * colour_b)
    texture = noise * weights[1]
    texture += wave[..., np.newaxis] * (weights[2] * (colour_a - colour_b))
    texture += weights[0] * base + weights[2] * colour_b
    return np.clip(texture, 0, 1, out=texture)


def random_shape_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """bool [height, width]: a random filled ellipse or star-shaped polygon touching the box."""
    canvas = np.zeros((height, width), np.uint8)
    center = ((width - 1) / 2, (height - 1) / 2)
    if rng.uniform() < 0.4:
        axes = (max(1, int(round(width / 2 - 0.5))), max(1, int(round(height / 2 - 0.5))))
        cv2.ellipse(canvas, (int(round(center[0])), int(round(center[1]))), axes,
                    float(rng.uniform(0, 360)), 0, 360, 1, thickness=-1)
    else:
        # Increasing angles with random radii give a simple (non-self-intersecting) polygon;
        # jittered even spacing keeps it from degenerating into a sliver.
        n_vertices = int(rng.integers(3, 11))
        angles = (np.arange(n_vertices) + rng.uniform(0, 0.8, n_vertices)) * (2 * np.pi
                                                                              / n_vertices)
        radii = rng.uniform(0.5, 1.0, n_vertices)
        xs = center[0] + radii * np.cos(angles) * (width / 2)
        ys = center[1] + radii * np.sin(angles) * (height / 2)
        points = np.round(np.stack([xs, ys], -1)).astype(np.int32)
        cv2.fillPoly(canvas, [points], 1)
    return canvas.astype(bool)


def random_occluder(rng: np.random.Generator, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The default OccluderSource: a random textured polygon or ellipse.

    Returns:
        rgb float32 [h, w, 3] in [0, 1] and alpha float32 [h, w] in {0, 1};
        sides in [min(12, max_side), max_side] px with a random aspect ratio.
    """
    max_side = max(1, int(max_side))
    low = min(_MIN_OCCLUDER_SIDE, max_side)
    height = int(rng.integers(low, max_side + 1))
    width = int(np.clip(round(height * np.exp(rng.uniform(-0.7, 0.7))), low, max_side))
    alpha = random_shape_mask(rng, height, width).astype(np.float32)
    return random_texture(rng, (height, width)), alpha


class CutoutOccluderSource:
    """OccluderSource over real object cut-outs (e.g. Pascal VOC segmentation objects).

    Each call picks one cut-out uniformly and resizes it so its larger side is uniform in
    [0.5, 1] * max_side px (area interpolation for the colours, linear for the alpha).
    """

    def __init__(self, cutouts: Sequence[tuple[np.ndarray, np.ndarray]]):
        """cutouts: (rgb uint8 [h, w, 3] or float [0, 1], alpha [h, w] bool/uint8/float [0, 1])."""
        if not cutouts:
            raise ValueError('CutoutOccluderSource: no cut-outs given')
        self.cutouts = []
        for i, (rgb, alpha) in enumerate(cutouts):
            rgb, alpha = np.asarray(rgb), np.asarray(alpha)
            if rgb.ndim != 3 or rgb.shape[2] != 3 or alpha.shape != rgb.shape[:2]:
                raise ValueError(f'CutoutOccluderSource: cut-out {i} has rgb {rgb.shape} and '
                                 f'alpha {alpha.shape}; need [h, w, 3] and [h, w]')
            rgb = rgb.astype(np.float32) / 255 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
            if alpha.dtype == np.uint8:
                alpha = alpha.astype(np.float32) / (255 if alpha.max() > 1 else 1)
            self.cutouts.append((rgb, alpha.astype(np.float32)))

    def __call__(self, rng: np.random.Generator, max_side: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, alpha = self.cutouts[int(rng.integers(len(self.cutouts)))]
        target = rng.uniform(0.5, 1.0) * max(1, int(max_side))
        factor = target / max(rgb.shape[:2])
        size = tuple(max(1, int(round(n * factor))) for n in rgb.shape[1::-1])  # (w, h)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
        return np.clip(rgb, 0, 1), np.clip(alpha, 0, 1)


def cutouts_from_instance_mask(image: np.ndarray, instance_mask: np.ndarray,
                               min_pixels: int = 500,
                               ignore_labels: Sequence[int] = (0, 255)
                               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Object cut-outs from one image and its instance label map (VOC 'SegmentationObject').

    Args:
        image: uint8 [H, W, 3] RGB.
        instance_mask: int [H, W] instance labels; `ignore_labels` (background 0, VOC's 255
            'void' border) are skipped.
        min_pixels: objects with fewer pixels are skipped (too small to occlude anything).
    Returns:
        list of (rgb uint8 [h, w, 3], alpha bool [h, w]) cropped to each object's bounding box.
    """
    image = np.asarray(image)
    labels = np.asarray(instance_mask)
    if labels.shape != image.shape[:2]:
        raise ValueError(f'cutouts_from_instance_mask: instance_mask {labels.shape} does not '
                         f'match image {image.shape}')
    result = []
    for label in np.setdiff1d(np.unique(labels), ignore_labels):
        alpha = labels == label
        if alpha.sum() < min_pixels:
            continue
        rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
        window = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        result.append((image[window].copy(), alpha[window].copy()))
    return result


def paste(image: np.ndarray, rgb: np.ndarray, alpha: np.ndarray,
          top_left: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-blends a patch onto `image` with its top-left corner at (x, y) = top_left (px).

    The patch may stick out of the image; the outside part is dropped.
    Returns:
        (new image float32 [H, W, 3], bool [H, W] of the pixels the patch covers with alpha > 0).
    """
    result = np.array(image, np.float32, copy=True)
    covered = np.zeros(result.shape[:2], bool)
    height, width = result.shape[:2]
    x0, y0 = int(top_left[0]), int(top_left[1])
    ph, pw = alpha.shape
    # Intersection of the patch with the image, in image and in patch coordinates.
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + pw, width), min(y0 + ph, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return result, covered
    patch_window = np.s_[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    a = alpha[patch_window][..., np.newaxis].astype(np.float32)
    region = result[iy0:iy1, ix0:ix1]
    result[iy0:iy1, ix0:ix1] = a * rgb[patch_window] + (1 - a) * region
    covered[iy0:iy1, ix0:ix1] = a[..., 0] > 0
    return result, covered


def occlude(image: np.ndarray, rng: np.random.Generator, box_xywh: Sequence[float],
            max_occluders: int = 3, size_range: tuple[float, float] = (0.2, 0.6),
            occluder_source: OccluderSource | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pastes 1..max_occluders occluders centred at uniform points inside the person box.

    Args:
        image: float32 [H, W, 3] in [0, 1], crop px.
        box_xywh: (4,) person box in crop px (where occluders go).
        size_range: each occluder's largest allowed side, as a fraction of the box's larger side.
        occluder_source: OccluderSource (default `random_occluder`).
    Returns:
        (occluded image float32 [H, W, 3], bool [H, W] union of the pixels covered).
    """
    source = occluder_source or random_occluder
    x, y, w, h = (float(v) for v in box_xywh)
    extent = max(w, h)
    covered = np.zeros(image.shape[:2], bool)
    result = np.asarray(image, np.float32)
    for _ in range(int(rng.integers(1, max_occluders + 1))):
        max_side = max(1, int(round(rng.uniform(*size_range) * extent)))
        rgb, alpha = source(rng, max_side)
        cx, cy = x + rng.uniform(0, w), y + rng.uniform(0, h)
        top_left = (int(round(cx - alpha.shape[1] / 2)), int(round(cy - alpha.shape[0] / 2)))
        result, newly = paste(result, rgb, alpha, top_left)
        covered |= newly
    return result, covered


class ImageBackgroundSource:
    """Background hook (`augmentation.BackgroundSource`) drawing from real photos.

    Each call picks one image file uniformly, takes a random square window of it (side uniform
    in [0.3, 1] x the image's shorter side) and resizes it to the requested shape. Images are
    decoded on use (with a small LRU cache), so long lists cost no memory up front.
    """

    def __init__(self, image_paths: Sequence[str], cache_size: int = 16):
        self.paths = [str(p) for p in image_paths]
        if not self.paths:
            raise ValueError('ImageBackgroundSource: no image paths given')
        self._load = functools.lru_cache(maxsize=cache_size)(self._decode)

    @staticmethod
    def _decode(path: str) -> np.ndarray:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f'ImageBackgroundSource: cannot read image file {path}')
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255

    def __call__(self, rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
        image = self._load(self.paths[int(rng.integers(len(self.paths)))])
        height, width = image.shape[:2]
        side = max(1, int(round(rng.uniform(0.3, 1.0) * min(height, width))))
        y0 = int(rng.integers(0, height - side + 1))
        x0 = int(rng.integers(0, width - side + 1))
        window = image[y0:y0 + side, x0:x0 + side]
        return cv2.resize(window, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_AREA
                          if side > max(shape[:2]) else cv2.INTER_LINEAR)


def replace_background(image: np.ndarray, person_mask: np.ndarray,
                       background: np.ndarray) -> np.ndarray:
    """Keeps the pixels where `person_mask` is True and takes `background` everywhere else.

    Args:
        image, background: float32 [H, W, 3]; person_mask: bool [H, W].
    """
    if person_mask.shape != image.shape[:2] or background.shape != image.shape:
        raise ValueError(f'replace_background: image {image.shape}, mask {person_mask.shape} and '
                         f'background {background.shape} must agree')
    return np.where(person_mask[..., np.newaxis], image, background).astype(np.float32)
