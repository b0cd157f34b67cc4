"""`--init-from` with an exported SavedModel: metrabs.export writes the model description into the
SavedModel's assets; checkpointing.init_from_checkpoint copies the exported backbone weights into
a new model with another joint set and leaves its re-initialised head alone."""
import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from metrabs.model import description
from metrabs.serving.saved_model import export
from metrabs.training import checkpointing
from metrabs.model.config import ModelConfig
from metrabs.model.metrabs_model import MetrabsModel

SIDE = 32
CONFIG = ModelConfig(backbone='tiny', proc_side=SIDE, ghost_bn_group_size=0)
EXPORTED_JOINTS = ['pelv_h36m', 'head_h36m', 'lhip_h36m', 'rhip_h36m']


def _built(config, names, seed):
    keras.utils.set_random_seed(seed)
    model = MetrabsModel(config, names)
    model(tf.zeros([1, config.proc_side, config.proc_side, 3]), tf.eye(3, batch_shape=[1]))
    return model


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """(exported model, SavedModel dir); its weights are randomised so that a copy is
    distinguishable from a fresh initialisation (e.g. BN moving stats, not just 0/1)."""
    model = _built(CONFIG, EXPORTED_JOINTS, seed=1)
    rng = np.random.default_rng(0)
    for v in model.weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype(np.float32))
    out = tmp_path_factory.mktemp('init') / 'saved_model'
    export(model, out)
    return model, str(out)


def test_export_writes_model_description(exported):
    model, out = exported
    with open(f'{out}/assets/model_config.json') as f:
        assert ModelConfig(**json.load(f)) == CONFIG
    with open(f'{out}/assets/joint_names.json') as f:
        assert json.load(f) == EXPORTED_JOINTS
    assert description.load_model_config(f'{out}/assets/model_config.json') == CONFIG


def test_raw_variables_follow_crop_model_weight_order(exported):
    model, out = exported
    reader = tf.train.load_checkpoint(f'{out}/variables/variables')
    for i, w in enumerate(model.weights):
        np.testing.assert_array_equal(
            reader.get_tensor(checkpointing.RAW_VARIABLE_KEY.format(i)), w.numpy())


def test_init_from_savedmodel_copies_backbone_keeps_head(exported):
    source, out = exported
    model = _built(CONFIG, ['a_x', 'b_x', 'c_x'], seed=2)
    head_before = [w.numpy() for w in model.head.weights]
    assert not np.array_equal(model.backbone.weights[0].numpy(),
                              source.backbone.weights[0].numpy())
    checkpointing.init_from_checkpoint(model, out)
    assert len(model.backbone.weights) == len(source.backbone.weights) > 0
    for a, b in zip(source.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for before, w in zip(head_before, model.head.weights):
        np.testing.assert_array_equal(before, w.numpy())
    # The head is of the new joint count and not the exported one.
    assert model.head.weights[0].shape[-1] == 3 * (CONFIG.depth + 1)
    assert source.head.weights[0].shape[-1] == 4 * (CONFIG.depth + 1)


def test_mismatched_proc_side_or_backbone_is_refused(exported):
    _, out = exported
    bigger = _built(dataclasses.replace(CONFIG, proc_side=64), ['a_x'], seed=3)
    with pytest.raises(ValueError, match='proc_side is 32 in the SavedModel but 64'):
        checkpointing.init_from_checkpoint(bigger, out)

    class OtherBackbone:
        config = dataclasses.replace(CONFIG, backbone='mobilenetv3-small')
        backbone = bigger.backbone

    with pytest.raises(ValueError, match="backbone is 'tiny' in the SavedModel"):
        checkpointing.init_from_checkpoint(OtherBackbone(), out)


def test_savedmodel_without_assets_is_refused(exported, tmp_path):
    import shutil
    _, out = exported
    copy = tmp_path / 'old_export'
    shutil.copytree(out, copy)
    (copy / 'assets' / 'model_config.json').unlink()
    model = _built(CONFIG, ['a_x'], seed=4)
    with pytest.raises(FileNotFoundError, match='model_config.json'):
        checkpointing.init_from_checkpoint(model, str(copy))


def test_same_joints_keep_the_head_from_a_savedmodel(exported):
    source, out = exported
    model = _built(CONFIG, EXPORTED_JOINTS, seed=5)
    assert checkpointing.init_from_checkpoint(model, out) is True
    for a, b in zip(source.weights, model.weights):  # backbone and head: all of it
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Another order of the same joints is another head: not loaded.
    reordered = _built(CONFIG, EXPORTED_JOINTS[::-1], seed=5)
    head_before = [w.numpy() for w in reordered.head.weights]
    assert checkpointing.init_from_checkpoint(reordered, out) is False
    for before, w in zip(head_before, reordered.head.weights):
        np.testing.assert_array_equal(before, w.numpy())


def test_same_joints_keep_the_head_from_a_training_checkpoint(exported, tmp_path):
    source, _ = exported
    logdir = tmp_path / 'log'
    tf.train.Checkpoint(model=source).save(str(logdir / 'checkpoints' / 'ckpt'))
    (logdir / 'joint_names.json').write_text(json.dumps(EXPORTED_JOINTS))
    model = _built(CONFIG, EXPORTED_JOINTS, seed=6)
    assert checkpointing.source_joint_names(str(logdir)) == EXPORTED_JOINTS
    assert checkpointing.init_from_checkpoint(model, str(logdir)) is True
    for a, b in zip(source.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    other = _built(CONFIG, ['a_x', 'b_x'], seed=6)
    head_before = [w.numpy() for w in other.head.weights]
    assert checkpointing.init_from_checkpoint(other, str(logdir)) is False
    for a, b in zip(source.backbone.weights, other.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for before, w in zip(head_before, other.head.weights):
        np.testing.assert_array_equal(before, w.numpy())
