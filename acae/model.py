"""The affine-combining autoencoder (ACAE): latents and joints as affine combinations.

Encoder: q_l = sum_j W_enc[l, j] p_j with sum_j W_enc[l, j] = 1   (W_enc [L, J])
Decoder: p_j = sum_l W_dec[j, l] q_l with sum_l W_dec[j, l] = 1   (W_dec [J, L])
Rows summing to one make both maps commute with every affine map of 3D space (rotation,
translation, scaling), so the autoencoder is exactly equivariant whatever frame the points are in
(camera frame mm in this project). Weights may be negative.

Both constraints (affine rows, chirality) are built into the parameterisation rather than
penalised: raw unconstrained matrices go through `chirality.symmetrize` and then `affine_rows`,
two commuting orthogonal projections, so every gradient step yields valid weights.
"""
from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from acae import chirality
from posepile.joints.joint_info import JointInfo


def affine_rows(weights) -> tf.Tensor:
    """Orthogonal projection of [A, B] weights onto {rows sum to one}: shift each row by a constant.

    Returns a tensor of the input's dtype.
    """
    weights = tf.convert_to_tensor(weights)
    n_cols = tf.cast(tf.shape(weights)[1], weights.dtype)
    return weights - tf.reduce_mean(weights, axis=1, keepdims=True) + 1 / n_cols


def apply_weights(weights, points) -> tf.Tensor:
    """Affine combination of points: [A, B] weights, [..., B, 3] points -> [..., A, 3].

    Since rows sum to one, combining offsets from the points' centroid and adding the centroid
    back is the same map; it keeps float32 rounding proportional to the body's extent rather
    than to its distance from the camera (metres), and the weights' large cancelling entries
    then cost far less precision.
    """
    points = tf.convert_to_tensor(points)
    weights = tf.cast(weights, points.dtype)
    centre = tf.reduce_mean(points, axis=-2, keepdims=True)
    # One [A, B] x [B, N*3] matmul: on CPU about 5x faster than the equivalent einsum, whose
    # gradient goes through broadcasting batch matmuls.
    shape = tf.shape(points)
    n_in, n_out = shape[-2], tf.shape(weights)[0]
    flat = tf.reshape(tf.transpose(tf.reshape(points - centre, [-1, n_in, 3]), [1, 0, 2]),
                      [n_in, -1])
    out = tf.transpose(tf.reshape(tf.matmul(weights, flat), [n_out, -1, 3]), [1, 0, 2])
    out_shape = tf.concat([shape[:-2], [n_out, 3]], axis=0)
    return tf.reshape(out, out_shape) + centre


