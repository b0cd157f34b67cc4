"""JTA converter on a tiny fixture in the real format (per-sequence row json + mp4 videos).

Real JTA videos are 1920x1080 with the fixed K of the README; the fixture's are 192x108 (a
uniform 0.1 resize), so the rendering camera uses K resized by 0.1:
f = 115.8, c = 0.1 * (960 + 0.5) - 0.5 = 95.55 and 0.1 * (540 + 0.5) - 0.5 = 53.55.
"""
import json
import shutil

import numpy as np
import pytest

from posepile.dataset_writers.media import write_video
from posepile import build, joints
from posepile.dataset_writers import jta as writer
from posepile.dataset_writers.jta import FULL_K, IMSHAPE, N_FRAMES, SMALL_K
from posepile.datasets import common, jta


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('jta')
    cam, people, truth = writer.write(root)
    return root, cam, people, truth, list(jta.convert(root))


def test_examples(dataset):
    root, cam, people, truth, examples = dataset
    assert len(examples) == 2 * 2 * N_FRAMES
    assert examples[0].joint_names == tuple(joints.union_names('jta'))
    assert examples[0].joint_names[:3] == ('htop_jta', 'head_jta', 'neck_jta')
    assert [(ex.frame, ex.person) for ex in examples[:4]] == [(1, 7), (1, 8), (2, 7), (2, 8)]
    assert {ex.split for ex in examples if ex.sequence == 'test/seq_10'} == {'test'}
    assert {ex.split for ex in examples if ex.sequence == 'train/seq_3'} == {'train'}
    for ex in examples:
        expected = truth[ex.sequence][0] + [0, 0, 600] if ex.person == 8 \
            else truth[ex.sequence][ex.frame - 1]
        np.testing.assert_allclose(ex.world_coords, expected, atol=1e-2)
        np.testing.assert_allclose(ex.camera.intrinsic_matrix, SMALL_K, atol=1e-9)
        if ex.person == 7:
            projected = ex.camera.world_to_image(ex.world_coords)
            reference = cam.world_to_image(people.joints[ex.frame - 1])
            assert np.max(np.abs(projected - reference)) < 1.0
            x, y = np.round(projected[1]).astype(int)  # head centre on the rendered person
            assert people.masks[ex.frame - 1][y, x]
            frame = ex.image()
            assert frame.shape == (*IMSHAPE, 3)
            assert np.mean(np.abs(frame.astype(float) - people.images[ex.frame - 1])) < 12


def test_full_resolution_camera(tmp_path):
    """On a 1920x1080 video, K is the README's matrix unchanged."""
    video = tmp_path / 'seq_1.mp4'
    write_video(video, np.zeros((1, 1080, 1920, 3), np.uint8))
    camera, imshape = jta.camera_for_video(video)
    assert imshape == (1080, 1920)
    np.testing.assert_allclose(camera.intrinsic_matrix, FULL_K)
    np.testing.assert_allclose(camera.world_to_image(np.array([[1000.0, -500, 2000]])),
                               [[960 + 1158 * 0.5, 540 - 1158 * 0.25]])


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=jta', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['jta']
    assert info['before_dedup'] == {'train': 8, 'test': 8}
    # The walker (150 mm/frame) keeps all 4 frames, the still pedestrian 1, per sequence.
    assert info['after_dedup'] == {'train': 5, 'test': 5}
    # Pedestrians 9, 10 and 11 in each of 4 frames of 2 sequences.
    assert info['skipped'] == {'box smaller than min_box_side_px': 8,
                               'fewer visible joints than min_visible_joints': 8,
                               'joint behind the camera': 8}
    assert info['num_skipped'] == 24


def test_bad_inputs(dataset, tmp_path):
    root = dataset[0]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    path = bad / 'annotations/test/seq_10.json'
    rows = json.loads(path.read_text())
    path.write_text(json.dumps([r[:9] for r in rows]))
    with pytest.raises(common.DatasetFormatError,
                       match=r'seq_10\.json: rows have shape \(440, 9\), expected \[N, 10\]'):
        list(jta.convert(bad, splits=['test']))
    path.write_text(json.dumps(rows + rows[:1]))
    with pytest.raises(common.DatasetFormatError, match='seq_10.json: some .* more than one row'):
        list(jta.convert(bad, splits=['test']))
    path.write_text(json.dumps([[*rows[0][:2], 22, *rows[0][3:]]]))
    with pytest.raises(common.DatasetFormatError, match='seq_10.json: column "joint_type"'):
        list(jta.convert(bad, splits=['test']))
    path.write_text(json.dumps(rows))
    video = bad / 'videos/test/seq_10.mp4'
    video.write_bytes(b'\x00\x00\x00\x18ftypmp42 truncated')
    with pytest.raises(common.DatasetFormatError, match=r'seq_10\.mp4: cannot be opened'):
        list(jta.convert(bad, splits=['test']))
    write_video(video, np.zeros((2, 100, 100, 3), np.uint8))
    with pytest.raises(common.DatasetFormatError, match=r'seq_10\.mp4: frame size 100x100'):
        list(jta.convert(bad, splits=['test']))
    write_video(video, np.zeros((2, *IMSHAPE, 3), np.uint8))
    with pytest.raises(common.DatasetFormatError,
                       match=r'seq_10\.json: annotates frame 4 but .*seq_10\.mp4 has 2 frames'):
        list(jta.convert(bad, splits=['test']))
    video.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*videos/test/seq_10\.mp4'):
        list(jta.convert(bad, splits=['test']))
    shutil.rmtree(bad / 'annotations/val')
    with pytest.raises(common.DatasetFormatError, match=r'missing directory .*annotations/val'):
        list(jta.convert(bad, splits=['validation']))
