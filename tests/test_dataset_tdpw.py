"""3DPW converter on a tiny fixture in the real format (protocol-2 .pkl dicts, metres, JPEGs).

Real 3DPW frames are 1080x1920; the fixture's are 160x120 with intrinsics to match.
"""
import json
import pickle
import shutil

import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import tdpw as writer
from posepile.dataset_writers.media import read_image
from posepile.dataset_writers.tdpw import N_FRAMES, pkl_dict, write_pkl
from posepile.datasets import common, tdpw
from posepile.safe_unpickle import UnsafePickleError


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('3dpw')
    truth = writer.write(root)
    return root, truth, list(tdpw.convert(root))


def test_examples(dataset):
    root, truth, examples = dataset
    assert len(examples) == 3 + 4 + 3  # campose_valid drops frame 2 of actor 0
    assert examples[0].joint_names == tuple(joints.union_names('smpl_24'))
    assert examples[0].joint_names[:3] == ('pelv', 'lhip', 'rhip')
    assert [(ex.person, ex.frame) for ex in examples if ex.sequence == 'courtyard_fixture_00'] \
        == [(0, 0), (0, 1), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3)]
    for ex in examples:
        cams, actors, images, masks, split = truth[ex.sequence]
        assert ex.split == split
        np.testing.assert_allclose(ex.world_coords, actors[ex.person][ex.frame], atol=1e-2)
        projected = ex.camera.world_to_image(actors[ex.person][ex.frame])
        expected = cams[ex.frame].world_to_image(actors[ex.person][ex.frame])
        assert np.max(np.abs(projected - expected)) < 1.0
        if ex.person == 0:
            x, y = np.round(projected[0]).astype(int)
            assert masks[ex.frame][y, x]
            assert np.mean(np.abs(read_image(ex.image).astype(float) - images[ex.frame])) < 10


def test_build_cli(dataset, tmp_path):
    root = dataset[0]
    out = tmp_path / 'out'
    assert build.main(['--dataset=tdpw', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['tdpw']
    # 150 mm/frame walk: every frame moves the pelvis more than 100 mm, so all are kept.
    assert info['before_dedup'] == {'train': 7, 'test': 3}
    assert info['num_after_dedup'] == 10
    # Frame 2 of actor 0 in each of the 2 sequences has campose_valid = 0.
    assert info['skipped'] == {'camera pose not valid (campose_valid = 0)': 2}


def test_bad_inputs(dataset, tmp_path):
    root, truth = dataset[:2]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    pkl = bad / 'sequenceFiles/test/downtown_fixture_00.pkl'
    cams, actors = truth['downtown_fixture_00'][:2]
    data = pkl_dict('downtown_fixture_00', cams, actors, [[1] * N_FRAMES])
    data['jointPositions'] = [actors[0].reshape(N_FRAMES, 72)[:, :69]]
    write_pkl(pkl, data)
    with pytest.raises(common.DatasetFormatError,
                       match=r"downtown_fixture_00\.pkl \[actor 0\]: field 'jointPositions' has "
                             r"shape \(4, 69\)"):
        list(tdpw.convert(bad, splits=['test']))
    del data['cam_poses']
    write_pkl(pkl, data)
    with pytest.raises(common.DatasetFormatError, match=r"\.pkl: missing field 'cam_poses'"):
        list(tdpw.convert(bad, splits=['test']))
    pkl.write_bytes(pickle.dumps(shutil.copytree, protocol=2))  # a global: must not unpickle
    with pytest.raises(UnsafePickleError, match='downtown_fixture_00.pkl'):
        list(tdpw.convert(bad, splits=['test']))
    pkl.write_bytes(b'\x80\x02}q\x00')  # truncated
    with pytest.raises(common.DatasetFormatError, match=r'\.pkl: not a readable pickle'):
        list(tdpw.convert(bad, splits=['test']))
    pkl.unlink()
    (bad / 'imageFiles/courtyard_fixture_00/image_00001.jpg').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*image_00001\.jpg'):
        list(tdpw.convert(bad))
