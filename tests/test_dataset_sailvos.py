"""SAIL-VOS pose converter on a tiny fixture in the reference loader's layout (per-person rig-point
txt files, camera npz, visible-id npz, amodal png, bmp frames). Real frames are 1280x800; the
fixture's are 160x120 with intrinsics to match."""
import json
import shutil

import cv2
import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import sailvos as writer
from posepile.dataset_writers.sailvos import OFFSET_MM, PERSON
from posepile.cropping import decode_rle
from posepile.datasets import common, sailvos


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('sailvos')
    cam, people = writer.write(root)
    return root, cam, people, list(sailvos.convert(root))


def test_examples(dataset):
    root, cam, people, examples = dataset
    # Frame 2 has no camera; the hidden person is > 75 % occluded.
    assert [(ex.person, ex.frame) for ex in examples] == [(PERSON, 0), (PERSON, 1), (PERSON, 3)]
    origin = cam.t + OFFSET_MM
    for ex in examples:
        assert ex.joint_names == tuple(joints.union_names('sailvos'))
        assert ex.joint_names[:2] == ('htop_sailvos', 'neck_sailvos')
        assert ex.split == 'train' and ex.sequence == 'ah_3b_mcs_4'
        np.testing.assert_allclose(ex.extra['origin_mm'], origin, atol=1e-3)
        expected = people.joints[ex.frame] + OFFSET_MM - origin
        expected[17] = np.nan  # rtoe: all its rig points missing
        np.testing.assert_allclose(ex.world_coords, expected, atol=0.05)
        valid = np.isfinite(expected[:, 0])
        projected = ex.camera.world_to_image(ex.world_coords[valid])
        assert np.max(np.abs(projected - cam.world_to_image(people.joints[ex.frame][valid]))) < 1
        mask = people.masks[ex.frame]
        np.testing.assert_array_equal(decode_rle(ex.mask).astype(bool), mask)
        ys, xs = np.nonzero(mask)
        np.testing.assert_allclose(ex.box, [xs.min() - 0.5, ys.min() - 0.5,
                                            np.ptp(xs) + 1, np.ptp(ys) + 1])
        image = cv2.imread(ex.image)[..., ::-1]
        np.testing.assert_array_equal(image, people.images[ex.frame])  # bmp is lossless
        np.testing.assert_allclose(ex.camera.world_up, [0, 0, 1])


def test_joint_means_by_hand():
    points = np.zeros((343, 3))
    points[341] = [1.0, 2.0, 3.0]
    points[8] = [3.0, 2.0, 1.0]      # htop = mean of rows 341 and 8
    points[61] = [0.5, 0.5, 0.5]     # neck = row 61
    points[216] = [2.0, 0.0, 0.0]    # rsho: row 234 missing -> row 216 alone
    coords = sailvos.joints_from_points(points)
    np.testing.assert_allclose(coords[0], [2000, 2000, 2000])
    np.testing.assert_allclose(coords[1], [500, 500, 500])
    np.testing.assert_allclose(coords[2], [2000, 0, 0])
    assert np.all(np.isnan(coords[3:]))


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=sailvos', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['sailvos']
    assert info['before_dedup'] == {'train': 3}
    assert info['num_after_dedup'] == 3  # 150 mm walk per frame: every frame kept
    # Frame 2 of both persons has NaN intrinsics; the hidden person's other 3 frames are
    # > 75 % occluded.
    assert info['skipped'] == {'camera intrinsics are NaN': 2,
                               'occluded fraction above max_occlusion': 3}


def test_bad_inputs(dataset, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(dataset[0], bad)
    pdir = bad / 'ah_3b_mcs_4' / f'{PERSON}_Ped_walker'
    np.savetxt(pdir / '000001_3d.txt', np.zeros((10, 3)))
    with pytest.raises(common.DatasetFormatError,
                       match=r'000001_3d\.txt: has shape \(10, 3\), expected \[K >= 343, 3\]'):
        list(sailvos.convert(bad))
    np.savez(pdir / '000001_camera.npz', intrinsics=np.eye(3))
    with pytest.raises(common.DatasetFormatError,
                       match=r"000001_camera\.npz: missing field 'extrinsics'"):
        list(sailvos.convert(bad))
    (pdir / '000001_camera.npz').write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(common.DatasetFormatError, match=r'000001_camera\.npz: not a readable npz'):
        list(sailvos.convert(bad))
    (pdir / '000001_camera.npz').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*000001_camera\.npz'):
        list(sailvos.convert(bad))
    shutil.copytree(dataset[0], bad, dirs_exist_ok=True)
    (bad / 'ah_3b_mcs_4/images/000003.bmp').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*images/000003\.bmp'):
        list(sailvos.convert(bad))
