"""A detector with the TF2 Object Detection API / TF-Hub signature embedded by `metrabs.export
--detector`: person boxes in pixels, the person class, thresholds, NMS, the cap; and zero
detections in single images, batches and user boxes."""
import numpy as np
import pytest
import tensorflow as tf

from fixture_tiny_model import (IMAGE_SHAPE, expected_person_boxes, joint_names,
                                rectangle_image)
from metrabs.serving import detectors
from metrabs.serving.saved_model import build_module

pytestmark = pytest.mark.slow
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
RECTS = {RED: (10, 8, 39, 77), GREEN: (70, 20, 101, 69), BLUE: (105, 60, 120, 90)}


def test_od_api_detector_gives_person_boxes_in_pixels(exported_with_detector, exported):
    loaded, _ = exported_with_detector
    _, plain, _ = exported
    image = rectangle_image(RECTS)
    pred = loaded.detect_poses(image, num_aug=1, suppress_implausible_poses=False)
    # Red (0.9) and green (0.8) people; the blue "car" and the 0.1 box are not; the padding rows
    # beyond num_detections (class 1, score 0.99) are ignored.
    want = expected_person_boxes(RECTS)
    np.testing.assert_allclose(pred['boxes'].numpy(), want, atol=1e-3)
    # x of red: columns 10..39 cover [10, 40) in the contract's edge convention.
    np.testing.assert_allclose(want[0, :4], [10, 8, 30, 70])
    same = plain.estimate_poses(image, want[:, :4], num_aug=1)
    np.testing.assert_allclose(pred['poses3d'].numpy(), same['poses3d'].numpy(), rtol=1e-4,
                               atol=1e-2)
    low = loaded.detect_poses(image, num_aug=1, detector_threshold=0.05,
                              suppress_implausible_poses=False)['boxes'].numpy()
    h, w = IMAGE_SHAPE[:2]
    np.testing.assert_allclose(low[-1], [0, 0, 0.25 * w, 0.25 * h, 0.1], atol=1e-3)
    assert len(low) == 3
    one = loaded.detect_poses(image, num_aug=1, max_detections=1,
                              suppress_implausible_poses=False)['boxes'].numpy()
    np.testing.assert_allclose(one, want[:1], atol=1e-3)


def test_nms_of_the_adapter_suppresses_overlapping_people(od_detector_dir):
    adapter = detectors.load_detector(str(od_detector_dir))
    assert isinstance(adapter, detectors.ObjectDetectionApiDetector)
    image = rectangle_image({RED: (10, 8, 39, 77)})
    image[8:78, 10:40, 1] = 255  # yellow: neither colour test passes -> nothing
    assert adapter(image, 0.3, 0.7, -1).shape == (0, 5)
    # Green painted over red leaves red's outer pixels: boxes (10, 8)-(39, 77) and
    # (12, 10)-(41, 75), IoU = 28 * 66 / (30 * 70 + 30 * 66 - 28 * 66) = 0.83.
    both = rectangle_image({RED: (10, 8, 39, 77), GREEN: (12, 10, 41, 75)})
    kept = adapter(both, 0.3, 0.5, -1).numpy()
    np.testing.assert_allclose(kept, [[10, 8, 30, 70, 0.9]], atol=1e-3)
    assert adapter(both, 0.3, 0.9, -1).shape == (2, 5)


def test_person_class_is_configurable(tiny_logdir, od_detector_dir):
    _, model = tiny_logdir
    module = build_module(model, detector=str(od_detector_dir), detector_person_class=3)
    boxes = module.detect_poses(rectangle_image(RECTS), num_aug=1,
                                suppress_implausible_poses=False)['boxes'].numpy()
    np.testing.assert_allclose(boxes, [[105, 60, 16, 31, 0.95]], atol=1e-3)


def test_zero_detections_everywhere(exported_with_detector):
    loaded, _ = exported_with_detector
    black = np.zeros(IMAGE_SHAPE, np.uint8)
    n_joints = len(joint_names())
    for suppress in (False, True):
        pred = loaded.detect_poses(black, num_aug=2, suppress_implausible_poses=suppress)
        assert pred['boxes'].shape == (0, 5)
        assert pred['poses3d'].shape == (0, n_joints, 3)
        assert pred['poses2d'].shape == (0, n_joints, 2)
    batch = np.stack([black, rectangle_image(RECTS), black])
    pred = loaded.detect_poses_batched(batch, num_aug=1, suppress_implausible_poses=False,
                                       skeleton='h36m_17')
    np.testing.assert_array_equal(pred['boxes'].row_lengths().numpy(), [0, 2, 0])
    assert pred['poses3d'].flat_values.shape == (2, 17, 3)
    all_black = loaded.detect_poses_batched(np.stack([black, black]), num_aug=1)
    np.testing.assert_array_equal(all_black['poses3d'].row_lengths().numpy(), [0, 0])
    boxes = tf.RaggedTensor.from_row_lengths(
        np.array([[10, 8, 30, 70]], np.float32), [0, 1, 0])
    est = loaded.estimate_poses_batched(batch, boxes, num_aug=1, suppress_implausible_poses=True)
    np.testing.assert_array_equal(est['poses3d'].row_lengths().numpy(), [0, 1, 0])
    np.testing.assert_array_equal(est['is_plausible'].row_lengths().numpy(), [0, 1, 0])


def test_load_detector_rejects_other_models(tmp_path):
    class NotADetector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return x

    tf.saved_model.save(NotADetector(), str(tmp_path / 'other'))
    with pytest.raises(ValueError, match='other.*not a detector'):
        detectors.load_detector(str(tmp_path / 'other'))


def test_user_boxes_get_plausibility_flags_instead_of_being_dropped(
        exported_with_detector, tiny_logdir, tmp_path):
    loaded, _ = exported_with_detector
    image = rectangle_image(RECTS)
    boxes = expected_person_boxes(RECTS)[:, :4]
    plain = loaded.estimate_poses(image, boxes, num_aug=2)
    flagged = loaded.estimate_poses(image, boxes, num_aug=2, suppress_implausible_poses=True)
    assert plain['is_plausible'].numpy().tolist() == [True, True]  # not tested: all True
    np.testing.assert_array_equal(flagged['poses3d'].numpy(), plain['poses3d'].numpy())  # 1:1
    # detect_poses on the same people keeps only poses flagged plausible (pose NMS may drop
    # more): the flag is the same test.
    kept = loaded.detect_poses(image, num_aug=2)['boxes'].numpy()[:, :4]
    flags = flagged['is_plausible'].numpy()
    for box in kept:
        assert flags[np.flatnonzero(np.all(np.abs(boxes - box) < 1e-3, axis=1))[0]]
    # A dataset mean thigh of 1 km makes anyone ~1/2500 of the mean size (size range 0.4-1.8):
    # every pose is implausible, and still returned.
    _, model = tiny_logdir
    (tmp_path / 'bones.json').write_text('{"lkne_h36m-lhip_h36m": 1e6}')
    module = build_module(model, bone_stats=str(tmp_path / 'bones.json'))
    out = module.estimate_poses(image, boxes, num_aug=1, suppress_implausible_poses=True)
    assert out['is_plausible'].numpy().tolist() == [False, False]
    assert out['poses3d'].shape[0] == 2
