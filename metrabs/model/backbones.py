"""Backbones: keras.applications networks (stride 32, no top) with ghost batch norm, plus a tiny one.

`build_backbone` maps preprocessed images [N, S, S, 3] to features [N, S/32, S/32, C];
`preprocess_images` turns crop images (float in [0, 1] or uint8) into what the chosen backbone
expects. Networks are built from random initialisation (no downloads are possible); a local
weights file can be loaded instead.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable

import keras
import tensorflow as tf

from metrabs.model.ghost_batchnorm import GhostBatchNormalization

_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR_255 = (103.939, 116.779, 123.68)

_APPLICATIONS: dict[str, tuple[Callable[..., keras.Model], str]] = {
    'efficientnetv2-b0': (keras.applications.EfficientNetV2B0, 'imagenet_meanstd'),
    'efficientnetv2-b1': (keras.applications.EfficientNetV2B1, 'imagenet_meanstd'),
    'efficientnetv2-b2': (keras.applications.EfficientNetV2B2, 'imagenet_meanstd'),
    'efficientnetv2-b3': (keras.applications.EfficientNetV2B3, 'imagenet_meanstd'),
    'efficientnetv2-s': (keras.applications.EfficientNetV2S, 'symmetric_128'),
    'efficientnetv2-m': (keras.applications.EfficientNetV2M, 'symmetric_128'),
    'efficientnetv2-l': (keras.applications.EfficientNetV2L, 'symmetric_128'),
    'resnet50': (keras.applications.ResNet50, 'caffe'),
    'resnet101': (keras.applications.ResNet101, 'caffe'),
    'resnet152': (keras.applications.ResNet152, 'caffe'),
    'mobilenetv3-small': (keras.applications.MobileNetV3Small, 'symmetric_127.5'),
    'mobilenetv3-large': (keras.applications.MobileNetV3Large, 'symmetric_127.5'),
}
BACKBONE_NAMES: tuple[str, ...] = (*_APPLICATIONS, 'small', 'tiny')
_PREPROCESSING = {name: mode for name, (_, mode) in _APPLICATIONS.items()} | {
    'small': 'symmetric_127.5', 'tiny': 'symmetric_127.5'}

# Keras's ResNet is v1 (the stride-2 of a downsampling block sits in its first 1x1 conv); v1.5
# moves it into the 3x3 conv, which sees every input pixel. Weight shapes are unchanged.
_RESNET_STRIDED_1X1 = re.compile(r'conv\d_block1_1_conv$')
_RESNET_STRIDED_3X3 = re.compile(r'conv\d_block1_2_conv$')


def _check_name(name: str):
    if name not in BACKBONE_NAMES:
        raise KeyError(f'unknown backbone {name!r}; known: {", ".join(BACKBONE_NAMES)}')


def preprocess_images(images: tf.Tensor, backbone: str) -> tf.Tensor:
    """Crop images -> the backbone's expected input, float32.

    Args:
        images: [N, H, W, 3] RGB, uint8 in [0, 255] or float in [0, 1].
        backbone: a name from BACKBONE_NAMES.
    Returns:
        [N, H, W, 3] float32: ImageNet mean/std normalised RGB (EfficientNetV2-B*), x*255/128 - 1
        (EfficientNetV2-S/M/L), x*255/127.5 - 1 (MobileNetV3, tiny), or BGR minus the Caffe
        ImageNet mean on the 0..255 scale (ResNet).
    """
    _check_name(backbone)
    if images.dtype == tf.uint8:
        x = tf.cast(images, tf.float32) / 255.0
    else:
        x = tf.cast(images, tf.float32)
    mode = _PREPROCESSING[backbone]
    if mode == 'imagenet_meanstd':
        return (x - _IMAGENET_MEAN_RGB) / _IMAGENET_STD_RGB
    if mode == 'symmetric_128':
        return x * (255.0 / 128.0) - 1.0
    if mode == 'symmetric_127.5':
        return x * 2.0 - 1.0
    return x[..., ::-1] * 255.0 - _CAFFE_MEAN_BGR_255


def _build_tiny(input_side: int, ghost_bn_group_size: int, dtype_policy: str) -> keras.Model:
    """Five stride-2 conv + ghost-BN + ReLU stages (16..64 channels): a fast stride-32 backbone."""
    inputs = keras.Input((input_side, input_side, 3), name='image')
    x = inputs
    for i, channels in enumerate((16, 24, 32, 48, 64)):
        x = keras.layers.Conv2D(channels, 3, strides=2, padding='same', use_bias=False,
                                dtype=dtype_policy, name=f'tiny_conv{i}')(x)
        x = GhostBatchNormalization(group_size=ghost_bn_group_size, dtype=dtype_policy,
                                    name=f'tiny_bn{i}')(x)
        x = keras.layers.ReLU(dtype=dtype_policy, name=f'tiny_relu{i}')(x)
    return keras.Model(inputs, x, name='tiny')


def _build_small(input_side: int, ghost_bn_group_size: int, dtype_policy: str) -> keras.Model:
    """`tiny`'s stride-2 stem, widened, plus residual 3x3 blocks at strides 16 and 32.

    For training on a CPU: the tiny stem alone sees only ~63 px of a 256 px crop, too little
    context to tell depth; the cheap low-resolution residual blocks grow the receptive field past
    the whole crop for about twice tiny's cost.
    """
    def conv_bn(x, channels, strides, name, relu=True):
        x = keras.layers.Conv2D(channels, 3, strides=strides, padding='same', use_bias=False,
                                dtype=dtype_policy, name=f'{name}_conv')(x)
        x = GhostBatchNormalization(group_size=ghost_bn_group_size, dtype=dtype_policy,
                                    name=f'{name}_bn')(x)
        return keras.layers.ReLU(dtype=dtype_policy, name=f'{name}_relu')(x) if relu else x

    inputs = keras.Input((input_side, input_side, 3), name='image')
    x = inputs
    for i, channels in enumerate((16, 32, 48, 96, 128)):
        x = conv_bn(x, channels, 2, f'small_stem{i}')
        if i >= 3:  # stride 16 and 32
            for b in range(2):
                name = f'small_res{i}_{b}'
                y = conv_bn(x, channels, 1, f'{name}a')
                y = conv_bn(y, channels, 1, f'{name}b', relu=False)
                x = keras.layers.Add(dtype=dtype_policy, name=f'{name}_add')([x, y])
                x = keras.layers.ReLU(dtype=dtype_policy, name=f'{name}_relu')(x)
    return keras.Model(inputs, x, name='small')


def _make_clone_function(resnet_v15: bool, ghost_bn_group_size: int, dtype_policy: str):
    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if not isinstance(layer, keras.layers.Layer):
            # Stateless operations recorded by the functional API (e.g. `x + 3.0`) have no dtype.
            return layer.__class__.from_config(config)
        config['dtype'] = dtype_policy
        if resnet_v15 and isinstance(layer, keras.layers.Conv2D):
            if _RESNET_STRIDED_1X1.search(layer.name) and tuple(layer.strides) == (2, 2):
                config['strides'] = (1, 1)
            elif _RESNET_STRIDED_3X3.search(layer.name):
                prev = layer.name.replace('_2_conv', '_1_conv')
                if prev in strided_1x1:
                    config['strides'] = (2, 2)
        if type(layer) is keras.layers.BatchNormalization:
            return GhostBatchNormalization(group_size=ghost_bn_group_size, **config)
        return layer.__class__.from_config(config)

    strided_1x1: set[str] = set()
    return clone, strided_1x1


def build_backbone(name: str, input_side: int = 256, ghost_bn_group_size: int = 16,
                   dtype_policy: str = 'float32', weights_path: str | None = None) -> keras.Model:
    """Builds a stride-32 feature extractor with every BatchNormalization replaced by ghost BN.

    Args:
        name: one of BACKBONE_NAMES.
        input_side: side of the square input, pixels (a multiple of 32).
        ghost_bn_group_size: examples per ghost BN group in training (0: plain BN).
        dtype_policy: Keras dtype policy of every layer ('float32', 'mixed_float16', ...).
        weights_path: optional local weights file loaded after the rebuild (same layer names).
    Returns:
        keras.Model: preprocessed images [N, S, S, 3] (see preprocess_images) ->
        features [N, S/32, S/32, C] in the policy's compute dtype.
    """
    _check_name(name)
    if input_side % 32 != 0:
        raise ValueError(f'build_backbone: input_side must be a multiple of 32, got {input_side}')
    if name == 'tiny':
        model = _build_tiny(input_side, ghost_bn_group_size, dtype_policy)
    elif name == 'small':
        model = _build_small(input_side, ghost_bn_group_size, dtype_policy)
    else:
        constructor, _ = _APPLICATIONS[name]
        kwargs = dict(include_top=False, weights=None, input_shape=(input_side, input_side, 3))
        if name.startswith(('efficientnetv2', 'mobilenetv3')):
            # Preprocessing is done by preprocess_images, identically for all backbones.
            kwargs['include_preprocessing'] = False
        original = constructor(**kwargs)
        clone, strided_1x1 = _make_clone_function(
            name.startswith('resnet'), ghost_bn_group_size, dtype_policy)
        strided_1x1.update(
            layer.name for layer in original.layers
            if isinstance(layer, keras.layers.Conv2D)
            and _RESNET_STRIDED_1X1.search(layer.name) and tuple(layer.strides) == (2, 2))
        model = keras.models.clone_model(original, clone_function=clone)
        del original
    if weights_path is not None:
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f'backbone weights file not found: {weights_path}')
        model.load_weights(weights_path)
    return model
