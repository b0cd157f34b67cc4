"""Renders the hidden body as shaded tapered capsules with a z-buffer, over a textured background.

Each capsule is drawn as a screen-space impostor: its two end points go through the camera
(`Camera.world_to_image`, lens distortion included) and `Camera.world_to_camera` (depth); every
pixel within the projected radius of the segment gets a depth on the capsule's front surface and
a Lambert-shaded colour. All (capsule, pixel) pairs of all capsules' bounding boxes are evaluated
in one vectorised pass and resolved per pixel by the nearest depth (a z-buffer). Limb silhouettes
are exact up to the straight-segment approximation under lens distortion (the end points are
distorted, the segment between them is drawn straight).

Occluders are flat shapes placed nearer to the camera than any body point, so painting them after
the body is exact; the person mask is the set of pixels where the body is the visible surface.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from posepile.camera import Camera
from posepile.synthetic import body as body_lib

_H = body_lib.HIDDEN_POINT_IDS
# (start point, end point, radius at start, radius at end [stature units], material).
# Materials: 0 skin, 1 top (shirt), 2 bottom (trousers), 3 shoes, 4 hair.
_CAPSULES_LEFT = [
    ('lacromion', 'lelbow', 0.034, 0.027, 1),
    ('lelbow', 'lwrist', 0.026, 0.019, 0),
    ('lwrist', 'lfinger', 0.02, 0.014, 0),
    ('lhip', 'lknee', 0.062, 0.04, 2),
    ('lknee', 'lankle', 0.04, 0.027, 2),
    ('lheel', 'ltoetip', 0.026, 0.02, 3),
    ('lasis', 'lchest', 0.05, 0.05, 1),
]
_CAPSULES_CENTRE = [
    ('pelvis', 'spine2', 0.085, 0.08, 1),
    ('spine2', 'neck', 0.085, 0.07, 1),
    ('lhip', 'rhip', 0.065, 0.065, 2),
    ('neck', 'head', 0.032, 0.03, 0),
    ('chin', 'head', 0.035, 0.045, 0),
    ('head', 'crown', 0.048, 0.05, 4),
]


def _mirror(item):
    a, b, ra, rb, m = item
    flip = (lambda n: 'r' + n[1:] if n.startswith('l') and 'r' + n[1:] in _H else n)
    return flip(a), flip(b), ra, rb, m


_CAPSULES = _CAPSULES_CENTRE + _CAPSULES_LEFT + [_mirror(c) for c in _CAPSULES_LEFT]
CAPSULE_ENDS: np.ndarray = np.array([(_H[a], _H[b]) for a, b, _, _, _ in _CAPSULES])  # [C, 2]
CAPSULE_RADII: np.ndarray = np.array([(ra, rb) for _, _, ra, rb, _ in _CAPSULES])  # [C, 2]
CAPSULE_MATERIAL: np.ndarray = np.array([m for *_, m in _CAPSULES])
_NEAR_MM = 100.0


@dataclasses.dataclass(frozen=True)
class Appearance:
    """Colours (RGB 0..255) of the materials skin, top, bottom, shoes, hair: [5, 3]."""
    colors: np.ndarray


def sample_appearance(rng: np.random.Generator) -> Appearance:
    skin = np.array([225, 180, 150]) * rng.uniform(0.35, 1.05)
    clothes = rng.uniform(20, 235, (3, 3))
    hair = np.array([60, 40, 25]) * rng.uniform(0.3, 2.5)
    return Appearance(np.clip(np.concatenate([skin[None], clothes, hair[None]]), 0, 255))


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """[H, W, 3] uint8 textured background: smooth colour blobs, a grating and fine noise."""
    coarse = cv2.resize(rng.uniform(0, 255, (4, 4, 3)).astype(np.float32), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    medium = cv2.resize(rng.uniform(-60, 60, (max(2, height // 16), max(2, width // 16), 3))
                        .astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    angle, freq = rng.uniform(0, np.pi), rng.uniform(0.02, 0.2)
    # sin(a + b) = sin a cos b + cos a sin b: the grating from two 1D factors, no full-size trig.
    xs = freq * np.cos(angle) * np.arange(width, dtype=np.float32)
    ys = freq * np.sin(angle) * np.arange(height, dtype=np.float32)
    grating = (np.sin(ys)[:, None] * np.cos(xs)[None] + np.cos(ys)[:, None] * np.sin(xs)[None])
    grating_color = rng.uniform(-40, 40, 3).astype(np.float32)
    # In-place and per channel: broadcasting over a trailing axis of 3 is slow in numpy.
    pattern = rng.random((height, width), dtype=np.float32)
    pattern -= 0.5
    pattern *= 20
    coarse += medium
    for channel in range(3):
        coarse[..., channel] += pattern + grating * grating_color[channel]
    np.clip(coarse, 0, 255, out=coarse)
    return coarse.astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class Rendering:
    """image: [H, W, 3] uint8 RGB; mask: [H, W] bool, person visible; depth: [H, W] float32
    camera-frame z of the visible body surface in mm (inf elsewhere); occluded_fraction: share of
    the body's rendered pixels hidden by occluders."""
    image: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    occluded_fraction: float


