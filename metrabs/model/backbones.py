"""Backbones: keras.applications networks (stride 32, no top) with ghost batch norm, plus
this project's small CPU ones (tiny, small, small-deep).

`build_backbone` maps preprocessed images [N, S, S, 3] to features [N, S/32, S/32, C];
`preprocess_images` turns crop images (float in [0, 1] or uint8) into what the chosen backbone
expects. `build_backbone` starts from random initialisation; `load_initial_weights` then loads
Keras' own ImageNet weights (`'imagenet'`, downloaded by Keras into ~/.keras/models on a machine
with internet) or a local weights file (e.g. one `python -m metrabs.save_backbone_weights`
wrote on such a machine).

Stride alignment (padding='aligned', the default). The heatmap head places feature cell j at
pixel 32j + 15.5 (metrabs.model.heatmaps, pixel-centre convention). Keras' padding='same' pads
only bottom/right before a stride-2 layer, so on even inputs output j sees input 2j+1 at its
centre and after five such layers cell j is centred at pixel 32j + 31, half a cell off. As the
released code does (its EfficientNetV2 uses symmetric `fixed_padding` and shifts the last
stride-2 stage one pixel towards the bottom-right, the 'br' blocks), every stride-2 layer here
pads symmetrically (output j centred at input 2j), except those of the last stride-2 stage, which
pad one more pixel at the end than at the start (centre 2j + 1): cell j is then centred at
16 (2j + 1) = 32j + 16, within half a pixel of the head's 32j + 15.5. Weight shapes are
unchanged, so ImageNet weights load either way; padding='same' keeps Keras' behaviour.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from metrabs.model.backbone_names import (
    CPU_BACKBONES, IMAGENET_BACKBONES, IMAGENET_PREPROCESSING, PADDINGS, check_name,
    check_weights_source)
from metrabs.model.ghost_batchnorm import GhostBatchNormalization

_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR_255 = (103.939, 116.779, 123.68)

# The keras.applications constructor of each ImageNet backbone of backbone_names.
_APPLICATIONS: dict[str, Callable[..., keras.Model]] = {
    'efficientnetv2-b0': keras.applications.EfficientNetV2B0,
    'efficientnetv2-b1': keras.applications.EfficientNetV2B1,
    'efficientnetv2-b2': keras.applications.EfficientNetV2B2,
    'efficientnetv2-b3': keras.applications.EfficientNetV2B3,
    'efficientnetv2-s': keras.applications.EfficientNetV2S,
    'efficientnetv2-m': keras.applications.EfficientNetV2M,
    'efficientnetv2-l': keras.applications.EfficientNetV2L,
    'resnet50': keras.applications.ResNet50,
    'resnet101': keras.applications.ResNet101,
    'resnet152': keras.applications.ResNet152,
    'mobilenetv3-small': keras.applications.MobileNetV3Small,
    'mobilenetv3-large': keras.applications.MobileNetV3Large,
}
assert tuple(_APPLICATIONS) == IMAGENET_BACKBONES
_PREPROCESSING = IMAGENET_PREPROCESSING | {name: 'symmetric_127.5' for name in CPU_BACKBONES}

# Keras's ResNet is v1 (the stride-2 of a downsampling block sits in its first 1x1 conv); v1.5
# moves it into the 3x3 conv, which sees every input pixel. Weight shapes are unchanged.
_RESNET_STRIDED_1X1 = re.compile(r'conv\d_block1_1_conv$')
_RESNET_STRIDED_3X3 = re.compile(r'conv\d_block1_2_conv$')


def preprocess_images(images: tf.Tensor, backbone: str) -> tf.Tensor:
    """Crop images -> the backbone's expected input, float32.

    Args:
        images: [N, H, W, 3] RGB, uint8 in [0, 255] or float in [0, 1].
        backbone: a name from backbone_names.BACKBONE_NAMES.
    Returns:
        [N, H, W, 3] float32: ImageNet mean/std normalised RGB (EfficientNetV2-B*), x*255/128 - 1
        (EfficientNetV2-S/M/L), x*255/127.5 - 1 (MobileNetV3, tiny), or BGR minus the Caffe
        ImageNet mean on the 0..255 scale (ResNet).
    """
    check_name(backbone)
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


def stride2_padding(kernel_size: int, last_stage: bool) -> tuple[int, int]:
    """(before, after) padding of one spatial axis for a stride-2 layer, 'aligned' scheme.

    Symmetric for odd kernels (output j centred at input 2j); in the last stride-2 stage one
    pixel moves from the start to the end (centre 2j + 1). A negative value crops (a 1x1
    stride-2 shortcut of the last stage then samples the odd pixels, like its main branch).
    """
    total = kernel_size - 1
    before = total // 2
    after = total - before
    return (before - 1, after + 1) if last_stage else (before, after)


def _pad_or_crop(x, pads: Sequence[Sequence[int]]):
    """Pads [N, H, W, C] by ((top, bottom), (left, right)); negative entries crop."""
    (top, bottom), (left, right) = pads
    crop_top, crop_left = max(-top, 0), max(-left, 0)
    x = x[:, crop_top:, crop_left:, :]
    return tf.pad(x, [[0, 0], [max(top, 0), max(bottom, 0)], [max(left, 0), max(right, 0)],
                      [0, 0]])


class _ExplicitPadding:
    """Mixin: pad (or crop) explicitly, then run the layer with padding='valid'."""

    def __init__(self, explicit_padding=((0, 0), (0, 0)), **kwargs):
        kwargs['padding'] = 'valid'
        super().__init__(**kwargs)
        self.explicit_padding = tuple(tuple(int(v) for v in p) for p in explicit_padding)

    def call(self, inputs):
        return super().call(_pad_or_crop(inputs, self.explicit_padding))

    def _padded_shape(self, input_shape) -> tuple:
        (top, bottom), (left, right) = self.explicit_padding
        shape = list(input_shape)
        if shape[1] is not None:
            shape[1] += top + bottom
        if shape[2] is not None:
            shape[2] += left + right
        return tuple(shape)

    def compute_output_shape(self, input_shape):
        return super().compute_output_shape(self._padded_shape(input_shape))

    def build(self, input_shape):
        super().build(self._padded_shape(input_shape))

    def get_config(self):
        return {**super().get_config(), 'explicit_padding': self.explicit_padding}


@keras.saving.register_keras_serializable(package='metrabs')
class AlignedConv2D(_ExplicitPadding, keras.layers.Conv2D):
    """Conv2D with explicit (possibly asymmetric) padding; see `stride2_padding`."""


@keras.saving.register_keras_serializable(package='metrabs')
class AlignedDepthwiseConv2D(_ExplicitPadding, keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D with explicit (possibly asymmetric) padding; see `stride2_padding`."""


