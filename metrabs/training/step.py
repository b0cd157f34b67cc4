"""The MeTRAbs training step: loss, gradients, loss scaling, clipping, optimizer update.

THE BATCH CONTRACT. The input pipeline delivers one *global* batch per step as a dict:
    'image'         float32 [B, S, S, 3]  crop pixels, RGB in [0, 1]; S = ModelConfig.proc_side
    'intrinsics'    float32 [B, 3, 3]     intrinsic matrix K of the crop camera (crop pixels)
    'coords3d_cam'  float32 [B, J, 3]     crop-camera frame, millimetres; 0 where not valid3d
    'valid3d'       bool    [B, J]        3D label present (all False for 2D-only examples)
    'coords2d'      float32 [B, J, 2]     crop pixels; 0 where not valid2d
    'valid2d'       bool    [B, J]        2D label present
    'dataset_index' int32   [B]           which training dataset the example comes from
J is the number of model output joints (the joint union, in the model's order). B is the
global batch size (TrainConfig.global_batch_size); see metrabs.train for how a global batch is
split across replicas and workers.

Distributed semantics. Each replica computes the gradient of its share of the global-batch loss
(every loss term weighted by the replica's fraction of the global count of labelled joints);
the gradients are summed across replicas here, so every replica holds the gradient of the mean loss
over the global batch before clipping. This makes the update the same as one device processing
the whole batch (up to float summation order), given ghost batch norm groups that do not cross
replica boundaries. Keras optimizers all-reduce (sum) gradients once more inside `apply`; the
already-reduced gradients are divided by n_replicas before being handed over, so that second
sum restores them. That costs one extra all-reduce per step, in exchange for clipping and the
loss-scale finiteness check seeing the true global gradient on every replica.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import tensorflow as tf

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
    'dataset_index': (tf.int32, 1),
}
"""Field name -> (dtype, rank) of the batch contract above."""

LOSS_NAMES = ('loss', 'meanrel', 'proj', 'abs', 'acae', 'grad_norm')
"""'acae': the extra terms of ACAE fine-tuning, weighted as they enter 'loss' (0 without; see
metrabs.training.consistency). In 'hybrid' mode 'meanrel', 'proj', 'abs' are the teacher's."""


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
        coords3d_cam [B, J, 3] mm, coords2d [B, J, 2] crop px, float32, NaN where invalid.
    """
    nan = tf.constant(float('nan'), tf.float32)
    coords3d = tf.where(batch['valid3d'][..., None], batch['coords3d_cam'], nan)
    coords2d = tf.where(batch['valid2d'][..., None], batch['coords2d'], nan)
    return coords3d, coords2d


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

    __call__(distributed_batch, training: bool) -> dict of float32 scalars LOSS_NAMES over the
    global batch, as one device would compute them ('grad_norm': global L2 norm of the
    unclipped, unscaled gradient).
    training=False runs the model in inference mode (batch norm uses moving statistics) while
    still updating weights: used for the final bn_inference_steps steps.
    """

    def __init__(self, model: keras.Model, groups: list[OptimizerGroup], config: TrainConfig,
                 strategy: tf.distribute.Strategy, step: tf.Variable, finetune_term=None):
        if finetune_term is None and config.uses_acae:
            acae = AcaeMatrices.load(
                config.acae_weights, model.joint_names,
                require_all=config.finetune_mode != 'output_reg')
            finetune_term = consistency.FinetuneTerm(config.finetune_mode, acae, config,
                                                     len(model.joint_names))
        self.finetune_term = finetune_term
        self.model = model
        self.groups = groups
        self.config = config
        self.strategy = strategy
        self.step = step
        self._functions: dict[bool, Callable] = {}

    def _global_sum(self, values: tf.Tensor) -> tf.Tensor:
        """Sum over replicas (the values themselves with one replica)."""
        if self.strategy.num_replicas_in_sync > 1:
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                                  values)
        return values

    def _pose_loss(self, predictions: dict[str, tf.Tensor], true3d: tf.Tensor,
                   true2d: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """This replica's share of the global-batch MeTRAbs loss of `predictions` against labels
        (NaN where unlabelled), and its shares of the terms 'meanrel', 'proj', 'abs'."""
        # Each loss term is a mean over the labelled entries of the batch it sees. Weighting a
        # replica's term by its share of the global label count makes the sum over replicas
        # the global-batch mean, exactly as on one device, however labels are spread.
        counts = tf.stack([tf.reduce_sum(tf.cast(losses_lib.labelled_mask(t), tf.float32))
                           for t in (true3d, true2d)])
        share3d, share2d = tf.unstack(tf.math.divide_no_nan(counts, self._global_sum(counts)))
        loss_config = self.config.loss
        abs_weight = tf.where(self.step >= loss_config.abs_loss_start_step,
                              tf.constant(loss_config.lambda_abs, tf.float32), 0.0)
        terms = losses_lib.combined_loss(
            predictions, true3d, true2d, self.config.model.proc_side, self.step, loss_config)
        loss = (share3d * (terms['meanrel'] + abs_weight * terms['abs'])
                + share2d * loss_config.lambda_proj * terms['proj'])
        return loss, {'meanrel': share3d * terms['meanrel'], 'proj': share2d * terms['proj'],
                      'abs': share3d * terms['abs']}

    def _row_mean(self, values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """This replica's share of the mean of values [B] over the global batch's masked rows."""
        mask = tf.cast(mask, tf.float32)
        total = tf.reduce_sum(tf.cast(values, tf.float32) * mask)
        return tf.math.divide_no_nan(total, self._global_sum(tf.reduce_sum(mask)))

    def _replica_step(self, batch: dict[str, tf.Tensor], training: bool):
        n_replicas = self.strategy.num_replicas_in_sync
        variables = [v for g in self.groups for v in g.variables]
        true3d, true2d = labels_with_nan(batch)
        loss_scale = loss_scale_of(self.groups)
        with tf.GradientTape() as tape:
            predictions = self.model(batch['image'], batch['intrinsics'], training=training)
            supervised = predictions
            acae_term = tf.constant(0.0, tf.float32)
            if self.finetune_term is not None:
                supervised = consistency.supervised_outputs(self.finetune_term.mode, predictions)
            # This replica's share of the global loss; with one replica the plain batch loss.
            loss, terms = self._pose_loss(supervised, true3d, true2d)
            if self.finetune_term is not None:
                acae_term = self.finetune_term(predictions, consistency.LossContext(
                    true3d, true2d, self.step,
                    pose_loss=lambda pred, t3, t2: self._pose_loss(pred, t3, t2)[0],
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
        return {'loss': loss, **terms, 'acae': acae_term, 'grad_norm': grad_norm / n_replicas}

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
