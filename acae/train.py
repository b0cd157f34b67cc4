"""Training the ACAE on camera-frame poses; CLI `python -m acae.train --poses=poses.npz --out=DIR`.

Input npz: 'poses' [N, J, 3] float, camera frame, millimetres, no NaN; 'joint_names' [J] str.
Outputs in DIR: weights.npz, converter.npz, saved_model/ (see acae.export), logs/ (TensorBoard).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import sys

import numpy as np
import tqdm

from posepile import cli
from posepile.npz_io import read_npz

# Imported at first use, so that `python -m acae.train --help` answers without TensorFlow
# (posepile/cli.py); acae.model (TensorFlow too) is imported where used.
keras = cli.DeferredModule('keras')
tf = cli.DeferredModule('tensorflow')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """ACAE training settings.

    sparsity_weight: weight of the mean per-row L1 norm of both matrices, in metres of
        reconstruction error per unit of L1 (a row of non-negative weights has L1 norm 1, so this
        only prices negative weights and spread-out rows).
    depth_weight: weight of |dz| relative to |dx| and |dy| (camera z); below 1 trusts noisy
        pseudo-GT depth less than the image-plane position.
    max_yaw_deg, max_tilt_deg: random rotation about the camera's vertical (y) axis and about the
        x and z axes. The ACAE is exactly rotation-equivariant, so rotation only changes which
        coordinate errors the depth weighting sees and the mix of poses the L1 loss balances.
    translation_mm: std of a random 3D shift; the loss is exactly translation-invariant, so this
        only exercises float precision at realistic camera distances.
    """

    n_latents: int = 32
    n_centre_latents: int | None = None
    chiral: bool = True
    steps: int = 3000
    batch_size: int = 256
    learning_rate: float = 1e-2
    final_lr_fraction: float = 0.01
    sparsity_weight: float = 1e-5
    depth_weight: float = 1.0
    max_yaw_deg: float = 180.0
    max_tilt_deg: float = 20.0
    translation_mm: float = 0.0
    init_sample: int = 5000
    init_ridge: float = 1e-4
    steps_per_call: int = 100
    seed: int = 0


def load_poses_npz(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Reads and validates a poses file. Returns (poses [N, J, 3] float32 mm, joint_names [J]).

    Raises ValueError/KeyError naming the file and the offending key.
    """
    data = read_npz(path, ('poses', 'joint_names'), 'a poses .npz (poses, joint_names)')
    poses, names = data['poses'], data['joint_names']
    validate_poses(poses, names, where=str(path))
    return poses.astype(np.float32), [str(n) for n in names]


def validate_poses(poses: np.ndarray, joint_names, where: str = 'poses') -> None:
    """Checks shapes, dtypes and finiteness; the message names `where` and the key."""
    poses = np.asarray(poses)
    names = np.asarray(joint_names)
    if names.ndim != 1 or names.dtype.kind not in 'US':
        raise ValueError(f'{where}: joint_names must be a 1-D str array, got dtype {names.dtype} '
                         f'shape {names.shape}')
    if poses.ndim != 3 or poses.shape[2] != 3:
        raise ValueError(f'{where}: poses must be [N, J, 3], got shape {poses.shape}')
    if poses.shape[1] != len(names):
        raise ValueError(f'{where}: poses has {poses.shape[1]} joints but joint_names has '
                         f'{len(names)}')
    if poses.dtype.kind != 'f':
        raise ValueError(f'{where}: poses must be floating point, got {poses.dtype}')
    if poses.shape[0] == 0:
        raise ValueError(f'{where}: poses is empty')
    bad = ~np.isfinite(poses)
    if bad.any():
        n_bad = int(bad.any(axis=(1, 2)).sum())
        first = int(np.argmax(bad.any(axis=(1, 2))))
        raise ValueError(f'{where}: poses contains NaN/inf in {n_bad} poses (first: index '
                         f'{first}); the ACAE needs complete poses (e.g. pseudo-GT)')


