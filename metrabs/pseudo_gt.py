"""Pseudo-ground truth: a trained model's prediction of every joint for every example of chosen
datasets, in camera coordinates (the training data of the affine-combining autoencoder).

    python -m metrabs.pseudo_gt --model=LOGDIR_OR_CKPT --datasets=NAME=GLOB[,NAME=GLOB...]
        --out=poses.npz [--no-flip-average] [--batch-size=32] [--union=all]
        [--model-config=JSON] [--joint-names-file=JSON] [--input-config=INPUT.json]
    python -m metrabs.pseudo_gt --model=... --released-datasets=TFRECORD_ROOT --out=poses.npz

The datasets are posepile TFRecord shards (posepile.build), read unaugmented in file order
through metrabs.data.input_pipeline.make_eval_dataset (--input-config takes all parts of an
InputConfig JSON instead). The paper uses the clean, clutter-free studio data: the released
run (metrabs_tf/scripts/predict_for_autoencoder.sh) predicts Human3.6M (all its splits) and
BML-MoVi with mirror test-time augmentation, on the datasets' stored crops without augmentation;
--released-datasets=ROOT selects those shards of a posepile.build output root
(RELEASED_DATASETS). Predictions stream batch by batch with a progress bar; only the poses are
kept in memory.

Output npz (written under a temporary name, then renamed):
    poses        [N, J, 3] float32  absolute 3D, mm, camera frame of the example's stored crop
                                    (the key acae.train reads)
    poses2d_px   [N, J, 2] float32  the crop's pixels
    intrinsics   [N, 3, 3] float32  the crop camera's K
    true3d_cam   [N, J, 3] float32  the labels in the same frame, NaN where unlabelled
    joint_names  [J] str;  dataset [N] str (part name);  example_index [N] int64 (read order)
    flip_average ()  bool

Flip averaging: the crop is also mirrored (pixel column x -> S-1-x). That image is what a
mirrored camera sees, whose intrinsics have c_x' = S-1-c_x and skew -s, and whose frame has X
negated; the prediction on it is mapped back by negating X (3D), x -> S-1-x (2D) and swapping
left/right labels (JointInfo.mirror_perm), then averaged with the plain prediction.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence

import numpy as np
import tqdm

from metrabs.model import description
from posepile import cli
from posepile.joints.joint_info import JointInfo

RELEASED_DATASETS: dict[str, tuple[str, ...]] = {
    'h36m': ('train', 'validation', 'test'),
    'bmlmovi': ('train',),
}
"""posepile.build dataset -> splits the released pseudo-GT is predicted on (H36M trainval and
test, BML-MoVi trainval); splits a build does not have are skipped."""

# Imported at first use, so that --help answers without TensorFlow (posepile/cli.py);
# metrabs.model.restore (TensorFlow too) is imported where used.
keras = cli.DeferredModule('keras')
tf = cli.DeferredModule('tensorflow')


def flip_crops(images: tf.Tensor, intrinsics: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors crops horizontally and gives the intrinsics of the mirrored camera that sees them.

    Args:
        images: [N, S, S, 3] crops; intrinsics: [N, 3, 3] crop camera K (crop pixels).
    Returns:
        (flipped images [N, S, S, 3], K' [N, 3, 3] with c_x' = S-1-c_x and skew negated).
    """
    width = tf.cast(tf.shape(images)[2], tf.float32)
    k = tf.cast(intrinsics, tf.float32)
    # Pixel x' = S-1-x and camera X' = -X keep x' = f X'/Z + c_x', so only c_x and the skew
    # (multiplying Y) change.
    k_flipped = tf.stack([
        tf.stack([k[:, 0, 0], -k[:, 0, 1], width - 1.0 - k[:, 0, 2]], axis=-1),
        k[:, 1], k[:, 2]], axis=1)
    return tf.reverse(images, axis=[2]), k_flipped


