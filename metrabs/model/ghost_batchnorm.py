"""Ghost batch normalisation: batch statistics computed over small groups of the batch.

Keras 3's BatchNormalization has no `virtual_batch_size`; this subclass adds it. Small ghost
groups regularise (noisier statistics) and keep statistics per group when a batch is assembled
from several datasets in fixed blocks.
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package='metrabs')
class GhostBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization whose training-mode statistics come from ghost groups of the batch.

    In training, a batch of N = G * group_size examples is reshaped into G groups; each group is
    normalised with its own mean and (biased) variance over its examples and all non-channel axes,
    in float32. The moving statistics are updated with the mean over the groups of these moments.
    A batch no larger than `group_size` forms one group (plain batch norm); a larger batch must be
    a multiple of `group_size`. Inference uses the moving statistics, exactly like the parent.

    Only channels-last inputs (axis = last) are supported.

    Args:
        group_size: examples per ghost group; 0 or None gives plain batch normalisation.
        **kwargs: as for keras.layers.BatchNormalization (renorm is not supported with groups).
    """

    def __init__(self, group_size: int | None = 16, **kwargs):
        super().__init__(**kwargs)
        self.group_size = int(group_size or 0)
        if self.group_size and self.renorm:
            raise ValueError('GhostBatchNormalization: renorm cannot be combined with group_size')

    def build(self, input_shape):
        super().build(input_shape)
        rank = len(input_shape)
        if self.group_size and self.axis not in (-1, rank - 1):
            raise ValueError(
                f'GhostBatchNormalization {self.name}: only channels-last is supported, '
                f'got axis={self.axis} for rank {rank}')

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self.group_size) or mask is not None:
            return super().call(inputs, training=training, mask=mask)

        x = tf.cast(inputs, tf.float32)
        batch_size = tf.shape(x)[0]
        n_groups = tf.maximum(batch_size // self.group_size, 1)
        tf.debugging.assert_equal(
            tf.logical_or(batch_size <= self.group_size,
                          tf.equal(batch_size % self.group_size, 0)), True,
            message=f'GhostBatchNormalization {self.name}: batch size must be <= group_size '
                    f'({self.group_size}) or a multiple of it')
        grouped_shape = tf.concat([[n_groups, batch_size // n_groups], tf.shape(x)[1:]], axis=0)
        grouped = tf.reshape(x, grouped_shape)
        # Moments per group over examples and spatial axes; channels stay last.
        reduce_axes = list(range(1, len(x.shape)))
        group_mean, group_var = tf.nn.moments(grouped, axes=reduce_axes, keepdims=True)

        gamma = tf.cast(self.gamma, tf.float32) if self.scale else None
        beta = tf.cast(self.beta, tf.float32) if self.center else None
        normalized = tf.nn.batch_normalization(
            grouped, group_mean, group_var, offset=beta, scale=gamma,
            variance_epsilon=self.epsilon)
        outputs = tf.reshape(normalized, tf.shape(x))

        mean = tf.reduce_mean(tf.reshape(group_mean, [n_groups, -1]), axis=0)
        variance = tf.reduce_mean(tf.reshape(group_var, [n_groups, -1]), axis=0)
        momentum = self.momentum
        self.moving_mean.assign(
            tf.cast(self.moving_mean, tf.float32) * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            tf.cast(self.moving_variance, tf.float32) * momentum + variance * (1.0 - momentum))
        return tf.cast(outputs, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), 'group_size': self.group_size}