def random_rotations(rng: tf.random.Generator, n: int, max_yaw_deg: float,
                     max_tilt_deg: float) -> tf.Tensor:
    """[n, 3, 3] camera-frame rotations: yaw about y (vertical), tilts about x and z."""
    deg = math.pi / 180
    yaw = rng.uniform([n], -max_yaw_deg * deg, max_yaw_deg * deg)
    pitch = rng.uniform([n], -max_tilt_deg * deg, max_tilt_deg * deg)
    roll = rng.uniform([n], -max_tilt_deg * deg, max_tilt_deg * deg)
    zero, one = tf.zeros_like(yaw), tf.ones_like(yaw)

    def mat(rows):
        return tf.reshape(tf.stack(rows, axis=-1), [-1, 3, 3])

    c, s = tf.cos(yaw), tf.sin(yaw)
    rot_y = mat([c, zero, s, zero, one, zero, -s, zero, c])
    c, s = tf.cos(pitch), tf.sin(pitch)
    rot_x = mat([one, zero, zero, zero, c, -s, zero, s, c])
    c, s = tf.cos(roll), tf.sin(roll)
    rot_z = mat([c, -s, zero, s, c, zero, zero, zero, one])
    return rot_z @ rot_x @ rot_y


def reconstruction_loss(pred: tf.Tensor, true: tf.Tensor, depth_weight: float) -> tf.Tensor:
    """Mean over poses and joints of |dx| + |dy| + depth_weight |dz| (input unit)."""
    abs_diff = tf.abs(pred - true)
    return tf.reduce_mean(tf.reduce_sum(abs_diff[..., :2], axis=-1)
                          + depth_weight * abs_diff[..., 2])


def sparsity_penalty(w_enc: tf.Tensor, w_dec: tf.Tensor) -> tf.Tensor:
    """Mean per-row L1 norm of the encoder plus that of the decoder."""
    return (tf.reduce_mean(tf.reduce_sum(tf.abs(w_enc), axis=1))
            + tf.reduce_mean(tf.reduce_sum(tf.abs(w_dec), axis=1)))


def train_acae(poses: np.ndarray, joint_names, config: TrainConfig = TrainConfig(),
               log_dir: str | os.PathLike | None = None,
               show_progress: bool = True) -> acae_model.AffineCombiningAutoencoder:
    """Fits an ACAE to complete camera-frame poses [N, J, 3] (mm).

    Starts from `acae_model.init_from_data` on a random sample, then minimises L1 reconstruction
    (computed in metres) + sparsity with Adam under a cosine-decayed learning rate, on batches of
    randomly rotated (and shifted) poses. Scalars go to `log_dir` (TensorBoard) if given.
    """
    from acae import model as acae_model
    validate_poses(poses, np.asarray(joint_names))
    np_rng = np.random.default_rng(config.seed)
    n_poses = len(poses)
    sample = np_rng.choice(n_poses, min(n_poses, config.init_sample), replace=False)
    model = acae_model.init_from_data(
        joint_names, poses[np.sort(sample)], config.n_latents, config.n_centre_latents,
        config.chiral, ridge=config.init_ridge)

    # Metres keep the loss and the sparsity term at comparable magnitudes; centring each pose
    # (the loss is translation-invariant) keeps float32 precise at camera distances of metres.
    poses_m = np.asarray(poses, np.float32) / 1000
    poses_m -= poses_m.mean(axis=1, keepdims=True)
    data = tf.constant(poses_m)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(1, config.steps), alpha=config.final_lr_fraction)
    optimizer = keras.optimizers.Adam(schedule)
    optimizer.build(model.trainable_variables)
    rng = tf.random.Generator.from_seed(config.seed)
    batch = config.batch_size

    def loss_terms(points):
        w_enc, w_dec = model.weights()
        recon = acae_model.apply_weights(w_dec, acae_model.apply_weights(w_enc, points))
        rec = reconstruction_loss(recon, points, config.depth_weight)
        sparse = sparsity_penalty(w_enc, w_dec)
        return rec, sparse

    @tf.function
    def run_steps(n_steps):
        rec = sparse = tf.constant(0.0)
        for _ in tf.range(n_steps):
            idx = rng.uniform([batch], 0, n_poses, dtype=tf.int64)
            points = tf.gather(data, idx)
            rot = random_rotations(rng, batch, config.max_yaw_deg, config.max_tilt_deg)
            points = tf.einsum('nij,nkj->nki', rot, points)
            if config.translation_mm > 0:
                points += rng.normal([batch, 1, 3], stddev=config.translation_mm / 1000)
            with tf.GradientTape() as tape:
                rec, sparse = loss_terms(points)
                loss = rec + config.sparsity_weight * sparse
            variables = model.trainable_variables
            grads = tape.gradient(loss, [v.value for v in variables])
            optimizer.apply(grads, variables)
        return rec, sparse

    writer = tf.summary.create_file_writer(str(log_dir)) if log_dir is not None else None
    done = 0
    with tqdm.tqdm(total=config.steps, desc='ACAE training', unit='step',
                   disable=not show_progress) as progress:
        while done < config.steps:
            n = min(config.steps_per_call, config.steps - done)
            rec, sparse = run_steps(tf.constant(n))
            done += n
            progress.update(n)
            # Last batch's per-joint L1 (|dx| + |dy| + w|dz|) in mm, not a Euclidean error.
            progress.set_postfix(l1_mm=f'{float(rec) * 1000:.2f}', l1w=f'{float(sparse):.3f}')
            if writer is not None:
                with writer.as_default(step=done):
                    tf.summary.scalar('reconstruction_l1_mm', rec * 1000)
                    tf.summary.scalar('weight_l1_per_row', sparse)
                    tf.summary.scalar('learning_rate', schedule(done))
    if writer is not None:
        writer.close()
    return model


