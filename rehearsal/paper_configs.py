"""The paper's configurations (configs/paper28/, README there) as the rehearsal runs them.

Two kinds of file: metrabs.train configs (TrainConfig JSON: base_*.json, finetune_*.json) and
command configs (pseudo_gt.json, acae.json): the flags of `python -m metrabs.pseudo_gt` /
`python -m acae.train` as {flag_name: value}, turned into argv by `command_flags`.
"""
from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from typing import Any

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'
PAPER = CONFIGS / 'paper28'
MIX = CONFIGS / 'mix_paper28.json'
# The rehearsal runs the paper's largest model's configs (the released 28-dataset models are
# EfficientNetV2-L at 384 px) with its CPU overrides (rehearsal/sizes.py).
TRAIN = PAPER / 'base_effv2l_384.json'
FINETUNE = PAPER / 'finetune_effv2l_384_hybrid.json'
PSEUDO_GT = PAPER / 'pseudo_gt.json'
ACAE = PAPER / 'acae.json'


def command_flags(path: pathlib.Path, overrides: Mapping[str, Any] | None = None) -> list[str]:
    """A command config ({flag_name: value}; keys starting with '_' are comments) with
    `overrides` as argv: 'batch_size': 32 -> '--batch-size=32'; True -> the bare flag; False ->
    '--no-<flag>' (argparse.BooleanOptionalAction); None -> left out (the command's default)."""
    config = json.loads(pathlib.Path(path).read_text())
    if not isinstance(config, dict):
        raise ValueError(f'{path}: a command config is a JSON object of flag names')
    flags = {k: v for k, v in config.items() if not k.startswith('_')}
    flags.update(overrides or {})
    argv = []
    for key, value in flags.items():
        flag = key.replace('_', '-')
        if value is True:
            argv.append(f'--{flag}')
        elif value is False:
            argv.append(f'--no-{flag}')
        elif value is not None:
            argv.append(f'--{flag}={value}')
    return argv