def _conv(channels, strides, name, dtype_policy, padding, last_stage):
    """A 3x3 conv of the CPU backbones under the padding scheme."""
    if padding == 'aligned' and strides == 2:
        pad = stride2_padding(3, last_stage)
        return AlignedConv2D(explicit_padding=(pad, pad), filters=channels, kernel_size=3,
                             strides=strides, use_bias=False, dtype=dtype_policy, name=name)
    return keras.layers.Conv2D(channels, 3, strides=strides, padding='same', use_bias=False,
                               dtype=dtype_policy, name=name)


def _build_tiny(input_side: int, ghost_bn_group_size: int, dtype_policy: str,
                padding: str) -> keras.Model:
    """Five stride-2 conv + ghost-BN + ReLU stages (16..64 channels): a fast stride-32 backbone."""
    inputs = keras.Input((input_side, input_side, 3), name='image')
    x = inputs
    for i, channels in enumerate((16, 24, 32, 48, 64)):
        x = _conv(channels, 2, f'tiny_conv{i}', dtype_policy, padding, last_stage=i == 4)(x)
        x = GhostBatchNormalization(group_size=ghost_bn_group_size, dtype=dtype_policy,
                                    name=f'tiny_bn{i}')(x)
        x = keras.layers.ReLU(dtype=dtype_policy, name=f'tiny_relu{i}')(x)
    return keras.Model(inputs, x, name='tiny')


# (channels, residual blocks) of the five stride-2 stages (strides 2..32) of the CPU backbones.
_RESIDUAL_STAGES: dict[str, tuple[tuple[int, int], ...]] = {
    # tiny's stem, widened, plus residual blocks at strides 16 and 32. The tiny stem alone sees
    # only ~63 px of a 256 px crop, too little context to tell depth; the cheap low-resolution
    # blocks grow the receptive field past the whole crop for about twice tiny's cost.
    'small': ((16, 0), (32, 0), (48, 0), (96, 2), (128, 2)),
    # One more block at strides 4 and 8 and wider late stages (2x small's FLOPs): on the
    # synthetic world 15 mm lower validation MPJPE than 'small' after the same 2000 steps
    # (README, "Backbone and resolution probes").
    'small-deep': ((16, 0), (32, 1), (64, 1), (96, 2), (160, 2)),
}


