"""MeTRAbs with a latent head decoded by a frozen ACAE (the 'latent' and 'hybrid' fine-tunings).

`AcaeLatentModel` predicts L latent points, each with a metric 3D and a 2D heatmap like a MeTRAbs
joint; the latents are reconstructed absolutely themselves and every output joint is
W_dec @ latents. With a teacher (the 'hybrid' variant) it also holds the full-joint head.
Affine combinations commute with translation, so decoding relative, absolute or pixel
coordinates with the same weights is consistent (2D decoding is the affine image-plane
combination, exact for weak perspective and the training target of the latent 2D heatmaps).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from acae import model as acae_model
from metrabs.model import backbones, reconstruction
from metrabs.model.acae_matrices import AcaeMatrices
from metrabs.model.config import ModelConfig
from metrabs.model.head import MetrabsHead

OUTPUT_KEYS = ('coords3d_rel_mm', 'coords2d_px', 'coords3d_abs_mm')

TEACHER_PREFIX = 'teacher_'


def affine_combine(weights, points) -> tf.Tensor:
    """[A, B] affine weights (rows sum to 1), [N, B, D] points (D = 2 or 3) -> [N, A, D] float32.

    Goes through acae.model.apply_weights (3D, centroid-stabilised); 2D points ride along with a
    zero third coordinate, which affine weights keep at zero.
    """
    points = tf.cast(points, tf.float32)
    if points.shape[-1] == 3:
        return acae_model.apply_weights(tf.cast(weights, tf.float32), points)
    if points.shape[-1] != 2:
        raise ValueError(f'affine_combine: points must end in 2 or 3 coordinates, got '
                         f'{points.shape}')
    padded = tf.concat([points, tf.zeros_like(points[..., :1])], axis=-1)
    return acae_model.apply_weights(tf.cast(weights, tf.float32), padded)[..., :2]


@keras.saving.register_keras_serializable(package='metrabs')
class AcaeLatentModel(keras.Model):
    """MeTRAbs with a latent head whose outputs are decoded by a frozen ACAE decoder.

    Args:
        config: ModelConfig.
        joint_names: the J output joints (the ACAE's joints, in model order).
        w_enc: [L, J] and w_dec: [J, L] float32 ACAE weights over those joints (rows sum to 1).
        latent_names: the L latent names.
        with_teacher: also hold the full-joint head (attribute `head`, as in MetrabsModel, so
            that a MetrabsModel checkpoint's head can initialise it).

    call(images, intrinsics, training=False, mix_3d_inside_fov=None, weak_perspective=False)
        -> dict of float32 tensors, frames as MetrabsModel (the two keywords as there):
        'latents3d_rel_mm' [N, L, 3], 'latents2d_px' [N, L, 2], 'latents3d_abs_mm' [N, L, 3]
            (the latents' own absolute reconstruction);
        'coords3d_rel_mm', 'coords2d_px', 'coords3d_abs_mm' [N, J, .]: W_dec @ the latents;
        with_teacher: 'teacher_coords3d_rel_mm', 'teacher_coords2d_px',
            'teacher_coords3d_abs_mm' [N, J, .] from the full head.
    """

    def __init__(self, config: ModelConfig, joint_names: Sequence[str], w_enc, w_dec,
                 latent_names: Sequence[str], with_teacher: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.joint_names = tuple(joint_names)
        self.latent_names = tuple(latent_names)
        self.w_enc = np.asarray(w_enc, np.float32)
        self.w_dec = np.asarray(w_dec, np.float32)
        n_joints, n_latents = len(self.joint_names), len(self.latent_names)
        if self.w_enc.shape != (n_latents, n_joints) or self.w_dec.shape != (n_joints, n_latents):
            raise ValueError(f'AcaeLatentModel: W_enc {self.w_enc.shape} / W_dec '
                             f'{self.w_dec.shape} do not match {n_joints} joints and '
                             f'{n_latents} latents')
        self.with_teacher = bool(with_teacher)
        self.backbone = backbones.build_backbone(
            config.backbone, config.proc_side, config.ghost_bn_group_size, config.dtype_policy,
            config.backbone_padding)
        self.latent_head = MetrabsHead(n_latents, config, dtype=config.dtype_policy,
                                       name='latent_head')
        self.latent_head.build(self.backbone.output_shape)
        if self.with_teacher:
            self.head = MetrabsHead(n_joints, config, dtype=config.dtype_policy,
                                    name='metrabs_head')
            self.head.build(self.backbone.output_shape)

    def _absolute(self, coords2d_px, coords3d_rel_mm, intrinsics, mix, weak_perspective):
        cfg = self.config
        return reconstruction.reconstruct_absolute(
            coords2d_px, coords3d_rel_mm, intrinsics, cfg.proc_side, cfg.stride,
            cfg.mix_3d_inside_fov if mix is None else mix, cfg.fov_border_factor,
            weak_perspective=weak_perspective)

    def call(self, images, intrinsics, training=False, mix_3d_inside_fov=None,
             weak_perspective=False):
        x = backbones.preprocess_images(images, self.config.backbone)
        features = self.backbone(x, training=training)
        lat_rel, lat_xy = self.latent_head(features)
        lat_abs = self._absolute(lat_xy, lat_rel, intrinsics, mix_3d_inside_fov, weak_perspective)
        out = {'latents3d_rel_mm': lat_rel, 'latents2d_px': lat_xy, 'latents3d_abs_mm': lat_abs,
               'coords3d_rel_mm': affine_combine(self.w_dec, lat_rel),
               'coords2d_px': affine_combine(self.w_dec, lat_xy),
               'coords3d_abs_mm': affine_combine(self.w_dec, lat_abs)}
        if self.with_teacher:
            rel, xy = self.head(features)
            out[TEACHER_PREFIX + 'coords3d_rel_mm'] = rel
            out[TEACHER_PREFIX + 'coords2d_px'] = xy
            out[TEACHER_PREFIX + 'coords3d_abs_mm'] = self._absolute(
                xy, rel, intrinsics, mix_3d_inside_fov, weak_perspective)
        return out

    def get_config(self):
        return {'config': dataclasses.asdict(self.config), 'joint_names': list(self.joint_names),
                'w_enc': self.w_enc.tolist(), 'w_dec': self.w_dec.tolist(),
                'latent_names': list(self.latent_names), 'with_teacher': self.with_teacher,
                'name': self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ModelConfig(**config.pop('config')), **config)


def build_latent_model(config: ModelConfig, joint_names: Sequence[str], acae: AcaeMatrices,
                       with_teacher: bool) -> AcaeLatentModel:
    """AcaeLatentModel over `joint_names` with the ACAE reordered to the model's joint order."""
    w_enc, w_dec = acae.reordered_for(len(joint_names))
    return AcaeLatentModel(config, joint_names, w_enc, w_dec, acae.latent_names, with_teacher)
