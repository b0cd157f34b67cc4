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
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.datasets import common, jta

IMSHAPE = (108, 192)
N_FRAMES = 4
SMALL_K = np.array([[115.8, 0, 95.55], [0, 115.8, 53.55], [0, 0, 1]])
FULL_K = np.array(jta.INTRINSIC_MATRIX)


def rows_for(frame, person, coords_cam_m, occluded):
    """Rows [frame, person, joint, x2D, y2D, x3D, y3D, z3D, occluded, self_occluded]."""
    coords_cam_m = np.asarray(coords_cam_m, np.float64)
    full_res = (FULL_K @ coords_cam_m.T).T
    xy = full_res[:, :2] / full_res[:, 2:]
    return [[frame, person, j, *xy[j].tolist(), *coords_cam_m[j].tolist(), int(occluded[j]), 0]
            for j in range(jta.N_JOINTS)]


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('jta')
    cam = default_camera(IMSHAPE, distance_mm=3000)
    cam.intrinsic_matrix = SMALL_K.copy()
    people = make_people_sequence([cam], IMSHAPE, n_frames=N_FRAMES, n_joints=jta.N_JOINTS,
                                  seed=5, step_mm_per_frame=150.0)[0]
    truth = {}
    for subdir, seq in (('train', 'seq_3'), ('test', 'seq_10')):
        write_video(root / 'videos' / subdir / f'{seq}.mp4', people.images, fps=30)
        cam_m = cam.world_to_camera(people.joints) / 1000
        rows = []
        for t in range(N_FRAMES):
            rows += rows_for(t + 1, 7, cam_m[t], np.zeros(jta.N_JOINTS))
            # A second pedestrian standing still 0.6 m behind (not drawn): dedup keeps 1 frame.
            rows += rows_for(t + 1, 8, cam_m[0] + [0, 0, 0.6], np.zeros(jta.N_JOINTS))
            # A fully occluded pedestrian: skipped.
            rows += rows_for(t + 1, 9, cam_m[t] + [0.3, 0, 1.0], np.ones(jta.N_JOINTS))
            # A pedestrian 6 m further away (box < 32 px) and one behind the camera: skipped.
            rows += rows_for(t + 1, 10, cam_m[t] + [0, 0, 6.0], np.zeros(jta.N_JOINTS))
            rows += rows_for(t + 1, 11, cam_m[t] * [1, 1, -1], np.zeros(jta.N_JOINTS))
        rows = rows[::-1]  # the converter must not rely on row order
        (root / 'annotations' / subdir).mkdir(parents=True)
        (root / 'annotations' / subdir / f'{seq}.json').write_text(json.dumps(rows))
        truth[f'{subdir}/{seq}'] = cam_m * 1000
    (root / 'annotations/val').mkdir()
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
