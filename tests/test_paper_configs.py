"""The paper's configurations (configs/paper28/): every file loads and validates through the code
that runs it, and holds the paper's numbers (hand-copied here from the paper and the released
code, metrabs_tf/main.py and init.py; /work/shared/DESIGN.md), not values re-derived from our
own defaults.

- base_<backbone>_<px>.json, finetune_<backbone>_<px>_<variant>.json: metrabs.train configs
  (TrainConfig.from_json, the loader `python -m metrabs.train --config` uses);
- pseudo_gt.json, acae.json: flags of `python -m metrabs.pseudo_gt` / `python -m acae.train`,
  parsed by those commands' own argument parsers.
"""
import json

import pytest

from metrabs.training.config import TrainConfig
from posepile import mix
from rehearsal.paper_configs import PAPER, command_flags

BACKBONES = {'effv2s': 'efficientnetv2-s', 'effv2l': 'efficientnetv2-l'}
SIDES = (256, 384)
VARIANTS = ('output_reg', 'latent', 'hybrid')
BASE = [f'base_{b}_{s}.json' for b in BACKBONES for s in SIDES]
FINETUNE = [f'finetune_{b}_{s}_{v}.json' for b in BACKBONES for s in SIDES for v in VARIANTS]


def test_the_directory_holds_exactly_the_paper_configs():
    expected = set(BASE) | set(FINETUNE) | {'pseudo_gt.json', 'acae.json'}
    assert {p.name for p in PAPER.glob('*.json')} == expected


def _train_config(name):
    config = TrainConfig.from_json(PAPER / name)
    backbone, side = name.removesuffix('.json').split('_')[1:3]
    assert config.model.backbone == BACKBONES[backbone]
    assert config.model.proc_side == int(side)
    # The paper's training: batch 128 (96 3D + 32 2D rows), float16 with loss scaling, ghost BN
    # groups of 16, base LR 2.121e-4 with the released schedule, decay 3e-3, BN in inference
    # mode for the last 1000 steps.
    # ImageNet initialisation (Keras' weights of the keras.applications backbone), and a
    # fresh run refuses a random backbone.
    assert config.model.backbone_weights == 'imagenet' and config.require_backbone_weights
    assert config.global_batch_size == 128
    assert config.model.ghost_bn_group_size == 16
    assert config.base_learning_rate == pytest.approx(2.121e-4)
    assert config.lr_schedule == 'reference'
    assert config.weight_decay == pytest.approx(3e-3) and config.normalize_weight_decay
    assert config.bn_inference_steps == 1000
    assert config.model.stride == 32 and config.model.depth == 8
    assert config.model.box_size_mm == 2200
    return config


@pytest.mark.parametrize('name', BASE)
def test_base_configs(name):
    config = _train_config(name)
    assert config.training_steps == 400_000
    assert config.finetune_mode == 'none'
    assert config.model.dtype_policy == 'mixed_float16'


@pytest.mark.parametrize('name', FINETUNE)
def test_finetune_configs(name):
    config = _train_config(name)
    assert config.training_steps == 40_000
    assert config.finetune_mode == name.removesuffix('.json').split('_', 3)[3]
    assert config.acae_weights
    # The released fine-tuning optimiser: the backbone at base/30 decaying x0.3, the heads at
    # the base LR with their own restart half-way, weight decay normalised by the 400k
    # pretraining steps. Its two optimizers cannot share one dynamic float16 loss scale, so
    # the fine-tunings run in mixed_bfloat16 (the released code: float16, static scale 128).
    assert config.finetune.optimizer == 'dual'
    assert config.finetune.backbone_lr_factor == pytest.approx(1 / 30)
    assert config.finetune.backbone_lr_decay == pytest.approx(0.3)
    assert config.finetune.head_restart_fraction == pytest.approx(0.5)
    assert config.finetune.weight_decay_steps == 400_000
    assert config.finetune.teacher_start_step == 5000
    assert config.model.dtype_policy == 'mixed_bfloat16'


def test_each_finetuning_differs_from_its_base_only_in_the_finetuning_fields():
    finetune_fields = {'training_steps', 'finetune_mode', 'acae_weights', 'lambda_acae',
                       'finetune', 'backbone_lr_factor', 'model.dtype_policy'}
    for name in FINETUNE:
        base = TrainConfig.from_json(PAPER / ('base_' + '_'.join(name.split('_')[1:3]) + '.json'))
        tuned = TrainConfig.from_json(PAPER / name)
        differ = {k for k, v in tuned.to_dict().items() if k != 'model' and base.to_dict()[k] != v}
        differ |= {f'model.{k}' for k, v in tuned.to_dict()['model'].items()
                   if base.to_dict()['model'][k] != v}
        assert differ <= finetune_fields, (name, differ - finetune_fields)


def test_the_mix_fills_the_configs_batch():
    paper = mix.load_mix(PAPER.parent / 'mix_paper28.json')
    rows = sum(e.examples_per_batch for e in paper.datasets)
    assert rows == paper.batch_size_3d + paper.batch_size_2d == 128
    for name in BASE + FINETUNE:
        assert json.loads((PAPER / name).read_text())['global_batch_size'] == rows


def test_acae_config_parses_as_the_commands_flags():
    from acae import train
    parser = train.build_parser()
    args = parser.parse_args(['--poses=p.npz', '--out=o', *command_flags(PAPER / 'acae.json')])
    # The released ACAE: 48 latents (20 left/right pairs + 8 centre), a 30k-step fit.
    assert args.latents == 48
    assert args.steps == 30_000
    assert not args.no_chiral
    with pytest.raises(SystemExit):  # the parser really rejects what it does not know
        parser.parse_args(['--poses=p.npz', '--out=o', '--latent-count=48'])


def test_pseudo_gt_config_parses_as_the_commands_flags():
    from metrabs import pseudo_gt
    parser = pseudo_gt.build_parser()
    args = parser.parse_args(['--model=m', '--out=p.npz', '--input-config=i.json',
                              *command_flags(PAPER / 'pseudo_gt.json')])
    assert args.flip_average  # the released mirror TTA
    assert args.batch_size == 32
    with pytest.raises(SystemExit):
        parser.parse_args(['--model=m', '--out=p.npz', '--flip-averaging'])
