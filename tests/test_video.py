"""`python -m metrabs.video` on a short generated video: the poses file's layout, per-frame boxes
and poses equal to detect_poses on the decoded frames, IoU track ids across a frame without
people, and the rendered overlay video."""
import json

import numpy as np
import pytest

from fixture_tiny_model import (IMAGE_SHAPE, expected_person_boxes, rectangle_image, run_module,
                                write_clip)
from metrabs import video
from metrabs.serving import video_poses

pytestmark = pytest.mark.slow
RED, GREEN = (255, 0, 0), (0, 255, 0)
N_FRAMES = 10
EMPTY_FRAME = 4


def _frame_rects(t):
    """Red walks right 2 px per frame, green stands still until frame 6; frame 4 is empty."""
    if t == EMPTY_FRAME:
        return {}
    rects = {RED: (10 + 2 * t, 8, 39 + 2 * t, 77)}
    if t <= 6:
        rects[GREEN] = (80, 20, 111, 69)
    return rects


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp('video') / 'walk.mp4'
    write_clip(path, [rectangle_image(_frame_rects(t)) for t in range(N_FRAMES)])
    return path


@pytest.fixture(scope='module')
def video_run(exported_with_detector, clip, tmp_path_factory):
    _, model_dir = exported_with_detector
    out = tmp_path_factory.mktemp('video_out')
    result = run_module('metrabs.video', f'--model={model_dir}', f'--input={clip}',
                        f'--out={out / "poses.npz"}', f'--render={out / "overlay.mp4"}',
                        '--skeleton=h36m_17', '--batch-size=4', '--keep-implausible',
                        '--no-progress')
    assert 'poses' in result.stdout
    return np.load(out / 'poses.npz'), out / 'overlay.mp4'


def test_poses_file_layout_boxes_and_poses(video_run, clip, exported_with_detector):
    poses, _ = video_run
    loaded, _ = exported_with_detector
    counts = [len(expected_person_boxes(_frame_rects(t))) for t in range(N_FRAMES)]
    np.testing.assert_array_equal(np.diff(poses['frame_splits']), counts)
    np.testing.assert_array_equal(poses['frame_index'], np.repeat(np.arange(N_FRAMES), counts))
    assert poses['poses3d'].shape == (sum(counts), 17, 3)
    assert poses['poses2d'].shape == (sum(counts), 17, 2)
    assert list(poses['joint_names']) == [
        n.decode() for n in loaded.per_skeleton_joint_names['h36m_17'].numpy()]
    np.testing.assert_array_equal(poses['image_size'], IMAGE_SHAPE[:2])
    assert float(poses['fps']) == pytest.approx(10.0)
    height, width = IMAGE_SHAPE[:2]
    focal = max(height, width) / 2 / np.tan(np.deg2rad(55) / 2)
    np.testing.assert_allclose(poses['intrinsic_matrix'],
                               [[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2],
                                [0, 0, 1]], rtol=1e-6)
    _, frames = video_poses.read_video(clip)
    for t, frame in enumerate(frames):
        rows = slice(poses['frame_splits'][t], poses['frame_splits'][t + 1])
        np.testing.assert_allclose(poses['boxes'][rows], expected_person_boxes(_frame_rects(t)),
                                   atol=1e-3)
        want = loaded.detect_poses(frame, num_aug=1, skeleton='h36m_17',
                                   suppress_implausible_poses=False)
        np.testing.assert_allclose(poses['poses3d'][rows], want['poses3d'].numpy(), rtol=1e-4,
                                   atol=1e-2)
        np.testing.assert_allclose(poses['poses2d'][rows], want['poses2d'].numpy(), rtol=1e-4,
                                   atol=1e-2)


def test_track_ids_survive_an_empty_frame(video_run):
    poses, _ = video_run
    score = poses['boxes'][:, 4]
    red, green = poses['track_id'][score > 0.85], poses['track_id'][score < 0.85]
    assert len(set(red)) == 1 and len(set(green)) == 1 and red[0] != green[0]
    assert len(red) == N_FRAMES - 1


def test_rendered_overlay(video_run, clip):
    _, overlay = video_run
    meta, frames = video_poses.read_video(overlay)
    _, originals = video_poses.read_video(clip)
    frames, originals = list(frames), list(originals)
    assert len(frames) == N_FRAMES and tuple(meta['size']) == IMAGE_SHAPE[1::-1]
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, originals)]
    # Lossy H.264 changes every frame a little; skeletons and boxes change the others a lot.
    assert diffs[EMPTY_FRAME] < 2.0
    assert min(d for t, d in enumerate(diffs) if t != EMPTY_FRAME) > 2 * diffs[EMPTY_FRAME]


def test_without_tracking_and_bad_inputs(exported_with_detector, clip, tmp_path):
    loaded, _ = exported_with_detector
    options = video_poses.VideoOptions(track=False, batch_size=3, skeleton='h36m_17')
    result = video_poses.run(loaded, clip, tmp_path / 'p.npz', options, progress=False)
    assert np.all(result['track_id'] == -1) and len(result['frame_splits']) == N_FRAMES + 1
    with pytest.raises(FileNotFoundError, match='nothere.mp4'):
        video_poses.read_video(tmp_path / 'nothere.mp4')
    (tmp_path / 'cam.json').write_text(json.dumps({'intrinsic_matrix': [[1, 0, 0], [0, 1, 0]]}))
    with pytest.raises(ValueError, match='cam.json.*intrinsic_matrix'):
        video.load_camera(str(tmp_path / 'cam.json'))
    (tmp_path / 'cam.json').write_text(json.dumps({
        'intrinsic_matrix': [[100, 0, 63.5], [0, 100, 47.5], [0, 0, 1]],
        'distortion_coeffs': [0.1, 0, 0, 0, 0]}))
    camera = video.load_camera(str(tmp_path / 'cam.json'))
    assert camera['intrinsic_matrix'][0, 0] == 100 and camera['distortion_coeffs'][0] == 0.1
