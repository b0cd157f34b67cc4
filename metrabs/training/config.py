"""TrainConfig: hyper-parameters of the MeTRAbs training loop, with the reference defaults.

The model's own hyper-parameters live in `metrabs.model.config.ModelConfig`, the loss weights in
`metrabs.training.config.LossConfig`; a TrainConfig holds both plus everything the loop needs.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from metrabs.model.config import ModelConfig
from metrabs.training.finetune_config import FinetuneConfig

FINETUNE_MODES = ('none', 'control', 'output_reg', 'latent', 'hybrid')


class RandomBackboneError(ValueError):
    """A fresh run would start from a random backbone (TrainConfig.require_backbone_weights)."""


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The MeTRAbs loss as released (terms and gates: metrabs.training.losses):
    meanrel + proj_weight * proj + lambda_abs * abs + loss2d_factor * proj2d, all on the
    reconstructed absolute pose.

    Attributes:
        proj_weight: weight of the projection term of 3D-labelled rows (released: 1), in metres
            at box scale (pixels x box_size_mm / proc_side / 1000).
        loss2d_factor: weight of the 2D-only rows' projection term (released: 0.2).
        lambda_abs: weight of the absolute 3D term (released: 0.1).
        abs_loss_start_step: training step from which the abs term counts (before it, weight 0;
            released: 5000).
        random_mix: in training (batch norm in training mode), draw the 3D/2D mix of the
            reconstruction uniformly in [0, 1] per example (released); otherwise use the model's
            test-time ModelConfig.mix_3d_inside_fov.
        weak_perspective_steps: the first N steps reconstruct with the weak-perspective fit
            (released: 500; the heads disagree too much early on for the full fit).
        min_depth_mm: joints count in the proj and abs terms only if their true depth exceeds
            this (released: 300 mm).
        far_depth_mm: the abs term's depth error is scaled by min(1, far_depth_mm / depth)
            (released: 10 m), so metre-scale depth errors of distant people do not dominate.
        fov_border_factor: the predicted 2D must lie this many strides inside the crop border
            (released: 0.75, the reconstruction's in-view test).
        near_fov_border_factor: the true 2D must lie within -this many strides outside the
            crop (released: -20).
        lambda_proj: weight of the 2D part of the ACAE consistency terms
            (metrabs.training.consistency; crop-size normalised L1), not of the MeTRAbs loss.
    """

    proj_weight: float = 1.0
    loss2d_factor: float = 0.2
    lambda_abs: float = 0.1
    abs_loss_start_step: int = 5000
    random_mix: bool = True
    weak_perspective_steps: int = 500
    min_depth_mm: float = 300.0
    far_depth_mm: float = 10000.0
    fov_border_factor: float = 0.75
    near_fov_border_factor: float = -20.0
    lambda_proj: float = 0.2

    def __post_init__(self):
        for field in ('proj_weight', 'loss2d_factor', 'lambda_abs', 'lambda_proj'):
            if getattr(self, field) < 0:
                raise ValueError(f'LossConfig.{field}: must be >= 0, got {getattr(self, field)}')
        for field in ('abs_loss_start_step', 'weak_perspective_steps'):
            if getattr(self, field) < 0:
                raise ValueError(f'LossConfig.{field}: must be >= 0, got {getattr(self, field)}')
        if not self.far_depth_mm > 0:
            raise ValueError(f'LossConfig.far_depth_mm: must be > 0, got {self.far_depth_mm}')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training-loop settings (steps count optimizer updates; batch sizes count examples).

    Attributes:
        model: architecture (see ModelConfig).
        loss: loss weights and the L_abs start step (see LossConfig).
        training_steps: total optimizer steps T (reference: 400k; fine-tuning 40k).
        global_batch_size: examples per step summed over all replicas and workers; must be
            divisible by the number of replicas (reference: 128). With --data=tfrecords it must
            equal the input config's rows per batch (the mix's batch_size_3d + batch_size_2d);
            metrabs.train refuses a mismatch rather than pick one.
        base_learning_rate: LR at step 0 (reference 2.121e-4).
        lr_schedule: 'reference' (default; the released MeTRAbs code, metrabs_tf/main.py
            lr_schedule: a smooth decay by x1/3 over the first 92 %, then a restart at base/30
            decaying by x0.3 to base/100 over the last 8 %) or 'constant_then_decay' (constant
            for 92 %, then a smooth x1/3 decay). See metrabs.training.lr_schedule.
        lr_decay_start_fraction: where the last phase starts, fraction of training_steps (0.92).
        weight_decay: decoupled weight decay as the reference's flag value (3e-3).
        normalize_weight_decay: if True (reference), the AdamW coefficient is
            weight_decay / sqrt(training_steps) / base_learning_rate, because Keras multiplies the
            decay by the current LR; if False, `weight_decay` is passed to AdamW unchanged.
        adam_epsilon: AdamW epsilon.
        backbone_lr_factor: LR multiplier for backbone variables (fine-tuning uses < 1); 1.0 uses
            a single optimizer. With a factor != 1, two AdamW optimizers are used (backbone and
            the rest), each with the same schedule times its factor.
        grad_clip_norm: clip the global-batch gradient to this global L2 norm; None disables.
        bn_inference_steps: the last N steps run the model with training=False, so batch norm
            uses (and no longer updates) its moving statistics (reference: 1000).
        loss_scale_initial: initial dynamic loss scale, used only under 'mixed_float16'.
        seed: seeds weight initialisation and the synthetic data.
        deterministic: enable TF op determinism (needed for bit-reproducible resume).
        checkpoint_every: save a checkpoint every N steps (and at the end).
        checkpoints_to_keep: how many checkpoints CheckpointManager keeps.
        log_every: write scalar summaries and a log line every N steps.
        image_summary_every: write prediction image summaries every N steps (0: never).
        validate_every: run validation every N steps when a validation dataset_fn is given
            (0: never).
        validation_steps: batches per validation run (None: until the dataset ends).
        require_backbone_weights: a fresh run (neither resumed nor --init-from) refuses to start
            when model.backbone_weights is None, i.e. from a random backbone (the released code
            always starts from ImageNet). True by default so that every real-data config
            inherits it; set False to train from random weights on purpose (the CPU configs,
            whose 'small'/'small-deep'/'tiny' backbones have no ImageNet weights).
        finetune_mode: ACAE consistency fine-tuning (metrabs.training.consistency): 'none'
            (pretraining), 'control' (the fine-tuning without any ACAE: the separate-head model
            trained on with the fine-tuning's optimizer, for comparison), 'output_reg' (a: extra
            L1 between the output and its ACAE reconstruction), 'latent' (b: latent head, outputs
            W_dec @ latents) or 'hybrid' (c: full head as teacher + latent head as student).
        acae_weights: path of the frozen ACAE's weights.npz (needed by the ACAE variants).
        lambda_acae: weight of the output regularisation of 'output_reg' and of the hybrid's
            teacher [--loss-manif-factor].
        finetune: optimiser and loss weights of every finetune_mode but 'none' (FinetuneConfig;
            the released defaults).
    """

    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    training_steps: int = 400_000
    global_batch_size: int = 128
    base_learning_rate: float = 2.121e-4
    lr_schedule: str = 'reference'
    lr_decay_start_fraction: float = 0.92
    weight_decay: float = 3e-3
    normalize_weight_decay: bool = True
    adam_epsilon: float = 1e-8
    backbone_lr_factor: float = 1.0
    grad_clip_norm: float | None = None
    bn_inference_steps: int = 1000
    loss_scale_initial: float = 2.0 ** 15
    seed: int = 0
    deterministic: bool = True
    checkpoint_every: int = 2000
    checkpoints_to_keep: int = 3
    log_every: int = 100
    image_summary_every: int = 5000
    validate_every: int = 0
    validation_steps: int | None = None
    require_backbone_weights: bool = True
    finetune_mode: str = 'none'
    acae_weights: str | None = None
    lambda_acae: float = 1.0
    finetune: FinetuneConfig = FinetuneConfig()

    def __post_init__(self):
        def fail(field, message):
            raise ValueError(f'TrainConfig.{field}: {message}')

        if self.training_steps < 1:
            fail('training_steps', f'must be >= 1, got {self.training_steps}')
        if self.global_batch_size < 1:
            fail('global_batch_size', f'must be >= 1, got {self.global_batch_size}')
        if not self.base_learning_rate > 0:
            fail('base_learning_rate', f'must be > 0, got {self.base_learning_rate}')
        if self.lr_schedule not in ('reference', 'constant_then_decay'):
            fail('lr_schedule', f"must be 'reference' or 'constant_then_decay', "
                                f'got {self.lr_schedule!r}')
        if not 0.0 < self.lr_decay_start_fraction < 1.0:
            fail('lr_decay_start_fraction',
                 f'must be in (0, 1), got {self.lr_decay_start_fraction}')
        if self.weight_decay < 0:
            fail('weight_decay', f'must be >= 0, got {self.weight_decay}')
        if not self.backbone_lr_factor > 0:
            fail('backbone_lr_factor', f'must be > 0, got {self.backbone_lr_factor}')
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            fail('grad_clip_norm', f'must be > 0 or None, got {self.grad_clip_norm}')
        if self.backbone_lr_factor != 1.0 and self.model.dtype_policy == 'mixed_float16':
            # One dynamic loss scale cannot be shared consistently by two Keras optimizers.
            fail('backbone_lr_factor', 'a separate backbone LR is not supported together with '
                                       "model.dtype_policy='mixed_float16'")
        if self.finetune_mode not in FINETUNE_MODES:
            fail('finetune_mode', f'must be one of {FINETUNE_MODES}, got {self.finetune_mode!r}')
        if self.uses_acae and not self.acae_weights:
            fail('acae_weights', f'finetune_mode={self.finetune_mode!r} needs the ACAE weights '
                                 f'file')
        if self.lambda_acae < 0:
            fail('lambda_acae', f'must be >= 0, got {self.lambda_acae}')
        if self.uses_dual_optimizer and self.model.dtype_policy == 'mixed_float16':
            fail('finetune', "optimizer='dual' (two optimizers) is not supported together with "
                             "model.dtype_policy='mixed_float16' (one dynamic loss scale cannot be "
                             "shared by two Keras optimizers); use float32 or mixed_bfloat16, or "
                             "finetune.optimizer='single'")
        for field in ('bn_inference_steps', 'image_summary_every', 'validate_every'):
            if getattr(self, field) < 0:
                fail(field, f'must be >= 0, got {getattr(self, field)}')
        for field in ('checkpoint_every', 'checkpoints_to_keep', 'log_every'):
            if getattr(self, field) < 1:
                fail(field, f'must be >= 1, got {getattr(self, field)}')

    def check_fresh_start(self, where: str = 'TrainConfig'):
        """Raises RandomBackboneError naming `where` if a fresh run would start from a random
        backbone although require_backbone_weights is set."""
        if self.require_backbone_weights and self.model.backbone_weights is None:
            raise RandomBackboneError(
                f"{where}: model.backbone_weights is not set, so training would start from a "
                f"randomly initialised {self.model.backbone!r} backbone; the released MeTRAbs "
                f"always starts from ImageNet. Set model.backbone_weights to 'imagenet' (Keras "
                f"downloads the weights; without internet, save them with `python -m "
                f"metrabs.save_backbone_weights` where there is internet and give the file), "
                f"or to a weights file (--backbone-weights=...), or set "
                f'"require_backbone_weights": false to train from random weights on purpose')

    @property
    def uses_acae(self) -> bool:
        """Whether finetune_mode needs the ACAE (every fine-tuning but 'control')."""
        return self.finetune_mode not in ('none', 'control')

    @property
    def uses_dual_optimizer(self) -> bool:
        """A fine-tuning run with FinetuneConfig.optimizer == 'dual'."""
        return self.finetune_mode != 'none' and self.finetune.optimizer == 'dual'

    @property
    def keras_weight_decay(self) -> float:
        """The coefficient handed to keras.optimizers.AdamW (see normalize_weight_decay)."""
        if not self.normalize_weight_decay:
            return self.weight_decay
        return self.weight_decay / math.sqrt(self.training_steps) / self.base_learning_rate

    @property
    def bn_inference_start_step(self) -> int:
        """First step run with training=False (batch norm in inference mode)."""
        return max(self.training_steps - self.bn_inference_steps, 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = '<dict>') -> TrainConfig:
        """Builds a config from plain values; unknown keys raise naming `source` and the key."""
        d = dict(d)
        nested = {'model': ModelConfig, 'loss': LossConfig, 'finetune': FinetuneConfig}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KeyError(f'{source}: unknown TrainConfig fields {unknown}')
        for key, sub_cls in nested.items():
            if key in d:
                if not isinstance(d[key], dict):
                    raise ValueError(f'{source}: field {key!r} must be an object')
                sub_known = {f.name for f in dataclasses.fields(sub_cls)}
                sub_unknown = sorted(set(d[key]) - sub_known)
                if sub_unknown:
                    raise KeyError(f'{source}: unknown {key}.* fields {sub_unknown}')
                d[key] = sub_cls(**d[key])
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TrainConfig:
        """Reads a JSON file holding (a subset of) the fields; missing ones keep their default."""
        try:
            with open(path) as f:
                d = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid JSON: {e}') from e
        if not isinstance(d, dict):
            raise ValueError(f'{path}: the top level must be a JSON object')
        return cls.from_dict(d, source=str(path))

    def save_json(self, path: str | os.PathLike):
        """Writes the config atomically (temporary name, then rename)."""
        tmp = f'{path}.tmp{os.getpid()}'
        with open(tmp, 'w') as f:
            json.dump(self.to_dict(), f, indent=2)
        os.replace(tmp, path)
