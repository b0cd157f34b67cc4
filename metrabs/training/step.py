"""The MeTRAbs training step: loss, gradients, loss scaling, clipping, optimizer update.

THE BATCH CONTRACT. The input pipeline delivers one *global* batch per step as a dict:
    'image'         float32 [B, S, S, 3]  crop pixels, RGB in [0, 1]; S = ModelConfig.proc_side
    'intrinsics'    float32 [B, 3, 3]     intrinsic matrix K of the crop camera (crop pixels)
    'coords3d_cam'  float32 [B, J, 3]     crop-camera frame, millimetres; 0 where not valid3d
    'valid3d'       bool    [B, J]        3D label present (all False for 2D-only examples)
    'coords2d'      float32 [B, J, 2]     crop pixels, the projection of coords3d_cam; 0 where not
                                          valid2d
    'valid2d'       bool    [B, J]        valid3d and in front of the camera
    'labels2d'      float32 [B, K, 2]     2D-only rows: crop pixels of the labels of the K 2D label
                                          names (metrabs.data.labels2d); 0 where not valid
    'valid_labels2d' bool   [B, K]        2D-only label present (all False on 3D rows)
    'dataset_index' int32   [B]           which training dataset the example comes from
J is the number of model output joints (the 3D joints of the union, in the model's order), K the
number of 2D label names (TrainStep's `label_names_2d`). B is the global batch size
(TrainConfig.global_batch_size); see metrabs.train for how a global batch is split across
replicas and workers.

The model is trained through its absolute output (metrabs.training.losses): in training the
3D/2D mix of the reconstruction is drawn per example, U(0, 1), from a stateless seed
(TrainConfig.seed, step) for the global batch, so a resumed run, or one on other replicas,
draws exactly what an uninterrupted single-device one would; the first
LossConfig.weak_perspective_steps steps use the weak-perspective fit.

Distributed semantics. Each replica computes the gradient of its share of the global-batch loss
(every loss term is its replica's sum divided by the global count of that term's entries); the
gradients are summed across replicas here, so every replica holds the gradient of the mean loss
over the global batch before clipping. This makes the update the same as one device processing
the whole batch (up to float summation order), given ghost batch norm groups that do not cross
replica boundaries. Keras optimizers all-reduce (sum) gradients once more inside `apply`; the
already-reduced gradients are divided by n_replicas before being handed over, so that second
sum restores them. That costs one extra all-reduce per step, in exchange for clipping and the
loss-scale finiteness check seeing the true global gradient on every replica.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from metrabs.data import labels2d as labels2d_lib
from metrabs.model.acae_matrices import AcaeMatrices
from metrabs.training import consistency
from metrabs.training import losses as losses_lib
from metrabs.training import finetune_lr, lr_schedule
from metrabs.training.config import TrainConfig

BATCH_FIELDS: dict[str, tuple[tf.DType, int]] = {
    'image': (tf.float32, 4),
    'intrinsics': (tf.float32, 3),
    'coords3d_cam': (tf.float32, 3),
    'valid3d': (tf.bool, 2),
    'coords2d': (tf.float32, 3),
    'valid2d': (tf.bool, 2),
    'labels2d': (tf.float32, 3),
    'valid_labels2d': (tf.bool, 2),
    'dataset_index': (tf.int32, 1),
}
"""Field name -> (dtype, rank) of the batch contract above."""

LOSS_NAMES = ('loss', *losses_lib.TERMS, 'acae', 'grad_norm')
"""'acae': the extra terms of ACAE fine-tuning, weighted as they enter 'loss' (0 without; see
metrabs.training.consistency). In 'hybrid' mode the MeTRAbs terms are the teacher's."""


def check_batch_spec(element_spec, where: str = 'training dataset'):
    """Raises a clear error if a dataset's element_spec violates the batch contract."""
    if not isinstance(element_spec, dict):
        raise TypeError(f'{where}: elements must be dicts of tensors, got {element_spec}')
    missing = sorted(set(BATCH_FIELDS) - set(element_spec))
    if missing:
        raise KeyError(f'{where}: batch lacks fields {missing}')
    for name, (dtype, rank) in BATCH_FIELDS.items():
        spec = element_spec[name]
        if spec.dtype != dtype:
            raise ValueError(f'{where}: field {name!r} must be {dtype.name}, got {spec.dtype.name}')
        if spec.shape.rank is not None and spec.shape.rank != rank:
            raise ValueError(f'{where}: field {name!r} must have rank {rank}, got shape '
                             f'{spec.shape}')