def mean_joint_error_mm(model: acae_model.AffineCombiningAutoencoder, poses: np.ndarray,
                        batch_size: int = 4096) -> float:
    """Mean Euclidean distance (mm) between poses [N, J, 3] (mm) and their reconstructions."""
    errors = []
    for start in range(0, len(poses), batch_size):
        chunk = np.asarray(poses[start:start + batch_size], np.float32)
        chunk = chunk - chunk.mean(axis=1, keepdims=True)
        errors.append(np.linalg.norm(model(chunk).numpy() - chunk, axis=-1).reshape(-1))
    return float(np.mean(np.concatenate(errors)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m acae.train', description=__doc__)
    defaults = TrainConfig()
    parser.add_argument('--poses', required=True, help='npz with poses [N,J,3] mm, joint_names')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--latents', type=int, default=defaults.n_latents)
    parser.add_argument('--centre-latents', type=int, default=None)
    parser.add_argument('--no-chiral', action='store_true')
    parser.add_argument('--steps', type=int, default=defaults.steps)
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument('--lr', type=float, default=defaults.learning_rate)
    parser.add_argument('--sparsity', type=float, default=defaults.sparsity_weight)
    parser.add_argument('--depth-weight', type=float, default=defaults.depth_weight)
    parser.add_argument('--max-yaw-deg', type=float, default=defaults.max_yaw_deg)
    parser.add_argument('--max-tilt-deg', type=float, default=defaults.max_tilt_deg)
    parser.add_argument('--translation-mm', type=float, default=defaults.translation_mm)
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument('--skeletons', default='auto',
                        help="comma-separated skeleton names for the converter, 'auto' (every "
                             "registered skeleton covered by the joints) or 'none'")
    return parser


def run(args: argparse.Namespace) -> int:
    # Imported here: export pulls in the skeleton registry, which only the CLI needs.
    from acae import convert, export
    poses, joint_names = load_poses_npz(args.poses)
    config = TrainConfig(
        n_latents=args.latents, n_centre_latents=args.centre_latents, chiral=not args.no_chiral,
        steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
        sparsity_weight=args.sparsity, depth_weight=args.depth_weight,
        max_yaw_deg=args.max_yaw_deg, max_tilt_deg=args.max_tilt_deg,
        translation_mm=args.translation_mm, seed=args.seed)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = train_acae(poses, joint_names, config, log_dir=out / 'logs')
    print(f'mean reconstruction error: {mean_joint_error_mm(model, poses[:20000]):.2f} mm')
    skeletons = convert.skeleton_table(joint_names, args.skeletons)
    converter = convert.SkeletonConverter.fit(model, poses, skeletons)
    export.export_all(out, model, converter)
    print(f'wrote {out}/weights.npz, converter.npz, saved_model/ '
          f'(skeletons: {", ".join(converter.skeleton_names)})')
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
