"""Occluders, backgrounds and background replacement for training crops (numpy), as released.

All images here are float32 [H, W, 3] RGB in [0, 1] in crop pixels; masks are [H, W] (bool, or
float alpha in [0, 1]).

Occluders (metrabs_tf/augmentation/appearance.py and voc_loader.py of the released code):
`load_voc_occluders(root)` cuts every segmented, non-person, non-difficult, non-truncated object
of at least 500 px out of a Pascal VOC tree (VOCdevkit/VOC2012 layout: Annotations/*.xml,
JPEGImages/*.jpg, SegmentationObject/*.png), softens its mask edge (alpha 0.75 within 8 px of
the border) and halves its resolution; `occlude_with_objects` pastes 1-6 of them, each resized by
U(0.2, 1) x (crop side / 256) and centred anywhere in the crop; `random_erase` fills one
rectangle with uniform noise. Without VOC, `random_occluder` (textured polygons and ellipses of a
comparable size) stands in.

Backgrounds: `ImageBackgroundSource` scales a random photo to cover the crop, zooms it in by
U(1.2, 1.5), centres it and shifts it by up to 10 % of the crop side (the released code uses
INRIA Holidays photos without people); without photos, `random_texture`.

An OccluderSource is any callable rng -> (rgb float32 [h, w, 3] in [0, 1], alpha float32 [h, w]
in [0, 1]) giving one occluder at its natural size for a 256-px crop.
"""
from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import pathlib
import xml.etree.ElementTree
from collections.abc import Callable, Sequence

import cv2
import numpy as np
from PIL import Image

from posepile.atomic_io import write_bytes_atomic

OccluderSource = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]

# Natural size of the synthetic occluders at a 256-px crop: like half-resolution VOC objects
# (their images are <= 500 px, so <= 250 px after halving).
_SYNTHETIC_OCCLUDER_SIDE = (32, 224)
_IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')
_VOC_MIN_PIXELS = 500
_VOC_EDGE_PX = 8


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


