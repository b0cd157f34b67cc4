"""Rebuild a trained model (plain MeTRAbs, or an ACAE latent / hybrid one) from its checkpoint.

The checkpoint is a tf.train.Checkpoint with the model under the key 'model' (what
metrabs.training.checkpointing writes); the optimizer state is ignored.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence

import keras
import tensorflow as tf

from metrabs.model import description
from metrabs.model.acae_matrices import AcaeMatrices
from metrabs.model.config import ModelConfig
from metrabs.model.latent_model import build_latent_model
from metrabs.model.metrabs_model import MetrabsModel


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


def _restore_weights(model: keras.Model, checkpoint: str, what: str) -> keras.Model:
    """Builds `model` and loads the checkpoint's 'model' into it; ValueError names both."""
    side = model.config.proc_side
    model(tf.zeros([1, side, side, 3]), tf.eye(3, batch_shape=[1]), training=False)
    try:
        status = tf.train.Checkpoint(model=model).restore(checkpoint)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise ValueError(f'{checkpoint}: does not match {what}: {e}') from e
    return model


def restore_metrabs_model(checkpoint: str, config: ModelConfig, joint_names: Sequence[str]
                          ) -> MetrabsModel:
    """A MetrabsModel with the checkpoint's weights."""
    return _restore_weights(
        MetrabsModel(config, joint_names), checkpoint,
        f'a MetrabsModel with {config.backbone} backbone and {len(joint_names)} joints')


def restore_model(checkpoint: str, config_path: str, joint_names: Sequence[str]) -> keras.Model:
    """Any model metrabs.train writes, from its checkpoint and config.json (a TrainConfig JSON):
    MetrabsModel for finetune_mode 'none' / 'control' / 'output_reg', AcaeLatentModel for
    'latent' / 'hybrid' (its ACAE from the config's acae_weights).

    Raises ValueError naming the checkpoint if it does not fit the described model.
    """
    with open(config_path, encoding='utf-8') as f:
        try:
            described = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{config_path}: not valid JSON: {e}') from e
    config = description.load_model_config(config_path)
    mode = described.get('finetune_mode', 'none') if isinstance(described, dict) else 'none'
    if mode not in ('latent', 'hybrid'):
        return restore_metrabs_model(checkpoint, config, joint_names)
    if not described.get('acae_weights'):
        raise ValueError(f'{config_path}: finetune_mode={mode!r} but field "acae_weights" is '
                         f'empty')
    acae = AcaeMatrices.load(described['acae_weights'], joint_names, require_all=True)
    model = build_latent_model(config, joint_names, acae, with_teacher=mode == 'hybrid')
    return _restore_weights(model, checkpoint, f'the {mode!r} model described by {config_path}')
