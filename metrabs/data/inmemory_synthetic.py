"""A tiny fixed synthetic training set in memory (batch contract of metrabs.training.step), for
smoke tests and the test suite, and the vectorised joint-disk drawing it and the training
image summaries use.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from posepile.camera import Camera

# (start_step) -> dataset of global batches; a DatasetFn that also takes `rows=(a, b)` yields only
# rows a..b-1 of each (one worker's share), which the training loop then asks for.
DatasetFn = Callable[..., tf.data.Dataset]


def synthetic_joint_names(n_joints: int) -> list[str]:
    """Names of the in-memory set's joints: 'j0', 'j1', ... (untagged, so each is its own base
    name and its own 2D label name)."""
    return [f'j{i}' for i in range(n_joints)]


def _disk_offsets(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing='ij')
    inside = dy ** 2 + dx ** 2 <= radius ** 2
    return np.stack([dy[inside], dx[inside]], axis=-1)


def draw_joints(images: np.ndarray, coords2d: np.ndarray, valid: np.ndarray,
                color: Sequence[float], radius: int = 1) -> np.ndarray:
    """Draws filled disks at joint positions, vectorised (returns a copy).

    Args:
        images: [N, H, W, 3] float in [0, 1].
        coords2d: [N, J, 2] crop pixels (x, y; integer coordinates are pixel centres).
        valid: [N, J] bool, joints to draw.
        color: RGB in [0, 1].
    """
    out = np.array(images, np.float32, copy=True)
    n, h, w = out.shape[:3]
    centres = np.round(np.nan_to_num(coords2d[..., ::-1], nan=-1e6)).astype(np.int64)  # (y, x)
    points = centres[:, :, None, :] + _disk_offsets(radius)[None, None]  # [N, J, D, 2]
    image_index = np.broadcast_to(np.arange(n)[:, None, None], points.shape[:3])
    keep = (valid[:, :, None] & (points[..., 0] >= 0) & (points[..., 0] < h)
            & (points[..., 1] >= 0) & (points[..., 1] < w))
    out[image_index[keep], points[..., 0][keep], points[..., 1][keep]] = color
    return out


def make_synthetic_dataset_fn(n_joints: int, side: int, global_batch_size: int,
                              n_examples: int = 64, seed: int = 0) -> DatasetFn:
    """A tiny fixed synthetic set honouring the batch contract, for smoke tests and tests.

    Poses: a root 3-5 m in front of a pinhole camera (f = 1.2*side px, principal point at the
    crop centre) plus joint offsets ~N(0, 250 mm), projected with posepile.camera.Camera.
    Images: uniform noise with a bright dot at each visible joint, so the task is learnable.
    Every 4th example is 2D-only: valid3d and valid2d all False, its visible joints' projections
    as 'labels2d' (the K = J label names are the joint names, synthetic_joint_names); joint 0 of
    every 3rd example is unlabelled.
    Step s uses examples (s*B + i) mod n_examples, i < B: the order is a function of s only.

    Returns:
        dataset_fn(start_step, rows=None) -> infinite dataset of global batches (rows=(a, b):
        only their rows a..b-1, one worker's share).
    """
    rng = np.random.default_rng(seed)
    focal = 1.2 * side
    intrinsics = np.array([[focal, 0, (side - 1) / 2], [0, focal, (side - 1) / 2], [0, 0, 1]],
                          np.float32)
    root = np.stack([rng.uniform(-300, 300, n_examples), rng.uniform(-300, 300, n_examples),
                     rng.uniform(3000, 5000, n_examples)], axis=-1)
    coords3d = (root[:, None] + rng.normal(0, 250, [n_examples, n_joints, 3])).astype(np.float32)
    coords2d = Camera(intrinsic_matrix=intrinsics).camera_to_image(coords3d).astype(np.float32)
    inside = np.all((coords2d >= 0) & (coords2d <= side - 1), axis=-1)
    valid3d = np.ones([n_examples, n_joints], bool)
    valid3d[::3, 0] = False
    visible = valid3d & inside
    two_d_only = np.arange(n_examples) % 4 == 0
    valid_labels2d = visible & two_d_only[:, None]
    valid3d[two_d_only] = False
    valid2d = visible & ~two_d_only[:, None]
    images = rng.uniform(0, 0.5, [n_examples, side, side, 3]).astype(np.float32)
    images = draw_joints(images, coords2d, visible, (1.0, 1.0, 1.0), radius=max(1, side // 32))
    tensors = {
        'image': images, 'intrinsics': np.repeat(intrinsics[None], n_examples, axis=0),
        'coords3d_cam': np.where(valid3d[..., None], coords3d, 0).astype(np.float32),
        'valid3d': valid3d,
        'coords2d': np.where(valid2d[..., None], coords2d, 0).astype(np.float32),
        'valid2d': valid2d,
        'labels2d': np.where(valid_labels2d[..., None], coords2d, 0).astype(np.float32),
        'valid_labels2d': valid_labels2d,
        'dataset_index': (np.arange(n_examples) % 2).astype(np.int32)}
    constants = {k: tf.constant(v) for k, v in tensors.items()}

    def dataset_fn(start_step: int, rows: tuple[int, int] | None = None) -> tf.data.Dataset:
        first, stop = rows if rows is not None else (0, global_batch_size)

        def batch_of_step(s):
            indices = (s * global_batch_size + tf.range(first, stop, dtype=tf.int64)
                       ) % n_examples
            return {k: tf.gather(v, indices) for k, v in constants.items()}
        return tf.data.Dataset.range(int(start_step), sys.maxsize).map(batch_of_step)

    return dataset_fn
