"""How big a rehearsal is, and the only changes it makes to the paper's configurations.

The paper's configs (configs/*paper28*.json) run as they are except for what a CPU cannot do:
the backbone (a small CNN instead of EfficientNetV2, so no ImageNet weights), the sizes (input
and stored crop side, rows per batch) and the step counts (every `*_steps`, `*_step` and
`*_every` field scales with the run length, so schedules keep their shape). Everything else (the
loss, the LR schedule, mixed precision, ghost batch norm, the ACAE and fine-tuning settings)
is the paper's. `overrides` lists every changed field, for the summary.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Size:
    """Attributes:
        name: 'ci' or 'default'.
        backbone: the CPU backbone (metrabs.model.backbones: 'tiny' or 'small').
        proc_side: model input side, px (the paper: 256 or 384).
        crop_size: stored crop side of the build, px (the paper's 640 at 256 px input: 2.5x).
        rows_3d, rows_2d: rows per batch of the 3D and the 2D datasets (the paper: 96 + 32),
            shared over the datasets in proportion to the paper's counts, at least one each.
        train_steps, finetune_steps, acae_steps: run lengths (the paper: 400k, 40k, 30k).
    """
    name: str
    backbone: str
    proc_side: int
    crop_size: int
    rows_3d: int
    rows_2d: int
    train_steps: int
    finetune_steps: int
    acae_steps: int

    @property
    def batch_size(self) -> int:
        return self.rows_3d + self.rows_2d


SIZES = {
    # The CI test: every dataset once per batch, a handful of steps.
    'ci': Size('ci', backbone='tiny', proc_side=64, crop_size=160, rows_3d=28, rows_2d=4,
               train_steps=20, finetune_steps=10, acae_steps=200),
    # ./run.sh rehearsal: under 20 minutes on 2 CPU cores (README, "Reproducing the paper").
    'default': Size('default', backbone='small', proc_side=128, crop_size=320, rows_3d=48,
                    rows_2d=16, train_steps=300, finetune_steps=100, acae_steps=3000),
}

_STEP_SUFFIXES = ('_steps', '_step')


def scale_steps(config: Mapping[str, Any], steps: int, prefix: str = ''
                ) -> tuple[dict[str, Any], list[tuple[str, Any, Any]]]:
    """A copy of a (nested) config dict with `training_steps` set to `steps` and every other
    step-valued field scaled to match, plus the list of (field, old, new) changes.

    `*_steps` / `*_step` fields (step counts and positions in the run: L_abs start, BN
    inference phase, weight-decay normalisation length, ...) scale by steps / training_steps and
    stay >= 1 where they were; `*_every` intervals are capped at `steps`."""
    ratio = steps / config['training_steps'] if 'training_steps' in config else None
    out, changes = {}, []

    def walk(src, dst, path, ratio):
        for key, value in src.items():
            name = f'{path}{key}'
            if isinstance(value, Mapping):
                dst[key] = {}
                walk(value, dst[key], f'{name}.', ratio)
                continue
            new = value
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                if key == 'training_steps':
                    new = steps
                elif key.endswith(_STEP_SUFFIXES) and ratio is not None:
                    new = max(1, round(value * ratio))
                elif key.endswith('_every'):
                    new = min(value, steps)
            if new != value:
                changes.append((name, value, new))
            dst[key] = new

    walk(config, out, prefix, ratio)
    return out, changes


def set_field(config: dict, dotted: str, value: Any, changes: list) -> None:
    """Sets config['a']['b'] for 'a.b', recording the change."""
    *parents, key = dotted.split('.')
    node = config
    for parent in parents:
        node = node[parent]
    if node.get(key) != value:
        changes.append((dotted, node.get(key), value))
    node[key] = value
