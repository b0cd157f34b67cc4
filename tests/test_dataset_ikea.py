"""IKEA-ASM converter on a tiny fixture in the real layout (camera_parameters.pkl, per-frame
pose3d json in cm, scan_video.avi per camera). Real videos are 1920x1080; the fixture's are
160x120 with intrinsics to match."""
import json
import pickle
import shutil

import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import ikea as writer
from posepile.dataset_writers.ikea import SCAN
from posepile.datasets import common, ikea
from posepile.safe_unpickle import UnsafePickleError


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('ikea')
    cams, people = writer.write(root)
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
