"""MPII Human Pose converter on a tiny fixture in the real format (RELEASE struct in a v5 .mat).

Real MPII images are ~1280x720; the fixture's are 160x120.
"""
import json
import shutil

import numpy as np
import pytest
import scipy.io

from posepile import build, joints
from posepile.dataset_writers import mpii as writer
from posepile.dataset_writers.media import read_image
from posepile.dataset_writers.mpii import struct_array, write_release
from posepile.datasets import common, mpii


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('mpii')
    truth, visible = writer.write(root)
    return root, truth, visible, list(mpii.convert(root, validation_images=['000000003.jpg']))


def test_examples(dataset):
    root, truth, visible, examples = dataset
    assert [(ex.sequence, ex.person, ex.split) for ex in examples] == [
        ('000000001.jpg', 0, 'train'), ('000000002.jpg', 0, 'train'),
        ('000000003.jpg', 0, 'validation')]
    for ex in examples:
        points, image, mask, scale, objpos = truth[ex.sequence]
        assert ex.joint_names == tuple(joints.union_names('mpii'))
        assert ex.joint_names[:2] == ('rank_mpii', 'rkne_mpii')
        assert np.all(np.isnan(ex.world_coords))
        assert np.all(np.isnan(ex.coords2d[5]))
        others = np.arange(16) != 5
        np.testing.assert_allclose(ex.coords2d[others], points[others])
        np.testing.assert_array_equal(ex.extra['is_visible'],
                                      [-1 if v is None else v for v in visible])
        side = 200 * scale
        np.testing.assert_allclose(ex.box, [*(objpos - side / 2), side, side], atol=1e-4)
        assert ex.extra['activity'] == 'walking'
        assert ex.extra['single_person'] == (ex.sequence != '000000003.jpg')
        # Thorax (joint 7) is a labelled body point: it must land on the rendered person.
        x, y = np.round(ex.coords2d[7]).astype(int)
        assert mask[y, x]
        assert np.mean(np.abs(read_image(ex.image).astype(float) - image)) < 10
        focal = 80 / np.tan(np.deg2rad(4.0))  # the released code's 8 degrees for 2D data
        np.testing.assert_allclose(ex.camera.intrinsic_matrix,
                                   [[focal, 0, 79.5], [0, focal, 59.5], [0, 0, 1]])


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=mpii', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['mpii']
    assert info['before_dedup'] == {'train': 3}  # the CLI passes no validation list
    assert info['num_after_dedup'] == 3
    # The head-box-only person of image 2 and the test image.
    assert info['skipped'] == {'person without annopoints, scale or objpos': 1,
                               'test image without public joints (images)': 1}


def test_bad_inputs(dataset, tmp_path):
    root = dataset[0]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    (bad / 'images/000000002.jpg').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*images/000000002\.jpg'):
        list(mpii.convert(bad))
    mat = bad / 'mpii_human_pose_v1_u12_2' / mpii.MAT_NAME
    point = {'x': 5.0, 'y': 5.0, 'id': 16, 'is_visible': 1}
    rect = {'annopoints': {'point': struct_array([point])}, 'scale': 1.0,
            'objpos': {'x': 5.0, 'y': 5.0}}
    write_release(mat, [{'image': {'name': '000000001.jpg'}, 'annorect': struct_array([rect])}],
                  [1], [[1]], [{'act_name': 'x'}])
    with pytest.raises(common.DatasetFormatError,
                       match=r'u12_1\.mat \[RELEASE\.annolist\(1\)\]\.annorect\(1\): field '
                             r'"annopoints\.point\.id" is 16, expected 0\.\.15'):
        list(mpii.convert(bad))
    scipy.io.savemat(str(mat), {'OTHER': np.zeros(3)})
    with pytest.raises(common.DatasetFormatError, match='u12_1.mat: has no variable "RELEASE"'):
        list(mpii.convert(bad))
    mat.write_bytes(b'MATLAB 5.0 MAT-file truncated')
    with pytest.raises(common.DatasetFormatError, match='u12_1.mat: not a readable MATLAB'):
        list(mpii.convert(bad))
    mat.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*u12_1\.mat'):
        list(mpii.convert(bad))
