"""posepile.datasets.common geometry helpers against hand-computed cases (image 4 px high, 6 wide)."""
import numpy as np

from posepile.datasets import common


def test_inside_image_uses_the_pixel_centre_edges():
    # The outer edge of a (4, 6) image lies at -0.5 and (5.5, 3.5); the edge itself is outside.
    points = np.array([[0.0, 0.0], [-0.49, 3.49], [5.49, -0.49], [-0.5, 1.0], [5.5, 1.0],
                       [2.0, 3.5], [np.nan, 1.0]])
    np.testing.assert_array_equal(common.inside_image(points, (4, 6)),
                                  [True, True, True, False, False, False, False])
    # Leading axes are kept: [2, 2, 2] -> [2, 2].
    assert common.inside_image(points[:4].reshape(2, 2, 2), (4, 6)).tolist() == [
        [True, True], [True, False]]


def test_box_around_points_margin_and_clipping():
    points = np.array([[1.0, 1.0], [3.0, 2.0], [np.nan, 0.0]])
    # 2 x 1 px span grown by 10 % per side: x 0.8 .. 3.2, y 0.9 .. 2.1.
    np.testing.assert_allclose(common.box_around_points(points), [0.8, 0.9, 2.4, 1.2], rtol=1e-6)
    # Clipped to the (4, 6) image's edges -0.5 .. 5.5 / 3.5 with a 100 % margin: x -1..5 -> -0.5..5.
    np.testing.assert_allclose(common.box_around_points(points, margin=1.0, imshape=(4, 6)),
                               [-0.5, 0.0, 5.5, 3.0], rtol=1e-6)


def test_drop_labels_near_bottom_by_hand():
    points = np.array([[10, 94.9], [10, 95.1], [np.nan, np.nan], [3, 20]])
    out = common.drop_labels_near_bottom(points, image_height=100)
    np.testing.assert_array_equal(np.isnan(out[:, 0]), [False, True, True, False])
    np.testing.assert_array_equal(out[[0, 3]], points[[0, 3]])
    assert not np.isnan(points[1]).any()  # the input is not modified


def test_video_frames_in_any_order_equal_the_sequential_decode(tmp_path):
    # Frames read forward within the grab-ahead range, beyond it (a seek), and backwards.
    import cv2
    rng = np.random.default_rng(0)
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25, (64, 48))
    for _ in range(60):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    sequential = [capture.read()[1][..., ::-1] for _ in range(60)]
    capture.release()
    for index in [0, 1, 5, 5 + common._MAX_GRAB_AHEAD, 59, 3, 4, 40]:
        np.testing.assert_array_equal(common.VideoFrame(path, index)(), sequential[index])
