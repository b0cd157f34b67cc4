"""The MeTRAbs training loop: `train(...)` (the CLI is metrabs.train).

    python -m metrabs.train --config=CONFIG.json --logdir=DIR --data=tfrecords \
        --input-config=INPUT.json [--val-input-config=VAL.json]
    python -m metrabs.train --config=CONFIG.json --logdir=DIR --data=synthetic-inmemory

DATA ORDER IS A FUNCTION OF THE STEP. `dataset_fn(start_step) -> tf.data.Dataset` must yield the
global batches (see the batch contract in metrabs.training.step) of steps start_step,
start_step + 1, ... in order, and the batch of step s must depend only on s (e.g. per-step
seeds for augmentation, example indices computed from s). A run resumed from a checkpoint at
step s then sees exactly the batches an uninterrupted run would, so checkpoints need not store
any iterator state. Each worker calls dataset_fn itself for its slice of every global batch:
worker w of W takes rows [w*B/W, (w+1)*B/W), and splits them further among its local replicas in
order. A dataset_fn that takes `rows=(a, b)` builds only those rows (the tfrecords input reads
only the datasets it has rows of); any other is sliced after building the whole batch.

Data sources of the CLI: 'tfrecords' (shards written by posepile.build, read through
metrabs.data.input_pipeline with an InputConfig JSON, e.g. the one posepile.mix writes; the model's
joints are the config's joint_names) and 'synthetic-inmemory' (a tiny fixed synthetic set, for
smoke tests and the test suite).
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import os
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
import tqdm

from eval import metrics
from metrabs.data.inmemory_synthetic import DatasetFn, draw_joints
from metrabs.model import backbones, description, reconstruction
from metrabs.model.acae_matrices import AcaeMatrices
from metrabs.model.latent_model import build_latent_model
from metrabs.model.metrabs_model import MetrabsModel
from metrabs.training import checkpointing, consistency, distribution, preemption
from metrabs.training.config import TrainConfig
from metrabs.training.step import LOSS_NAMES, TrainStep, build_optimizers, check_batch_spec
from posepile.atomic_io import write_json_atomic

log = logging.getLogger('metrabs.train')


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained model (its variables live under the strategy).
        step: number of completed steps.
        last_losses: float values of LOSS_NAMES at the last step.
        checkpoint_path: the last checkpoint written (chief's path), or None.
        resumed_from: the checkpoint the run started from, or None for a fresh run.
        preempted: the run stopped early on a preemption signal after checkpointing `step`
            (metrabs.training.preemption); the same call resumes it.
    """
    model: keras.Model
    step: int
    last_losses: dict[str, float]
    checkpoint_path: str | None
    resumed_from: str | None
    preempted: bool = False


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; the on-disk checkpoints were not touched by this step."""


def set_seeds_and_determinism(config: TrainConfig):
    """Seeds Python, NumPy and TF; with config.deterministic, enables TF op determinism.

    Op determinism is process-wide and cannot be turned off again; it is what makes a resumed
    run bit-identical to an uninterrupted one.
    """
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()


def _distribute(strategy: tf.distribute.Strategy, dataset_fn: DatasetFn, start_step: int,
                global_batch_size: int):
    n_replicas = strategy.num_replicas_in_sync
    if global_batch_size % n_replicas:
        raise ValueError(f'TrainConfig.global_batch_size={global_batch_size} is not divisible by '
                         f'the {n_replicas} replicas')
    per_replica = global_batch_size // n_replicas

    builds_rows = 'rows' in inspect.signature(dataset_fn).parameters

    def per_worker_dataset(input_context: tf.distribute.InputContext):
        n_pipelines = input_context.num_input_pipelines
        per_worker = global_batch_size // n_pipelines
        first = input_context.input_pipeline_id * per_worker
        if builds_rows:
            dataset = dataset_fn(start_step, rows=(first, first + per_worker))
            check_batch_spec(dataset.element_spec, where=f'dataset_fn({start_step}, rows=...)')
        else:
            dataset = dataset_fn(start_step)
            check_batch_spec(dataset.element_spec, where=f'dataset_fn({start_step})')
            dataset = dataset.map(lambda batch: {k: v[first:first + per_worker]
                                                 for k, v in batch.items()})
        if per_worker != per_replica:
            # Local replicas take consecutive per-replica batches from this stream in order.
            dataset = dataset.unbatch().batch(per_replica, drop_remainder=True)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
        options.deterministic = True
        return dataset.with_options(options).prefetch(2)

    return strategy.distribute_datasets_from_function(per_worker_dataset)


def _prediction_images(model, batch, max_images: int = 4) -> np.ndarray:
    """Crops with true 2D joints (green) and the projected exported output (red),
    [n, S, S, 3] in [0, 1]."""
    images = batch['image'][:max_images]
    intrinsics = batch['intrinsics'][:max_images]
    pred = model(images, intrinsics, training=False)
    pred2d = reconstruction.project(pred['coords3d_abs_mm'], intrinsics).numpy()
    out = draw_joints(images.numpy(), batch['coords2d'][:max_images].numpy(),
                      batch['valid2d'][:max_images].numpy(), (0.0, 1.0, 0.0))
    return draw_joints(out, pred2d, np.ones(pred2d.shape[:2], bool), (1.0, 0.0, 0.0))


def validate(model: keras.Model, dataset: tf.data.Dataset, max_batches: int | None = None,
             prefix: str = 'val') -> dict[str, float]:
    """Errors of the exported output (the absolute pose at the test-time mix, 'coords3d_abs_mm')
    over batches of the batch contract, in mm.

    Returns (keys start with `prefix`):
        '<prefix>_mpjpe_meanrel': MPJPE after centring prediction and truth on the mean of the
            labelled joints (the joint set has no common root);
        '<prefix>_pa_mpjpe': after a similarity Procrustes fit on the labelled joints;
        '<prefix>_mpjpe_abs': camera-frame absolute MPJPE.
        Only 3D-labelled joints count.
    """
    rel_errors, pa_errors, abs_errors = [], [], []
    for i, batch in enumerate(dataset):
        if max_batches is not None and i >= max_batches:
            break
        pred = model(batch['image'], batch['intrinsics'], training=False)
        valid = batch['valid3d'].numpy()
        truth = np.where(valid[..., None], batch['coords3d_cam'].numpy(), np.nan)
        weights = valid[..., None].astype(np.float64)
        counts = np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
        pred_abs = pred['coords3d_abs_mm'].numpy().astype(np.float64)
        pred_centred = pred_abs - (pred_abs * weights).sum(axis=1, keepdims=True) / counts
        truth_centred = truth - np.nansum(truth * weights, axis=1, keepdims=True) / counts
        rel_errors.append(metrics.joint_errors(pred_centred, truth_centred, alignment='none'))
        labelled = valid.any(axis=1)
        pa_errors.append(metrics.joint_errors(pred_abs[labelled], truth[labelled],
                                              alignment='procrustes'))
        abs_errors.append(metrics.joint_errors(pred_abs, truth, alignment='none'))
    if not rel_errors:
        raise ValueError('validation dataset yielded no batches')
    return {f'{prefix}_mpjpe_meanrel': float(metrics.nan_mean(np.concatenate(rel_errors))),
            f'{prefix}_pa_mpjpe': float(metrics.nan_mean(np.concatenate(pa_errors))),
            f'{prefix}_mpjpe_abs': float(metrics.nan_mean(np.concatenate(abs_errors)))}


def train(config: TrainConfig, dataset_fn: DatasetFn, logdir: str,
          joint_names: Sequence[str] | None = None, *,
          strategy: tf.distribute.Strategy | None = None,
          model_fn: Callable[[], keras.Model] | None = None,
          val_dataset_fn: Callable[[], tf.data.Dataset] | None = None,
          init_from: str | None = None, show_progress: bool = True,
          label_names_2d: Sequence[str] = (),
          train_eval_dataset_fn: Callable[[], tf.data.Dataset] | None = None) -> TrainResult:
    """Trains (or resumes training) up to config.training_steps.

    Args:
        config: TrainConfig.
        dataset_fn: start_step -> dataset of global batches from that step on (module docstring).
        logdir: checkpoints go to logdir/checkpoints, TensorBoard events to logdir/train and
            logdir/validation, the config to logdir/config.json. An existing checkpoint there is
            resumed from.
        joint_names: output joints of the default model MetrabsModel(config.model, joint_names).
        strategy: tf.distribute strategy (default: the default one-device strategy).
        model_fn: builds the model instead of MetrabsModel (called inside the strategy scope).
        val_dataset_fn: () -> dataset of validation batches (batch contract), evaluated every
            config.validate_every steps on the chief (the exported output: `validate`).
        train_eval_dataset_fn: () -> unaugmented batches of training examples, evaluated like
            the validation batches (logged as train_*), so that the learning curves show
            overfitting.
        init_from: a training checkpoint (prefix, directory or logdir), or a SavedModel directory
            written by metrabs.export, to initialise from when the run starts fresh
            (fine-tuning): the backbone, and the head too if the source predicts the same joints
            (checkpointing.init_from_checkpoint; else it is re-initialised); config.finetune_mode
            'control', 'output_reg' and 'hybrid' always load the full-joint head
            (metrabs.training.consistency.init_backbone_and_head). With validation, the start is
            validated as step 0.
        show_progress: tqdm progress bar on the chief.
        label_names_2d: the K base names of the batches' 2D-only labels (TrainStep).
        Preemption: on SIGTERM / SIGUSR1 the current step is finished and checkpointed, and
        the result says preempted=True (metrabs.training.preemption).
    Raises:
        RandomBackboneError: a fresh run would start from a random backbone against
            config.require_backbone_weights (TrainConfig.check_fresh_start).
        NonFiniteLossError: the loss became NaN/Inf (the message names the step); no checkpoint
            is written for that or any later step.
    """
    strategy = strategy or tf.distribute.get_strategy()
    with preemption.PreemptionWatcher(strategy) as watcher:
        return _train(config, dataset_fn, logdir, joint_names, strategy, model_fn,
                      val_dataset_fn, init_from, show_progress, label_names_2d,
                      train_eval_dataset_fn, watcher)


def _train(config, dataset_fn, logdir, joint_names, strategy, model_fn, val_dataset_fn,
           init_from, show_progress, label_names_2d, train_eval_dataset_fn,
           watcher: preemption.PreemptionWatcher) -> TrainResult:
    set_seeds_and_determinism(config)
    chief = distribution.is_chief(strategy)
    os.makedirs(logdir, exist_ok=True)
    if chief:
        config.save_json(os.path.join(logdir, 'config.json'))
        if joint_names:  # metrabs.export rebuilds the model from config.json + joint_names.json
            write_json_atomic(os.path.join(logdir, 'joint_names.json'), list(joint_names))
            description.write_skeleton_definitions(logdir, joint_names)

    with strategy.scope():
        if model_fn is not None:
            model = model_fn()
        else:
            if not joint_names:
                raise ValueError('train: give joint_names (or a model_fn)')
            if config.finetune_mode in ('latent', 'hybrid'):
                acae = AcaeMatrices.load(config.acae_weights, joint_names, require_all=True)
                model = build_latent_model(
                    config.model, joint_names, acae, with_teacher=config.finetune_mode == 'hybrid')
            else:
                model = MetrabsModel(config.model, joint_names)
        side = config.model.proc_side
        model(tf.zeros([1, side, side, 3]), tf.eye(3, batch_shape=[1]), training=False)
        groups = build_optimizers(config, model)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step',
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    optimizers = {f'optimizer{i}': g.optimizer for i, g in enumerate(groups)}
    checkpointer = checkpointing.TrainingCheckpointer(
        os.path.join(logdir, 'checkpoints'), strategy, config.checkpoints_to_keep,
        model=model, step=step, **optimizers)
    resumed_from = checkpointer.restore_latest()
    if resumed_from is None and init_from:
        if config.finetune_mode in ('control', 'output_reg', 'hybrid'):
            consistency.init_backbone_and_head(model, init_from)
            log.info('initialised the backbone and the full-joint head from %s', init_from)
        elif checkpointing.init_from_checkpoint(model, init_from):
            log.info('initialised the backbone and the head from %s: it predicts the same %d '
                     'joints, so the head is kept', init_from, len(model.joint_names))
        else:
            log.info('initialised the backbone from %s; the head starts fresh (the source '
                     'predicts other joints)', init_from)
    elif resumed_from is None:
        config.check_fresh_start(os.path.join(logdir, 'config.json'))
        cfg = config.model
        if getattr(model, 'backbone', None) is not None:
            loaded = backbones.load_initial_weights(model.backbone, cfg.backbone,
                                                    cfg.backbone_weights, cfg.proc_side)
            log.info('backbone %s initialised from %s', cfg.backbone, loaded)
    start_step = int(step.numpy())
    if resumed_from:
        log.info('resuming from %s at step %d', resumed_from, start_step)

    train_step = TrainStep(model, groups, config, strategy, step,
                           label_names_2d=label_names_2d)
    if chief:
        writer = tf.summary.create_file_writer(os.path.join(logdir, 'train'))
        val_writer = tf.summary.create_file_writer(os.path.join(logdir, 'validation'))
    else:
        writer = val_writer = tf.summary.create_noop_writer()
    if (init_from and resumed_from is None and chief and val_dataset_fn is not None
            and config.validate_every):
        # Where a fine-tuning starts, to compare the later validations with.
        results = validate(model, val_dataset_fn(), config.validation_steps)
        with val_writer.as_default(step=0):
            for k, v in results.items():
                tf.summary.scalar(k, v)
        log.info('step 0 validation %s', results)

    checkpoint_path = resumed_from
    last_losses: dict[str, float] = {}
    preempted = False
    n_steps = config.training_steps
    if start_step < n_steps:
        distributed = _distribute(strategy, dataset_fn, start_step, config.global_batch_size)
        iterator = iter(distributed)
        progress = tqdm.tqdm(total=n_steps, initial=start_step, desc='train', unit='step',
                             disable=not (show_progress and chief), dynamic_ncols=True)
        t_start = time.perf_counter()
        for s in range(start_step, n_steps):
            batch = next(iterator)
            training = s < config.bn_inference_start_step
            values = train_step(batch, training=training)
            last_losses = {k: float(values[k]) for k in LOSS_NAMES}
            if not math.isfinite(last_losses['loss']):
                progress.close()
                terms = ', '.join(f'{k}={last_losses[k]}' for k in LOSS_NAMES[1:])
                raise NonFiniteLossError(
                    f'non-finite loss {last_losses["loss"]} at step {s} (0-based; {terms}); the '
                    f'last checkpoint {checkpointer.latest} was not overwritten')
            done = s + 1
            progress.update(1)
            if done % config.log_every == 0 or done == n_steps:
                lr = float(groups[-1].optimizer.learning_rate)
                with writer.as_default(step=done):
                    for k, v in last_losses.items():
                        tf.summary.scalar(f'loss/{k}' if k != 'grad_norm' else k, v)
                    tf.summary.scalar('learning_rate', lr)
                    if len(groups) > 1:  # a separate backbone LR (fine-tuning)
                        tf.summary.scalar('learning_rate_backbone',
                                          float(groups[0].optimizer.learning_rate))
                    tf.summary.scalar('bn_training_mode', float(training))
                rate = (done - start_step) / max(time.perf_counter() - t_start, 1e-9)
                progress.set_postfix(loss=f'{last_losses["loss"]:.4f}', lr=f'{lr:.3g}')
                log.info('step %d/%d loss %.5f (meanrel %.5f proj %.5f abs %.5f proj2d %.5f '
                         'acae %.5f) lr %.4g %.2f steps/s (%.1f examples/s)', done, n_steps,
                         last_losses['loss'], last_losses['meanrel'], last_losses['proj'],
                         last_losses['abs'], last_losses['proj2d'], last_losses['acae'], lr, rate,
                         rate * config.global_batch_size)
            if chief and config.image_summary_every and done % config.image_summary_every == 0:
                # The batch of step s is a function of s, so it can be fetched again.
                raw_batch = next(iter(dataset_fn(s).take(1)))
                with writer.as_default(step=done):
                    tf.summary.image('predictions', _prediction_images(model, raw_batch),
                                     max_outputs=4)
            if val_dataset_fn is not None and config.validate_every and (
                    done % config.validate_every == 0 or done == n_steps) and chief:
                results = validate(model, val_dataset_fn(), config.validation_steps)
                with val_writer.as_default(step=done):
                    for k, v in results.items():
                        tf.summary.scalar(k, v)
                log.info('step %d validation %s', done, results)
                if train_eval_dataset_fn is not None:
                    train_results = validate(model, train_eval_dataset_fn(),
                                             config.validation_steps, prefix='train')
                    with writer.as_default(step=done):
                        for k, v in train_results.items():
                            tf.summary.scalar(k, v)
                    log.info('step %d training-set errors %s', done, train_results)
            # Every worker asks at every step: the answer is agreed on collectively.
            stop = done < n_steps and watcher.should_stop()
            if done % config.checkpoint_every == 0 or done == n_steps or stop:
                checkpoint_path = checkpointer.save(done)
            if stop:
                watcher.barrier()
                log.warning('%s received: stopped after step %d, checkpoint %s; run the same '
                            'command again to resume', watcher.signal_name or 'stop request',
                            done, checkpoint_path)
                preempted = True
                break
        progress.close()
        writer.flush()
        val_writer.flush()
    return TrainResult(model=model, step=int(step.numpy()), last_losses=last_losses,
                       checkpoint_path=checkpoint_path, resumed_from=resumed_from,
                       preempted=preempted)
