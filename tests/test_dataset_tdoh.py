"""3DOH50K converter on a tiny fixture in the real format (annots.json keyed by image id, with
camera-frame lsp_joints_3d in the dataset's 1/7 m units, extri [4x4] in metres, intri, bbox;
images/<id>.jpg, masks/<id>.png).

Real 3DOH50K images are 1920x1080; the fixture's are 160x120 with intrinsics to match.
"""
import json
import shutil

import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import tdoh as writer
from posepile.datasets import common, tdoh


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('3doh')
    truth = writer.write(root)
    return root, truth, list(tdoh.convert(root))


def test_examples(dataset):
    root, truth, examples = dataset
    assert len(examples) == 8
    assert examples[0].joint_names == tuple(joints.union_names('3doh'))
    assert examples[0].joint_names[0] == 'rank_3doh'
    assert [(ex.sequence, ex.camera_id, ex.frame) for ex in examples] == [
        ('trainset', 'cam0', 0), ('trainset', 'cam0', 1), ('trainset', 'cam0', 2),
        ('trainset', 'cam1', 3), ('trainset', 'cam1', 4), ('trainset', 'cam1', 5),
        ('testset', 'cam0', 0), ('testset', 'cam0', 1)]
    for ex in examples:
        cam, world, mask = truth[(ex.sequence, ex.frame)]
        assert ex.split == {'trainset': 'train', 'testset': 'test'}[ex.sequence]
        np.testing.assert_allclose(ex.world_coords, world, atol=1e-2)
        projected = ex.camera.world_to_image(ex.world_coords)
        np.testing.assert_allclose(projected, cam.world_to_image(world), atol=1e-3)
        lo, hi = projected.min(0) - 3, projected.max(0) + 3
        np.testing.assert_allclose(ex.box, [*lo, *(hi - lo)], atol=1e-3)
        x, y = np.round(projected[0]).astype(int)
        assert mask[y, x]
        if ex.split == 'train':
            from pycocotools import mask as mask_lib
            decoded = mask_lib.decode({'size': ex.mask['size'], 'counts': ex.mask['counts']})
            np.testing.assert_array_equal(decoded.astype(bool), mask)
        else:
            assert ex.mask is None


def test_build_cli(dataset, tmp_path):
    root = dataset[0]
    out = tmp_path / 'out'
    assert build.main(['--dataset=tdoh', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['tdoh']
    assert info['before_dedup'] == {'train': 6, 'test': 2}
    assert info['num_after_dedup'] == 3 + 1 + 2  # camera 1's frozen frames keep one
    assert info['skipped'] == {}  # 3DOH50K's converter drops nothing


def test_bad_inputs(dataset, tmp_path):
    root = dataset[0]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    annots_path = bad / 'testset' / 'annots.json'
    annots = json.loads(annots_path.read_text())
    annots['00001']['lsp_joints_3d'] = annots['00001']['lsp_joints_3d'][:13]
    annots_path.write_text(json.dumps(annots))
    with pytest.raises(common.DatasetFormatError,
                       match=r"annots\.json \[00001\]: field 'lsp_joints_3d' has shape \(13, 3\), "
                             r"expected \[14x3\]"):
        list(tdoh.convert(bad, splits=['testset']))
    del annots['00001']
    annots['00000'].pop('extri')
    annots_path.write_text(json.dumps(annots))
    with pytest.raises(common.DatasetFormatError, match=r"\[00000\]: missing field 'extri'"):
        list(tdoh.convert(bad, splits=['testset']))
    annots_path.write_text('{"00000": ')
    with pytest.raises(common.DatasetFormatError, match=r'annots\.json: not valid JSON'):
        list(tdoh.convert(bad, splits=['testset']))
    (bad / 'trainset/masks/00004.png').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*masks/00004\.png'):
        list(tdoh.convert(bad, splits=['trainset']))
    assert len(list(tdoh.convert(bad, splits=['trainset'], masks=False))) == 6
    (bad / 'trainset/images/00002.jpg').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*images/00002\.jpg'):
        list(tdoh.convert(bad, splits=['trainset'], masks=False))
