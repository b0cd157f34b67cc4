"""MeTRAbs training CLI (the loop is metrabs.training.loop.train).

    python -m metrabs.train --config=CONFIG.json --logdir=DIR --data=tfrecords \
        --input-config=INPUT.json [--val-input-config=VAL.json]
    python -m metrabs.train --config=CONFIG.json --logdir=DIR --data=synthetic-inmemory

Data sources: 'tfrecords' (shards written by posepile.build, read through
metrabs.data.input_pipeline with an InputConfig JSON, e.g. the one posepile.mix writes; the
model's joints are the config's joint_names) and 'synthetic-inmemory' (a tiny fixed synthetic
set, metrabs.data.inmemory_synthetic, for smoke tests and the test suite).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from metrabs.training.config import FINETUNE_MODES  # a TensorFlow-free module
from posepile import cli

# The training modules import TensorFlow: they are imported in run(), after the arguments are
# parsed, so that --help answers without it (posepile/cli.py).
DATA_SOURCES = ('tfrecords', 'synthetic-inmemory')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m metrabs.train',
        description='Train MeTRAbs (see metrabs/train.py and metrabs/training/loop.py).')
    parser.add_argument('--config', required=True, help='TrainConfig as JSON (missing fields '
                        'keep their defaults; every field: docs/CONFIGURATION.md)')
    parser.add_argument('--logdir', required=True,
                        help='checkpoints, TensorBoard logs, config.json and joint_names.json '
                        'go here; an existing checkpoint in it is resumed from')
    parser.add_argument('--data', required=True, choices=DATA_SOURCES, help='data source')
    parser.add_argument('--input-config', default=None,
                        help='--data=tfrecords: InputConfig JSON of the training shards '
                        '(metrabs.data.input_pipeline; written by posepile.mix)')
    parser.add_argument('--val-input-config', default=None,
                        help='--data=tfrecords: InputConfig JSON of validation shards; '
                        'validation MPJPE is logged every validate_every steps')
    # No argparse choices: the names live in metrabs.training.distribution (TensorFlow), which
    # refuses an unknown one listing them.
    parser.add_argument('--strategy', default='auto',
                        help="tf.distribute strategy (metrabs.training.distribution."
                        "STRATEGY_NAMES; 'auto': mirrored on several GPUs, multi-worker under "
                        'TF_CONFIG; docs/TRAINING.md)')
    parser.add_argument('--logical-cpus', type=int, default=0,
                        help='split the CPU into N logical devices and mirror over them (testing)')
    parser.add_argument('--backbone-weights', default=None,
                        help="'imagenet' (Keras' ImageNet weights, downloaded by Keras) or a local "
                        'weights file of the backbone (e.g. from python -m '
                        'metrabs.save_backbone_weights on a machine with internet); overrides '
                        'model.backbone_weights of --config')
    parser.add_argument('--background-dir', default=None,
                        help='--data=tfrecords: photos for background replacement (a directory '
                        'or a .txt list); overrides the input config\'s background_dir')
    parser.add_argument('--occluder-dir', default=None,
                        help='--data=tfrecords: a Pascal VOC tree (VOCdevkit/VOC2012) whose '
                        'objects occlude; overrides the input config\'s occluder_dir')
    parser.add_argument('--train-eval-batches', type=int, default=0,
                        help='--data=tfrecords: also evaluate this many unaugmented batches of '
                        'training examples at every validation (logged as train_*: the '
                        'learning curve of train vs validation error)')
    parser.add_argument('--init-from', default=None,
                        help='initialise the backbone from a training checkpoint (prefix, its '
                        'directory or the logdir) or from a SavedModel directory written by '
                        'metrabs.export (same backbone and proc_side). The head (last layer) '
                        'is kept when the source predicts the same joints, else re-initialised, '
                        'so the joint set may differ; the log says which, and a validation at '
                        'step 0 shows the start. With --finetune-mode control/output_reg/hybrid '
                        'also the full-joint head (training checkpoints only)')
    parser.add_argument('--finetune-mode', default=None, choices=FINETUNE_MODES,
                        help='ACAE consistency fine-tuning (overrides the config field); '
                        "'control': the same fine-tuning without the ACAE")
    parser.add_argument('--acae-weights', default=None,
                        help='frozen ACAE weights.npz (overrides the config field)')
    parser.add_argument('--lambda-acae', type=float, default=None,
                        help='weight of the output regularisation of output_reg and of the '
                        "hybrid's teacher (released --loss-manif-factor; overrides the config "
                        'field)')
    parser.add_argument('--synthetic-joints', type=int, default=8,
                        help='--data=synthetic-inmemory: number of joints')
    parser.add_argument('--synthetic-examples', type=int, default=64,
                        help='--data=synthetic-inmemory: number of examples')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def _tfrecord_data(args, config) -> dict:
    """train() keyword arguments from InputConfig JSONs: joint_names, dataset_fn,
    val_dataset_fn, train_eval_dataset_fn, label_names_2d."""
    from metrabs.data import input_pipeline  # deferred: the in-memory source needs none of it

    def load(path):
        with open(path, encoding='utf-8') as f:
            return input_pipeline.InputConfig.from_dict(json.load(f), source=path)

    if not args.input_config:
        sys.exit('--data=tfrecords needs --input-config=INPUT.json (see posepile.mix)')
    input_config = load(args.input_config)
    overrides = {k: v for k, v in (('background_dir', args.background_dir),
                                   ('occluder_dir', args.occluder_dir)) if v is not None}
    if overrides:
        input_config = dataclasses.replace(input_config, **overrides)
    if input_config.batch_size != config.global_batch_size:
        sys.exit(f'{args.input_config}: its per-dataset counts sum to {input_config.batch_size} '
                 f'examples per batch, but {args.config} has global_batch_size='
                 f'{config.global_batch_size}')
    if input_config.proc_side != config.model.proc_side:
        sys.exit(f'{args.input_config}: proc_side={input_config.proc_side} differs from the '
                 f"model's proc_side={config.model.proc_side} in {args.config}")
    val_dataset_fn = train_eval_dataset_fn = None
    if args.val_input_config:
        val_config = load(args.val_input_config)
        if val_config.joint_names != input_config.joint_names:
            sys.exit(f'{args.val_input_config}: joint_names differ from {args.input_config}')
        val_dataset_fn = lambda: input_pipeline.make_eval_dataset(  # noqa: E731
            val_config, config.global_batch_size, parts=val_config.parts_3d)
    if args.train_eval_batches:
        train_eval_dataset_fn = lambda: input_pipeline.make_eval_dataset(  # noqa: E731
            input_config, config.global_batch_size, parts=input_config.parts_3d).take(
                args.train_eval_batches)
    return dict(joint_names=list(input_config.joint_names),
                dataset_fn=input_pipeline.make_dataset_fn(input_config),
                val_dataset_fn=val_dataset_fn, train_eval_dataset_fn=train_eval_dataset_fn,
                label_names_2d=input_config.label_names_2d)


def run(args: argparse.Namespace) -> int:
    from metrabs.data.inmemory_synthetic import make_synthetic_dataset_fn, synthetic_joint_names
    from metrabs.training import distribution
    from metrabs.training.config import TrainConfig
    from metrabs.training.loop import log, train
    from metrabs.training.preemption import PREEMPTED_EXIT_CODE

    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(message)s')
    config = TrainConfig.from_json(args.config)
    if args.backbone_weights is not None:
        config = dataclasses.replace(config, model=dataclasses.replace(
            config.model, backbone_weights=args.backbone_weights))
    overrides = {k: v for k, v in (('finetune_mode', args.finetune_mode),
                                   ('acae_weights', args.acae_weights),
                                   ('lambda_acae', args.lambda_acae)) if v is not None}
    if overrides:
        config = dataclasses.replace(config, **overrides)
    devices = None
    if args.logical_cpus > 1:
        distribution.make_logical_cpus(args.logical_cpus)
        devices = [f'/cpu:{i}' for i in range(args.logical_cpus)]
    strategy = distribution.make_strategy(
        'mirrored' if devices and args.strategy == 'auto' else args.strategy, devices)
    if args.data == 'tfrecords':
        data = _tfrecord_data(args, config)
    else:
        joint_names = synthetic_joint_names(args.synthetic_joints)
        data = dict(joint_names=joint_names, label_names_2d=joint_names,
                    dataset_fn=make_synthetic_dataset_fn(
                        len(joint_names), config.model.proc_side, config.global_batch_size,
                        args.synthetic_examples, config.seed))
    # A fresh run without backbone weights raises RandomBackboneError, a ValueError: cli.run
    # prints it as the one-line user error it is.
    result = train(config, strategy=strategy, logdir=args.logdir, init_from=args.init_from,
                   show_progress=not args.no_progress, **data)
    if result.preempted:
        log.warning('preempted at step %d of %d: checkpoint %s; exit status %d (resumable)',
                    result.step, config.training_steps, result.checkpoint_path,
                    PREEMPTED_EXIT_CODE)
        sys.exit(PREEMPTED_EXIT_CODE)
    log.info('finished at step %d: %s; checkpoint %s', result.step, result.last_losses,
             result.checkpoint_path)
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
