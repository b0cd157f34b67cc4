"""Ghost batch norm vs numpy, backbones, the full MetrabsModel, mixed precision, a tiny training run.

Backbones built and run here (64x64 input): tiny, small, small-deep, efficientnetv2-b0/b1/b2/b3/s,
resnet50, mobilenetv3-small/large. Not built here to keep the suite fast: efficientnetv2-m/l and
resnet101/152 (same code path; they build in 2-8 s each).
"""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from metrabs.model import backbones
from metrabs.training import losses
from metrabs.model.config import ModelConfig
from metrabs.training.config import LossConfig
from metrabs.model.ghost_batchnorm import GhostBatchNormalization
from metrabs.model.metrabs_model import MetrabsModel

SIDE = 64
JOINTS = ['pelvis', 'lhip', 'rhip', 'head_h36m', 'neck_coco']


def _numpy_bn(x, mean, var, gamma, beta, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.fixture(scope='module')
def ghost_layer_and_input():
    rng = np.random.default_rng(0)
    x = rng.normal(loc=2.0, scale=3.0, size=(4, 3, 3, 5)).astype(np.float32)
    layer = GhostBatchNormalization(group_size=2, momentum=0.9, epsilon=1e-3)
    layer.build(x.shape)
    layer.gamma.assign(rng.uniform(0.5, 2.0, 5).astype(np.float32))
    layer.beta.assign(rng.normal(size=5).astype(np.float32))
    return layer, x


def test_ghost_bn_training_normalises_each_group_and_updates_with_mean_moments(
        ghost_layer_and_input):
    layer, x = ghost_layer_and_input
    gamma, beta = layer.gamma.numpy(), layer.beta.numpy()
    out = layer(x, training=True).numpy()
    groups = x.reshape(2, 2, 3, 3, 5)
    g_mean = groups.mean(axis=(1, 2, 3), keepdims=True)
    g_var = groups.var(axis=(1, 2, 3), keepdims=True)
    expected = _numpy_bn(groups, g_mean, g_var, gamma, beta, 1e-3).reshape(x.shape)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # Whole-batch BN would differ: the groups really are normalised separately.
    whole = _numpy_bn(x, x.mean((0, 1, 2)), x.var((0, 1, 2)), gamma, beta, 1e-3)
    assert np.abs(out - whole).max() > 1e-2
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * g_mean.reshape(2, 5).mean(0),
                               atol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(),
                               0.9 + 0.1 * g_var.reshape(2, 5).mean(0), atol=1e-5)

    inference = layer(x, training=False).numpy()
    np.testing.assert_allclose(
        inference, _numpy_bn(x, layer.moving_mean.numpy(), layer.moving_variance.numpy(),
                             gamma, beta, 1e-3), atol=1e-4)


def test_ghost_bn_small_batch_is_plain_bn_and_bad_batch_raises():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 2, 4)).astype(np.float32)
    ghost = GhostBatchNormalization(group_size=4)
    plain = keras.layers.BatchNormalization()
    np.testing.assert_allclose(ghost(x, training=True).numpy(), plain(x, training=True).numpy(),
                               atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match='multiple'):
        ghost(np.zeros((6, 2, 2, 4), np.float32), training=True)


def test_ghost_bn_bfloat16_computes_in_float32():
    rng = np.random.default_rng(2)
    x = rng.normal(loc=50.0, size=(4, 2, 2, 3)).astype(np.float32)
    layer = GhostBatchNormalization(group_size=2, dtype='mixed_bfloat16')
    out = layer(tf.constant(x, tf.bfloat16), training=True)
    assert out.dtype == tf.bfloat16
    xb = tf.cast(tf.constant(x, tf.bfloat16), tf.float32).numpy().reshape(2, 2, 2, 2, 3)
    expected = _numpy_bn(xb, xb.mean((1, 2, 3), keepdims=True), xb.var((1, 2, 3), keepdims=True),
                         1.0, 0.0, 1e-3).reshape(x.shape)
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), expected, atol=0.03)


@pytest.mark.parametrize('name', ['tiny', 'small', 'small-deep', 'efficientnetv2-b0',
                                  'efficientnetv2-b1', 'efficientnetv2-b2', 'efficientnetv2-b3',
                                  'efficientnetv2-s', 'resnet50', 'mobilenetv3-small',
                                  'mobilenetv3-large'])
