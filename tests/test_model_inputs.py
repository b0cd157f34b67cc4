"""What an exported model takes: image layouts and dtypes (posepile.image_input and its in-graph
twin), [P, 5] boxes, skeleton names, the whole-image person without a detector; and the
one-line refusals of metrabs.serving.loaded_model.load_model."""
import numpy as np
import pytest
import tensorflow as tf

import fixture_tiny_model as tiny
from metrabs.serving import inference_module
from metrabs.serving.loaded_model import CheckedPoseModel, check_boxes, load_model
from posepile import cli
from posepile.image_input import IMAGE_FORM, as_rgb_uint8

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def loaded(exported):
    return exported[1]


@pytest.fixture(scope='module')
def checked(exported):
    return load_model(exported[2])


@pytest.fixture(scope='module')
def image():
    return tiny.smooth_image((96, 128, 3), seed=4)


BOX = np.array([[20, 8, 72, 80]], np.float32)


def _estimate(model, image, boxes=BOX, **kwargs):
    return model.estimate_poses(image, boxes, num_aug=1, **kwargs)['poses3d'].numpy()


def test_rgb_rule_by_hand():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(as_rgb_uint8(grey), np.repeat(grey[..., None], 3, axis=-1))
    np.testing.assert_array_equal(as_rgb_uint8(grey[..., None]), as_rgb_uint8(grey))
    rgba = np.dstack([np.full((3, 4), v, np.uint8) for v in (10, 20, 30, 40)])
    np.testing.assert_array_equal(as_rgb_uint8(rgba)[0, 0], [10, 20, 30])
    floats01 = np.array([[0.0, 0.5, 1.0, 0.2]])
    np.testing.assert_array_equal(as_rgb_uint8(floats01)[0, :, 0], [0, 128, 255, 51])
    floats255 = np.array([[0.0, 12.4, 254.6, 200.0]], np.float32)
    np.testing.assert_array_equal(as_rgb_uint8(floats255)[0, :, 0], [0, 12, 255, 200])
    np.testing.assert_array_equal(as_rgb_uint8(np.array([[3, 250]], np.int64))[0, :, 0],
                                  [3, 250])
    for bad, message in ((np.zeros((4, 4, 2), np.uint8), 'got shape [4, 4, 2] uint8'),
                         (np.zeros((4, 4, 3), bool), 'got shape [4, 4, 3] bool'),
                         (np.zeros((0, 0, 3), np.uint8), 'the image is empty'),
                         (np.full((4, 4), 300.0), 'outside both 0..1 and 0..255'),
                         (np.full((4, 4), -2), 'outside 0..255'),
                         (np.full((4, 4), np.nan), 'NaN')):
        with pytest.raises(ValueError) as info:
            as_rgb_uint8(bad, 'photo.png')
        text = str(info.value)
        assert message in text and text.startswith('photo.png: ') and '\n' not in text
    with pytest.raises(ValueError, match='2x2 px, smaller than 8'):
        as_rgb_uint8(np.zeros((2, 2, 3), np.uint8), min_side=8)


