"""The MeTRAbs learning-rate schedule as a closed-form Keras LearningRateSchedule.

Two phases, each an exponential decay; with T = training_steps and t0 = decay_start_fraction*T:

    lr(s) = base * r1 ** (s / t0)                         for s < t0
    lr(s) = base * jump * r2 ** ((s - t0) / (T - t0))     for s >= t0

Presets:
    'reference': r1 = 1/3, jump = 1/30, r2 = 0.3. This is what the released MeTRAbs training code
        does (smooth x1/3 over the first 92 %, then a drop to base/30 decaying to base/100).
    'constant_then_decay': r1 = 1, jump = 1, r2 = 1/3 (DESIGN.md's wording: constant, then a
        smooth x1/3 decay over the last 8 %).
"""
from __future__ import annotations

import keras
import tensorflow as tf

PRESETS: dict[str, dict[str, float]] = {
    'reference': dict(first_phase_rate=1 / 3, jump=1 / 30, last_phase_rate=0.3),
    'constant_then_decay': dict(first_phase_rate=1.0, jump=1.0, last_phase_rate=1 / 3),
}


@keras.saving.register_keras_serializable(package='metrabs')
class TwoPhaseExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) of the module docstring; steps are optimizer iterations (0-based).

    Args:
        base_learning_rate: lr(0).
        training_steps: T.
        decay_start_fraction: t0 / T, in (0, 1).
        first_phase_rate: factor by which the LR shrinks over the first phase (r1).
        jump: factor applied at t0 (relative to base).
        last_phase_rate: factor by which the LR shrinks over the last phase (r2).
        scale: overall multiplier (e.g. a smaller backbone LR for fine-tuning).
    """

    def __init__(self, base_learning_rate: float, training_steps: int,
                 decay_start_fraction: float = 0.92, first_phase_rate: float = 1 / 3,
                 jump: float = 1 / 30, last_phase_rate: float = 0.3, scale: float = 1.0):
        if training_steps < 1:
            raise ValueError(f'TwoPhaseExponentialDecay: training_steps must be >= 1, '
                             f'got {training_steps}')
        if not 0.0 < decay_start_fraction < 1.0:
            raise ValueError(f'TwoPhaseExponentialDecay: decay_start_fraction must be in (0, 1), '
                             f'got {decay_start_fraction}')
        for name, value in [('first_phase_rate', first_phase_rate), ('jump', jump),
                            ('last_phase_rate', last_phase_rate), ('scale', scale),
                            ('base_learning_rate', base_learning_rate)]:
            if not value > 0:
                raise ValueError(f'TwoPhaseExponentialDecay: {name} must be > 0, got {value}')
        self.base_learning_rate = float(base_learning_rate)
        self.training_steps = int(training_steps)
        self.decay_start_fraction = float(decay_start_fraction)
        self.first_phase_rate = float(first_phase_rate)
        self.jump = float(jump)
        self.last_phase_rate = float(last_phase_rate)
        self.scale = float(scale)

    @property
    def decay_start_step(self) -> float:
        return self.decay_start_fraction * self.training_steps

    def __call__(self, step):
        s = tf.cast(step, tf.float32)
        t0 = tf.constant(self.decay_start_step, tf.float32)
        t1 = tf.constant(self.training_steps - self.decay_start_step, tf.float32)
        base = tf.constant(self.base_learning_rate * self.scale, tf.float32)
        # Exponents via exp(log r * x): one fused expression, no Python branch on a tensor.
        first = base * tf.exp(tf.math.log(self.first_phase_rate) * s / t0)
        last = base * self.jump * tf.exp(tf.math.log(self.last_phase_rate) * (s - t0) / t1)
        return tf.where(s < t0, first, last)

    def get_config(self):
        return dict(base_learning_rate=self.base_learning_rate,
                    training_steps=self.training_steps,
                    decay_start_fraction=self.decay_start_fraction,
                    first_phase_rate=self.first_phase_rate, jump=self.jump,
                    last_phase_rate=self.last_phase_rate, scale=self.scale)


def make_schedule(preset: str, base_learning_rate: float, training_steps: int,
                  decay_start_fraction: float = 0.92, scale: float = 1.0
                  ) -> TwoPhaseExponentialDecay:
    """The schedule of a named preset ('reference' or 'constant_then_decay')."""
    if preset not in PRESETS:
        raise KeyError(f'unknown LR schedule preset {preset!r}; known: {", ".join(PRESETS)}')
    return TwoPhaseExponentialDecay(base_learning_rate, training_steps, decay_start_fraction,
                                    scale=scale, **PRESETS[preset])
