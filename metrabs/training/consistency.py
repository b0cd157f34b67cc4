"""Consistency fine-tuning with a frozen affine-combining autoencoder (ACAE), as released.

With a trained ACAE (W_enc [L, J], W_dec [J, L], rows summing to one; see acae/export.py) and
R = W_dec @ W_enc (the ACAE's reconstruction, rows summing to one), the variants are those of
github.com/isarandi/metrabs, metrabs_tf/models/metrabs.py (flags of metrabs_tf/init.py):
    'output_reg' (a) [--regularize-to-manifold]: the usual MetrabsModel, supervised as usual, plus
        lambda_acae * mean |P - R P| / 1000 on the absolute output P the model returns
        ('coords3d_abs_mm', metres, no centring, gradient through both sides), a mean over each
        row's joints and coordinates; 3D rows weigh 1, 2D-only rows rows2d_factor * reg2d_factor
        (0.2), each kind averaged over its own rows.
    'latent' (b) [--transform-coords]: AcaeLatentModel (metrabs.model.latent_model): the head
        predicts L latent points (new last layer), every output is W_dec @ latents, and the labels
        supervise those outputs. No extra term.
    'hybrid' (c) [--predict-all-and-latents]: AcaeLatentModel(with_teacher=True): the full-joint
        head (teacher, restored from the base model) and the latent head (student); the model's
        outputs are W_dec @ student latents. Its loss, with pose_loss the training step's MeTRAbs
        loss against labels:
            pose_loss(teacher, labels)                                    (the step's own term)
          + pose_loss(W_dec @ student, labels)
          + teacher_ae_gt_factor * pose_loss(R teacher, labels)
          + output regularisation of the teacher's absolute output (as (a); 2D-only rows x 0.5)
          + teacher_factor * pose_loss(student latents, W_enc @ stop_gradient(teacher))
                (3D rows x 1, 2D-only rows x rows2d_factor * 0.5; teacher_factor = 0 before
                teacher_start_step, then teacher_loss_factor).
        The stop-gradient keeps the distillation from pulling the teacher towards the student; the
        term still reaches the shared backbone through the student.
    'control': no ACAE, no extra term: the base model trained on with the fine-tuning optimiser,
        the comparison that separates the ACAE's effect from that of the extra training.

Every pose_loss is the training step's MeTRAbs loss on the absolute output, whose 2D terms are
projections of it (metrabs.training.losses), so the 2D side of each term, the distillation's
included, is the projection of the combined 3D points, as in the released code.
This module holds the extra terms and the fine-tuning start; the models are in metrabs.model
(latent_model, acae_matrices); the weights are TrainConfig.lambda_acae and TrainConfig.finetune.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from metrabs.model.acae_matrices import AcaeMatrices
from metrabs.model.latent_model import OUTPUT_KEYS, TEACHER_PREFIX, affine_combine
from metrabs.training import checkpointing
from metrabs.training.config import FINETUNE_MODES, TrainConfig

LATENT_KEYS = {'coords3d_rel_mm': 'latents3d_rel_mm', 'coords2d_px': 'latents2d_px',
               'coords3d_abs_mm': 'latents3d_abs_mm'}
"""Output key of a MeTRAbs pose -> the AcaeLatentModel key of the latents' own counterpart."""