def test_savedmodel_takes_every_layout_and_five_column_boxes(loaded, image):
    want = _estimate(loaded, image)
    grey = image[..., 0]
    want_grey = _estimate(loaded, np.repeat(grey[..., None], 3, axis=-1))
    np.testing.assert_array_equal(_estimate(loaded, grey), want_grey)
    np.testing.assert_array_equal(_estimate(loaded, grey[..., None]), want_grey)
    rgba = np.dstack([image, np.full(image.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(_estimate(loaded, rgba), want)
    # detect_poses' boxes ([P, 5], with the score) are estimate_poses' input as they are.
    detected = loaded.detect_poses(image, num_aug=1)
    np.testing.assert_array_equal(
        _estimate(loaded, image, detected['boxes']),
        _estimate(loaded, image, detected['boxes'][:, :4]))
    for bad in (np.zeros((5, 6, 2), np.uint8), np.zeros((0, 6, 3), np.uint8),
                np.zeros((2, 5, 6, 3), np.uint8)):
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            _estimate(loaded, bad)
        assert cli.one_line(info.value).startswith(inference_module.IMAGE_FORM)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _estimate(loaded, image, np.zeros((1, 3), np.float32))
    assert 'boxes must be [P, 4]' in cli.one_line(info.value)


def test_skeleton_names_and_unknown_skeleton(loaded, checked, image):
    names = [n.decode() for n in loaded.skeleton_names.numpy()]
    assert names[0] == '' and set(names[1:]) == set(loaded.per_skeleton_joint_names)
    assert {'h36m_17', 'coco'} <= set(names)
    assert checked.skeleton_names == names
    # The SavedModel's own refusal is a graph assertion; the CLIs print its sentence only.
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _estimate(loaded, image, skeleton='smpl')
    line = cli.one_line(info.value)
    assert line.startswith('unknown skeleton name; available:') and line.endswith('got: smpl')
    with pytest.raises(KeyError) as info:
        checked.detect_poses(image, skeleton='synsurv')
    message = cli.one_line(info.value)
    assert message.startswith("unknown skeleton 'synsurv' ('synsurv' is a dataset; its "
                              "skeleton: synsmpl); this model has: '' (all ")
    assert 'h36m_17' in message


def test_whole_image_person_is_never_dropped_without_a_detector(loaded, image):
    black = np.zeros_like(image)
    for picture in (image, black):
        kept = loaded.detect_poses(picture, num_aug=1, suppress_implausible_poses=True)
        assert kept['boxes'].shape == (1, 5) and kept['poses3d'].shape[0] == 1
        np.testing.assert_array_equal(kept['boxes'].numpy()[0],
                                      [0, 0, picture.shape[1], picture.shape[0], 1])
        # Its flag is the plausibility test's verdict on that pose.
        flagged = loaded.estimate_poses(picture, kept['boxes'], num_aug=1,
                                        suppress_implausible_poses=True)
        np.testing.assert_array_equal(kept['is_plausible'], flagged['is_plausible'])


def test_checked_model_converts_and_refuses_in_one_line(checked, loaded, image):
    want = _estimate(loaded, image)
    np.testing.assert_array_equal(_estimate(checked, image / 255.0), want)
    np.testing.assert_array_equal(_estimate(checked, image.astype(np.float32)), want)
    np.testing.assert_array_equal(
        _estimate(checked, image, intrinsic_matrix=np.diag([150.0, 150.0, 1.0]) +
                  np.array([[0, 0, 63.5], [0, 0, 47.5], [0, 0, 0]])),
        _estimate(loaded, image, intrinsic_matrix=np.array(
            [[150, 0, 63.5], [0, 150, 47.5], [0, 0, 1]], np.float32)))
    refusals = [
        (lambda: checked.detect_poses(image * 3.0), 'float pixel values 0..765'),
        (lambda: checked.detect_poses(image[..., :2]), IMAGE_FORM),
        (lambda: checked.detect_poses(image[:1, :1]), '1x1 px, smaller than 8'),
        (lambda: checked.estimate_poses(image, [[300, 10, 50, 80]]),
         'does not overlap the 128x96 image'),
        (lambda: checked.estimate_poses(image, [[10, 10, 0, 80]]), 'must be > 0'),
        (lambda: checked.estimate_poses(image, [[1, 2, 3]]), 'expected [P, 4]'),
        (lambda: checked.detect_poses(image, intrinsic_matrix=np.eye(4)),
         'intrinsic_matrix: got shape [4, 4]; expected finite [3, 3]'),
    ]
    for call, message in refusals:
        with pytest.raises((ValueError, KeyError)) as info:
            call()
        line = cli.one_line(info.value)
        assert message in line and len(line) < 400, line
    assert check_boxes([1, 2, 30, 40, 0.9], (96, 128)).tolist() == [[1, 2, 30, 40]]
    assert isinstance(checked, CheckedPoseModel)
    assert checked.joint_names.shape == loaded.joint_names.shape
    with pytest.raises(FileNotFoundError, match='not a SavedModel directory'):
        load_model('/nonexistent/model')


def test_fast_first_call_gives_the_same_poses(exported, loaded, image):
    """load_model(fast_first_call=True) switches grappler off process-wide (restored here so the
    other tests keep TF's default) and the poses stay those of the optimised graph."""
    before = tf.config.optimizer.get_experimental_options()
    try:
        fast = load_model(exported[2], fast_first_call=True)
        assert tf.config.optimizer.get_experimental_options()['disable_meta_optimizer'] is True
        np.testing.assert_allclose(_estimate(fast, image), _estimate(loaded, image), atol=1e-2)
    finally:
        tf.config.optimizer.set_experimental_options(
            {'disable_meta_optimizer': before.get('disable_meta_optimizer', False)})
