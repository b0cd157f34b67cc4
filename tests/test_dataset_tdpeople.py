"""3DPeople converter on a tiny fixture in the real layout (rgb/<subject>/<action>/camera0c/<dir>/
NNNN.jpg, skeleton txt with 67 rows of x2D y2D X Y Z in decimetres, clothes segmentation png on a
grey background) at the real 640x480, f = 700 px."""
import json
import shutil

import numpy as np
import pytest

from posepile.dataset_writers.media import read_image
from posepile import build, joints
from posepile.dataset_writers import tdpeople as writer
from posepile.dataset_writers.tdpeople import SEQ
from posepile.cropping import decode_rle
from posepile.datasets import common, tdpeople


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('tdpeople')
    cams, people = writer.write(root)
    return root, cams, people, list(tdpeople.convert(root))


def test_examples(dataset):
    root, cams, people, examples = dataset
    assert [(ex.camera_id, ex.frame) for ex in examples] == \
        [(c, f) for c in ('camera01', 'camera02') for f in (1, 2, 3)]
    for ex in examples:
        t = ex.frame - 1
        cam, truth = cams[ex.camera_id], people[ex.camera_id].joints[t].astype(np.float64)
        assert ex.joint_names == tuple(joints.union_names('3dpeople'))
        assert ex.joint_names[:2] == ('pelv_3dpeople', 'spin_3dpeople')
        assert ex.sequence == SEQ and ex.split == 'train' and ex.dataset == 'tdpeople'
        np.testing.assert_allclose(ex.world_coords, truth, atol=1e-3)  # written with 6 decimals
        projected = ex.camera.world_to_image(ex.world_coords)
        assert np.max(np.abs(projected - cam.world_to_image(truth))) < 0.5
        np.testing.assert_allclose(ex.camera.t, cam.t, atol=5.0)  # solved pose ~ true pose
        np.testing.assert_allclose(ex.camera.R, cam.R, atol=2e-3)
        seq = people[ex.camera_id]
        np.testing.assert_array_equal(decode_rle(ex.mask).astype(bool), seq.masks[t])
        assert np.mean(np.abs(read_image(ex.image).astype(float) - seq.images[t])) < 10


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=tdpeople', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['tdpeople']
    assert info['before_dedup'] == {'train': 6}
    assert info['num_after_dedup'] == 6  # 150 mm/frame walk: all kept
    assert info['skipped'] == {}  # every frame's clothes mask is non-empty


def test_bad_inputs(dataset, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(dataset[0], bad)
    skel = bad / 'skeleton' / SEQ / 'camera01' / '0002.txt'
    table = np.loadtxt(skel)
    table[:, :2] += np.random.default_rng(0).normal(0, 20, (67, 2))
    np.savetxt(skel, table)
    with pytest.raises(common.DatasetFormatError,
                       match=r'0002\.txt: the 2D rows are not a 640x480, f=700 projection'):
        list(tdpeople.convert(bad))
    np.savetxt(skel, table[:, :4])
    with pytest.raises(common.DatasetFormatError,
                       match=r'0002\.txt: has shape \(67, 4\), expected \[67, 5\]'):
        list(tdpeople.convert(bad))
    skel.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*camera01/0002\.txt'):
        list(tdpeople.convert(bad))
    shutil.copy(dataset[0] / 'skeleton' / SEQ / 'camera01' / '0002.txt', skel)
    (bad / 'segmentation_clothes' / SEQ / 'camera02' / '0001.png').write_bytes(b'\x89PNG broken')
    with pytest.raises(common.DatasetFormatError, match=r'camera02/0001\.png: not a readable PNG'):
        list(tdpeople.convert(bad))