def labels_with_nan(batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """The batch's labels in the losses' convention: NaN where a joint is not labelled.

    Returns:
        coords3d_cam [B, J, 3] mm, labels2d [B, K, 2] crop px, float32, NaN where invalid.
    """
    nan = tf.constant(float('nan'), tf.float32)
    coords3d = tf.where(batch['valid3d'][..., None], batch['coords3d_cam'], nan)
    labels2d = tf.where(batch['valid_labels2d'][..., None], batch['labels2d'], nan)
    return coords3d, labels2d


@dataclasses.dataclass
class OptimizerGroup:
    """One optimizer and the model variables it updates (in a fixed order)."""
    optimizer: keras.optimizers.Optimizer
    variables: list


def _make_adamw(config: TrainConfig, scale: float) -> keras.optimizers.AdamW:
    schedule = lr_schedule.make_schedule(
        config.lr_schedule, config.base_learning_rate, config.training_steps,
        config.lr_decay_start_fraction, scale=scale)
    # The coefficient is relative to the unscaled base LR so that scaling the LR of a group
    # scales its decay per step proportionally, as decoupled decay (wd * lr * w) implies.
    return keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=config.keras_weight_decay,
        epsilon=config.adam_epsilon)


def _backbone_and_rest(model: keras.Model, variables: list) -> tuple[list, list]:
    """(the backbone's trainable variables, all others), each in the order of `variables`."""
    backbone = getattr(model, 'backbone', None)
    if backbone is None:
        raise AttributeError('build_optimizers: a separate backbone LR needs a model with a '
                             '.backbone attribute')
    backbone_ids = {id(v) for v in backbone.trainable_variables}
    return ([v for v in variables if id(v) in backbone_ids],
            [v for v in variables if id(v) not in backbone_ids])


def _dual_finetune_groups(config: TrainConfig, variables_backbone: list,
                          variables_rest: list) -> list[OptimizerGroup]:
    """FinetuneConfig.optimizer == 'dual': backbone and heads, each with its own AdamW and
    schedule (metrabs.training.finetune_lr)."""
    decay = finetune_lr.dual_weight_decay(config)
    return [OptimizerGroup(keras.optimizers.AdamW(learning_rate=schedule, weight_decay=decay,
                                                  epsilon=config.adam_epsilon), variables)
            for schedule, variables in zip(finetune_lr.dual_schedules(config),
                                           (variables_backbone, variables_rest))]


def build_optimizers(config: TrainConfig, model: keras.Model) -> list[OptimizerGroup]:
    """AdamW (decoupled decay) with the configured LR schedule, wrapped for fp16 loss scaling.

    A fine-tuning with FinetuneConfig.optimizer == 'dual': two optimizers, the backbone's
    variables and all others, with the fine-tuning schedules. Otherwise, with
    backbone_lr_factor == 1: one optimizer over all trainable variables; else two: the
    backbone's variables (LR schedule x backbone_lr_factor) and all others (x 1). Call inside
    the strategy scope, after the model is built.
    """
    variables = list(model.trainable_variables)
    if config.uses_dual_optimizer:
        groups = _dual_finetune_groups(config, *_backbone_and_rest(model, variables))
    elif config.backbone_lr_factor == 1.0:
        optimizer = _make_adamw(config, 1.0)
        if config.model.dtype_policy == 'mixed_float16':
            optimizer = keras.optimizers.LossScaleOptimizer(
                optimizer, initial_scale=config.loss_scale_initial)
        groups = [OptimizerGroup(optimizer, variables)]
    else:
        backbone_vars, other_vars = _backbone_and_rest(model, variables)
        groups = [OptimizerGroup(_make_adamw(config, config.backbone_lr_factor), backbone_vars),
                  OptimizerGroup(_make_adamw(config, 1.0), other_vars)]
    for group in groups:
        group.optimizer.build(group.variables)
    return groups


def loss_scale_of(groups: list[OptimizerGroup]) -> tf.Tensor | None:
    """The current dynamic loss scale, or None without a LossScaleOptimizer."""
    opt = groups[0].optimizer
    if isinstance(opt, keras.optimizers.LossScaleOptimizer):
        return tf.cast(opt.dynamic_scale, tf.float32)
    return None


