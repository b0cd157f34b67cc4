"""MeTRAbs head: one 1x1 conv -> metric 3D heatmaps and 2D heatmaps -> coordinates."""
from __future__ import annotations

import keras
import tensorflow as tf

from metrabs.model import heatmaps
from metrabs.model.config import ModelConfig


class MetrabsHead(keras.layers.Layer):
    """Per joint, a metric 3D heatmap (H x W x depth) and an image-space 2D heatmap (H x W).

    One 1x1 convolution maps backbone features [N, H, W, C] to J*depth + J channels: the first
    J*depth are the 3D logits laid out as [depth, J], the last J the 2D logits. Each joint has its
    own channels, so every skeleton format of the union gets separate outputs.

    call(features) -> (coords3d_rel_mm [N, J, 3], coords2d_px [N, J, 2]), float32:
        coords3d_rel_mm: mm, camera-aligned axes, relative to the heatmap cube centre
            (see heatmaps.cells_to_metric);
        coords2d_px: crop image pixels (see heatmaps.cells_to_pixels).
    """

    def __init__(self, n_joints: int, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.n_joints = int(n_joints)
        self.config = config
        self.conv = keras.layers.Conv2D(
            self.n_joints * (config.depth + 1), kernel_size=1, dtype=self.dtype_policy,
            name='heatmap_conv')

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, features):
        cfg = self.config
        logits = self.conv(features)
        n_3d = self.n_joints * cfg.depth
        shape = tf.shape(logits)
        logits3d = tf.reshape(
            logits[..., :n_3d], tf.stack([shape[0], shape[1], shape[2], cfg.depth, self.n_joints]))
        logits2d = logits[..., n_3d:]
        cells3d = heatmaps.soft_argmax_3d(logits3d)
        cells2d = heatmaps.soft_argmax_2d(logits2d)
        coords3d_rel_mm = heatmaps.cells_to_metric(
            cells3d, cfg.proc_side, cfg.stride, cfg.depth, cfg.box_size_mm, cfg.centered_stride)
        coords2d_px = heatmaps.cells_to_pixels(cells2d, cfg.stride, cfg.centered_stride)
        return coords3d_rel_mm, coords2d_px
