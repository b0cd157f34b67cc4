"""The backbone names, paddings and weight sources a ModelConfig may name, without TensorFlow.

ModelConfig validates itself when it is created, and TrainConfig creates a default one when its
module is imported, so these checks must not import TensorFlow: the commands answer --help
before it loads (posepile/cli.py). metrabs.model.backbones builds the networks behind the names.
"""
from __future__ import annotations

import os

# Name -> input preprocessing of the keras.applications backbones (ImageNet weights exist).
IMAGENET_PREPROCESSING: dict[str, str] = {
    'efficientnetv2-b0': 'imagenet_meanstd',
    'efficientnetv2-b1': 'imagenet_meanstd',
    'efficientnetv2-b2': 'imagenet_meanstd',
    'efficientnetv2-b3': 'imagenet_meanstd',
    'efficientnetv2-s': 'symmetric_128',
    'efficientnetv2-m': 'symmetric_128',
    'efficientnetv2-l': 'symmetric_128',
    'resnet50': 'caffe',
    'resnet101': 'caffe',
    'resnet152': 'caffe',
    'mobilenetv3-small': 'symmetric_127.5',
    'mobilenetv3-large': 'symmetric_127.5',
}
IMAGENET_BACKBONES: tuple[str, ...] = tuple(IMAGENET_PREPROCESSING)
"""Backbones with ImageNet weights from keras.applications (not the CPU ones)."""
CPU_BACKBONES: tuple[str, ...] = ('small', 'small-deep', 'tiny')
"""This project's small backbones for CPU runs and tests (no pretrained weights)."""
BACKBONE_NAMES: tuple[str, ...] = (*IMAGENET_BACKBONES, *CPU_BACKBONES)
PADDINGS = ('aligned', 'same')


def check_name(name: str):
    if name not in BACKBONE_NAMES:
        raise KeyError(f'unknown backbone {name!r}; known: {", ".join(BACKBONE_NAMES)}')


def check_weights_source(name: str, weights: str | None, where: str = 'backbone_weights'):
    """ValueError naming `where` if `weights` cannot initialise backbone `name`: 'imagenet' for a
    CPU backbone (they have no ImageNet weights) or a path that is not a file."""
    check_name(name)
    if weights is None:
        return
    if weights == 'imagenet':
        if name not in IMAGENET_BACKBONES:
            raise ValueError(
                f"{where}='imagenet': backbone {name!r} has no ImageNet weights (it is one of "
                f"this project's CPU backbones); those with Keras ImageNet weights are: "
                f"{', '.join(IMAGENET_BACKBONES)}")
        return
    if not os.path.isfile(weights):
        raise FileNotFoundError(f'{where}: backbone weights file not found: {weights}')
