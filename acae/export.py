"""Writing and reading trained ACAEs: weights.npz, converter.npz and a SavedModel.

weights.npz:   W_enc [L, J] float32, W_dec [J, L] float32, joint_names [J] str,
               latent_names [L] str.
converter.npz: skeleton_names [S] str, joint_index [S, Jmax] int64 (indices into joint_names,
               -1 padding), n_joints [S] int64, encoders [S, L, Jmax] float64 (zero padding), plus
               the four weights.npz keys.
saved_model/:  a tf.Module with graph constants only (no variables, so the C++ loader of
               `saved_model_cli run` and TF Serving needs nothing beyond the graph) and signatures
    encode(points [N, J, 3] float32) -> {'latents': [N, L, 3]}
    decode(latents [N, L, 3] float32) -> {'points': [N, J, 3]}
    convert(points [N, J_S, 3] float32, from_skeleton: string, to_skeleton: string)
        -> {'points': [N, J_T, 3]}
    joint_names(skeleton: string) -> {'joint_names': [J_S] string}
All points share one frame and unit (camera frame, mm in this project).
Every file is written under a temporary name, then renamed.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from acae import chirality
from acae import model as acae_model
from acae.convert import SkeletonConverter
from posepile.atomic_io import write_npz_atomic
from posepile.joints.joint_info import JointInfo

WEIGHT_KEYS = ('W_enc', 'W_dec', 'joint_names', 'latent_names')
ROW_SUM_TOLERANCE = 1e-4


def save_weights(path: str | os.PathLike, model: acae_model.AffineCombiningAutoencoder) -> None:
    w_enc, w_dec = model.weights_numpy()
    write_npz_atomic(path, W_enc=w_enc.astype(np.float32), W_dec=w_dec.astype(np.float32),
                     joint_names=np.array(model.joint_names, dtype=str),
                     latent_names=np.array(model.latent_names, dtype=str))


def load_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads and validates weights.npz; errors name the file and the key."""
    arrays = _load_npz(path, WEIGHT_KEYS)
    n_latents, n_joints = len(arrays['latent_names']), len(arrays['joint_names'])
    for key, shape in (('W_enc', (n_latents, n_joints)), ('W_dec', (n_joints, n_latents))):
        w = arrays[key]
        if w.shape != shape:
            raise ValueError(f'{path}: {key} has shape {w.shape}, expected {shape} from '
                             f'joint_names/latent_names')
        if not np.all(np.isfinite(w)):
            raise ValueError(f'{path}: {key} contains NaN/inf')
        worst = float(np.max(np.abs(w.astype(np.float64).sum(axis=1) - 1)))
        if worst > ROW_SUM_TOLERANCE:
            raise ValueError(f'{path}: rows of {key} must sum to one (worst deviation {worst:g})')
    return arrays


def model_from_weights(arrays: dict[str, np.ndarray],
                       chiral: bool | None = None) -> acae_model.AffineCombiningAutoencoder:
    """An ACAE holding the given weights (as from `load_weights`).

    The parameterisation reproduces weights only if they satisfy its constraints, so `chiral`
    must match how they were trained; None detects it: chiral iff the weights are
    chirality-equivariant (to float32 rounding) under the joint and latent names' left/right swaps.
    """
    names = [str(n) for n in arrays['joint_names']]
    latents = [str(n) for n in arrays['latent_names']]
    n_centre = sum(not (n.startswith('l_') or n.startswith('r_')) for n in latents)
    if chiral is None:
        jperm = JointInfo(names).mirror_perm
        lperm = chirality.latent_mirror_perm(latents)
        w_enc, w_dec = arrays['W_enc'], arrays['W_dec']
        chiral = bool(np.allclose(w_enc[lperm][:, jperm], w_enc, rtol=0, atol=1e-6)
                      and np.allclose(w_dec[jperm][:, lperm], w_dec, rtol=0, atol=1e-6))
    model = acae_model.AffineCombiningAutoencoder(names, len(latents), n_centre, chiral)
    if model.latent_names != latents:
        raise ValueError(f'latent_names {latents} do not follow the l_/r_/c_ layout')
    model.set_weights(arrays['W_enc'], arrays['W_dec'])
    return model


def save_converter(path: str | os.PathLike, converter: SkeletonConverter) -> None:
    names = converter.skeleton_names
    n_joints = np.array([len(converter.skeletons[s]) for s in names], np.int64)
    j_max = int(n_joints.max())
    joint_index = np.full((len(names), j_max), -1, np.int64)
    encoders = np.zeros((len(names), len(converter.latent_names), j_max))
    for k, name in enumerate(names):
        joint_index[k, :n_joints[k]] = converter.indices(name)
        encoders[k, :, :n_joints[k]] = converter.encoders[name]
    write_npz_atomic(
        path, skeleton_names=np.array(names, dtype=str), joint_index=joint_index,
        n_joints=n_joints, encoders=encoders,
        W_enc=converter.w_enc, W_dec=converter.w_dec,
        joint_names=np.array(converter.joint_names, dtype=str),
        latent_names=np.array(converter.latent_names, dtype=str))