class TrainStep:
    """Builds the compiled, distributed training step for a model and its optimizers.

    Args:
        model: MetrabsModel (call(images, intrinsics, training) -> dict of predictions).
        groups: from build_optimizers.
        config: TrainConfig.
        strategy: the tf.distribute strategy the model and optimizers were created under.
        step: int64 scalar tf.Variable holding the number of completed steps; incremented here.
        finetune_term: the extra loss of ACAE fine-tuning
            (metrabs.training.consistency.FinetuneTerm);
            default: built from config.finetune_mode / acae_weights over model.joint_names.
            It gets this step's label loss (_pose_loss) to apply to other outputs; in 'hybrid'
            mode the step's own label loss supervises the teacher outputs.
        label_names_2d: the K base names of the batches' 'labels2d' (InputConfig.label_names_2d);
            each supervises the mean projection of the model joints of that base name. Default:
            none (K = 0).

    __call__(distributed_batch, training: bool) -> dict of float32 scalars LOSS_NAMES over the
    global batch, as one device would compute them ('grad_norm': global L2 norm of the
    unclipped, unscaled gradient).
    training=False runs the model in inference mode (batch norm uses moving statistics) while
    still updating weights: used for the final bn_inference_steps steps.
    """

    def __init__(self, model: keras.Model, groups: list[OptimizerGroup], config: TrainConfig,
                 strategy: tf.distribute.Strategy, step: tf.Variable, finetune_term=None,
                 label_names_2d: Sequence[str] = ()):
        if finetune_term is None and config.uses_acae:
            acae = AcaeMatrices.load(
                config.acae_weights, model.joint_names,
                require_all=config.finetune_mode != 'output_reg')
            finetune_term = consistency.FinetuneTerm(config.finetune_mode, acae, config,
                                                     len(model.joint_names))
        self.finetune_term = finetune_term
        self.label_names_2d = tuple(label_names_2d)
        self.groups_2d = tf.constant(
            labels2d_lib.group_matrix(model.joint_names, self.label_names_2d)
            if self.label_names_2d else np.zeros([0, len(model.joint_names)], np.float32))
        self.model = model
        self.groups = groups
        self.config = config
        self.strategy = strategy
        self.step = step
        self._functions: dict[bool, Callable] = {}

    def _mix(self, batch_size, training: bool):
        """This replica's per-example 3D/2D mix weights [B] or None for the model's test-time
        mix. The global batch's weights are U(0, 1), stateless in (seed, step), and each replica
        takes the rows it holds, so any replica layout trains on the same draws."""
        if not (training and self.config.loss.random_mix):
            return None
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.stack([tf.constant(self.config.seed, tf.int64), self.step])
        draws = tf.random.stateless_uniform([self.config.global_batch_size], seed=seed)
        return draws[tf.cast(replica, tf.int32) * batch_size:][:batch_size]

    def _global_sum(self, values: tf.Tensor) -> tf.Tensor:
        """Sum over replicas (the values themselves with one replica)."""
        if self.strategy.num_replicas_in_sync > 1:
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                                  values)
        return values

    def _pose_loss(self, predictions: dict[str, tf.Tensor], intrinsics: tf.Tensor,
                   true3d: tf.Tensor, labels2d: tf.Tensor | None
                   ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """This replica's share of the global-batch MeTRAbs loss (metrabs.training.losses) of
        the absolute output predictions['coords3d_abs_mm'] [B, N, 3] against true3d [B, N, 3]
        (camera frame mm, NaN where unlabelled) and the 2D-only labels2d [B, K, 2] of the
        step's label_names_2d (crop px, NaN where unlabelled; N must then be the model's J), or
        None for no 2D-only labels (e.g. the hybrid's latent points); and its share of each term.
        """
        model_config = self.config.model
        if labels2d is None:
            batch = tf.shape(true3d)[0]
            labels2d = tf.fill([batch, 0, 2], float('nan'))
            groups = tf.zeros([0, tf.shape(true3d)[1]], tf.float32)
        else:
            groups = self.groups_2d
        terms = losses_lib.loss_terms(
            predictions['coords3d_abs_mm'], intrinsics, true3d, labels2d, groups,
            model_config.proc_side, model_config.stride, model_config.box_size_mm,
            self.config.loss)
        # Each term is a mean over its counted entries in the global batch: this replica's sum
        # over the global count. The counts depend only on labels and on the gates (boolean),
        # so they carry no gradient.
        counts = self._global_sum(tf.stack([terms[k][1] for k in losses_lib.TERMS]))
        means = {k: tf.math.divide_no_nan(terms[k][0], counts[i])
                 for i, k in enumerate(losses_lib.TERMS)}
        weights = losses_lib.term_weights(self.step, self.config.loss)
        return tf.add_n([weights[k] * means[k] for k in losses_lib.TERMS]), means

    def _row_mean(self, values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """This replica's share of the mean of values [B] over the global batch's masked rows."""
        mask = tf.cast(mask, tf.float32)
        total = tf.reduce_sum(tf.cast(values, tf.float32) * mask)
        return tf.math.divide_no_nan(total, self._global_sum(tf.reduce_sum(mask)))

    def _replica_step(self, batch: dict[str, tf.Tensor], training: bool):
        n_replicas = self.strategy.num_replicas_in_sync
        variables = [v for g in self.groups for v in g.variables]
        n_labels = batch['labels2d'].shape[1]
        if n_labels is not None and n_labels != len(self.label_names_2d):
            raise ValueError(f'TrainStep: the batches carry {n_labels} 2D label names but '
                             f'label_names_2d has {len(self.label_names_2d)} (pass the input '
                             f"config's label_names_2d)")
        true3d, labels2d = labels_with_nan(batch)
        loss_config = self.config.loss
        loss_scale = loss_scale_of(self.groups)
        mix = self._mix(tf.shape(batch['image'])[0], training)
        weak = self.step < loss_config.weak_perspective_steps
        with tf.GradientTape() as tape:
            predictions = self.model(batch['image'], batch['intrinsics'], training=training,
                                     mix_3d_inside_fov=mix, weak_perspective=weak)
            supervised = predictions
            acae_term = tf.constant(0.0, tf.float32)
            if self.finetune_term is not None:
                supervised = consistency.supervised_outputs(self.finetune_term.mode, predictions)
            # This replica's share of the global loss; with one replica it is the whole loss.
            loss, means = self._pose_loss(supervised, batch['intrinsics'], true3d, labels2d)
            if self.finetune_term is not None:
                acae_term = self.finetune_term(predictions, consistency.LossContext(
                    true3d, labels2d, self.step,
                    pose_loss=lambda pred, t3, l2: self._pose_loss(
                        pred, batch['intrinsics'], t3, l2)[0],
                    row_mean=self._row_mean))
                loss += acae_term
            if self.model.losses:
                loss += tf.add_n([tf.cast(x, tf.float32) for x in self.model.losses]) / n_replicas
            loss_for_grad = loss if loss_scale is None else loss * loss_scale
        grads = tape.gradient(loss_for_grad, variables)
        missing = [v.path for v, g in zip(variables, grads) if g is None]
        if missing:
            raise ValueError(f'TrainStep: no gradient reaches variables {missing[:5]}')
        grads = [tf.cast(g, tf.float32) for g in grads]
        if n_replicas > 1:
            grads = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, grads)
        scale = loss_scale if loss_scale is not None else tf.constant(1.0)
        grad_norm = tf.linalg.global_norm(grads) / scale
        if self.config.grad_clip_norm is not None:
            # Clipping the scaled gradient at clip*scale equals clipping the true one at clip.
            grads, _ = tf.clip_by_global_norm(
                grads, self.config.grad_clip_norm * scale, use_norm=grad_norm * scale)
        if n_replicas > 1:
            grads = [g / n_replicas for g in grads]
        start = 0
        for group in self.groups:
            end = start + len(group.variables)
            group.optimizer.apply(grads[start:end], group.variables)
            start = end
        if n_replicas > 1:
            self._sync_replica_local_state()
        # Summed over replicas (see _make_function) these are the global-batch values.
        return {'loss': loss, **means, 'acae': acae_term, 'grad_norm': grad_norm / n_replicas}

    def _sync_replica_local_state(self):
        """Averages non-trainable state (batch-norm moving statistics) across replicas.

        Keras creates these variables with aggregation 'none', and a replica-context assign to
        such a mirrored variable updates only the local copy, so replicas (and workers) would
        drift apart. Every replica started from the same value and applied
        m * old + (1 - m) * its_moments, so the mean over replicas equals the single-device
        update with the mean of all ghost groups' moments.
        """
        variables = [v for v in self.model.non_trainable_variables
                     if getattr(v, 'aggregation', 'none') == 'none'
                     and v.dtype in ('float16', 'float32', 'float64', 'bfloat16')]
        if not variables:
            return
        # tf.identity places the values on this replica's device: variable reads are colocated
        # with the variable and carry no device in MultiWorkerMirroredStrategy graphs, which
        # its all-reduce rejects ('destinations can not be empty').
        local_values = [tf.identity(tf.convert_to_tensor(v)) for v in variables]
        averaged = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.MEAN, local_values)
        for variable, value in zip(variables, averaged):
            variable.assign(value)

    def _make_function(self, training: bool):
        def distributed_step(distributed_batch):
            per_replica = self.strategy.run(
                self._replica_step, args=(distributed_batch,), kwargs=dict(training=training))
            self.step.assign_add(1)
            return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in per_replica.items()}
        return tf.function(distributed_step)

    def __call__(self, distributed_batch, training: bool = True) -> dict[str, tf.Tensor]:
        if training not in self._functions:
            self._functions[training] = self._make_function(training)
        return self._functions[training](distributed_batch)
