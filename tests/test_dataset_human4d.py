"""HUMAN4D converter on a tiny fixture in the real layout (device_repository.json, .extrinsics,
offsets.txt, Dump/color pngs, Dump/gposes3d npy). Real frames are 1280x720; the fixture's are
160x120 with intrinsics to match."""
import json
import shutil

import cv2
import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import human4d as writer
from posepile.dataset_writers.human4d import RECORDING
from posepile.datasets import common, human4d


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('human4d')
    cams, people = writer.write(root)
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
