"""IKEA-ASM converter on a tiny fixture in the real layout (camera_parameters.pkl, per-frame
pose3d json in cm, scan_video.avi per camera). Real videos are 1920x1080; the fixture's are
160x120 with intrinsics to match."""
import json
import pickle
import shutil

import numpy as np
import pytest

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.datasets import common, ikea
from posepile.safe_unpickle import UnsafePickleError

IMSHAPE = (120, 160)
N_FRAMES = 4
SCAN = '0001_black_table_02_01_2019_08_16_14_00'


def pose_json(cam_coords_mm, missing=()):
    values = np.concatenate([cam_coords_mm / 10, np.ones((17, 1))], axis=1)
    values[list(missing)] = 0
    return {'version': 1.3, 'pose_keypoints_3d': values.reshape(-1).tolist()}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('ikea')
    cams = {'dev1': default_camera(IMSHAPE, distance_mm=3000, yaw_deg=10),
            'dev2': default_camera(IMSHAPE, distance_mm=3000, yaw_deg=-60)}
    people = dict(zip(cams, make_people_sequence(list(cams.values()), IMSHAPE, n_frames=N_FRAMES,
                                                 n_joints=17, seed=9, step_mm_per_frame=150.0)))
    (root / 'Calibration').mkdir()
    params = {'02': {name: {'K': cam.intrinsic_matrix.copy(), 'R': cam.R.copy(),
                            'T': np.zeros(3)} for name, cam in cams.items()}}
    (root / 'Calibration/camera_parameters.pkl').write_bytes(pickle.dumps(params, protocol=2))
    for name, cam in cams.items():
        cam_dir = root / 'Lack_TV_Bench' / SCAN / name
        write_video(cam_dir / 'images' / 'scan_video.avi', people[name].images, fourcc='MJPG')
        (cam_dir / 'pose3d').mkdir(parents=True)
        for t in range(N_FRAMES):
            cam_coords = cam.world_to_camera(people[name].joints[t])
            if t == 1 and name == 'dev2':  # keypoints 3..16 missing: too few in view
                data = pose_json(cam_coords, missing=range(3, 17))
            else:
                data = pose_json(cam_coords, missing=(4,))
            (cam_dir / 'pose3d' / f'{t:06d}.json').write_text(json.dumps(data))
    # A 'special_test' scan: no calibration entry, skipped without reading its (absent) video.
    special = root / 'Lack_TV_Bench' / 'special_test' / 'dev1' / 'pose3d'
    special.mkdir(parents=True)
    for t in range(2):
        (special / f'{t:06d}.json').write_text(json.dumps(pose_json(np.ones((17, 3)), ())))
    return root, cams, people, list(ikea.convert(root))


def test_examples(dataset):
    root, cams, people, examples = dataset
    assert [(ex.camera_id, ex.frame) for ex in examples] == \
        [('dev1', 0), ('dev1', 1), ('dev1', 2), ('dev1', 3), ('dev2', 0), ('dev2', 2), ('dev2', 3)]
    for ex in examples:
        cam = cams[ex.camera_id]
        truth = people[ex.camera_id].joints[ex.frame].astype(np.float64)
        assert ex.joint_names == tuple(joints.union_names('ikea'))
        assert ex.joint_names[:2] == ('nose_ikea', 'leye_ikea')
        assert ex.sequence == f'Lack_TV_Bench/{SCAN}'
        assert np.all(np.isnan(ex.world_coords[4]))
        ok = np.arange(17) != 4
        # World = the camera-aligned frame with the optical centre at the origin.
        np.testing.assert_allclose(ex.world_coords[ok], (truth - cam.t)[ok], atol=1e-3)
        projected = ex.camera.world_to_image(ex.world_coords[ok])
        assert np.max(np.abs(projected - cam.world_to_image(truth[ok]))) < 1.0
        frame = ex.image()
        assert np.mean(np.abs(frame.astype(float) - people[ex.camera_id].images[ex.frame])) < 12
        x, y = np.round(ex.camera.world_to_image(ex.world_coords[5:7]).mean(0)).astype(int)
        assert people[ex.camera_id].masks[ex.frame][y, x]  # mid-shoulders on the person


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=ikea', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['ikea']
    assert info['before_dedup'] == {'train': 7}
    assert info['num_after_dedup'] == 7  # 150 mm/frame walk: all kept
    # dev2 frame 1 has 3 keypoints in view; the special_test scan has 2 pose files.
    assert info['skipped'] == {'fewer keypoints inside the image than min_joints_in_view': 1,
                               'special_test scan (no calibration)': 2}


def test_bad_inputs(dataset, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(dataset[0], bad)
    pose = bad / 'Lack_TV_Bench' / SCAN / 'dev1/pose3d/000002.json'
    pose.write_text(json.dumps({'pose_keypoints_3d': [0.0] * 51}))
    with pytest.raises(common.DatasetFormatError,
                       match=r"000002\.json: field 'pose_keypoints_3d' has shape \(51,\), "
                             r"expected \[68\]"):
        list(ikea.convert(bad))
    (bad / 'Lack_TV_Bench' / SCAN / 'dev1/pose3d/000009.json').write_text(pose.read_text())
    shutil.copy(dataset[0] / 'Lack_TV_Bench' / SCAN / 'dev1/pose3d/000002.json', pose)
    with pytest.raises(common.DatasetFormatError,
                       match=r'000009\.json: labels frame 9 but .*scan_video\.avi has 4 frames'):
        list(ikea.convert(bad))
    (bad / 'Lack_TV_Bench' / SCAN / 'dev1/pose3d/000009.json').unlink()
    calib = bad / 'Calibration/camera_parameters.pkl'
    calib.write_bytes(pickle.dumps({'03': {}}, protocol=2))
    with pytest.raises(common.DatasetFormatError, match=r"no camera \['02'\]\['dev1'\]"):
        list(ikea.convert(bad))
    calib.write_bytes(pickle.dumps(shutil.rmtree, protocol=2))
    with pytest.raises(UnsafePickleError, match='camera_parameters.pkl'):
        list(ikea.convert(bad))
    calib.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*camera_parameters\.pkl'):
        list(ikea.convert(bad))
