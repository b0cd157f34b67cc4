"""Left/right structure of ACAE latents and weight matrices (chirality equivariance).

Mirroring a pose means reflecting its camera-frame x coordinate AND swapping left/right joint
labels (a reflected left hand is where a right hand would be). An ACAE is chirality-equivariant if
mirroring the input joints mirrors the latents (with the latents' own left/right swap) and the
reconstruction. For weight matrices that act identically on x, y and z this is the linear
condition  W[row_perm[a], col_perm[b]] == W[a, b]  for all a, b; the reflection itself commutes
with any linear combination, so only the label permutations matter.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from posepile.joints.joint_info import JointInfo


def latent_names(n_latents: int, n_centre: int) -> list[str]:
    """Names of the latents: (n_latents - n_centre) / 2 left/right pairs, then centre latents.

    The 'l_'/'r_' prefixes make JointInfo(latent_names).mirror_perm pair them up; 'c_' names stay
    unpaired.
    """
    n_sided = n_latents - n_centre
    if n_centre < 0 or n_sided < 0 or n_sided % 2:
        raise ValueError(
            f'n_latents={n_latents}, n_centre_latents={n_centre}: need 0 <= n_centre <= n_latents '
            f'and an even number of sided latents')
    n_pairs = n_sided // 2
    return ([f'l_lat{i:02d}' for i in range(n_pairs)] + [f'r_lat{i:02d}' for i in range(n_pairs)]
            + [f'c_lat{i:02d}' for i in range(n_centre)])


def default_n_centre_latents(joint_mirror_perm: np.ndarray, n_latents: int) -> int:
    """Centre latents in proportion to the centre joints, so that sided and midline anatomy get
    latents in the same ratio as the joints have; the count of sided latents must be even.

    A joint set without left/right pairs gets only centre latents (no chirality to respect).
    """
    perm = np.asarray(joint_mirror_perm)
    is_centre = perm == np.arange(len(perm))
    if is_centre.all():
        return n_latents
    n_centre = int(round(n_latents * is_centre.mean()))
    if (n_latents - n_centre) % 2:
        n_centre += 1 if n_centre < n_latents else -1
    if n_centre == n_latents and n_latents >= 2:
        # Keep at least one pair when the joints have pairs, otherwise left/right detail is lost.
        n_centre -= 2
    return n_centre


def latent_mirror_perm(names: Sequence[str]) -> np.ndarray:
    """Left/right swap of the latents (an involution over latent indices)."""
    return JointInfo(names).mirror_perm


def symmetrize(weights, row_perm: np.ndarray, col_perm: np.ndarray) -> tf.Tensor:
    """Orthogonal projection of a weight matrix [A, B] onto the chirality-equivariant subspace.

    Averages W with its relabelled copy W[row_perm][:, col_perm]; for involutive permutations the
    result satisfies the equivariance condition exactly (each entry equals its partner's, computed
    from the same two summands). Row sums are preserved whenever they were already mirror-paired,
    so combining this with the affine projection keeps both constraints.
    Accepts numpy arrays or tensors of any float dtype; returns a tensor of the same dtype.
    """
    weights = tf.convert_to_tensor(weights)
    swapped = tf.gather(tf.gather(weights, row_perm, axis=0), col_perm, axis=1)
    return 0.5 * (weights + swapped)


def mirror_poses(points: np.ndarray, mirror_perm: np.ndarray) -> np.ndarray:
    """Mirror image of camera-frame poses [..., J, 3]: reflect x and swap left/right labels."""
    points = np.asarray(points)
    reflected = points * np.array([-1, 1, 1], dtype=points.dtype)
    return np.take(reflected, mirror_perm, axis=-2)


def is_mirror_closed(full_mirror_perm: np.ndarray, indices: np.ndarray) -> bool:
    """Whether a joint subset (given as `indices` into a larger set) contains every partner."""
    chosen = set(np.asarray(indices).tolist())
    return all(int(full_mirror_perm[i]) in chosen for i in chosen)