def random_occluder(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The default OccluderSource: a random textured polygon or ellipse.

    Returns:
        rgb float32 [h, w, 3] in [0, 1] and alpha float32 [h, w] in {0, 1}; the larger side is
        uniform in 32..224 px, the aspect ratio random.
    """
    side = int(rng.integers(_SYNTHETIC_OCCLUDER_SIDE[0], _SYNTHETIC_OCCLUDER_SIDE[1] + 1))
    other = int(np.clip(round(side * np.exp(-abs(rng.normal(0, 0.5)))), 8, side))
    height, width = (side, other) if rng.uniform() < 0.5 else (other, side)
    alpha = random_shape_mask(rng, height, width).astype(np.float32)
    return random_texture(rng, (height, width)), alpha


class CutoutOccluderSource:
    """OccluderSource over real object cut-outs (e.g. from `load_voc_occluders`): each call
    returns one, picked uniformly, at its stored size."""

    def __init__(self, cutouts: Sequence[tuple[np.ndarray, np.ndarray]], source: str = ''):
        """cutouts: (rgb uint8 [h, w, 3] or float [0, 1], alpha [h, w] bool/uint8/float [0, 1]);
        `source` names where they come from, for errors."""
        if not cutouts:
            raise ValueError('CutoutOccluderSource: no cut-outs given'
                             + (f' by {source}' if source else ''))
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

    def __len__(self) -> int:
        return len(self.cutouts)

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.cutouts[int(rng.integers(len(self.cutouts)))]


def cutouts_from_instance_mask(image: np.ndarray, instance_mask: np.ndarray,
                               min_pixels: int = _VOC_MIN_PIXELS,
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


def soften_mask(mask: np.ndarray, edge_px: int = _VOC_EDGE_PX) -> np.ndarray:
    """bool [h, w] -> float32 alpha: 1 inside, 0.75 within `edge_px` of the object's border (the
    pixels an erosion by an edge_px-sized square removes), 0 outside. Outside the array counts as
    background, so the rim is soft also where the object touches its bounding box (the released
    code's default border handling leaves it hard there)."""
    mask = np.asarray(mask).astype(np.uint8)
    eroded = cv2.erode(mask, np.ones((edge_px, edge_px), np.uint8),
                       borderType=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = mask.astype(np.float32)
    alpha[(eroded == 0) & (mask > 0)] = 0.75
    return alpha


def _voc_objects(annotation: pathlib.Path) -> tuple[str, list[tuple[int, list[int]]]]:
    """(image file name, [(instance index (1-based), [xmin, ymin, xmax, ymax])]) of the usable
    objects of one VOC annotation file; no objects if the image is not segmented."""
    try:
        root = xml.etree.ElementTree.parse(annotation).getroot()
    except xml.etree.ElementTree.ParseError as e:
        raise ValueError(f'{annotation}: not valid XML ({e})') from None

    def text(node, field):
        child = node.find(field)
        if child is None or child.text is None:
            raise ValueError(f'{annotation}: missing field {field!r}')
        return child.text.strip()

    filename = text(root, 'filename')
    if text(root, 'segmented') == '0':
        return filename, []
    objects = []
    for index, obj in enumerate(root.findall('object'), start=1):
        if (text(obj, 'name') == 'person' or text(obj, 'difficult') != '0'
                or text(obj, 'truncated') != '0'):
            continue
        box = obj.find('bndbox')
        if box is None:
            raise ValueError(f'{annotation}: object {index} has no field "bndbox"')
        try:
            coords = [int(float(text(box, k))) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
        except ValueError:
            raise ValueError(f'{annotation}: object {index}: field "bndbox" is not numeric') \
                from None
        objects.append((index, coords))
    return filename, objects


def _voc_cutouts(root: pathlib.Path) -> list[tuple[np.ndarray, np.ndarray]]:
    cutouts = []
    for annotation in sorted((root / 'Annotations').glob('*.xml')):
        filename, objects = _voc_objects(annotation)
        if not objects:
            continue
        image_path = root / 'JPEGImages' / filename
        seg_path = (root / 'SegmentationObject' / filename).with_suffix('.png')
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f'{annotation}: its image {image_path} is missing or unreadable')
        if not seg_path.is_file():
            raise ValueError(f'{annotation}: says segmented, but {seg_path} is missing')
        with Image.open(seg_path) as seg:
            if seg.mode != 'P':
                raise ValueError(f'{seg_path}: expected a palette PNG of instance indices '
                                 f'(VOC SegmentationObject), got mode {seg.mode}')
            labels = np.asarray(seg)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if labels.shape != image.shape[:2]:
            raise ValueError(f'{seg_path}: size {labels.shape} differs from {image_path} '
                             f'{image.shape[:2]}')
        for index, (x0, y0, x1, y1) in objects:
            window = np.s_[max(y0, 0):y1, max(x0, 0):x1]
            object_mask = labels[window] == index
            if np.count_nonzero(object_mask) < _VOC_MIN_PIXELS:
                continue
            alpha = soften_mask(object_mask)
            rgb = image[window]
            size = (max(1, round(rgb.shape[1] / 2)), max(1, round(rgb.shape[0] / 2)))
            cutouts.append((cv2.resize(rgb, size, interpolation=cv2.INTER_AREA),
                            cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)))
    return cutouts


def _cache_path(root: pathlib.Path) -> pathlib.Path:
    base = pathlib.Path(os.environ.get('XDG_CACHE_HOME', pathlib.Path.home() / '.cache'))
    annotations = sorted((root / 'Annotations').glob('*.xml'))
    key = hashlib.sha1('\n'.join([str(root.resolve())] + [
        f'{p.name}:{p.stat().st_mtime_ns}' for p in annotations]).encode()).hexdigest()[:16]
    return base / 'posepile-metrabs' / f'voc_occluders_{key}.npz'


@functools.lru_cache(maxsize=4)
def load_voc_occluders(root: str | os.PathLike, use_cache: bool = True) -> CutoutOccluderSource:
    """Object cut-outs of a Pascal VOC tree (module docstring), as a CutoutOccluderSource.

    `root` is the directory holding Annotations/, JPEGImages/ and SegmentationObject/ (e.g.
    VOCdevkit/VOC2012). The cut-outs are cached as a plain .npz (no pickle) under
    $XDG_CACHE_HOME/posepile-metrabs (default ~/.cache), keyed by the tree's path and its
    annotation files' times, so later runs skip decoding ~3000 images.
    Raises FileNotFoundError / ValueError naming the directory or file that is wrong.
    """
    root = pathlib.Path(root)
    for sub in ('Annotations', 'JPEGImages', 'SegmentationObject'):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f'occluder directory {root}: missing {sub}/ (expected the '
                                    f'Pascal VOC layout, e.g. VOCdevkit/VOC2012)')
    cache = _cache_path(root) if use_cache else None
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            shapes, rgb_flat, alpha_flat = data['shapes'], data['rgb'], data['alpha']
        ends = np.cumsum(shapes[:, 0] * shapes[:, 1])
        starts = ends - shapes[:, 0] * shapes[:, 1]
        cutouts = [(rgb_flat[a:b].reshape(h, w, 3), alpha_flat[a:b].reshape(h, w))
                   for (h, w), a, b in zip(shapes, starts, ends)]
    else:
        cutouts = _voc_cutouts(root)
        if not cutouts:
            raise ValueError(f'occluder directory {root}: no usable segmented objects')
        if cache is not None:
            buffer = io.BytesIO()
            np.savez(buffer, shapes=np.array([a.shape for _, a in cutouts], np.int64),
                     rgb=np.concatenate([r.reshape(-1, 3) for r, _ in cutouts]),
                     alpha=np.concatenate([a.reshape(-1) for _, a in cutouts]))
            write_bytes_atomic(cache, buffer.getvalue())
    return CutoutOccluderSource(cutouts, str(root))


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