def _build_residual(name: str, input_side: int, ghost_bn_group_size: int, dtype_policy: str,
                    padding: str) -> keras.Model:
    """A stride-2 3x3 conv per stage, each followed by that stage's basic residual blocks (two
    3x3 conv + ghost BN, identity shortcut), channels and blocks from _RESIDUAL_STAGES[name]."""
    def conv_bn(x, channels, strides, layer_name, relu=True, last_stage=False):
        x = _conv(channels, strides, f'{layer_name}_conv', dtype_policy, padding, last_stage)(x)
        x = GhostBatchNormalization(group_size=ghost_bn_group_size, dtype=dtype_policy,
                                    name=f'{layer_name}_bn')(x)
        return keras.layers.ReLU(dtype=dtype_policy, name=f'{layer_name}_relu')(x) if relu else x

    stages = _RESIDUAL_STAGES[name]
    prefix = name.replace('-', '_')
    inputs = keras.Input((input_side, input_side, 3), name='image')
    x = inputs
    for i, (channels, n_blocks) in enumerate(stages):
        x = conv_bn(x, channels, 2, f'{prefix}_stem{i}', last_stage=i == len(stages) - 1)
        for b in range(n_blocks):
            block = f'{prefix}_res{i}_{b}'
            y = conv_bn(x, channels, 1, f'{block}a')
            y = conv_bn(y, channels, 1, f'{block}b', relu=False)
            x = keras.layers.Add(dtype=dtype_policy, name=f'{block}_add')([x, y])
            x = keras.layers.ReLU(dtype=dtype_policy, name=f'{block}_relu')(x)
    return keras.Model(inputs, x, name=prefix)


def _stride2_layout(original: keras.Model, input_side: int, resnet_v15: bool
                    ) -> tuple[dict[str, tuple[int, bool]], dict[str, tuple[int, bool]]]:
    """Where the stride-2 operations of a keras.applications model sit.

    Returns:
        strided: {layer name: (kernel size, in the last stride-2 stage)} of the stride-2 convs of
            the model as built here (ResNet v1.5: its 3x3 convs, not the v1 1x1 ones);
        pads: {ZeroPadding2D name: (kernel size, last stage)} of explicit pad layers that feed a
            stride-2 'valid' conv or pooling (MobileNetV3, the ResNet stem).
    """
    final_side = input_side // 32
    by_name = {layer.name: layer for layer in original.layers}
    strided, pads = {}, {}
    for layer in original.layers:
        strides = tuple(getattr(layer, 'strides', (1, 1)))
        name = layer.name
        if resnet_v15 and isinstance(layer, keras.layers.Conv2D):
            if _RESNET_STRIDED_1X1.search(name) and strides == (2, 2):
                strides = (1, 1)
            elif (_RESNET_STRIDED_3X3.search(name)
                  and tuple(by_name[name.replace('_2_conv', '_1_conv')].strides) == (2, 2)):
                strides = (2, 2)
        if strides != (2, 2):
            continue
        kernel = getattr(layer, 'kernel_size', None) or getattr(layer, 'pool_size', None)
        last = layer.output.shape[1] == final_side
        strided[name] = (int(kernel[0]), last)
        for pad_name in (f'{name}_pad', re.sub(r'_(conv|pool)$', '_pad', name)):
            if pad_name in by_name and isinstance(by_name[pad_name], keras.layers.ZeroPadding2D):
                pads[pad_name] = (int(kernel[0]), last)
    return strided, pads


