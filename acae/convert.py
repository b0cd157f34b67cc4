"""Skeleton-to-skeleton conversion through the ACAE latents.

Converting from the ACAE's full joint set is decode(encode(P)) restricted to the target joints.
Converting from a PARTIAL skeleton S (only its joints known, e.g. H36M's 17) needs an encoder that
sees only those joints. We fit, per source skeleton, an affine encoder E_S [L, J_S] (rows summing
to one) by least squares so that E_S P_S ~= W_enc P on the training poses:

- Rows summing to one make E_S commute with every affine map of 3D space, so the conversion
  S -> latents -> T is exactly rotation-, translation- and scale-equivariant, like the ACAE itself.
  A constrained pseudo-inverse of the decoder rows (latents from D_S Q = P_S) would also be
  affine when J_S >= L, but is underdetermined for small skeletons (17 joints < 32 latents);
  regressing on data uses the pose distribution to fill in what S does not observe.
- The least-squares objective is rotation-invariant (it sums squared 3D distances), so fitting on
  camera-frame poses needs no rotation augmentation.
- Fitting on the poses together with their mirror images (when S contains every left/right
  partner) makes the objective mirror-invariant, so its minimiser is chirality-equivariant; the
  final `chirality.symmetrize` only removes rounding.
The result is the best affine (linear-MMSE-like) latent estimate from S's joints.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence

import numpy as np

from acae import chirality
from acae import model as acae_model

FULL_SKELETON = 'full'  # the ACAE's own joint set: converted with W_enc itself


def skeleton_table(joint_names: Sequence[str],
                   spec: str | Sequence[str] | Mapping[str, Sequence[str]] = 'auto'
                   ) -> dict[str, list[str]]:
    """Skeleton name -> its joint names in the ACAE's naming (union names).

    spec: a mapping name -> joint names (used as given), 'none' (only FULL_SKELETON), 'auto'
        (every skeleton of posepile.joints whose union joints the ACAE covers), or skeleton
        names (a comma-separated string or a list), resolved through posepile.joints.union_names.
    FULL_SKELETON ('full', the ACAE's own joint set) is always included.
    """
    joint_names = [str(n) for n in joint_names]
    known = set(joint_names)
    table: dict[str, list[str]] = {FULL_SKELETON: joint_names}
    if isinstance(spec, Mapping):
        requested = {str(k): [str(n) for n in v] for k, v in spec.items()}
    elif spec in ('none', ''):
        requested = {}
    else:
        joints_registry = _joints_registry()
        if spec == 'auto':
            try:
                names = joints_registry.skeleton_names('all')
            except ImportError:  # the synthetic formats' module may be absent
                names = joints_registry.skeleton_names('real')
        else:
            names = spec.split(',') if isinstance(spec, str) else list(spec)
        requested = {n: list(joints_registry.union_names(n)) for n in names}
        if spec == 'auto':
            requested = {k: v for k, v in requested.items() if v and set(v) <= known}
    for name, names in requested.items():
        if name == FULL_SKELETON:
            raise ValueError(f"skeleton name {FULL_SKELETON!r} is reserved for the ACAE's own "
                             f"joint set")
        missing = [n for n in names if n not in known]
        if missing:
            raise KeyError(f'skeleton {name!r}: joints not in the ACAE joint set: {missing[:10]}'
                           f'{" ..." if len(missing) > 10 else ""}')
        if not names:
            raise ValueError(f'skeleton {name!r} has no joints')
        table[name] = names
    return table


def _joints_registry():
    try:
        return importlib.import_module('posepile.joints')
    except ImportError as e:
        raise ImportError('posepile.joints (skeleton registry) is not available; pass the '
                          'skeletons as a mapping name -> joint names') from e


@dataclasses.dataclass
class SkeletonConverter:
    """Any skeleton -> latents -> any skeleton, with exact affine equivariance.

    Attributes:
        joint_names: J ACAE joint names; latent_names: L names.
        w_enc [L, J], w_dec [J, L]: the ACAE weights (float64 here).
        skeletons: name -> joint names (subset of joint_names, in the skeleton's order).
        encoders: name -> [L, J_S] affine encoder from that skeleton's joints (rows sum to one).
    """

    joint_names: list[str]
    latent_names: list[str]
    w_enc: np.ndarray
    w_dec: np.ndarray
    skeletons: dict[str, list[str]]
    encoders: dict[str, np.ndarray]

    @property
    def skeleton_names(self) -> list[str]:
        return list(self.skeletons)

    def indices(self, skeleton: str) -> np.ndarray:
        """Indices of the skeleton's joints in the ACAE joint set."""
        if skeleton not in self.skeletons:
            raise KeyError(f'unknown skeleton {skeleton!r}; known: {self.skeleton_names}')
        ids = {n: i for i, n in enumerate(self.joint_names)}
        return np.array([ids[n] for n in self.skeletons[skeleton]], np.int64)

    @classmethod
    def fit(cls, model: acae_model.AffineCombiningAutoencoder, poses: np.ndarray,
            skeletons: Mapping[str, Sequence[str]], ridge: float = 1e-5,
            max_poses: int = 20000, seed: int = 0) -> SkeletonConverter:
        """Fits one partial encoder per skeleton on complete poses [N, J, 3] (mm, camera frame).

        Skeletons equal to the full joint set (same order) reuse W_enc exactly.
        """
        # Re-imposing the row sums in float64 removes the float32 rounding (1e-7 of metres).
        w_enc, w_dec = (acae_model.affine_rows(w.astype(np.float64)).numpy()
                        for w in model.weights_numpy())
        poses = np.asarray(poses, np.float64)
        if len(poses) > max_poses:
            pick = np.random.default_rng(seed).choice(len(poses), max_poses, replace=False)
            poses = poses[np.sort(pick)]
        poses = poses - poses.mean(axis=1, keepdims=True)
        mirrored = chirality.mirror_poses(poses, model.joint_perm) if model.chiral else None
        converter = cls(list(model.joint_names), list(model.latent_names), w_enc, w_dec,
                        {FULL_SKELETON: list(model.joint_names)}, {FULL_SKELETON: w_enc})
        for name, names in skeletons.items():
            converter.skeletons[name] = [str(n) for n in names]
            idx = converter.indices(name)
            if np.array_equal(idx, np.arange(len(model.joint_names))):
                converter.encoders[name] = w_enc
                continue
            src, full = poses[:, idx], poses
            closed = model.chiral and chirality.is_mirror_closed(model.joint_perm, idx)
            if closed:
                src = np.concatenate([src, mirrored[:, idx]])
                full = np.concatenate([poses, mirrored])
            latents = np.einsum('lj,njc->nlc', w_enc, full)
            enc = acae_model.fit_affine_weights(src, latents, ridge=ridge)
            if closed:
                local = {int(j): k for k, j in enumerate(idx)}
                sub_perm = np.array([local[int(model.joint_perm[j])] for j in idx])
                enc = acae_model.affine_rows(
                    chirality.symmetrize(enc, model.latent_perm, sub_perm)).numpy()
            converter.encoders[name] = enc
        return converter

    def encode(self, points: np.ndarray, skeleton: str = FULL_SKELETON) -> np.ndarray:
        """[..., J_S, 3] points of `skeleton` -> [..., L, 3] latents (same frame/unit)."""
        points = np.asarray(points, np.float64)
        enc = self.encoders[self._check(skeleton)]
        if points.shape[-2:] != (enc.shape[1], 3):
            raise ValueError(f'skeleton {skeleton!r} has {enc.shape[1]} joints; points have '
                             f'shape {points.shape}')
        return np.einsum('lj,...jc->...lc', enc, points)

    def decode(self, latents: np.ndarray, skeleton: str = FULL_SKELETON) -> np.ndarray:
        """[..., L, 3] latents -> [..., J_T, 3] joints of `skeleton`."""
        return np.einsum('jl,...lc->...jc', self.w_dec[self.indices(skeleton)],
                         np.asarray(latents, np.float64))

    def convert(self, points: np.ndarray, from_skeleton: str, to_skeleton: str) -> np.ndarray:
        """[..., J_S, 3] points in `from_skeleton` -> [..., J_T, 3] in `to_skeleton`."""
        return self.decode(self.encode(points, from_skeleton), to_skeleton)

    def _check(self, skeleton):
        if skeleton not in self.encoders:
            raise KeyError(f'unknown skeleton {skeleton!r}; known: {self.skeleton_names}')
        return skeleton