def occlude_with_objects(image: np.ndarray, rng: np.random.Generator, max_occluders: int = 6,
                         scale_range: tuple[float, float] = (0.2, 1.0),
                         occluder_source: OccluderSource | None = None) -> np.ndarray:
    """Pastes 1..max_occluders occluders, each resized by U(scale_range) x (side / 256) and
    centred at a uniform point of the crop (anywhere, not only on the person), as released.

    Args:
        image: float32 [S, S, 3] in [0, 1], crop px.
        occluder_source: OccluderSource (default `random_occluder`).
    Returns:
        the occluded image, float32 [S, S, 3].
    """
    source = occluder_source or random_occluder
    height, width = image.shape[:2]
    result = np.asarray(image, np.float32)
    for _ in range(int(rng.integers(1, max_occluders + 1))):
        rgb, alpha = source(rng)
        factor = rng.uniform(*scale_range) * height / 256
        size = (max(1, round(alpha.shape[1] * factor)), max(1, round(alpha.shape[0] * factor)))
        interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        rgb = np.clip(cv2.resize(rgb, size, interpolation=interp), 0, 1)
        alpha = np.clip(cv2.resize(alpha, size, interpolation=interp), 0, 1)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        top_left = (int(round(cx - size[0] / 2)), int(round(cy - size[1] / 2)))
        result, _ = paste(result, rgb, alpha, top_left)
    return result


def random_erase(image: np.ndarray, rng: np.random.Generator,
                 area_range: tuple[float, float] = (0.0, 1 / 3),
                 aspect_range: tuple[float, float] = (0.3, 1 / 0.3)) -> np.ndarray:
    """Random erasing (Zhong et al. 2017, as released): one rectangle of area U(area_range) x the
    crop area and height/width ratio U(aspect_range), at a uniform corner, redrawn until it fits
    inside the crop, filled with uniform noise in {0, ..., 254} / 255.

    float32 [S, S, 3] in [0, 1] -> a copy with the rectangle replaced.
    """
    height, width = image.shape[:2]
    result = np.array(image, np.float32, copy=True)
    while True:
        area = rng.uniform(*area_range) * height * width
        aspect = rng.uniform(*aspect_range)
        rect_h, rect_w = math.sqrt(area * aspect), math.sqrt(area / aspect)
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        if x0 + rect_w < width and y0 + rect_h < height:
            break
    x0, y0, x1, y1 = int(x0), int(y0), int(x0 + rect_w), int(y0 + rect_h)
    result[y0:y1, x0:x1] = rng.integers(0, 255, (y1 - y0, x1 - x0, 3)).astype(np.float32) / 255
    return result


