"""HUMAN4D converter on a tiny fixture in the real layout (device_repository.json, .extrinsics,
offsets.txt, Dump/color pngs, Dump/gposes3d npy). Real frames are 1280x720; the fixture's are
160x120 with intrinsics to match."""
import json
import shutil

import cv2
import numpy as np
import pytest

from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.datasets import common, human4d

IMSHAPE = (120, 160)
N_FRAMES = 4
RECORDING = '19-07-12-09-09-06'
OFFSET1 = 3  # frame f shows pose f - 2


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('human4d')
    cams = {'M72h': default_camera(IMSHAPE, distance_mm=3500, yaw_deg=0),
            'M72j': default_camera(IMSHAPE, distance_mm=3500, yaw_deg=80)}
    people = dict(zip(cams, make_people_sequence(list(cams.values()), IMSHAPE,
                                                 n_frames=N_FRAMES, n_joints=33, seed=10,
                                                 step_mm_per_frame=150.0)))
    subject = root / 'S2'
    (subject / 'pose').mkdir(parents=True)
    devices = [{'Device': name, 'Serial': '0', 'Color Intrinsics': [
        {INTR: cam.intrinsic_matrix.reshape(-1).tolist()
         for INTR in ('1280x720', '640x480')}]} for name, cam in cams.items()]
    devices.append({'Device': 'M72x',
                    'Color Intrinsics': [{'1280x720': [1, 0, 0, 0, 1, 0, 0, 0, 1]}]})
    (subject / 'device_repository.json').write_text(json.dumps(devices))
    for name, cam in cams.items():
        np.savetxt(subject / 'pose' / f'{name}.extrinsics', np.vstack([cam.R.T, cam.t]))
    (subject / 'offsets.txt').write_text(f'{RECORDING}\t{OFFSET1}\t7\n')
    dump = subject / RECORDING / 'Dump'
    (dump / 'color').mkdir(parents=True)
    (dump / 'gposes3d').mkdir()
    # Pose index p is frame p + 2. Pose 1 is missing (a gap in the release).
    for p in (0, 2, 3):
        np.save(dump / 'gposes3d' / f'{p}.npy', people['M72h'].joints[p][None].astype(np.float64))
    for name in cams:
        for p in range(N_FRAMES):
            image = people[name].images[p][..., ::-1]
            cv2.imwrite(str(dump / 'color' / f'{p + 2}_{name}_color_{4000 + p}.png'), image)
        # Frame 1 precedes the first pose: skipped. Camera M72x has no extrinsics: skipped.
        cv2.imwrite(str(dump / 'color' / f'1_{name}_color_3999.png'), image)
    cv2.imwrite(str(dump / 'color' / '2_M72x_color_1.png'), image)
    return root, cams, people, list(human4d.convert(root))


def test_examples(dataset):
    root, cams, people, examples = dataset
    assert [(ex.camera_id, ex.frame) for ex in examples] == \
        [(c, f) for c in ('M72h', 'M72j') for f in (2, 4, 5)]
    for ex in examples:
        p = ex.frame - 2
        truth = people['M72h'].joints[p].astype(np.float64)
        assert ex.extra['pose_index'] == p
        assert ex.joint_names == tuple(joints.union_names('human4d'))
        assert ex.joint_names[:2] == ('pelv_human4d', 'spin0_human4d')
        assert ex.sequence == f'S2/{RECORDING}' and ex.split == 'train'
        np.testing.assert_allclose(ex.world_coords, truth, atol=1e-6)
        projected = ex.camera.world_to_image(ex.world_coords)
        assert np.max(np.abs(projected - cams[ex.camera_id].world_to_image(truth))) < 1.0
        x, y = np.round(projected[0]).astype(int)  # pelvis on the rendered person
        assert people[ex.camera_id].masks[p][y, x]
        image = cv2.imread(ex.image)[..., ::-1]
        np.testing.assert_array_equal(image, people[ex.camera_id].images[p])


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=human4d', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['human4d']
    assert info['before_dedup'] == {'train': 6}
    assert info['num_after_dedup'] == 6  # 150 mm/frame walk: all kept
    # Per camera: frame 1 (before pose 0) and frame 3 (pose 1 missing); one M72x image.
    assert info['skipped'] == {'camera without a .extrinsics file': 1,
                               'frame without a pose file': 4}
    assert info['num_skipped'] == 5


def test_bad_inputs(dataset, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(dataset[0], bad)
    subject = bad / 'S2'
    np.save(subject / RECORDING / 'Dump/gposes3d/2.npy', np.zeros((1, 32, 3)))
    with pytest.raises(common.DatasetFormatError,
                       match=r'gposes3d/2\.npy: has shape \(1, 32, 3\), expected \[1, 33, 3\]'):
        list(human4d.convert(bad))
    (subject / RECORDING / 'Dump/gposes3d/2.npy').write_bytes(b'\x93NUMPY broken')
    with pytest.raises(common.DatasetFormatError, match=r'gposes3d/2\.npy: not a readable'):
        list(human4d.convert(bad))
    np.savetxt(subject / 'pose/M72j.extrinsics', np.zeros((3, 3)))
    with pytest.raises(common.DatasetFormatError,
                       match=r'M72j\.extrinsics: has shape \(3, 3\), expected \[4, 3\]'):
        list(human4d.convert(bad))
    shutil.copy(dataset[0] / 'S2/pose/M72j.extrinsics', subject / 'pose')
    (subject / 'offsets.txt').write_text('other\t1\t1\n')
    with pytest.raises(common.DatasetFormatError,
                       match=f"offsets.txt: no line for recording '{RECORDING}'"):
        list(human4d.convert(bad))
    (subject / 'device_repository.json').write_text(json.dumps([{'Device': 'M72h'}]))
    with pytest.raises(common.DatasetFormatError,
                       match=r"device_repository\.json \[device 0\]: missing field "
                             r"'Color Intrinsics'"):
        list(human4d.convert(bad))
    (subject / 'device_repository.json').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*device_repository\.json'):
        list(human4d.convert(bad))