def fit_affine_weights(src: np.ndarray, dst: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Least-squares affine weights W [B, A] with dst ~= W src, rows of W summing to one.

    Args:
        src: [N, A, 3] points (any frame, e.g. camera mm).
        dst: [N, B, 3] points in the same frame.
        ridge: Tikhonov strength relative to the mean per-point energy of `src`.

    Minimises sum_n ||dst_n - W src_n||^2 + r ||W - 1/A||^2 subject to W 1 = 1. Because of the
    constraint, the objective is unchanged by translating src_n and dst_n together, so each pose
    is centred on its src mean; the centred src points sum to zero, and the constrained solution is
    then the ridge regression of centred dst on centred src plus the uniform 1/A row (closed form
    of the KKT system). The ridge shrinks towards the centroid, which keeps the fit defined when A
    exceeds the rank of the data (e.g. more joints than independent points).
    Computed in float64. The fitted map is exactly affine-equivariant.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.ndim != 3 or dst.ndim != 3 or src.shape[0] != dst.shape[0] or src.shape[2] != 3 \
            or dst.shape[2] != 3:
        raise ValueError(f'fit_affine_weights: need src [N, A, 3], dst [N, B, 3]; got '
                         f'{src.shape}, {dst.shape}')
    n_src = src.shape[1]
    centre = src.mean(axis=1, keepdims=True)
    x = np.moveaxis(src - centre, 1, 0).reshape(n_src, -1)  # [A, 3N]
    y = np.moveaxis(dst - centre, 1, 0).reshape(dst.shape[1], -1)  # [B, 3N]
    gram = x @ x.T
    reg = ridge * max(np.trace(gram) / n_src, 1e-12)
    gram[np.diag_indices(n_src)] += reg
    cross = y @ x.T  # [B, A]
    weights = np.linalg.solve(gram, cross.T).T
    # Centred src columns sum to zero, so the ridge part of the solution has zero row sums and the
    # constraint is met by the uniform row; the re-projection only removes rounding.
    weights += 1.0 / n_src
    weights += (1.0 - weights.sum(axis=1, keepdims=True)) / n_src
    return weights


class AffineCombiningAutoencoder:
    """ACAE over a named joint set, trainable with any Keras optimizer.

    Attributes:
        joint_names: J names (union naming, e.g. 'lhip_h36m').
        latent_names: L names, see `chirality.latent_names`.
        raw_enc: keras.Variable [L, J], raw_dec: keras.Variable [J, L]: unconstrained parameters;
            use `weights()` for the constrained matrices.
    """

    def __init__(self, joint_names: Sequence[str], n_latents: int,
                 n_centre_latents: int | None = None, chiral: bool = True,
                 init_enc: np.ndarray | None = None, init_dec: np.ndarray | None = None,
                 seed: int = 0):
        self.joint_info = JointInfo(joint_names)
        self.joint_names = list(self.joint_info.names)
        n_joints = len(self.joint_names)
        if not 1 <= n_latents:
            raise ValueError(f'n_latents must be positive, got {n_latents}')
        identity = np.arange(n_joints)
        self.joint_perm = self.joint_info.mirror_perm if chiral else identity
        if n_centre_latents is None:
            n_centre_latents = chirality.default_n_centre_latents(self.joint_perm, n_latents)
        self.latent_names = chirality.latent_names(n_latents, n_centre_latents)
        self.latent_perm = (chirality.latent_mirror_perm(self.latent_names) if chiral
                            else np.arange(n_latents))
        self.chiral = chiral
        rng = np.random.default_rng(seed)
        if init_enc is None:
            init_enc = 1 / n_joints + rng.normal(0, 1 / n_joints, (n_latents, n_joints))
        if init_dec is None:
            init_dec = 1 / n_latents + rng.normal(0, 1 / n_latents, (n_joints, n_latents))
        self._check_shape('init_enc', init_enc, (n_latents, n_joints))
        self._check_shape('init_dec', init_dec, (n_joints, n_latents))
        self.raw_enc = keras.Variable(np.asarray(init_enc, np.float32), name='raw_enc')
        self.raw_dec = keras.Variable(np.asarray(init_dec, np.float32), name='raw_dec')

    @staticmethod
    def _check_shape(what, array, shape):
        if np.shape(array) != shape:
            raise ValueError(f'{what} must have shape {shape}, got {np.shape(array)}')

    @property
    def n_latents(self) -> int:
        return len(self.latent_names)

    @property
    def trainable_variables(self) -> list:
        return [self.raw_enc, self.raw_dec]

    def weights(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Constrained (W_enc [L, J], W_dec [J, L]), float32."""
        w_enc = affine_rows(chirality.symmetrize(self.raw_enc.value, self.latent_perm,
                                                 self.joint_perm))
        w_dec = affine_rows(chirality.symmetrize(self.raw_dec.value, self.joint_perm,
                                                 self.latent_perm))
        return w_enc, w_dec

    def weights_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        w_enc, w_dec = self.weights()
        return w_enc.numpy(), w_dec.numpy()

    def encode(self, points) -> tf.Tensor:
        """[..., J, 3] points -> [..., L, 3] latents (same frame and unit)."""
        return apply_weights(self.weights()[0], points)

    def decode(self, latents) -> tf.Tensor:
        """[..., L, 3] latents -> [..., J, 3] points (same frame and unit)."""
        return apply_weights(self.weights()[1], latents)

    def __call__(self, points) -> tf.Tensor:
        w_enc, w_dec = self.weights()
        return apply_weights(w_dec, apply_weights(w_enc, points))

    def set_weights(self, w_enc: np.ndarray, w_dec: np.ndarray) -> None:
        """Loads constrained weights (e.g. from weights.npz); they must satisfy the constraints,
        which the parameterisation then reproduces exactly (both projections are idempotent)."""
        self._check_shape('W_enc', w_enc, (self.n_latents, len(self.joint_names)))
        self._check_shape('W_dec', w_dec, (len(self.joint_names), self.n_latents))
        self.raw_enc.assign(np.asarray(w_enc, np.float32))
        self.raw_dec.assign(np.asarray(w_dec, np.float32))


def farthest_point_latent_joints(mean_pose: np.ndarray, joint_perm: np.ndarray,
                                 latent_names: Sequence[str]) -> np.ndarray:
    """Initial encoder [L, J]: each latent copies one joint, spread by farthest-point sampling.

    Left latents take one side of distinct joint pairs (their right partners take the mirrored
    joints), centre latents take centre joints; joints are chosen greedily to be far from all
    joints taken so far on the mean pose [J, 3], which spreads latents over the body.
    If there are no centre joints, a centre latent is the midpoint of a pair.
    """
    n_joints = len(joint_perm)
    latent_perm = chirality.latent_mirror_perm(latent_names)
    idx = np.arange(len(latent_names))
    left_latents = idx[(latent_perm != idx) & (idx < latent_perm)]
    centre_latents = idx[latent_perm == idx]
    joints = np.arange(n_joints)
    side_joints = joints[(joint_perm != joints) & (joints < joint_perm)]
    centre_joints = joints[joint_perm == joints]
    taken = np.zeros(n_joints, bool)
    dist = np.full(n_joints, np.inf)
    centred = mean_pose - mean_pose.mean(axis=0)
    # Start from the joint farthest from the centroid: an extremity, a stable anchor.
    dist[:] = np.linalg.norm(centred, axis=-1)
    enc = np.zeros((len(latent_names), n_joints))

    def take(candidates):
        free = candidates[~taken[candidates]]
        if len(free) == 0:
            free = candidates
        j = free[np.argmax(dist[free])]
        for k in {j, joint_perm[j]}:
            taken[k] = True
            np.minimum(dist, np.linalg.norm(centred - centred[k], axis=-1), out=dist)
        return j

    # Interleave pairs and centre latents so neither kind monopolises the extremities.
    order = [('side', l) for l in left_latents] + [('centre', l) for l in centre_latents]
    order.sort(key=lambda item: item[1] / max(1, (len(left_latents) if item[0] == 'side'
                                                  else len(centre_latents))))
    for kind, l in order:
        if kind == 'side' and len(side_joints):
            j = take(side_joints)
            enc[l, j] = 1
            enc[latent_perm[l], joint_perm[j]] = 1
        elif kind == 'side':
            j = take(centre_joints)
            enc[l, j] = enc[latent_perm[l], j] = 1
        elif len(centre_joints):
            enc[l, take(centre_joints)] = 1
        else:
            j = take(side_joints)
            enc[l, j] = enc[l, joint_perm[j]] = 0.5
    return enc


def init_from_data(joint_names: Sequence[str], poses: np.ndarray, n_latents: int,
                   n_centre_latents: int | None = None, chiral: bool = True,
                   ridge: float = 1e-4) -> AffineCombiningAutoencoder:
    """ACAE initialised from data: farthest-point encoder, least-squares affine decoder.

    Args:
        poses: [N, J, 3] sample of training poses (camera frame, mm; a few thousand suffice).
    The decoder is fitted on the poses and their mirror images so it starts chirality-symmetric.
    Training then refines both matrices jointly; this start only saves steps.
    """
    model = AffineCombiningAutoencoder(joint_names, n_latents, n_centre_latents, chiral)
    poses = np.asarray(poses, np.float64)
    centred = poses - poses.mean(axis=1, keepdims=True)
    enc = farthest_point_latent_joints(centred.mean(axis=0), model.joint_perm,
                                       model.latent_names)
    if chiral:
        centred = np.concatenate([centred, chirality.mirror_poses(centred, model.joint_perm)])
    latents = np.einsum('lj,njc->nlc', enc, centred)
    dec = fit_affine_weights(latents, centred, ridge=ridge)
    dec = affine_rows(chirality.symmetrize(dec, model.joint_perm, model.latent_perm)).numpy()
    model.set_weights(enc, dec)
    return model


def init_uniform(joint_names: Sequence[str], n_latents: int, n_centre_latents: int | None = None,
                 chiral: bool = True, seed: int = 0) -> AffineCombiningAutoencoder:
    """ACAE with the released code's start: raw weights U(-0.1, 1), made chirality-symmetric and
    divided by their row sums (dense, nearly uniform, a few small negative weights)."""
    model = AffineCombiningAutoencoder(joint_names, n_latents, n_centre_latents, chiral,
                                       seed=seed)
    rng = np.random.default_rng(seed)
    n_joints = len(model.joint_names)

    def start(shape, row_perm, col_perm):
        raw = chirality.symmetrize(rng.uniform(-0.1, 1.0, shape), row_perm, col_perm).numpy()
        # Mirror-paired rows hold the same entries, so dividing by row sums keeps the symmetry.
        return raw / raw.sum(axis=1, keepdims=True)

    model.set_weights(start((n_latents, n_joints), model.latent_perm, model.joint_perm),
                      start((n_joints, n_latents), model.joint_perm, model.latent_perm))
    return model
