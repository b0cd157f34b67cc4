"""FinetuneConfig: how a consistency fine-tuning optimises and weighs its terms.

The defaults are the released code's (github.com/isarandi/metrabs, metrabs_tf/init.py flags and
main.py's --dual-finetune-lr; the flag is given in brackets). The fine-tuning variant itself and
the ACAE file are TrainConfig.finetune_mode / acae_weights, the output-regularisation weight
TrainConfig.lambda_acae [--loss-manif-factor]; the run length is TrainConfig.training_steps
(released: 40k; `RELEASED_FINETUNE_STEPS`).
"""
from __future__ import annotations

import dataclasses

RELEASED_FINETUNE_STEPS = 40_000
"""Fine-tuning steps of the released runs (docs/TRAINING.md: --training-steps=40000)."""

OPTIMIZERS = ('dual', 'single')


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Attributes:
        optimizer: 'dual' [--dual-finetune-lr]: two AdamW optimizers, the backbone at
            base_learning_rate * backbone_lr_factor decaying smoothly by backbone_lr_decay over
            the run, every other variable (the heads) at base_learning_rate decaying by x1/3 until
            head_restart_fraction of the run, then restarting at base/30 and decaying by x0.3
            (the released lr_schedule_finetune_low / _high). 'single': the pretraining optimizer
            of TrainConfig (its lr_schedule and backbone_lr_factor).
        backbone_lr_factor: ('dual') the backbone's starting LR relative to base_learning_rate
            (released 1/30).
        backbone_lr_decay: ('dual') the factor the backbone's LR decays by over the run (0.3).
        head_restart_fraction: ('dual') the fraction of the run after which the heads' LR
            restarts at base/30 (0.5).
        weight_decay_steps: the step count the decoupled weight decay is normalised by
            (TrainConfig.normalize_weight_decay): the released fine-tuning keeps the pretraining
            length, 400k; None: this run's training_steps.
        rows2d_factor: weight of 2D-only rows (no 3D label) in the ACAE terms [--loss2d-factor].
        reg2d_factor: extra factor of the output regularisation on 2D-only rows
            [--loss-manif-factor2d]; the hybrid variant halves both of its 2D-only-row terms, as
            released.
        teacher_start_step: the hybrid's distillation term counts after this step
            [--teacher-start-step].
        teacher_loss_factor: the distillation term's weight from then on [--teacher-loss-factor].
        teacher_ae_gt_factor: the hybrid's supervision of the teacher's ACAE reconstruction by the
            labels [--allhead-aegt-loss-factor].
    """

    optimizer: str = 'dual'
    backbone_lr_factor: float = 1 / 30
    backbone_lr_decay: float = 0.3
    head_restart_fraction: float = 0.5
    weight_decay_steps: int | None = 400_000
    rows2d_factor: float = 0.2
    reg2d_factor: float = 1.0
    teacher_start_step: int = 5000
    teacher_loss_factor: float = 1.0
    teacher_ae_gt_factor: float = 1.0

    def __post_init__(self):
        def fail(field, message):
            raise ValueError(f'FinetuneConfig.{field}: {message}')

        if self.optimizer not in OPTIMIZERS:
            fail('optimizer', f'must be one of {OPTIMIZERS}, got {self.optimizer!r}')
        for field in ('backbone_lr_factor', 'backbone_lr_decay'):
            if not getattr(self, field) > 0:
                fail(field, f'must be > 0, got {getattr(self, field)}')
        if not 0 < self.head_restart_fraction < 1:
            fail('head_restart_fraction', f'must be in (0, 1), got {self.head_restart_fraction}')
        if self.weight_decay_steps is not None and self.weight_decay_steps < 1:
            fail('weight_decay_steps', f'must be >= 1 or None, got {self.weight_decay_steps}')
        for field in ('rows2d_factor', 'reg2d_factor', 'teacher_loss_factor',
                      'teacher_ae_gt_factor', 'teacher_start_step'):
            if getattr(self, field) < 0:
                fail(field, f'must be >= 0, got {getattr(self, field)}')