def load_converter(path: str | os.PathLike) -> SkeletonConverter:
    keys = WEIGHT_KEYS + ('skeleton_names', 'joint_index', 'n_joints', 'encoders')
    a = _load_npz(path, keys)
    n_skel = len(a['skeleton_names'])
    n_latents, n_joints = len(a['latent_names']), len(a['joint_names'])
    if a['n_joints'].shape != (n_skel,) or a['joint_index'].shape[0] != n_skel or \
            a['encoders'].shape[:2] != (n_skel, n_latents):
        raise ValueError(f'{path}: skeleton_names/n_joints/joint_index/encoders disagree in shape')
    joint_names = [str(n) for n in a['joint_names']]
    skeletons, encoders = {}, {}
    for k, name in enumerate(str(n) for n in a['skeleton_names']):
        count = int(a['n_joints'][k])
        idx = a['joint_index'][k, :count]
        if count < 1 or idx.min() < 0 or idx.max() >= n_joints:
            raise ValueError(f'{path}: joint_index of skeleton {name!r} is out of range')
        skeletons[name] = [joint_names[i] for i in idx]
        encoders[name] = a['encoders'][k, :, :count].astype(np.float64)
    return SkeletonConverter(joint_names, [str(n) for n in a['latent_names']],
                             a['W_enc'].astype(np.float64), a['W_dec'].astype(np.float64),
                             skeletons, encoders)


def _load_npz(path, keys) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise KeyError(f'{path}: missing keys {missing} (has {data.files})')
            return {k: data[k] for k in keys}
    except ValueError as e:
        raise ValueError(f'{path}: cannot load without pickle ({e})') from e


class AcaeModule(tf.Module):
    """The SavedModel's module: ACAE weights and the skeleton table as graph constants (float32)."""

    def __init__(self, converter: SkeletonConverter):
        super().__init__()
        names = converter.skeleton_names
        n_joints = [len(converter.skeletons[s]) for s in names]
        j_max = max(n_joints)
        joint_index = np.zeros((len(names), j_max), np.int64)
        encoders = np.zeros((len(names), len(converter.latent_names), j_max), np.float32)
        for k, name in enumerate(names):
            joint_index[k, :n_joints[k]] = converter.indices(name)
            encoders[k, :, :n_joints[k]] = converter.encoders[name]
        # Plain numpy here; the tf.functions capture them as constants when traced. Tensors
        # stored on a tf.Module would be tracked as captures needing restore on load.
        self._w_enc = converter.w_enc.astype(np.float32)
        self._w_dec = converter.w_dec.astype(np.float32)
        self._skeleton_names = np.array(names, dtype=object).astype(bytes)
        self._joint_names = np.array(converter.joint_names, dtype=object).astype(bytes)
        self._n_joints = np.array(n_joints, np.int64)
        self._joint_index = joint_index
        self._encoders = encoders
        self._known = ', '.join(names)

    def _skeleton_id(self, name):
        matches = tf.where(tf.equal(tf.constant(self._skeleton_names), name))[:, 0]
        check = tf.debugging.assert_equal(
            tf.size(matches), 1,
            message=f'unknown skeleton name; known: {self._known}')
        # A graph runs independent ops in any order: without the dependency the slice of an
        # empty `matches` could fail first, with "slice index 0 ... out of bounds".
        with tf.control_dependencies([check]):
            return tf.identity(matches[0])

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32, name='points')])
    def encode(self, points):
        tf.debugging.assert_equal(tf.shape(points)[1], self._w_enc.shape[1],
                                  message='encode: points must be [N, J, 3] of the full joint set')
        return {'latents': acae_model.apply_weights(tf.constant(self._w_enc), points)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32, name='latents')])
    def decode(self, latents):
        tf.debugging.assert_equal(tf.shape(latents)[1], self._w_enc.shape[0],
                                  message='decode: latents must be [N, L, 3]')
        return {'points': acae_model.apply_weights(tf.constant(self._w_dec), latents)}

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 3], tf.float32, name='points'),
        tf.TensorSpec([], tf.string, name='from_skeleton'),
        tf.TensorSpec([], tf.string, name='to_skeleton')])
    def convert(self, points, from_skeleton, to_skeleton):
        src = self._skeleton_id(from_skeleton)
        dst = self._skeleton_id(to_skeleton)
        n_src = tf.gather(tf.constant(self._n_joints), src)
        tf.debugging.assert_equal(
            tf.cast(tf.shape(points)[1], tf.int64), n_src,
            message='convert: points must have as many joints as from_skeleton')
        encoder = tf.gather(tf.constant(self._encoders), src)[:, :n_src]
        latents = acae_model.apply_weights(encoder, points)
        n_dst = tf.gather(tf.constant(self._n_joints), dst)
        rows = tf.gather(tf.constant(self._joint_index), dst)[:n_dst]
        decoder = tf.gather(tf.constant(self._w_dec), rows)
        return {'points': acae_model.apply_weights(decoder, latents)}

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name='skeleton')])
    def joint_names(self, skeleton):
        k = self._skeleton_id(skeleton)
        rows = tf.gather(tf.constant(self._joint_index), k)[:tf.gather(self._n_joints, k)]
        return {'joint_names': tf.gather(tf.constant(self._joint_names), rows)}


def export_savedmodel(path: str | os.PathLike, converter: SkeletonConverter) -> None:
    """Writes the SavedModel directory at `path` (replacing it) via a temporary directory."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = AcaeModule(converter)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=path.name + '.', suffix='.tmp', dir=path.parent))
    os.chmod(tmp, 0o755)
    try:
        tf.saved_model.save(module, str(tmp), signatures={
            'encode': module.encode, 'decode': module.decode, 'convert': module.convert,
            'joint_names': module.joint_names})
        old = None
        if path.exists():
            old = path.with_name(path.name + f'.old{os.getpid()}')
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def export_all(out_dir: str | os.PathLike, model: acae_model.AffineCombiningAutoencoder,
               converter: SkeletonConverter) -> None:
    """weights.npz, converter.npz and saved_model/ under `out_dir`."""
    out_dir = pathlib.Path(out_dir)
    save_weights(out_dir / 'weights.npz', model)
    save_converter(out_dir / 'converter.npz', converter)
    export_savedmodel(out_dir / 'saved_model', converter)