def unflip_predictions(coords3d_mm: tf.Tensor, coords2d_px: tf.Tensor, side,
                       mirror_perm: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
    """Maps predictions made on mirrored crops back to the original camera and joint labels.

    Args:
        coords3d_mm: [N, J, 3] in the mirrored camera's frame, mm.
        coords2d_px: [N, J, 2] in the mirrored crop's pixels.
        side: crop width S, px.
        mirror_perm: [J] left/right swap of the joint set.
    Returns:
        ([N, J, 3] original camera frame mm, [N, J, 2] original crop px), labels unswapped.
    """
    coords3d = tf.cast(coords3d_mm, tf.float32) * tf.constant([-1.0, 1.0, 1.0])
    coords2d = tf.cast(coords2d_px, tf.float32)
    coords2d = tf.concat([tf.cast(side, tf.float32) - 1.0 - coords2d[..., :1], coords2d[..., 1:]],
                         axis=-1)
    perm = tf.constant(np.asarray(mirror_perm, np.int64))
    return tf.gather(coords3d, perm, axis=1), tf.gather(coords2d, perm, axis=1)


def make_predict_fn(model: keras.Model, joint_names: Sequence[str], flip_average: bool):
    """tf.function (images [N, S, S, 3] in [0, 1], intrinsics [N, 3, 3]) ->
    (poses [N, J, 3] camera frame mm, poses2d [N, J, 2] crop px), optionally flip-averaged."""
    mirror_perm = JointInfo(joint_names).mirror_perm

    @tf.function
    def predict(images, intrinsics):
        out = model(images, intrinsics, training=False)
        poses, poses2d = out['coords3d_abs_mm'], out['coords2d_px']
        if flip_average:
            flipped_images, flipped_k = flip_crops(images, intrinsics)
            flipped = model(flipped_images, flipped_k, training=False)
            poses_f, poses2d_f = unflip_predictions(
                flipped['coords3d_abs_mm'], flipped['coords2d_px'], tf.shape(images)[2],
                mirror_perm)
            poses, poses2d = (poses + poses_f) / 2, (poses2d + poses2d_f) / 2
        return poses, poses2d

    return predict


def predict_dataset(model: keras.Model, batches: Iterable[dict], joint_names: Sequence[str],
                    flip_average: bool = False, show_progress: bool = True,
                    total_batches: int | None = None) -> dict[str, np.ndarray]:
    """Runs the model over batches of the batch contract (metrabs.training.step) and collects.

    Returns:
        'poses' [N, J, 3], 'poses2d_px' [N, J, 2], 'intrinsics' [N, 3, 3], 'true3d_cam'
        [N, J, 3] (NaN where not valid3d), all float32, and 'dataset_index' [N] int32.
    """
    predict = make_predict_fn(model, joint_names, flip_average)
    collected = {k: [] for k in ('poses', 'poses2d_px', 'intrinsics', 'true3d_cam',
                                 'dataset_index')}
    with tqdm.tqdm(total=total_batches, desc='pseudo-GT', unit='batch',
                   disable=not show_progress, dynamic_ncols=True) as progress:
        for batch in batches:
            poses, poses2d = predict(tf.cast(batch['image'], tf.float32),
                                     tf.cast(batch['intrinsics'], tf.float32))
            valid = np.asarray(batch['valid3d'])[..., None]
            collected['poses'].append(poses.numpy())
            collected['poses2d_px'].append(poses2d.numpy())
            collected['intrinsics'].append(np.asarray(batch['intrinsics'], np.float32))
            collected['true3d_cam'].append(
                np.where(valid, np.asarray(batch['coords3d_cam'], np.float32), np.nan))
            collected['dataset_index'].append(np.asarray(batch['dataset_index'], np.int32))
            progress.update(1)
    if not collected['poses']:
        raise ValueError('pseudo-GT: the datasets yielded no examples')
    return {k: np.concatenate(v).astype(np.int32 if k == 'dataset_index' else np.float32)
            for k, v in collected.items()}


def write_pseudo_gt(path: str | os.PathLike, arrays: dict[str, np.ndarray],
                    joint_names: Sequence[str], dataset_names: Sequence[str],
                    flip_average: bool) -> None:
    """Writes the output npz (module docstring) atomically."""
    from posepile.atomic_io import write_npz_atomic

    arrays = dict(arrays)
    index = arrays.pop('dataset_index')
    write_npz_atomic(path, **arrays, joint_names=np.array(list(joint_names), dtype=str),
                     dataset=np.array(list(dataset_names), dtype=str)[index],
                     example_index=np.arange(len(index), dtype=np.int64),
                     flip_average=np.array(bool(flip_average)))


def load_model(model_path: str, model_config: str | None = None,
               joint_names_file: str | None = None):
    """(model, joint names) from a training checkpoint and the config.json / joint_names.json
    that metrabs.train writes next to it (or the given files). ACAE fine-tuned models
    (finetune_mode 'latent' / 'hybrid' in config.json) come back as AcaeLatentModel, whose
    outputs are the decoded latents."""
    from metrabs.model import restore
    prefix = restore.resolve_checkpoint(model_path)
    config_path = model_config or description.find_nearby(prefix, 'config.json')
    names_path = joint_names_file or description.find_nearby(prefix, 'joint_names.json')
    if config_path is None or names_path is None:
        raise FileNotFoundError(f'{model_path}: no config.json / joint_names.json next to the '
                                f'checkpoint; pass --model-config and --joint-names-file')
    names = description.load_joint_names(names_path)
    return restore.restore_model(prefix, str(config_path), names), names


def parse_dataset_specs(specs: Sequence[str]) -> dict[str, str]:
    """['NAME=GLOB', 'NAME=GLOB,NAME=GLOB'] -> {NAME: GLOB}; raises naming a malformed item."""
    out = {}
    for spec in specs:
        for item in filter(None, spec.split(',')):
            name, sep, pattern = item.partition('=')
            if not sep or not name or not pattern:
                raise ValueError(f'--datasets: expected NAME=GLOB, got {item!r}')
            out[name] = pattern
    return out


def released_dataset_specs(tfrecord_root: str | os.PathLike) -> dict[str, str]:
    """{'h36m_train': 'ROOT/h36m/train/*.tfrecord', ...} for the RELEASED_DATASETS splits that
    exist under a posepile.build output root; raises FileNotFoundError naming the root if none."""
    specs = {}
    for dataset, splits in RELEASED_DATASETS.items():
        for split in splits:
            directory = os.path.join(tfrecord_root, dataset, split)
            if os.path.isdir(directory):
                specs[f'{dataset}_{split}'] = os.path.join(directory, '*.tfrecord')
    if not specs:
        raise FileNotFoundError(
            f'{tfrecord_root}: none of the released pseudo-GT datasets '
            f'({", ".join(f"{d}/{s}" for d, ss in RELEASED_DATASETS.items() for s in ss)}) '
            f'is built there')
    return specs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m metrabs.pseudo_gt',
                                     description='Pseudo-GT: every joint for every example.')
    parser.add_argument('--model', required=True, help='training checkpoint (prefix, its '
                        'directory, or the logdir)')
    parser.add_argument('--datasets', action='append', default=[],
                        help='NAME=GLOB of TFRecord shards (comma-separated or repeated)')
    parser.add_argument('--released-datasets', default=None, metavar='TFRECORD_ROOT',
                        help="the released run's datasets (RELEASED_DATASETS) under a "
                        'posepile.build output root')
    parser.add_argument('--input-config', default=None,
                        help='InputConfig JSON whose parts are read instead of --datasets')
    parser.add_argument('--out', required=True, help='the pseudo-GT .npz to write')
    parser.add_argument('--flip-average', action=argparse.BooleanOptionalAction, default=True,
                        help='average with the prediction on the mirrored crop (released: on)')
    parser.add_argument('--batch-size', type=int, default=32, help='crops per model call')
    parser.add_argument('--union', default='all', help="posepile union of the records' joints")
    parser.add_argument('--model-config', default=None,
                        help='ModelConfig JSON, if no config.json is next to the checkpoint')
    parser.add_argument('--joint-names-file', default=None,
                        help='JSON list of joints, if no joint_names.json is next to it')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def run(args: argparse.Namespace) -> int:
    import json

    from metrabs.data import input_pipeline
    model, joint_names = load_model(args.model, args.model_config, args.joint_names_file)
    side = model.config.proc_side
    if args.input_config:
        with open(args.input_config, encoding='utf-8') as f:
            loaded = input_pipeline.InputConfig.from_dict(json.load(f), source=args.input_config)
        parts = loaded.parts
        union = loaded.union
    else:
        specs = parse_dataset_specs(args.datasets)
        if args.released_datasets:
            specs.update(released_dataset_specs(args.released_datasets))
        if not specs:
            raise ValueError('give --datasets=NAME=GLOB, --released-datasets=ROOT or '
                             '--input-config')
        parts = tuple(input_pipeline.DatasetPart(n, p, 1) for n, p in specs.items())
        union = args.union
    config = input_pipeline.InputConfig(tuple(joint_names), parts, proc_side=side, union=union)
    dataset = input_pipeline.make_eval_dataset(config, args.batch_size)
    arrays = predict_dataset(model, dataset, joint_names, args.flip_average,
                             show_progress=not args.no_progress)
    write_pseudo_gt(args.out, arrays, joint_names, [p.name for p in parts], args.flip_average)
    print(f'wrote {args.out}: {len(arrays["poses"])} examples x {len(joint_names)} joints')
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