def image_paths_in(source: str | os.PathLike) -> list[str]:
    """Background photo paths: every image file under a directory (recursively, sorted), or
    the lines of a .txt file (paths relative to the file's directory; '#' starts a comment)."""
    source = pathlib.Path(source)
    if source.is_file() and source.suffix == '.txt':
        lines = [line.split('#', 1)[0].strip() for line in source.read_text().splitlines()]
        paths = [str(source.parent / line) for line in lines if line]
    elif source.is_dir():
        paths = sorted(str(p) for p in source.rglob('*') if p.suffix.lower() in _IMAGE_SUFFIXES)
    else:
        raise FileNotFoundError(f'background source {source}: neither a directory nor a .txt '
                                f'list of image files')
    if not paths:
        raise ValueError(f'background source {source}: holds no image files '
                         f'({", ".join(_IMAGE_SUFFIXES)})')
    return paths


class ImageBackgroundSource:
    """Background hook (`augmentation.BackgroundSource`) drawing from real photos, as released
    (metrabs_tf/augmentation/background.py): a uniformly chosen photo is scaled so that it covers
    the crop, zoomed in by U(zoom_range), centred, and shifted by a uniform vector in the disc of
    0.1 x the crop side. Images are decoded on use (with a small LRU cache)."""

    def __init__(self, image_paths: Sequence[str], cache_size: int = 16,
                 zoom_range: tuple[float, float] = (1.2, 1.5)):
        self.paths = [str(p) for p in image_paths]
        if not self.paths:
            raise ValueError('ImageBackgroundSource: no image paths given')
        self.zoom_range = zoom_range
        self._load = functools.lru_cache(maxsize=cache_size)(self._decode)

    @staticmethod
    def _decode(path: str) -> np.ndarray:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f'ImageBackgroundSource: cannot read image file {path}')
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255

    def __call__(self, rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
        image = self._load(self.paths[int(rng.integers(len(self.paths)))])
        out_h, out_w = int(shape[0]), int(shape[1])
        height, width = image.shape[:2]
        scale = rng.uniform(*self.zoom_range) * max(out_h / height, out_w / width)
        angle, radius = rng.uniform(0, 2 * np.pi), 0.1 * out_h * math.sqrt(rng.uniform())
        # Output pixel (x, y) shows photo pixel ((x - cx_out - shift) / scale + cx_photo, ...).
        shift = radius * np.array([math.cos(angle), math.sin(angle)])
        centre_in = np.array([(width - 1) / 2, (height - 1) / 2])
        centre_out = np.array([(out_w - 1) / 2, (out_h - 1) / 2]) + shift
        affine = np.array([[scale, 0, centre_out[0] - scale * centre_in[0]],
                           [0, scale, centre_out[1] - scale * centre_in[1]]])
        # (As released, no antialiasing: the photo is only a background.)
        return cv2.warpAffine(image, affine, (out_w, out_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)


def replace_background(image: np.ndarray, person_mask: np.ndarray,
                       background: np.ndarray) -> np.ndarray:
    """Blends: person_mask * image + (1 - person_mask) * background.

    Args:
        image, background: float32 [H, W, 3]; person_mask: [H, W] bool or float alpha in [0, 1].
    """
    if person_mask.shape != image.shape[:2] or background.shape != image.shape:
        raise ValueError(f'replace_background: image {image.shape}, mask {person_mask.shape} and '
                         f'background {background.shape} must agree')
    alpha = np.asarray(person_mask, np.float32)[..., np.newaxis]
    return (alpha * image + (1 - alpha) * background).astype(np.float32)
