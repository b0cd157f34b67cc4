"""MPI-INF-3DHP test-set converter on a tiny fixture in the real format (v7.3 .mat + JPEGs).

The real frames are 2048x2048 (TS1-4) / 1920x1080 (TS5-6); the fixture's are 160x120: the
intrinsics are fitted to the annotation, so the resolution does not matter to the checks.
"""
import json
import shutil

import numpy as np
import pytest

from posepile import build, joints
from posepile.dataset_writers import mpi_inf_3dhp_test as writer
from posepile.dataset_writers.media import read_image
from posepile.dataset_writers.mpi_inf_3dhp_test import PELVIS_ROW, VALID, write_mat73
from posepile.datasets import common, mpi_inf_3dhp_test
from posepile.datasets.skip_counts import recording_skips


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('3dhp_test')
    truth = writer.write(root)
    return root, truth, list(mpi_inf_3dhp_test.convert(root))


def test_examples(dataset):
    root, truth, examples = dataset
    assert len(examples) == 2 * VALID.sum()
    assert examples[0].joint_names == tuple(joints.union_names('mpi_inf_3dhp_17'))
    assert examples[0].joint_names[PELVIS_ROW] == 'pelv_3dhp'
    assert {ex.split for ex in examples} == {'test'}
    assert [ex.frame for ex in examples if ex.sequence == 'TS1'] == [0, 1, 3, 4]
    for ex in examples:
        cam, world, annot3, people = truth[ex.sequence]
        np.testing.assert_allclose(ex.world_coords, annot3[ex.frame], atol=1e-3)
        np.testing.assert_allclose(ex.extra['univ_coords'], annot3[ex.frame] * 0.95, atol=1e-3)
        np.testing.assert_allclose(ex.camera.intrinsic_matrix, cam.intrinsic_matrix, atol=1e-3)
        projected = ex.camera.world_to_image(ex.world_coords.astype(np.float64))
        assert np.max(np.abs(projected - cam.world_to_image(world[ex.frame]))) < 1.0
        x, y = np.round(projected[PELVIS_ROW]).astype(int)
        assert people.masks[ex.frame][y, x]
        image = read_image(ex.image)
        assert np.mean(np.abs(image.astype(float) - people.images[ex.frame])) < 10
    with recording_skips() as counts:
        with_invalid = list(mpi_inf_3dhp_test.convert(root, include_invalid=True))
    assert not counts  # nothing dropped when the invalid frames are asked for
    assert len(with_invalid) == 2 * len(VALID)
    assert [ex.extra['valid'] for ex in with_invalid][:5] == [True, True, False, True, True]


def test_build_cli(dataset, tmp_path):
    root = dataset[0]
    out = tmp_path / 'out'
    assert build.main(['--dataset=mpi_inf_3dhp_test', f'--root={root}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['mpi_inf_3dhp_test']
    # 40 mm/frame walk plus the fixture's limb motion: count the 100 mm rule by hand.
    expected = 0
    for seq, (cam, world, annot3, _) in dataset[1].items():
        last = None
        for i in np.flatnonzero(VALID):
            if last is None or np.max(np.linalg.norm(annot3[i] - annot3[last], axis=1)) > 100:
                expected, last = expected + 1, i
    assert info['num_before_dedup'] == 8 and info['num_after_dedup'] == expected
    # Frame 2 of each of the 2 sequences has valid_frame = 0.
    assert info['skipped'] == {'invalid frame (valid_frame = 0)': 2}


def test_bad_inputs(dataset, tmp_path):
    root = dataset[0]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    mat = bad / 'TS1/annot_data.mat'
    (bad / 'TS1/imageSequence/img_000002.jpg').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*img_000002\.jpg'):
        list(mpi_inf_3dhp_test.convert(bad, sequences=['TS1']))
    write_mat73(mat, {'annot3': np.zeros((5, 1, 16, 3))})
    with pytest.raises(common.DatasetFormatError,
                       match=r"annot_data\.mat: field 'annot3' has shape \(5, 1, 16, 3\)"):
        next(mpi_inf_3dhp_test.convert(bad))
    write_mat73(mat, {'annot3': np.zeros((5, 1, 17, 3))})
    with pytest.raises(common.DatasetFormatError, match=r"annot_data\.mat: missing field "
                                                        r"'univ_annot3'"):
        next(mpi_inf_3dhp_test.convert(bad))
    mat.write_bytes(b'MATLAB 5.0 MAT-file' + b'\x00' * 200)
    with pytest.raises(common.DatasetFormatError, match=r'annot_data\.mat: not a MATLAB v7\.3'):
        next(mpi_inf_3dhp_test.convert(bad))
    rng = np.random.default_rng(0)
    noise3d = rng.uniform(1000, 2000, (5, 1, 17, 3))
    write_mat73(mat, {'annot3': noise3d, 'univ_annot3': noise3d,
                      'annot2': rng.uniform(0, 1000, (5, 1, 17, 2)),
                      'valid_frame': np.ones((5, 1))})
    with pytest.raises(common.DatasetFormatError, match='not a pinhole projection'):
        next(mpi_inf_3dhp_test.convert(bad))