Predictions = Mapping[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class LossContext:
    """What the fine-tuning terms need from the training step (metrabs.training.step), for one
    replica's batch.

    Attributes:
        true3d: [B, J, 3] camera-frame labels, mm, NaN where unlabelled.
        labels2d: [B, K, 2] the 2D-only rows' labels of the step's K base names (crop px, NaN
            where unlabelled; metrabs.data.labels2d).
        step: int64 scalar, the number of completed steps.
        pose_loss: (predictions with 'coords3d_abs_mm' [B, N, 3], true3d [B, N, 3], labels2d
            [B, K, 2] or None) -> scalar float32: this replica's share of the global-batch
            MeTRAbs loss (metrabs.training.losses, on the absolute output) of those predictions
            against those targets (NaN where unlabelled), as the step supervises the model with
            the labels; labels2d needs N = J (base-name means over the model's joints), None
            means no 2D-only labels.
        row_mean: (values [B], mask [B] bool) -> scalar float32: this replica's share of the
            mean of `values` over the masked rows of the global batch (0 without such rows).
    """
    true3d: tf.Tensor
    labels2d: tf.Tensor
    step: tf.Tensor
    pose_loss: Callable[[Predictions, tf.Tensor, tf.Tensor], tf.Tensor]
    row_mean: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def rows_with_3d(true3d: tf.Tensor) -> tf.Tensor:
    """[B, J, 3] labels (NaN where unlabelled) -> [B] bool: the row has some 3D label."""
    return tf.reduce_any(tf.reduce_all(tf.math.is_finite(true3d), axis=-1), axis=-1)


def reconstruction_weights(w_enc: np.ndarray, w_dec: np.ndarray) -> np.ndarray:
    """R = W_dec @ W_enc [J, J] float32 (rows sum to one: W_dec 1 = 1)."""
    return (np.asarray(w_dec, np.float64) @ np.asarray(w_enc, np.float64)).astype(np.float32)


def combine_pose(weights: np.ndarray, pose: Predictions) -> dict[str, tf.Tensor]:
    """The affine combination `weights` [A, B] applied to every output of a pose (B points)."""
    return {k: affine_combine(weights, pose[k]) for k in OUTPUT_KEYS}


def regularization_per_row(coords3d_abs_mm: tf.Tensor, w_rec: np.ndarray) -> tf.Tensor:
    """mean |P - R P| over the joints and coordinates of each row, metres: [B, J, 3] -> [B]."""
    diff = tf.cast(coords3d_abs_mm, tf.float32) - affine_combine(w_rec, coords3d_abs_mm)
    return tf.reduce_mean(tf.abs(diff), axis=[1, 2]) / 1000


def supervised_outputs(mode: str, predictions: Predictions) -> dict[str, tf.Tensor]:
    """The outputs the training step's own label loss supervises: the teacher's in 'hybrid',
    the model's otherwise (the hybrid's student is supervised by FinetuneTerm)."""
    if mode == 'hybrid':
        return {k: predictions[TEACHER_PREFIX + k] for k in OUTPUT_KEYS}
    return {k: predictions[k] for k in OUTPUT_KEYS}


class FinetuneTerm:
    """The extra loss of a fine-tuning mode, weighted:
    __call__(predictions, LossContext) -> scalar float32, this replica's share (0 for 'latent').

    Args:
        mode: 'output_reg', 'latent' or 'hybrid'.
        acae: the frozen ACAE over the model's joints (for 'hybrid' covering all of them).
        config: the TrainConfig (lambda_acae and the FinetuneConfig weights).
        n_model_joints: J, needed by 'hybrid' (its encoder acts on all model joints).
    """

    def __init__(self, mode: str, acae: AcaeMatrices, config: TrainConfig,
                 n_model_joints: int | None = None):
        if mode not in FINETUNE_MODES or mode in ('none', 'control'):
            raise ValueError(f"FinetuneTerm: mode must be 'output_reg', 'latent' or 'hybrid', "
                             f'got {mode!r}')
        if acae is None:
            raise ValueError(f'finetune mode {mode!r} needs ACAE weights')
        self.mode = mode
        self.lambda_acae = float(config.lambda_acae)
        self.weights = config.finetune
        if mode == 'hybrid':
            self.w_enc, w_dec = acae.reordered_for(n_model_joints)
            self.joint_indices = None
        else:
            self.w_enc, w_dec = acae.w_enc, acae.w_dec
            self.joint_indices = acae.joint_indices
        self.w_rec = reconstruction_weights(self.w_enc, w_dec)

    def __call__(self, predictions: Predictions, ctx: LossContext) -> tf.Tensor:
        if self.mode == 'output_reg':
            coords = tf.gather(predictions['coords3d_abs_mm'], self.joint_indices, axis=1)
            return self.output_regularization(coords, ctx, factor2d=1.0)
        if self.mode == 'hybrid':
            return self.hybrid(predictions, ctx)
        return tf.constant(0.0, tf.float32)

    def output_regularization(self, coords3d_abs_mm: tf.Tensor, ctx: LossContext,
                              factor2d: float) -> tf.Tensor:
        """lambda_acae * (mean over 3D rows + rows2d_factor * reg2d_factor * factor2d * mean over
        2D-only rows) of regularization_per_row."""
        per_row = regularization_per_row(coords3d_abs_mm, self.w_rec)
        rows3d = rows_with_3d(ctx.true3d)
        weight2d = self.weights.rows2d_factor * self.weights.reg2d_factor * factor2d
        return self.lambda_acae * (ctx.row_mean(per_row, rows3d)
                                   + weight2d * ctx.row_mean(per_row, ~rows3d))

    def distillation(self, predictions: Predictions, ctx: LossContext) -> tf.Tensor:
        """Unweighted: pose_loss of the student's latents against W_enc @ stop_gradient(teacher),
        3D rows x 1 + 2D-only rows x rows2d_factor * 0.5. The encoded teacher is a 3D target
        on every row (its projection is the 2D target of the loss's proj term), so no 2D-only
        labels enter: the base names group model joints, not latent points."""
        latents = {k: predictions[LATENT_KEYS[k]] for k in OUTPUT_KEYS}
        target3d = affine_combine(self.w_enc, tf.stop_gradient(
            predictions[TEACHER_PREFIX + 'coords3d_abs_mm']))
        rows3d = rows_with_3d(ctx.true3d)[:, None, None]
        nan = tf.constant(float('nan'), tf.float32)

        def on_rows(rows):
            return ctx.pose_loss(latents, tf.where(rows, target3d, nan), None)

        return on_rows(rows3d) + self.weights.rows2d_factor * 0.5 * on_rows(~rows3d)

    def hybrid(self, predictions: Predictions, ctx: LossContext) -> tf.Tensor:
        """The hybrid's terms beyond the teacher's own label loss (module docstring)."""
        teacher = supervised_outputs('hybrid', predictions)
        student = supervised_outputs('latent', predictions)
        w = self.weights
        teacher_factor = tf.where(ctx.step >= w.teacher_start_step,
                                  tf.constant(w.teacher_loss_factor, tf.float32), 0.0)
        return (ctx.pose_loss(student, ctx.true3d, ctx.labels2d)
                + w.teacher_ae_gt_factor * ctx.pose_loss(combine_pose(self.w_rec, teacher),
                                                         ctx.true3d, ctx.labels2d)
                + self.output_regularization(teacher['coords3d_abs_mm'], ctx, factor2d=0.5)
                + teacher_factor * self.distillation(predictions, ctx))


def init_backbone_and_head(model: keras.Model, path: str):
    """Fine-tuning start for 'control', 'output_reg' and 'hybrid': loads the backbone and the
    full-joint head (`model.head`) from a MetrabsModel training checkpoint (prefix, its
    directory, or the training logdir holding checkpoints/).

    Raises ValueError naming the checkpoint if its backbone or head does not fit the model
    (e.g. another joint count).
    """
    checkpointing.restore_parts(path, backbone=model.backbone, head=model.head)
