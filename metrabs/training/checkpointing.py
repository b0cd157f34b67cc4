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
import numpy as np
import tensorflow as tf

from metrabs.model import description
from metrabs.model.metrabs_model import MetrabsModel
from metrabs.model.restore import resolve_checkpoint
from metrabs.training import distribution


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


RAW_VARIABLE_KEY = '_raw_variables/{}/.ATTRIBUTES/VARIABLE_VALUE'


def source_joint_names(path: str) -> list[str] | None:
    """The joint names of a fine-tuning source: assets/joint_names.json of an exported SavedModel,
    joint_names.json of a training logdir (next to the checkpoint or in its parent); None if it
    has none."""
    if os.path.isdir(path) and tf.saved_model.contains_saved_model(path):
        candidate = os.path.join(path, 'assets', description.JOINT_NAMES_ASSET)
        found = candidate if os.path.isfile(candidate) else None
    else:
        found = description.find_nearby(resolve_checkpoint(path), 'joint_names.json')
    return None if found is None else description.load_joint_names(found)


def init_from_checkpoint(model: keras.Model, path: str) -> bool:
    """Fine-tuning start: loads the backbone from a training checkpoint or an exported
    SavedModel, and the head too when the source predicts the same joints in the same order.

    The last layer (MetrabsModel.head, one 1x1 conv) is per joint: with another joint set it
    keeps its new random initialisation, with the same one (fine-tuning a model on new data of
    its own skeletons) it is loaded, so training starts from the source's accuracy rather than
    from an untrained head. Only a plain MetrabsModel takes the head (a latent / hybrid model's
    heads have another layout). Supported sources: checkpoints written by TrainingCheckpointer
    (or any tf.train.Checkpoint with the model under the key 'model'), and SavedModel directories
    written by metrabs.export (see `init_from_saved_model`).

    Args:
        model: a built model with a .backbone attribute.
        path: a checkpoint prefix, a directory holding checkpoints, the training logdir, or an
            exported SavedModel directory.
    Returns:
        True if the head was loaded too (the joint names are identical), False if only the
        backbone was.
    """
    if getattr(model, 'backbone', None) is None:
        raise AttributeError('init_from_checkpoint: the model has no .backbone attribute')
    with_head = (type(model) is MetrabsModel
                 and source_joint_names(path) == list(model.joint_names))
    if os.path.isdir(path) and tf.saved_model.contains_saved_model(path):
        init_from_saved_model(model, path, with_head)
    else:
        restore_parts(path, backbone=model.backbone,
                      **({'head': model.head} if with_head else {}))
    return with_head


def init_from_saved_model(model: keras.Model, saved_model_dir: str, with_head: bool = False):
    """Copies the backbone weights of a SavedModel written by metrabs.export into model.backbone
    (and the head's into model.head if `with_head`: the same joints).

    The export tracks its crop model's variables as `_raw_variables/<i>` in the order of
    `crop_model.weights`; a reference MetrabsModel is rebuilt from assets/model_config.json and
    assets/joint_names.json to learn which indices are backbone weights. Only exports of a plain
    MetrabsModel are supported (ACAE latent / hybrid exports have another weight layout and are
    refused with a ValueError).

    Raises:
        FileNotFoundError: the SavedModel lacks the assets (exported before they were written).
        ValueError: the backbone name or proc_side differs from `model.config`, or the exported
            variables do not fit the rebuilt model.
    """
    assets = os.path.join(saved_model_dir, 'assets')
    config_path = os.path.join(assets, description.MODEL_CONFIG_ASSET)
    names_path = os.path.join(assets, description.JOINT_NAMES_ASSET)
    for required in (config_path, names_path):
        if not os.path.isfile(required):
            raise FileNotFoundError(
                f'{saved_model_dir}: no {os.path.relpath(required, saved_model_dir)}; re-export '
                f'the model with the current metrabs.export to fine-tune from it')
    exported_config = description.load_model_config(config_path)
    joint_names = description.load_joint_names(names_path)
    config = getattr(model, 'config', None)
    if config is not None:
        for field in ('backbone', 'proc_side'):
            mine, theirs = getattr(config, field), getattr(exported_config, field)
            if mine != theirs:
                raise ValueError(f'{config_path}: {field} is {theirs!r} in the SavedModel but '
                                 f'{mine!r} in the model being trained')

    reference = MetrabsModel(exported_config, joint_names)
    side = exported_config.proc_side
    reference(tf.zeros([1, side, side, 3]), tf.eye(3, batch_shape=[1]), training=False)
    index_of = {id(w): i for i, w in enumerate(reference.weights)}

    variables_prefix = os.path.join(saved_model_dir, 'variables', 'variables')
    reader = tf.train.load_checkpoint(variables_prefix)
    shapes = reader.get_variable_to_shape_map()
    n_exported = sum(1 for key in shapes
                     if key.startswith('_raw_variables/') and key.endswith('VARIABLE_VALUE'))
    if n_exported != len(reference.weights):
        raise ValueError(
            f'{variables_prefix}: {n_exported} exported crop-model variables, but a MetrabsModel '
            f'of {config_path} has {len(reference.weights)}; only plain MetrabsModel exports '
            f'can initialise fine-tuning')
    parts = ('backbone', 'head') if with_head else ('backbone',)
    for part in parts:
        theirs, mine = getattr(reference, part).weights, getattr(model, part).weights
        if len(theirs) != len(mine):
            raise ValueError(f'{config_path}: the exported {part} has {len(theirs)} weights, '
                             f'the model being trained {len(mine)}')
    pairs = [pair for part in parts
             for pair in zip(getattr(reference, part).weights, getattr(model, part).weights)]
    for ref_weight, weight in pairs:
        key = RAW_VARIABLE_KEY.format(index_of[id(ref_weight)])
        value = reader.get_tensor(key)
        if tuple(value.shape) != tuple(ref_weight.shape) or value.shape != tuple(weight.shape):
            raise ValueError(f'{variables_prefix}: {key} has shape {value.shape}, the '
                             f'weight {weight.path} {tuple(weight.shape)}')
        weight.assign(np.asarray(value, dtype=weight.dtype))