def test_backbone_builds_with_stride_32_and_only_ghost_bn(name):
    model = backbones.build_backbone(name, input_side=SIDE, ghost_bn_group_size=2)
    kinds = {type(layer) for layer in model.layers}
    assert keras.layers.BatchNormalization not in kinds
    assert GhostBatchNormalization in kinds
    assert all(layer.group_size == 2 for layer in model.layers
               if isinstance(layer, GhostBatchNormalization))
    x = backbones.preprocess_images(tf.zeros([2, SIDE, SIDE, 3]), name)
    features = model(x, training=True)
    assert features.shape[:3] == (2, SIDE // 32, SIDE // 32)
    assert np.all(np.isfinite(features.numpy()))
    if name == 'small-deep':
        # Five stride-2 convs, symmetric except the last stage's (bottom-right); one residual
        # block at strides 4 and 8, two at 16 and 32 (two 3x3 convs each).
        pads = {layer.name: layer.explicit_padding for layer in model.layers
                if isinstance(layer, backbones.AlignedConv2D)}
        assert pads == {f'small_deep_stem{i}_conv': ((1, 1), (1, 1)) for i in range(4)} | {
            'small_deep_stem4_conv': ((0, 2), (0, 2))}
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        assert len(convs) == 5 + 2 * (1 + 1 + 2 + 2)
        assert features.shape[3] == 160
    if name == 'efficientnetv2-b0':
        # Every stride-2 layer is padded explicitly, the last stage's to the bottom-right.
        pads = {layer.name: layer.explicit_padding for layer in model.layers
                if isinstance(layer, (backbones.AlignedConv2D, backbones.AlignedDepthwiseConv2D))}
        assert pads == {'stem_conv': ((1, 1), (1, 1)), 'block2a_expand_conv': ((1, 1), (1, 1)),
                        'block3a_expand_conv': ((1, 1), (1, 1)),
                        'block4a_dwconv2': ((1, 1), (1, 1)), 'block6a_dwconv2': ((0, 2), (0, 2))}
    if name == 'resnet50':
        strides = {layer.name: tuple(layer.strides) for layer in model.layers
                   if isinstance(layer, keras.layers.Conv2D)}
        # v1.5: the 3x3 conv of each downsampling block carries the stride.
        assert strides['conv3_block1_1_conv'] == (1, 1)
        assert strides['conv3_block1_2_conv'] == (2, 2)
        assert strides['conv2_block1_2_conv'] == (1, 1)  # conv2 follows max-pool, stride 1
        # Aligned padding: the last stage's 3x3 conv pads bottom-right and its 1x1 shortcut
        # samples the odd pixels, so both branches stay centred at 2j + 1.
        pads = {layer.name: layer.explicit_padding for layer in model.layers
                if isinstance(layer, backbones.AlignedConv2D)}
        assert pads['conv4_block1_2_conv'] == ((1, 1), (1, 1))
        assert pads['conv5_block1_2_conv'] == ((0, 2), (0, 2))
        assert pads['conv5_block1_0_conv'] == ((-1, 1), (-1, 1))


def test_preprocessing_per_backbone_hand_values():
    img = tf.constant([[[[255, 0, 128]]]], tf.uint8)
    np.testing.assert_allclose(backbones.preprocess_images(img, 'mobilenetv3-small').numpy(),
                               [[[[1.0, -1.0, 128 / 127.5 - 1]]]], atol=1e-6)
    np.testing.assert_allclose(backbones.preprocess_images(img, 'efficientnetv2-s').numpy(),
                               [[[[255 / 128 - 1, -1.0, 0.0]]]], atol=1e-6)
    np.testing.assert_allclose(
        backbones.preprocess_images(img, 'efficientnetv2-b0').numpy(),
        [[[[(1 - 0.485) / 0.229, -0.456 / 0.224, (128 / 255 - 0.406) / 0.225]]]], atol=1e-5)
    np.testing.assert_allclose(backbones.preprocess_images(img, 'resnet50').numpy(),
                               [[[[128 - 103.939, 0 - 116.779, 255 - 123.68]]]], atol=1e-4)
    with pytest.raises(KeyError, match='unknown backbone'):
        backbones.preprocess_images(img, 'vgg16')


def test_missing_weights_file_is_named():
    model = backbones.build_backbone('tiny', SIDE)
    with pytest.raises(FileNotFoundError, match='nowhere.weights.h5'):
        backbones.load_initial_weights(model, 'tiny', '/nowhere.weights.h5', SIDE)
    with pytest.raises(ValueError, match="'tiny' has no ImageNet weights"):
        ModelConfig(backbone='tiny', backbone_weights='imagenet')


def test_weights_file_round_trip(tmp_path):
    source = backbones.build_backbone('tiny', SIDE)
    path = str(tmp_path / 'tiny.weights.h5')
    source.save_weights(path)
    loaded = backbones.build_backbone('tiny', SIDE)
    assert backbones.load_initial_weights(loaded, 'tiny', path, SIDE) == path
    for a, b in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_imagenet_weights_come_from_keras_download(tmp_path, monkeypatch):
    """'imagenet' goes through keras.applications' own download (get_file), stubbed here with a
    file of known weights saved from the same application; they must land in the rebuilt
    backbone (ghost BN, aligned padding) unchanged, and save_backbone_weights must write them."""
    from keras.src.utils import file_utils

    from metrabs import save_backbone_weights
    name = 'efficientnetv2-b0'
    keras.utils.set_random_seed(7)
    constructor = backbones._APPLICATIONS[name]
    kwargs = dict(include_top=False, weights=None, input_shape=(SIDE, SIDE, 3))
    if name.startswith('efficientnet'):
        kwargs['include_preprocessing'] = False
    reference = constructor(**kwargs)
    weights_file = str(tmp_path / 'pretend_imagenet.weights.h5')
    reference.save_weights(weights_file)
    requested = []

    def fake_get_file(fname=None, origin=None, **kwargs):
        requested.append(origin)
        return weights_file

    monkeypatch.setattr(file_utils, 'get_file', fake_get_file)
    backbone = backbones.build_backbone(name, SIDE, ghost_bn_group_size=2)
    assert backbones.load_initial_weights(backbone, name, 'imagenet', SIDE) == 'imagenet'
    assert requested and requested[0].startswith('https://storage.googleapis.com/')
    for a, b in zip(reference.weights, backbone.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    out = tmp_path / 'saved.weights.h5'
    assert save_backbone_weights.main([f'--backbone={name}', f'--out={out}']) == 0
    again = backbones.build_backbone(name, SIDE)
    backbones.load_initial_weights(again, name, str(out), SIDE)
    for a, b in zip(reference.weights, again.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _receptive_field_centre(model, side, cell):
    """Centre (row, col) px of the input pixels that reach feature cell `cell` (gradient support)."""
    x = tf.Variable(tf.random.normal([1, side, side, 3], seed=1))
    with tf.GradientTape() as tape:
        out = model(x, training=False)[0, cell[0], cell[1]]
        total = tf.reduce_sum(out * tf.random.normal(out.shape, seed=2))
    rows, cols = np.nonzero(np.abs(tape.gradient(total, x).numpy()[0]).sum(-1) > 0)
    return (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2


def test_aligned_padding_centres_cell_j_at_32j_plus_16():
    # Five 3x3 stride-2 convs: symmetric padding puts output j over input 2j, the last stage's
    # bottom-right shift over 2j + 1, so cell j sees pixels centred at 16 (2j + 1) = 32j + 16;
    # Keras' 'same' padding gives 32j + 31 (the head places cell j at 32j + 15.5).
    aligned = backbones.build_backbone('tiny', 256, 0, padding='aligned')
    same = backbones.build_backbone('tiny', 256, 0, padding='same')
    assert _receptive_field_centre(aligned, 256, (2, 3)) == (80.0, 112.0)
    assert _receptive_field_centre(same, 256, (2, 3)) == (95.0, 127.0)
    assert backbones.stride2_padding(3, False) == (1, 1)
    assert backbones.stride2_padding(3, True) == (0, 2)
    assert backbones.stride2_padding(1, True) == (-1, 1)
    # (keras.applications layouts: test_backbone_builds_with_stride_32_and_only_ghost_bn.)


def test_config_defaults_follow_design():
    cfg, loss_cfg = ModelConfig(), LossConfig()
    assert (cfg.proc_side, cfg.stride, cfg.depth, cfg.box_size_mm, cfg.heatmap_side) == (
        256, 32, 8, 2200.0, 8)
    assert cfg.centered_stride and cfg.mix_3d_inside_fov == 0.5 and cfg.ghost_bn_group_size == 16
    assert cfg.backbone_weights is None and cfg.backbone_padding == 'aligned'
    assert (loss_cfg.proj_weight, loss_cfg.loss2d_factor, loss_cfg.lambda_abs,
            loss_cfg.abs_loss_start_step, loss_cfg.weak_perspective_steps) == (
        1.0, 0.2, 0.1, 5000, 500)
    assert loss_cfg.random_mix and (loss_cfg.min_depth_mm, loss_cfg.far_depth_mm) == (300, 1e4)
    with pytest.raises(ValueError, match='mix_3d_inside_fov'):
        ModelConfig(mix_3d_inside_fov=2.0)


TINY = ModelConfig(backbone='tiny', proc_side=SIDE, ghost_bn_group_size=2)


def _intrinsics(n):
    return np.tile(np.array([[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]], np.float32), (n, 1, 1))


@pytest.fixture(scope='module')
def batch():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(4, SIDE, SIDE, 3)).astype(np.uint8), _intrinsics(4)


@pytest.fixture(scope='module')
def float_model(batch):
    keras.utils.set_random_seed(0)
    model = MetrabsModel(TINY, JOINTS)
    model(*batch, training=False)
    return model


def test_model_outputs_and_consistency(float_model, batch):
    images, intr = batch
    out = float_model(images, intr, training=False)
    assert set(out) == {'coords3d_rel_mm', 'coords2d_px', 'coords3d_abs_mm'}
    for key, dim in [('coords3d_rel_mm', 3), ('coords2d_px', 2), ('coords3d_abs_mm', 3)]:
        assert out[key].shape == (4, len(JOINTS), dim) and out[key].dtype == tf.float32
    # 2D lies within the cell-centre range [16, 48] of a 2x2 map at stride 32.
    assert np.all((out['coords2d_px'].numpy() >= 16 - 1e-3) & (out['coords2d_px'] <= 48 + 1e-3))
    # uint8 and [0, 1] float inputs are the same image.
    out_float = float_model(images.astype(np.float32) / 255, intr, training=False)
    np.testing.assert_allclose(out_float['coords2d_px'], out['coords2d_px'], atol=1e-4)
    # Mixing keeps the depth of (relative + translation): one depth offset per example.
    depth_offsets = (out['coords3d_abs_mm'].numpy() - out['coords3d_rel_mm'].numpy())[..., 2]
    np.testing.assert_allclose(depth_offsets, depth_offsets[:, :1].repeat(len(JOINTS), 1),
                               rtol=1e-4, atol=1e-2)


def test_model_in_tf_function_with_unknown_batch(float_model, batch):
    images, intr = batch
    fn = tf.function(lambda i, k: float_model(i, k, training=False), input_signature=[
        tf.TensorSpec([None, SIDE, SIDE, 3], tf.uint8), tf.TensorSpec([None, 3, 3], tf.float32)])
    eager = float_model(images[:3], intr[:3], training=False)
    graph = fn(images[:3], intr[:3])
    for key in eager:
        np.testing.assert_allclose(graph[key].numpy(), eager[key].numpy(), rtol=1e-4, atol=1e-2)
    assert fn(images[:1], intr[:1])['coords3d_abs_mm'].shape == (1, len(JOINTS), 3)


def test_mixed_bfloat16_close_to_float32(float_model, batch):
    images, intr = batch
    bf16 = MetrabsModel(dataclasses.replace(TINY, dtype_policy='mixed_bfloat16'), JOINTS)
    bf16(images, intr, training=False)
    bf16.set_weights(float_model.get_weights())
    ref = float_model(images, intr, training=False)
    out = bf16(images, intr, training=False)
    for key in ref:
        assert out[key].dtype == tf.float32
    print('bf16 max abs diff 2d px', np.abs(out['coords2d_px'] - ref['coords2d_px']).max(),
          '3d mm', np.abs(out['coords3d_rel_mm'] - ref['coords3d_rel_mm']).max())
    np.testing.assert_allclose(out['coords2d_px'], ref['coords2d_px'], atol=0.1)
    np.testing.assert_allclose(out['coords3d_rel_mm'], ref['coords3d_rel_mm'], atol=5.0)


def test_twenty_training_steps_reduce_the_loss(batch):
    keras.utils.set_random_seed(1)
    images, intr = batch
    model = MetrabsModel(TINY, JOINTS)
    rng = np.random.default_rng(4)
    true3d = (rng.normal(scale=200, size=(4, len(JOINTS), 3)) + [0, 0, 3000]).astype(np.float32)
    true3d[0, 1] = np.nan  # an unlabelled joint
    no_labels2d = np.full((4, 1, 2), np.nan, np.float32)
    groups = np.ones((1, len(JOINTS)), np.float32) / len(JOINTS)
    optimizer = keras.optimizers.Adam(3e-3)
    cfg = LossConfig(abs_loss_start_step=0)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            preds = model(images, intr, training=True,
                          mix_3d_inside_fov=tf.random.uniform([4], seed=3))
            terms = losses.loss_terms(preds['coords3d_abs_mm'], intr, true3d, no_labels2d,
                                      groups, SIDE, 32, 2200.0, cfg)
            loss = losses.combined_loss(terms, step=10, config=cfg)['loss']
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        return loss, grads

    history = []
    for _ in range(20):
        loss, grads = step()
        assert all(np.all(np.isfinite(g.numpy())) for g in grads)
        history.append(float(loss))
    print('loss history', history)
    assert history[-1] < 0.7 * history[0], history


def test_model_weights_round_trip_through_config(float_model, batch, tmp_path):
    path = str(tmp_path / 'metrabs.weights.h5')
    float_model.save_weights(path)
    clone = MetrabsModel.from_config(float_model.get_config())
    clone(*batch, training=False)
    clone.load_weights(path)
    assert clone.joint_names == tuple(JOINTS) and clone.config == TINY
    np.testing.assert_allclose(clone(*batch, training=False)['coords3d_abs_mm'],
                               float_model(*batch, training=False)['coords3d_abs_mm'], atol=1e-3)
