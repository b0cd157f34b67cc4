"""The learning rates of a 'dual' consistency fine-tuning (FinetuneConfig.optimizer == 'dual').

With base = TrainConfig.base_learning_rate, T = training_steps, f = head_restart_fraction:
    backbone: base * backbone_lr_factor * backbone_lr_decay ** (s / T)
              (released: base/30 decaying smoothly by x0.3 over the run)
    heads:    base * (1/3) ** (s / fT)                        for s < fT
              base / 30 * 0.3 ** ((s - fT) / ((1 - f) T))     for s >= fT
              (released: f = 0.5, i.e. the pretraining schedule's shape squeezed into 50 %)
as released in metrabs_tf/main.py (lr_schedule_finetune_low / lr_schedule_finetune_high).
"""
from __future__ import annotations

import math

import keras

from metrabs.training import lr_schedule
from metrabs.training.config import TrainConfig


def dual_schedules(config: TrainConfig) -> tuple[keras.optimizers.schedules.LearningRateSchedule,
                                                 keras.optimizers.schedules.LearningRateSchedule]:
    """(backbone schedule, head schedule) of the module docstring."""
    ft = config.finetune
    backbone = keras.optimizers.schedules.ExponentialDecay(
        config.base_learning_rate * ft.backbone_lr_factor, decay_steps=config.training_steps,
        decay_rate=ft.backbone_lr_decay)
    heads = lr_schedule.TwoPhaseExponentialDecay(
        config.base_learning_rate, config.training_steps, ft.head_restart_fraction,
        first_phase_rate=1 / 3, jump=1 / 30, last_phase_rate=0.3)
    return backbone, heads


def dual_weight_decay(config: TrainConfig) -> float:
    """The AdamW coefficient of both optimizers: as TrainConfig.keras_weight_decay, but normalised
    by FinetuneConfig.weight_decay_steps (released: the pretraining's 400k) when given."""
    steps = config.finetune.weight_decay_steps
    if not config.normalize_weight_decay or steps is None:
        return config.keras_weight_decay
    return config.keras_weight_decay * math.sqrt(config.training_steps / steps)
