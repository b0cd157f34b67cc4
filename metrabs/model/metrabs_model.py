"""MetrabsModel: backbone + MeTRAbs head + absolute reconstruction, as one Keras model."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras

from metrabs.model import backbones, reconstruction
from metrabs.model.config import ModelConfig
from metrabs.model.head import MetrabsHead


@keras.saving.register_keras_serializable(package='metrabs')
class MetrabsModel(keras.Model):
    """Monocular 3D pose of the person in a crop, for every joint of a joint set.

    Args:
        config: ModelConfig (backbone, geometry, dtype policy).
        joint_names: names of the J predicted joints (e.g. the union of all skeleton formats).

    call(images, intrinsics, training=False, mix_3d_inside_fov=None, weak_perspective=False)
        -> dict of float32 tensors:
        images: [N, S, S, 3] RGB crops, S = config.proc_side, float in [0, 1] or uint8.
        intrinsics: [N, 3, 3] intrinsic matrix of each crop camera (crop pixels).
        mix_3d_inside_fov: None = config.mix_3d_inside_fov (the exported, test-time output);
            training passes a [N] tensor of per-example weights (reconstruction.reconstruct_absolute).
        weak_perspective: bool or scalar bool tensor: weak-perspective translation fit.
        'coords3d_rel_mm' [N, J, 3]: metric 3D, mm, camera-aligned axes, relative to the heatmap
            cube centre (only differences between joints are meaningful).
        'coords2d_px' [N, J, 2]: crop image pixels.
        'coords3d_abs_mm' [N, J, 3]: camera frame of the crop camera, mm.
    Works with any batch size, also inside tf.function with an unknown batch dimension.
    """

    def __init__(self, config: ModelConfig, joint_names: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.joint_names = tuple(joint_names)
        if not self.joint_names:
            raise ValueError('MetrabsModel: joint_names is empty')
        # Randomly initialised: training loads config.backbone_weights when it starts fresh
        # (backbones.load_initial_weights); rebuilt models get their weights from a checkpoint.
        self.backbone = backbones.build_backbone(
            config.backbone, config.proc_side, config.ghost_bn_group_size, config.dtype_policy,
            config.backbone_padding)
        self.head = MetrabsHead(len(self.joint_names), config, dtype=config.dtype_policy,
                                name='metrabs_head')
        self.head.build(self.backbone.output_shape)

    def call(self, images, intrinsics, training=False, mix_3d_inside_fov=None,
             weak_perspective=False):
        cfg = self.config
        x = backbones.preprocess_images(images, cfg.backbone)
        features = self.backbone(x, training=training)
        coords3d_rel_mm, coords2d_px = self.head(features)
        coords3d_abs_mm = reconstruction.reconstruct_absolute(
            coords2d_px, coords3d_rel_mm, intrinsics, cfg.proc_side, cfg.stride,
            cfg.mix_3d_inside_fov if mix_3d_inside_fov is None else mix_3d_inside_fov,
            cfg.fov_border_factor, weak_perspective=weak_perspective)
        return {'coords3d_rel_mm': coords3d_rel_mm, 'coords2d_px': coords2d_px,
                'coords3d_abs_mm': coords3d_abs_mm}

    def get_config(self):
        return {'config': dataclasses.asdict(self.config), 'joint_names': list(self.joint_names),
                'name': self.name}

    @classmethod
    def from_config(cls, config):
        return cls(ModelConfig(**config['config']), config['joint_names'], name=config['name'])
