"""Training checkpoints (model, optimizers, step) and initialisation for fine-tuning.

The data position is not stored: data order is a pure function of the step number (see
metrabs.train), so restoring `step` restores the position in the stream.

Multi-worker: saving runs collective ops, so every worker must call `save`. Only the chief writes
into the real directory; the others write to a per-worker scratch directory that is deleted
right after (the usual MultiWorkerMirroredStrategy pattern).
"""
from __future__ import annotations

import os
import shutil

import keras
import tensorflow as tf

from metrabs import distribution


class TrainingCheckpointer:
    """tf.train.CheckpointManager over {model, optimizer_<i>, step}.

    Args:
        directory: checkpoint directory (the chief's).
        strategy: the distribution strategy (decides chief / scratch directories).
        max_to_keep: checkpoints kept by the manager.
        **trackables: objects to save, e.g. model=..., step=..., optimizer0=...
    """

    def __init__(self, directory: str, strategy: tf.distribute.Strategy, max_to_keep: int = 3,
                 **trackables):
        self.directory = str(directory)
        self.is_chief = distribution.is_chief(strategy)
        self.checkpoint = tf.train.Checkpoint(**trackables)
        if self.is_chief:
            self.write_directory = self.directory
        else:
            self.write_directory = os.path.join(
                self.directory, f'.scratch_worker{distribution.worker_id(strategy)}')
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.write_directory, max_to_keep=max_to_keep)

    @property
    def latest(self) -> str | None:
        """Path prefix of the newest checkpoint in the chief's directory, or None."""
        return tf.train.latest_checkpoint(self.directory)

    def restore_latest(self) -> str | None:
        """Restores the newest checkpoint if there is one; returns its path (None if fresh)."""
        path = self.latest
        if path is not None:
            # assert_existing_objects_matched: a checkpoint of another model must not load
            # silently half-way.
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step: int) -> str:
        """Saves (all workers must call this together); returns the chief's checkpoint path."""
        path = self.manager.save(checkpoint_number=int(step))
        if not self.is_chief:
            shutil.rmtree(self.write_directory, ignore_errors=True)
        return path


def resolve_checkpoint(path: str) -> str:
    """Checkpoint prefix ('.../ckpt-1000') from a prefix, a checkpoint directory, or a training
    logdir holding checkpoints/ (the latest checkpoint). SavedModel directories are refused."""
    if os.path.isdir(path):
        if tf.saved_model.contains_saved_model(path):
            raise ValueError(f'{path}: a SavedModel, not a training checkpoint; pass the training '
                             f'logdir or a checkpoint')
        for directory in (path, os.path.join(path, 'checkpoints')):
            prefix = tf.train.latest_checkpoint(directory)
            if prefix is not None:
                return prefix
        raise FileNotFoundError(f'{path}: no checkpoint in this directory or its checkpoints/')
    if not tf.io.gfile.exists(path + '.index'):
        raise FileNotFoundError(f'{path}: not a checkpoint (no {path}.index)')
    return path


def restore_parts(path: str, **parts) -> str:
    """Loads only the given sub-objects of a training checkpoint's model (e.g. backbone=...,
    head=...), matched by attribute name under the checkpoint's 'model' key. Returns the prefix.

    Raises ValueError naming the checkpoint if a part does not fit (e.g. another joint count).
    """
    prefix = resolve_checkpoint(path)
    try:
        status = tf.train.Checkpoint(model=tf.train.Checkpoint(**parts)).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise ValueError(f'{prefix}: the checkpoint {"/".join(parts)} does not match the model: '
                         f'{e}') from e
    return prefix


def init_from_checkpoint(model: keras.Model, path: str):
    """Fine-tuning start: loads the backbone from a training checkpoint; the head stays fresh.

    The last layer (MetrabsModel.head, one 1x1 conv) keeps its new random initialisation, so the
    joint set may differ from the checkpoint's. Only checkpoints written by TrainingCheckpointer
    (or any tf.train.Checkpoint with the model under the key 'model') are supported.

    Args:
        model: a built model with a .backbone attribute.
        path: a checkpoint prefix, a directory holding checkpoints, or the training logdir.
    """
    if getattr(model, 'backbone', None) is None:
        raise AttributeError('init_from_checkpoint: the model has no .backbone attribute')
    restore_parts(path, backbone=model.backbone)
