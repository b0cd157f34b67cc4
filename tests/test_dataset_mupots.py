"""MuPoTS-3D converter on a tiny fixture in the real format (cell-of-struct annot.mat, JPEGs).

Real frames are 2048x2048 / 1920x1080; the fixture's are 160x120 (intrinsics are fitted to the
annotation, so the resolution does not matter). Only person 0 is drawn; person 1 is annotated
beside them (projection checks only).
"""
import json
import shutil

import numpy as np
import pytest
import scipy.io

from posepile import build, joints
from posepile.dataset_writers import mupots as writer
from posepile.dataset_writers.media import read_image
from posepile.dataset_writers.mupots import PELVIS_ROW
from posepile.datasets import common, mupots


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('mupots')
    truth = writer.write(root)
    return root, truth, list(mupots.convert(root))


def test_examples(dataset):
    root, truth, examples = dataset
    assert [(ex.sequence, ex.person, ex.frame) for ex in examples] == [
        ('TS1', 0, 0), ('TS1', 0, 1), ('TS1', 0, 2), ('TS1', 1, 0), ('TS1', 1, 2),
        ('TS6', 0, 0), ('TS6', 0, 1), ('TS6', 0, 2)]
    assert examples[0].joint_names == tuple(joints.union_names('mupots_17'))
    assert examples[0].joint_names[0] == 'htop_3dhp'
    for ex in examples:
        cam, people_world, people = truth[ex.sequence]
        world = people_world[ex.person][ex.frame]
        assert ex.split == 'test'
        np.testing.assert_allclose(ex.world_coords, cam.world_to_camera(world), atol=1e-3)
        np.testing.assert_allclose(ex.extra['univ_coords'], ex.world_coords * 0.9, atol=1e-3)
        np.testing.assert_array_equal(ex.extra['occluded'], np.arange(17) % 5 == ex.person)
        projected = ex.camera.world_to_image(ex.world_coords.astype(np.float64))
        assert np.max(np.abs(projected - cam.world_to_image(world))) < 1.0
        if ex.person == 0:
            x, y = np.round(projected[PELVIS_ROW]).astype(int)
            assert people.masks[ex.frame][y, x]
            image = read_image(ex.image).astype(float)
            assert np.mean(np.abs(image - people.images[ex.frame])) < 10


def test_build_cli(dataset, tmp_path):
    root = dataset[0]
    out = tmp_path / 'out'
    assert build.main(['--dataset=mupots', f'--root={root / "MultiPersonTestSet"}',
                       f'--out={out}', '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['mupots']
    expected = 0
    for ex_track in {ex.track_key for ex in dataset[2]}:
        track = [ex for ex in dataset[2] if ex.track_key == ex_track]
        last = None
        for ex in track:
            if last is None or np.max(np.linalg.norm(ex.world_coords - last, axis=1)) > 100:
                expected, last = expected + 1, ex.world_coords
    assert info['num_before_dedup'] == 8 and info['num_after_dedup'] == expected
    # TS1's second person is invalid in frame 1.
    assert info['skipped'] == {'invalid person-frame (isValidFrame = 0)': 1}


def test_bad_inputs(dataset, tmp_path):
    root = dataset[0]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    seq = bad / 'MultiPersonTestSet/TS1'
    cells = np.empty((1, 1), object)
    cells[0, 0] = {'annot2': np.zeros((2, 17)), 'annot3': np.zeros((3, 16)),
                   'univ_annot3': np.zeros((3, 17)), 'isValidFrame': np.ones((1, 1))}
    scipy.io.savemat(str(seq / 'annot.mat'), {'annotations': cells})
    with pytest.raises(common.DatasetFormatError,
                       match=r"annot\.mat \[annotations\{1,1\}\]: field 'annot3' has shape "
                             r"\(3, 16\)"):
        next(mupots.convert(bad))
    cells[0, 0] = {'annot2': np.zeros((2, 17)), 'isValidFrame': np.ones((1, 1))}
    scipy.io.savemat(str(seq / 'annot.mat'), {'annotations': cells})
    with pytest.raises(common.DatasetFormatError, match=r"missing field 'annot3'"):
        next(mupots.convert(bad))
    (seq / 'annot.mat').write_bytes(b'\x00garbage' * 50)
    with pytest.raises(common.DatasetFormatError, match=r'annot\.mat: not a readable MATLAB'):
        next(mupots.convert(bad))
    (seq / 'annot.mat').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*TS1/annot\.mat'):
        next(mupots.convert(bad))
    shutil.copy(root / 'MultiPersonTestSet/TS1/annot.mat', seq / 'annot.mat')
    (seq / 'img_000001.jpg').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*img_000001\.jpg'):
        list(mupots.convert(bad))