def render_person(hidden_points: np.ndarray, body: body_lib.BodyShape, appearance: Appearance,
                  camera: Camera, background: np.ndarray, rng: np.random.Generator,
                  occluder_prob: float = 0.3) -> Rendering:
    """Renders one person.

    Args:
        hidden_points: [N_HIDDEN, 3] world mm.
        body: proportions (capsule radii scale with stature and girth).
        appearance: colours.
        camera: the camera (image size = background size).
        background: [H, W, 3] uint8, drawn behind the body (not modified).
        rng: drives the occluders and shading noise.
        occluder_prob: probability of 1-2 occluders over the person.
    """
    height, width = background.shape[:2]
    ends_world = hidden_points[CAPSULE_ENDS]  # [C, 2, 3]
    ends_cam = camera.world_to_camera(ends_world)
    keep = np.all((ends_cam[..., 2] > _NEAR_MM) & camera.is_valid_direction(ends_cam), axis=1)
    ends_cam = ends_cam[keep]
    radii_mm = CAPSULE_RADII[keep] * body.stature_mm * body.girth
    material = CAPSULE_MATERIAL[keep]
    ends_px = camera.camera_to_image(ends_cam)  # [C, 2, 2]
    focal = np.sqrt(abs(np.linalg.det(camera.intrinsic_matrix[:2, :2])))
    radii_px = focal * radii_mm / ends_cam[..., 2]

    depth = np.full(height * width, np.inf, np.float32)
    image = background.reshape(-1, 3).astype(np.float32)
    lo = np.floor(np.min(ends_px - radii_px[..., None], axis=1)).astype(np.int64)
    hi = np.ceil(np.max(ends_px + radii_px[..., None], axis=1)).astype(np.int64)
    lo = np.clip(lo, 0, [width, height])
    hi = np.clip(hi + 1, 0, [width, height])
    size = np.maximum(hi - lo, 0)  # [C, 2] (w, h)
    counts = size[:, 0] * size[:, 1]
    body_pixels = np.zeros(height * width, bool)
    if counts.sum() > 0:
        cap = np.repeat(np.arange(len(counts)), counts)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        px = lo[cap, 0] + local % size[cap, 0]
        py = lo[cap, 1] + local // size[cap, 0]
        a, b = ends_px[cap, 0], ends_px[cap, 1]
        ab = b - a
        rel = np.stack([px, py], -1) - a
        t = np.clip(np.sum(rel * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-9), 0, 1)
        offset = rel - t[:, None] * ab
        radius = radii_px[cap, 0] + t * (radii_px[cap, 1] - radii_px[cap, 0])
        u2 = np.sum(offset * offset, -1) / np.maximum(radius, 1e-9) ** 2
        inside = u2 < 1
        cap, t, offset, radius, u2 = cap[inside], t[inside], offset[inside], radius[inside], \
            u2[inside]
        pix = py[inside] * width + px[inside]
        bulge = np.sqrt(1 - u2)
        radius_mm = radii_mm[cap, 0] + t * (radii_mm[cap, 1] - radii_mm[cap, 0])
        z = (ends_cam[cap, 0, 2] + t * (ends_cam[cap, 1, 2] - ends_cam[cap, 0, 2])
             - radius_mm * bulge).astype(np.float32)
        np.minimum.at(depth, pix, z)
        winner = z <= depth[pix]
        # Surface normal of the impostor in camera axes (x right, y down, z towards the camera
        # negative); lit from above-front-left.
        normal = np.concatenate([offset[winner] / radius[winner, None], -bulge[winner, None]], -1)
        light = np.array([-0.4, -0.6, -0.7])
        light /= np.linalg.norm(light)
        shade = 0.3 + 0.7 * np.clip(normal @ light, 0, 1)
        color = appearance.colors[material[cap[winner]]] * shade[:, None]
        image[pix[winner]] = color
        body_pixels[pix[winner]] = True

    image = image.reshape(height, width, 3)
    body_mask = body_pixels.reshape(height, width)
    occluder = np.zeros((height, width), np.uint8)
    if body_mask.any() and rng.uniform() < occluder_prob:
        ys, xs = np.nonzero(body_mask)
        for _ in range(rng.integers(1, 3)):
            center = (int(rng.uniform(xs.min(), xs.max() + 1)), int(rng.uniform(ys.min(),
                                                                                ys.max() + 1)))
            axes = (int(rng.uniform(0.1, 0.35) * (xs.max() - xs.min() + 10)),
                    int(rng.uniform(0.05, 0.3) * (ys.max() - ys.min() + 10)))
            layer = np.zeros_like(occluder)
            if rng.uniform() < 0.5:
                cv2.ellipse(layer, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
            else:
                cv2.rectangle(layer, (center[0] - axes[0], center[1] - axes[1]),
                              (center[0] + axes[0], center[1] + axes[1]), 1, -1)
            occluder |= layer
            image[layer.astype(bool)] = rng.uniform(0, 255, 3)
    occluded = occluder.astype(bool)
    mask = body_mask & ~occluded
    n_body = body_mask.sum()
    occluded_fraction = float((body_mask & occluded).sum() / n_body) if n_body else 0.0
    depth = depth.reshape(height, width)
    depth[~mask] = np.inf
    return Rendering(np.clip(image, 0, 255).astype(np.uint8), mask, depth, occluded_fraction)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """[H, W] bool -> [x, y, w, h] float32 pixels of the tightest box around the mask's pixels
    (edges at pixel borders: x = first column - 0.5 under the pixel-centre convention); zeros
    when the mask is empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    if len(cols) == 0:
        return np.zeros(4, np.float32)
    return np.array([cols[0] - 0.5, rows[0] - 0.5, cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1],
                    np.float32)
