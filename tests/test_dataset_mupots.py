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

from fixture_media import read_image, write_jpeg
from fixture_people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.datasets import common, mupots

IMSHAPE = (120, 160)
PELVIS_ROW = 14
HIDDEN_OF_ROW = (np.arange(17) - PELVIS_ROW) % 17
N_FRAMES = 3


def write_annot(path, cam, people_world, valid):
    """annotations{t, p} structs with annot2 [2,17], annot3 [3,17], univ_annot3, isValidFrame."""
    cells = np.empty((N_FRAMES, len(people_world)), object)
    occlusion = np.empty_like(cells)
    for t in range(N_FRAMES):
        for p, world in enumerate(people_world):
            cells[t, p] = {'annot2': cam.world_to_image(world[t]).T,
                           'annot3': cam.world_to_camera(world[t]).T,
                           'univ_annot3': cam.world_to_camera(world[t]).T * 0.9,
                           'isValidFrame': np.array([[valid[p][t]]], np.uint8)}
            occlusion[t, p] = (np.arange(17)[None] % 5 == p).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {'annotations': cells})
    scipy.io.savemat(str(path.with_name('occlusion.mat')), {'occlusion_labels': occlusion})


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('mupots')
    base = root / 'MultiPersonTestSet'
    truth = {}
    for seed, (seq, n_people) in enumerate((('TS1', 2), ('TS6', 1))):
        cam = default_camera(IMSHAPE, yaw_deg=20 * seed, focal=180.0 + 10 * seed)
        cam.intrinsic_matrix[1, 2] -= 2.5
        people = make_people_sequence([cam], IMSHAPE, n_frames=N_FRAMES, n_joints=17, seed=seed,
                                      step_mm_per_frame=60.0)[0]
        world = people.joints[:, HIDDEN_OF_ROW].astype(np.float64)
        people_world = [world, world + [700.0, 300.0, 0]][:n_people]
        valid = [[1, 1, 1], [1, 0, 1]][:n_people]
        write_annot(base / seq / 'annot.mat', cam, people_world, valid)
        for t, image in enumerate(people.images):
            write_jpeg(base / seq / f'img_{t:06d}.jpg', image)
        truth[seq] = (cam, people_world, people)
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
