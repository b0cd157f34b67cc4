"""Consistency fine-tuning with a frozen affine-combining autoencoder (ACAE), three variants.

With a trained ACAE (W_enc [L, J], W_dec [J, L], rows summing to one; see acae/export.py):
    'output_reg' (a): the usual MetrabsModel; an extra L1 term pulls its output P towards its own
        ACAE reconstruction W_dec @ W_enc @ P (gradient through both sides; the ACAE is frozen).
    'latent' (b): AcaeLatentModel (metrabs.model.latent_model): the head predicts L latent
        points, each with a metric 3D and a 2D heatmap like a MeTRAbs joint; the latents are
        reconstructed absolutely themselves and every output is W_dec @ latents. The head is new (the last layer is re-initialised).
    'hybrid' (c): AcaeLatentModel(with_teacher=True): the full-joint head (teacher, trained on the
        labels as usual) plus the latent head (student). An extra L1 term pulls the student's
        latents towards W_enc @ stop_gradient(teacher output), so this term sends no gradient into
        the teacher's output (it still reaches the shared backbone through the student). The
        model's outputs are W_dec @ student latents; the teacher's are kept under 'teacher_*'.

This module holds the extra loss terms and the fine-tuning start; the models themselves are in
metrabs.model (latent_model, acae_matrices). The extra terms use the MeTRAbs loss conventions
(metrabs.training.losses): 3D as L_meanrel (metres, after centring on the joint mean), 2D as
L_proj (divided by the crop side), combined as 3D + lambda_proj * 2D, and weighted by
TrainConfig.lambda_acae in the training step.
"""
from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from metrabs.model.acae_matrices import AcaeMatrices
from metrabs.model.latent_model import OUTPUT_KEYS, TEACHER_PREFIX, affine_combine
from metrabs.training import checkpointing
from metrabs.training import losses as losses_lib

FINETUNE_MODES = ('none', 'output_reg', 'latent', 'hybrid')


def consistency_l1(pred3d_mm, target3d_mm, pred2d_px, target2d_px, crop_side: float,
                   lambda_proj: float) -> tf.Tensor:
    """L_meanrel(pred3d, target3d) + lambda_proj * L_proj(pred2d, target2d), scalar float32.

    Shapes [N, K, 3] (mm) and [N, K, 2] (crop px); all entries count (no NaN allowed).
    """
    return (losses_lib.mean_relative_loss(pred3d_mm, target3d_mm)
            + lambda_proj * losses_lib.projection_loss(pred2d_px, target2d_px, crop_side))


def output_regularization(predictions: Mapping[str, tf.Tensor], acae: AcaeMatrices,
                          crop_side: float, lambda_proj: float) -> tf.Tensor:
    """Variant (a): L1 between the ACAE joints of P and W_dec @ W_enc @ P (3D rel and 2D)."""
    rel = tf.gather(predictions['coords3d_rel_mm'], acae.joint_indices, axis=1)
    xy = tf.gather(predictions['coords2d_px'], acae.joint_indices, axis=1)
    rel_rec = affine_combine(acae.w_dec, affine_combine(acae.w_enc, rel))
    xy_rec = affine_combine(acae.w_dec, affine_combine(acae.w_enc, xy))
    return consistency_l1(rel, rel_rec, xy, xy_rec, crop_side, lambda_proj)


def student_teacher_loss(predictions: Mapping[str, tf.Tensor], w_enc: np.ndarray,
                         crop_side: float, lambda_proj: float) -> tf.Tensor:
    """Variant (c): L1 from W_enc @ stop_gradient(teacher output) into the student's latents.

    Args:
        predictions: AcaeLatentModel(with_teacher=True) outputs.
        w_enc: [L, J] over the model joints in model order.
    """
    teacher_rel = tf.stop_gradient(predictions[TEACHER_PREFIX + 'coords3d_rel_mm'])
    teacher_xy = tf.stop_gradient(predictions[TEACHER_PREFIX + 'coords2d_px'])
    return consistency_l1(predictions['latents3d_rel_mm'], affine_combine(w_enc, teacher_rel),
                          predictions['latents2d_px'], affine_combine(w_enc, teacher_xy),
                          crop_side, lambda_proj)


def supervised_outputs(mode: str, predictions: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The outputs the labels supervise: the teacher's in 'hybrid', the model's otherwise."""
    if mode == 'hybrid':
        return {k: predictions[TEACHER_PREFIX + k] for k in OUTPUT_KEYS}
    return {k: predictions[k] for k in OUTPUT_KEYS}


class FinetuneTerm:
    """The extra loss term of a fine-tuning mode: __call__(predictions) -> scalar float32
    (unweighted; 0 for 'none' and 'latent', whose only change is the model).

    Args:
        mode: one of FINETUNE_MODES.
        acae: the frozen ACAE over the model's joints (None only for 'none').
        crop_side: ModelConfig.proc_side, px.
        lambda_proj: LossConfig.lambda_proj (weight of the 2D part).
        n_model_joints: J, needed by 'hybrid' (its encoder acts on all model joints).
    """

    def __init__(self, mode: str, acae: AcaeMatrices | None, crop_side: float,
                 lambda_proj: float, n_model_joints: int | None = None):
        if mode not in FINETUNE_MODES:
            raise ValueError(f'finetune mode must be one of {FINETUNE_MODES}, got {mode!r}')
        if mode != 'none' and acae is None:
            raise ValueError(f'finetune mode {mode!r} needs ACAE weights')
        self.mode = mode
        self.acae = acae
        self.crop_side = float(crop_side)
        self.lambda_proj = float(lambda_proj)
        if mode == 'hybrid':
            self.w_enc_full, _ = acae.reordered_for(n_model_joints)

    def __call__(self, predictions: Mapping[str, tf.Tensor]) -> tf.Tensor:
        if self.mode == 'output_reg':
            return output_regularization(predictions, self.acae, self.crop_side, self.lambda_proj)
        if self.mode == 'hybrid':
            return student_teacher_loss(predictions, self.w_enc_full, self.crop_side,
                                        self.lambda_proj)
        return tf.constant(0.0, tf.float32)


def init_backbone_and_head(model: keras.Model, path: str):
    """Fine-tuning start for 'output_reg' and 'hybrid': loads the backbone and the full-joint
    head (`model.head`) from a MetrabsModel training checkpoint (prefix, its directory, or the
    training logdir holding checkpoints/).

    Raises ValueError naming the checkpoint if its backbone or head does not fit the model
    (e.g. another joint count).
    """
    checkpointing.restore_parts(path, backbone=model.backbone, head=model.head)
