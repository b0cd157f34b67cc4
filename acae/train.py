"""Training the ACAE on camera-frame poses; CLI `python -m acae.train --poses=poses.npz --out=DIR`.

Input npz: 'poses' [N, J, 3] float, camera frame, millimetres, no NaN (absolute, in front of the
camera, for the default projected loss: pseudo-GT as metrabs.pseudo_gt writes it); 'joint_names'
[J] str. Outputs in DIR: weights.npz, converter.npz, saved_model/ (see acae.export),
fit_report.json (reconstruction errors, fit time, weight statistics, the config), logs/
(TensorBoard).
The weight statistics (acae.weight_stats: row L1 norms, share of near-zero weights) are printed.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import sys
import time

import numpy as np
import tqdm

from acae import weight_stats
from posepile import cli
from posepile.npz_io import read_npz

# Imported at first use, so that `python -m acae.train --help` answers without TensorFlow
# (posepile/cli.py); acae.model (TensorFlow too) is imported where used.
keras = cli.DeferredModule('keras')
tf = cli.DeferredModule('tensorflow')

LOSSES = ('projected', '3d')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """ACAE training settings; the defaults are the released code's
    (isarandi/affine-combining-autoencoder, acae.py), except for the fit length (see below).

    n_latents, n_centre_latents: L latent points, of which n_centre_latents are unpaired centre
        latents and the rest left/right pairs (released: 48 = 20 pairs + 8 centre). None: centre
        latents in proportion to the centre joints (acae.chirality.default_n_centre_latents).
    loss: 'projected' (released): L1 between the perspective image-plane projections of the
        absolute camera-frame pose and of its reconstruction, x/z and y/z scaled by the true pose's
        mean depth (metres in the image plane at the person's distance). Depth enters only
        through the projection, because pseudo-GT depth is much less reliable than its 2D
        position; the weights act alike on x, y and z, so the image plane determines them and
        equivariance carries them into depth. Needs absolute poses in front of the camera.
        '3d': L1 on |dx| + |dy| + depth_weight |dz| of root-free poses, optionally with random
        rotations (max_yaw_deg, max_tilt_deg) - for poses whose depth is as reliable as the rest
        (e.g. mocap ground truth); rotation would mix the noisy depth into x and y.
    sparsity_weight: lambda of lambda * (mean |W_enc| + mean |W_dec|) over all entries (released
        0.6), against a per-coordinate mean reconstruction loss in metres. Rows sum to one, so the
        L1 term prices negative weights and spread-out rows: it makes the fit sparse and nearly
        convex.
    steps, batch_size, learning_rate, lr_drops: Adam at learning_rate, divided by 10 at each
        fraction of `steps` in lr_drops. The released fit runs 30 epochs of batch 32 (~10^5-10^6
        steps for real pseudo-GT) at 3e-2, 3e-3 from step 150k and 3e-4 from 300k; this default
        is a CPU budget (about a minute for the synthetic world), measured to reach the same
        sparsity and consistency plateau (README, "The ACAE").
    init: 'data': farthest-point one-hot encoder and least-squares decoder on `init_sample`
        poses (acae.model.init_from_data); 'uniform' (released): raw weights U(-0.1, 1)
        normalised to unit row sums, a dense nearly uniform start.
    translation_mm: ('3d' only) std of a random 3D shift, a float-precision exercise.
    """

    n_latents: int = 48
    n_centre_latents: int | None = 8
    chiral: bool = True
    loss: str = 'projected'
    sparsity_weight: float = 0.6
    steps: int = 30000
    batch_size: int = 64
    learning_rate: float = 3e-2
    lr_drops: tuple[float, ...] = (0.5, 0.75)
    init: str = 'uniform'
    depth_weight: float = 1.0
    max_yaw_deg: float = 0.0
    max_tilt_deg: float = 0.0
    translation_mm: float = 0.0
    init_sample: int = 5000
    init_ridge: float = 1e-4
    steps_per_call: int = 200
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f'TrainConfig.loss must be one of {LOSSES}, got {self.loss!r}')
        if self.init not in ('data', 'uniform'):
            raise ValueError(f"TrainConfig.init must be 'data' or 'uniform', got {self.init!r}")
        if self.loss == 'projected' and (self.max_yaw_deg or self.max_tilt_deg
                                         or self.translation_mm or self.depth_weight != 1.0):
            raise ValueError("TrainConfig: rotation/translation augmentation and depth_weight "
                             "belong to loss='3d'; the projected loss keeps the poses where the "
                             "camera saw them")
        if self.sparsity_weight < 0 or self.steps < 1 or self.batch_size < 1:
            raise ValueError(f'TrainConfig: need sparsity_weight >= 0, steps >= 1, batch_size '
                             f'>= 1; got {self.sparsity_weight}, {self.steps}, {self.batch_size}')
        if any(not 0 < f < 1 for f in self.lr_drops):
            raise ValueError(f'TrainConfig.lr_drops must be fractions in (0, 1), got '
                             f'{self.lr_drops}')


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
    """('3d' loss) Mean over poses and joints of (|dx| + |dy| + depth_weight |dz|) / 3 (input
    unit): with depth_weight 1 the per-coordinate mean, the scale the sparsity weight is set
    against (as for the projected loss)."""
    abs_diff = tf.abs(pred - true)
    return tf.reduce_mean(tf.reduce_sum(abs_diff[..., :2], axis=-1)
                          + depth_weight * abs_diff[..., 2]) / 3


def image_plane(points: tf.Tensor, depth: tf.Tensor) -> tf.Tensor:
    """Perspective projection scaled back to a metric plane: [..., J, 3] camera frame -> [..., J, 2]
    (x/z, y/z) * depth; depth broadcasts against [..., 1, 1] (input unit)."""
    return points[..., :2] / points[..., 2:] * depth


def projected_loss(pred: tf.Tensor, true: tf.Tensor) -> tf.Tensor:
    """('projected' loss) Mean |image_plane(pred) - image_plane(true)| over poses, joints and the two
    image-plane coordinates, both at the true pose's mean depth: [N, J, 3] camera frame, absolute
    (z > 0), result in the input unit (metres here)."""
    depth = tf.reduce_mean(true[..., 2:], axis=-2, keepdims=True)
    return tf.reduce_mean(tf.abs(image_plane(pred, depth) - image_plane(true, depth)))


def sparsity_penalty(w_enc: tf.Tensor, w_dec: tf.Tensor) -> tf.Tensor:
    """Mean |entry| of the encoder plus that of the decoder (the released regulariser)."""
    return tf.reduce_mean(tf.abs(w_enc)) + tf.reduce_mean(tf.abs(w_dec))


def initial_model(poses: np.ndarray, joint_names, config: TrainConfig,
                  rng: np.random.Generator) -> acae_model.AffineCombiningAutoencoder:
    """The model before training, as config.init says (TrainConfig)."""
    from acae import model as acae_model
    if config.init == 'uniform':
        return acae_model.init_uniform(joint_names, config.n_latents, config.n_centre_latents,
                                       config.chiral, seed=config.seed)
    sample = rng.choice(len(poses), min(len(poses), config.init_sample), replace=False)
    return acae_model.init_from_data(
        joint_names, poses[np.sort(sample)], config.n_latents, config.n_centre_latents,
        config.chiral, ridge=config.init_ridge)


def train_acae(poses: np.ndarray, joint_names, config: TrainConfig = TrainConfig(),
               log_dir: str | os.PathLike | None = None,
               show_progress: bool = True) -> acae_model.AffineCombiningAutoencoder:
    """Fits an ACAE to complete camera-frame poses [N, J, 3] (mm; absolute, z > 0, for the
    projected loss).

    Minimises reconstruction (config.loss, in metres) + sparsity with Adam on random batches,
    the learning rate dropping by 10x at config.lr_drops. Scalars go to `log_dir` (TensorBoard)
    if given.
    """
    from acae import model as acae_model
    validate_poses(poses, np.asarray(joint_names))
    if config.loss == 'projected':
        behind = np.asarray(poses)[..., 2] <= 0
        if behind.any():
            raise ValueError(
                f'poses: {int(behind.any(axis=1).sum())} poses have joints at z <= 0 (first: '
                f'index {int(np.argmax(behind.any(axis=1)))}); the projected loss needs '
                f"absolute camera-frame poses in front of the camera (use loss='3d' for "
                f'root-relative poses)')
    np_rng = np.random.default_rng(config.seed)
    model = initial_model(poses, joint_names, config, np_rng)

    poses_m = np.asarray(poses, np.float32) / 1000
    if config.loss == '3d':
        # The 3D loss is translation-invariant: centring keeps float32 precise at camera
        # distances of metres. The projected loss needs the poses where they are.
        poses_m -= poses_m.mean(axis=1, keepdims=True)
    data = tf.constant(poses_m)
    boundaries = [int(f * config.steps) for f in config.lr_drops]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [config.learning_rate * 0.1 ** i for i in range(len(boundaries) + 1)])
    optimizer = keras.optimizers.Adam(schedule)
    optimizer.build(model.trainable_variables)
    rng = tf.random.Generator.from_seed(config.seed)
    batch = config.batch_size
    n_poses = len(poses)

    def loss_terms(points):
        w_enc, w_dec = model.weights()
        recon = acae_model.apply_weights(w_dec, acae_model.apply_weights(w_enc, points))
        if config.loss == 'projected':
            rec = projected_loss(recon, points)
        else:
            rec = reconstruction_loss(recon, points, config.depth_weight)
        return rec, sparsity_penalty(w_enc, w_dec)

    @tf.function
    def run_steps(n_steps):
        rec = sparse = tf.constant(0.0)
        for _ in tf.range(n_steps):
            idx = rng.uniform([batch], 0, n_poses, dtype=tf.int64)
            points = tf.gather(data, idx)
            if config.max_yaw_deg or config.max_tilt_deg:
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
            # The last batch's L1 per coordinate in mm (image plane for the projected loss).
            progress.set_postfix(l1_mm=f'{float(rec) * 1000:.2f}', mean_w=f'{float(sparse):.4f}')
            if writer is not None:
                with writer.as_default(step=done):
                    tf.summary.scalar('reconstruction_l1_mm', rec * 1000)
                    tf.summary.scalar('mean_abs_weight', sparse)
                    tf.summary.scalar('learning_rate', schedule(done))
    if writer is not None:
        writer.close()
    return model


def reconstruction_errors_mm(model: acae_model.AffineCombiningAutoencoder, poses: np.ndarray,
                             batch_size: int = 4096) -> dict[str, float]:
    """How far the reconstructions of camera-frame poses [N, J, 3] (mm) are from them, means over
    poses and joints in mm: 'mean_3d' (Euclidean), 'depth' (|dz|) and, for absolute poses
    (z > 0), 'image_plane' (Euclidean distance of the image_plane points at the pose's mean
    depth: what the projected loss fits; NaN otherwise)."""
    sums = np.zeros(3)
    absolute = bool((np.asarray(poses)[..., 2] > 0).all())
    for start in range(0, len(poses), batch_size):
        chunk = np.asarray(poses[start:start + batch_size], np.float32)
        recon = model(chunk).numpy()
        depth = chunk[..., 2:].mean(axis=1, keepdims=True)
        plane = (image_plane(recon, depth) - image_plane(chunk, depth) if absolute
                 else np.full(chunk.shape[:2] + (2,), np.nan))
        sums += [np.linalg.norm(recon - chunk, axis=-1).sum(),
                 np.abs(recon[..., 2] - chunk[..., 2]).sum(), np.linalg.norm(plane, axis=-1).sum()]
    means = sums / (len(poses) * np.shape(poses)[1])
    return dict(zip(('mean_3d', 'depth', 'image_plane'), map(float, means)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m acae.train', description=__doc__)
    defaults = TrainConfig()
    parser.add_argument('--poses', required=True, help='npz with poses [N,J,3] mm, joint_names')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--latents', type=int, default=defaults.n_latents,
                        help='latent points (released: 48)')
    parser.add_argument('--centre-latents', default=str(defaults.n_centre_latents),
                        help="unpaired centre latents (released: 8) or 'auto' (in proportion to "
                             'the centre joints)')
    parser.add_argument('--no-chiral', action='store_true')
    parser.add_argument('--loss', default=defaults.loss, choices=LOSSES,
                        help="'projected' (released; absolute camera-frame poses) or '3d'")
    parser.add_argument('--init', default=defaults.init, choices=('uniform', 'data'))
    parser.add_argument('--steps', type=int, default=defaults.steps)
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument('--lr', type=float, default=defaults.learning_rate)
    parser.add_argument('--sparsity', type=float, default=defaults.sparsity_weight,
                        help='lambda of lambda * (mean|W_enc| + mean|W_dec|) (released: 0.6)')
    parser.add_argument('--depth-weight', type=float, default=defaults.depth_weight,
                        help="--loss=3d only")
    parser.add_argument('--max-yaw-deg', type=float, default=defaults.max_yaw_deg,
                        help="--loss=3d only")
    parser.add_argument('--max-tilt-deg', type=float, default=defaults.max_tilt_deg,
                        help="--loss=3d only")
    parser.add_argument('--translation-mm', type=float, default=defaults.translation_mm,
                        help="--loss=3d only")
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument('--skeletons', default='auto',
                        help="comma-separated skeleton names for the converter, 'auto' (every "
                             "registered skeleton covered by the joints) or 'none'")
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def fit_report(model: acae_model.AffineCombiningAutoencoder, poses: np.ndarray,
               fit_seconds: float, max_poses: int = 20000) -> dict:
    """What acae.train prints and writes to fit_report.json: the reconstruction errors of the
    first max_poses training poses (reconstruction_errors_mm) and the weight statistics
    (acae.weight_stats)."""
    w_enc, w_dec = model.weights_numpy()
    return {'reconstruction_error_mm': reconstruction_errors_mm(model, poses[:max_poses]),
            'fit_seconds': fit_seconds, 'n_latents': model.n_latents,
            'latent_names': list(model.latent_names),
            'weights': weight_stats.weight_statistics(w_enc, w_dec)}


def run(args: argparse.Namespace) -> int:
    # Imported here: export pulls in the skeleton registry, which only the CLI needs.
    from acae import convert, export
    from posepile.atomic_io import write_json_atomic
    poses, joint_names = load_poses_npz(args.poses)
    centre = None if args.centre_latents == 'auto' else int(args.centre_latents)
    config = TrainConfig(
        n_latents=args.latents, n_centre_latents=centre, chiral=not args.no_chiral,
        loss=args.loss, init=args.init, steps=args.steps, batch_size=args.batch_size,
        learning_rate=args.lr, sparsity_weight=args.sparsity, depth_weight=args.depth_weight,
        max_yaw_deg=args.max_yaw_deg, max_tilt_deg=args.max_tilt_deg,
        translation_mm=args.translation_mm, seed=args.seed)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        model = train_acae(poses, joint_names, config, log_dir=out / 'logs',
                           show_progress=not args.no_progress)
    except ValueError as e:  # what is wrong with the poses: name the file
        raise ValueError(f'{args.poses}: {e}') from e
    report = fit_report(model, poses, time.perf_counter() - start)
    errors = report['reconstruction_error_mm']
    print(f'fit: {config.steps} steps x {config.batch_size} in {report["fit_seconds"]:.1f} s; '
          f'reconstruction of the training poses: {errors["image_plane"]:.1f} mm in the image '
          f'plane (fitted), {errors["depth"]:.1f} mm in depth, {errors["mean_3d"]:.1f} mm 3D')
    print(f'weights ({model.n_latents} latents, {len(joint_names)} joints; rows sum to 1, a row '
          f'L1 norm of 1 is a convex combination):')
    print(weight_stats.format_statistics(report['weights']))
    skeletons = convert.skeleton_table(joint_names, args.skeletons)
    converter = convert.SkeletonConverter.fit(model, poses, skeletons)
    export.export_all(out, model, converter)
    write_json_atomic(out / 'fit_report.json', {**report, 'config': dataclasses.asdict(config)})
    print(f'wrote {out}/weights.npz, converter.npz, saved_model/, fit_report.json '
          f'(skeletons: {", ".join(converter.skeleton_names)})')
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
