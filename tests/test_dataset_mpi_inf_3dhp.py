"""MPI-INF-3DHP training-set converter on a tiny fixture in the real format.

The real videos are 2048x2048; the fixture's are 160x120 with intrinsics to match ('size' in
camera.calibration says so), which the projection check does not care about.
"""
import json
import shutil

import numpy as np
import pytest
import scipy.io

from posepile import build, joints
from posepile.dataset_writers import mpi_inf_3dhp as writer
from posepile.dataset_writers.mpi_inf_3dhp import IMSHAPE, write_calibration
from posepile.datasets import common, mpi_inf_3dhp, mpi_inf_3dhp_full


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('3dhp')
    cams, truth = writer.write(root)
    return root, cams, truth


def test_standard_cameras(dataset):
    root, cams, truth = dataset
    examples = list(mpi_inf_3dhp.convert(root))
    assert len(examples) == 2 * 8 * 3
    assert sorted({int(ex.camera_id) for ex in examples}) == [0, 1, 2, 4, 5, 6, 7, 8]
    assert examples[0].joint_names == tuple(joints.union_names('3dhp'))
    assert examples[0].joint_names[4] == 'pelv_3dhp'
    assert {ex.split for ex in examples} == {'train'}
    for ex in examples:
        world, masks = truth[ex.sequence.split('/')[1]]
        cam = cams[int(ex.camera_id)]
        np.testing.assert_allclose(ex.world_coords, world[ex.frame], atol=0.05)
        projected = ex.camera.world_to_image(world[ex.frame])
        assert np.max(np.abs(projected - cam.world_to_image(world[ex.frame]))) < 1.0
        x, y = np.round(projected[4]).astype(int)  # pelvis on the rendered body
        assert masks[int(ex.camera_id)][ex.frame][y, x]
    assert examples[0].image().shape == (*IMSHAPE, 3)


def test_full_variant_and_build(dataset, tmp_path):
    root = dataset[0]
    examples = list(mpi_inf_3dhp_full.convert(root))
    assert len(examples) == 2 * 14 * 3
    assert {ex.dataset for ex in examples} == {'mpi_inf_3dhp_full'}
    out = tmp_path / 'out'
    assert build.main(['--dataset=mpi_inf_3dhp', f'--root={root}', f'--out={out}',
                       '--crop-size=32', '--num-shards=2']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['mpi_inf_3dhp']
    assert info['num_before_dedup'] == 48 and info['num_after_dedup'] == 32
    assert info['skipped'] == {}  # every annotation row has its video frame


def test_bad_inputs(dataset, tmp_path):
    root, cams, _ = dataset
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    seq_dir = bad / 'S1/Seq1'
    (seq_dir / 'camera.calibration').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*camera\.calibration'):
        next(mpi_inf_3dhp.convert(bad))
    write_calibration(seq_dir / 'camera.calibration', cams[:3])
    with pytest.raises(common.DatasetFormatError, match=r'camera\.calibration: no block "name 4"'):
        list(mpi_inf_3dhp.convert(bad))
    write_calibration(seq_dir / 'camera.calibration', cams)

    annot3 = np.empty((14, 1), object)
    for i in range(14):
        annot3[i, 0] = np.zeros((3, 51))
    scipy.io.savemat(str(seq_dir / 'annot.mat'), {'annot3': annot3})
    with pytest.raises(common.DatasetFormatError,
                       match=r"annot\.mat \[cell 0\]: field 'annot3' has shape \(3, 51\)"):
        next(mpi_inf_3dhp.convert(bad))
    scipy.io.savemat(str(seq_dir / 'annot.mat'), {'annot2': annot3})
    with pytest.raises(common.DatasetFormatError, match=r"annot\.mat: missing field 'annot3'"):
        next(mpi_inf_3dhp.convert(bad))
    shutil.copy(root / 'S1/Seq1/annot.mat', seq_dir / 'annot.mat')

    (seq_dir / 'imageSequence/video_0.avi').write_bytes(b'garbage' * 100)
    with pytest.raises(common.DatasetFormatError, match=r'video_0\.avi'):
        next(mpi_inf_3dhp.convert(bad))
