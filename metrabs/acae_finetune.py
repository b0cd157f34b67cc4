"""Consistency fine-tuning with a frozen affine-combining autoencoder (ACAE), three variants.

With a trained ACAE (W_enc [L, J], W_dec [J, L], rows summing to one; see acae/export.py):
    'output_reg' (a): the usual MetrabsModel; an extra L1 term pulls its output P towards its own
        ACAE reconstruction W_dec @ W_enc @ P (gradient through both sides; the ACAE is frozen).
    'latent' (b): AcaeLatentModel: the head predicts L latent points, each with a metric 3D and
        a 2D heatmap like a MeTRAbs joint; the latents are reconstructed absolutely themselves and
        every output is W_dec @ latents. The head is new (the last layer is re-initialised).
    'hybrid' (c): AcaeLatentModel(with_teacher=True): the full-joint head (teacher, trained on the
        labels as usual) plus the latent head (student). An extra L1 term pulls the student's
        latents towards W_enc @ stop_gradient(teacher output), so this term sends no gradient into
        the teacher's output (it still reaches the shared backbone through the student). The
        model's outputs are W_dec @ student latents; the teacher's are kept under 'teacher_*'.

The extra terms use the MeTRAbs loss conventions (metrabs.losses): 3D as L_meanrel (metres, after
centring on the joint mean), 2D as L_proj (divided by the crop side), combined as
3D + lambda_proj * 2D, and weighted by TrainConfig.lambda_acae in the training step.
Affine combinations commute with translation, so decoding relative, absolute or pixel
coordinates with the same weights is consistent (2D decoding is the affine image-plane
combination, exact for weak perspective and the training target of the latent 2D heatmaps).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from acae import export as acae_export
from acae import model as acae_model
from metrabs import backbones, checkpointing, reconstruction
from metrabs import losses as losses_lib
from metrabs.config import ModelConfig
from metrabs.metrabs_head import MetrabsHead

FINETUNE_MODES = ('none', 'output_reg', 'latent', 'hybrid')
OUTPUT_KEYS = ('coords3d_rel_mm', 'coords2d_px', 'coords3d_abs_mm')
TEACHER_PREFIX = 'teacher_'


@dataclasses.dataclass(frozen=True)
class AcaeMatrices:
    """A frozen ACAE expressed over a model's joints.

    Attributes:
        joint_indices: [J_a] int64, positions in the model's joint list of the ACAE's joints
            (in the order of the rows of w_dec / columns of w_enc).
        w_enc: [L, J_a] float32, rows sum to 1.
        w_dec: [J_a, L] float32, rows sum to 1.
        latent_names: the L latent names.
        source: where the weights came from (for error messages).
    """
    joint_indices: np.ndarray
    w_enc: np.ndarray
    w_dec: np.ndarray
    latent_names: tuple[str, ...]
    source: str = '<arrays>'

    @property
    def n_latents(self) -> int:
        return len(self.latent_names)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], model_joint_names: Sequence[str],
                    source: str = '<arrays>', require_all: bool = False) -> AcaeMatrices:
        """Maps the ACAE's joints onto the model's joints by name.

        Args:
            arrays: 'W_enc', 'W_dec', 'joint_names', 'latent_names' (acae.export.load_weights).
            model_joint_names: the model's output joints.
            require_all: every model joint must be an ACAE joint (needed when all outputs are
                decoded from latents).
        Raises:
            KeyError naming `source` when the ACAE has joints the model lacks (or, with
            require_all, the model has joints the ACAE lacks).
        """
        acae_names = [str(n) for n in arrays['joint_names']]
        ids = {n: i for i, n in enumerate(model_joint_names)}
        missing = [n for n in acae_names if n not in ids]
        if missing:
            raise KeyError(f'{source}: joint_names has {len(missing)} joints the model does not '
                           f'predict, e.g. {missing[:5]}')
        if require_all:
            extra = sorted(set(model_joint_names) - set(acae_names))
            if extra:
                raise KeyError(f'{source}: the model predicts {len(extra)} joints the ACAE does '
                               f'not know, e.g. {extra[:5]}; decoding all outputs from latents '
                               f'needs an ACAE over exactly the model joints')
        return cls(np.array([ids[n] for n in acae_names], np.int64),
                   np.asarray(arrays['W_enc'], np.float32), np.asarray(arrays['W_dec'], np.float32),
                   tuple(str(n) for n in arrays['latent_names']), source)

    @classmethod
    def load(cls, path: str, model_joint_names: Sequence[str], require_all: bool = False
             ) -> AcaeMatrices:
        return cls.from_arrays(acae_export.load_weights(path), model_joint_names, str(path),
                               require_all)

    def reordered_for(self, n_model_joints: int) -> tuple[np.ndarray, np.ndarray]:
        """(W_enc [L, J], W_dec [J, L]) over all model joints in model order; needs the ACAE to
        cover every model joint (from_arrays(require_all=True))."""
        if sorted(self.joint_indices.tolist()) != list(range(n_model_joints)):
            raise ValueError(f'{self.source}: the ACAE does not cover all {n_model_joints} '
                             f'model joints')
        w_enc = np.zeros((self.n_latents, n_model_joints), np.float32)
        w_dec = np.zeros((n_model_joints, self.n_latents), np.float32)
        w_enc[:, self.joint_indices] = self.w_enc
        w_dec[self.joint_indices] = self.w_dec
        return w_enc, w_dec


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

    call(images, intrinsics, training=False) -> dict of float32 tensors, frames as MetrabsModel:
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
            config.backbone_weights)
        self.latent_head = MetrabsHead(n_latents, config, dtype=config.dtype_policy,
                                       name='latent_head')
        self.latent_head.build(self.backbone.output_shape)
        if self.with_teacher:
            self.head = MetrabsHead(n_joints, config, dtype=config.dtype_policy,
                                    name='metrabs_head')
            self.head.build(self.backbone.output_shape)

    def _absolute(self, coords2d_px, coords3d_rel_mm, intrinsics):
        cfg = self.config
        return reconstruction.reconstruct_absolute(
            coords2d_px, coords3d_rel_mm, intrinsics, cfg.proc_side, cfg.stride,
            cfg.mix_3d_inside_fov, cfg.fov_border_factor)

    def call(self, images, intrinsics, training=False):
        x = backbones.preprocess_images(images, self.config.backbone)
        features = self.backbone(x, training=training)
        lat_rel, lat_xy = self.latent_head(features)
        lat_abs = self._absolute(lat_xy, lat_rel, intrinsics)
        out = {'latents3d_rel_mm': lat_rel, 'latents2d_px': lat_xy, 'latents3d_abs_mm': lat_abs,
               'coords3d_rel_mm': affine_combine(self.w_dec, lat_rel),
               'coords2d_px': affine_combine(self.w_dec, lat_xy),
               'coords3d_abs_mm': affine_combine(self.w_dec, lat_abs)}
        if self.with_teacher:
            rel, xy = self.head(features)
            out[TEACHER_PREFIX + 'coords3d_rel_mm'] = rel
            out[TEACHER_PREFIX + 'coords2d_px'] = xy
            out[TEACHER_PREFIX + 'coords3d_abs_mm'] = self._absolute(xy, rel, intrinsics)
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


def init_backbone_and_head(model: keras.Model, path: str):
    """Fine-tuning start for 'output_reg' and 'hybrid': loads the backbone and the full-joint
    head (`model.head`) from a MetrabsModel training checkpoint (prefix, its directory, or the
    training logdir holding checkpoints/).

    Raises ValueError naming the checkpoint if its backbone or head does not fit the model
    (e.g. another joint count).
    """
    checkpointing.restore_parts(path, backbone=model.backbone, head=model.head)


def restore_model(checkpoint: str, config_path: str, joint_names: Sequence[str]) -> keras.Model:
    """Any model metrabs.train writes, from its checkpoint and config.json (a TrainConfig JSON):
    MetrabsModel for finetune_mode 'none' / 'output_reg', AcaeLatentModel for 'latent' /
    'hybrid' (its ACAE from the config's acae_weights). Optimizer state is ignored.

    Raises ValueError naming the checkpoint if it does not fit the described model.
    """
    from metrabs import export  # deferred: it imports the whole serving stack

    with open(config_path, encoding='utf-8') as f:
        try:
            described = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{config_path}: not valid JSON: {e}') from e
    mode = described.get('finetune_mode', 'none') if isinstance(described, dict) else 'none'
    if mode not in ('latent', 'hybrid'):
        return export.restore_model(checkpoint, export.load_model_config(config_path),
                                    joint_names)
    if not described.get('acae_weights'):
        raise ValueError(f'{config_path}: finetune_mode={mode!r} but field "acae_weights" is '
                         f'empty')
    acae = AcaeMatrices.load(described['acae_weights'], joint_names, require_all=True)
    model = build_latent_model(export.load_model_config(config_path), joint_names, acae,
                               with_teacher=mode == 'hybrid')
    side = model.config.proc_side
    model(tf.zeros([1, side, side, 3]), tf.eye(3, batch_shape=[1]), training=False)
    try:
        status = tf.train.Checkpoint(model=model).restore(checkpoint)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise ValueError(f'{checkpoint}: does not match the {mode!r} model described by '
                         f'{config_path}: {e}') from e
    return model