def _make_clone_function(resnet_v15: bool, ghost_bn_group_size: int, dtype_policy: str,
                         padding: str, strided: dict[str, tuple[int, bool]],
                         pads: dict[str, tuple[int, bool]]):
    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if not isinstance(layer, keras.layers.Layer):
            # Stateless operations recorded by the functional API (e.g. `x + 3.0`) have no dtype.
            return layer.__class__.from_config(config)
        config['dtype'] = dtype_policy
        if resnet_v15 and isinstance(layer, keras.layers.Conv2D):
            if _RESNET_STRIDED_1X1.search(layer.name) and tuple(layer.strides) == (2, 2):
                config['strides'] = (1, 1)
            elif layer.name in strided:
                config['strides'] = (2, 2)
        if type(layer) is keras.layers.BatchNormalization:
            return GhostBatchNormalization(group_size=ghost_bn_group_size, **config)
        if padding == 'aligned':
            if layer.name in pads:
                pad = stride2_padding(*pads[layer.name])
                config['padding'] = (pad, pad)
            elif layer.name in strided and isinstance(
                    layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
                kernel, last = strided[layer.name]
                if config['padding'] == 'same' or (kernel == 1 and last):
                    pad = stride2_padding(kernel, last)
                    aligned = (AlignedDepthwiseConv2D
                               if isinstance(layer, keras.layers.DepthwiseConv2D)
                               else AlignedConv2D)
                    return aligned(explicit_padding=(pad, pad), **config)
        return layer.__class__.from_config(config)

    return clone


def build_backbone(name: str, input_side: int = 256, ghost_bn_group_size: int = 16,
                   dtype_policy: str = 'float32', padding: str = 'aligned') -> keras.Model:
    """Builds a stride-32 feature extractor with every BatchNormalization replaced by ghost BN,
    randomly initialised (see `load_initial_weights`).

    Args:
        name: one of backbone_names.BACKBONE_NAMES.
        input_side: side of the square input, pixels (a multiple of 32).
        ghost_bn_group_size: examples per ghost BN group in training (0: plain BN).
        dtype_policy: Keras dtype policy of every layer ('float32', 'mixed_float16', ...).
        padding: 'aligned' (stride alignment of the module docstring) or 'same' (Keras' own).
    Returns:
        keras.Model: preprocessed images [N, S, S, 3] (see preprocess_images) ->
        features [N, S/32, S/32, C] in the policy's compute dtype.
    """
    check_name(name)
    if input_side % 32 != 0:
        raise ValueError(f'build_backbone: input_side must be a multiple of 32, got {input_side}')
    if padding not in PADDINGS:
        raise ValueError(f'build_backbone: padding must be one of {PADDINGS}, got {padding!r}')
    if name == 'tiny':
        return _build_tiny(input_side, ghost_bn_group_size, dtype_policy, padding)
    if name in _RESIDUAL_STAGES:
        return _build_residual(name, input_side, ghost_bn_group_size, dtype_policy, padding)
    original = _application(name, input_side, weights=None)
    resnet_v15 = name.startswith('resnet')
    strided, pads = _stride2_layout(original, input_side, resnet_v15)
    clone = _make_clone_function(resnet_v15, ghost_bn_group_size, dtype_policy, padding,
                                 strided, pads)
    model = keras.models.clone_model(original, clone_function=clone)
    del original
    return model


def _application(name: str, input_side: int, weights: str | None) -> keras.Model:
    constructor = _APPLICATIONS[name]
    kwargs = dict(include_top=False, weights=weights, input_shape=(input_side, input_side, 3))
    if name.startswith(('efficientnetv2', 'mobilenetv3')):
        # Preprocessing is done by preprocess_images, identically for all backbones.
        kwargs['include_preprocessing'] = False
    return constructor(**kwargs)


def load_initial_weights(backbone: keras.Model, name: str, weights: str | None,
                         input_side: int) -> str:
    """Initialises a built backbone (see `build_backbone`) before training.

    Args:
        backbone: the model `build_backbone(name, input_side, ...)` returned.
        weights: 'imagenet' (keras.applications' ImageNet weights: Keras downloads them into its
            cache, ~/.keras/models, on first use, or reads them from there), a local weights file
            of this backbone (Keras `.weights.h5`, e.g. from `python -m
            metrabs.save_backbone_weights`, or a legacy `.h5`), or None (keep the random
            initialisation).
    Returns:
        what was loaded ('imagenet', the path, or 'random'), for the training log.
    """
    check_weights_source(name, weights)
    if weights is None:
        return 'random'
    if weights == 'imagenet':
        source = _application(name, input_side, weights='imagenet')
        # Same topology as the clone (only the BN class and padding differ, neither with other
        # weights), so the weight lists correspond one to one.
        backbone.set_weights(source.get_weights())
        return 'imagenet'
    backbone.load_weights(weights)
    return weights
