"""SURREAL converter on a tiny fixture in the real format (_info.mat, _segm.mat, 320x240 mp4).

The fixture uses SURREAL's real resolution and fixed intrinsics (f = 600 px). People are rendered
in the fixture's z-up world by a camera whose pose is then expressed in a SURREAL world in which
that camera has SURREAL's constant rotation; joints3D/camLoc are written in that world, in metres.
"""
import json
import shutil

import numpy as np
import pytest
import scipy.io

from posepile import build, joints
from posepile.dataset_writers import surreal as writer
from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.surreal import CLIPS, IMSHAPE, N_FRAMES
from posepile.datasets import common, surreal
from posepile.datasets.skip_counts import recording_skips


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('surreal')
    truth = writer.write(root)
    return root, truth, list(surreal.convert(root))


def test_examples(dataset):
    root, truth, examples = dataset
    assert len(examples) == len(CLIPS) * N_FRAMES
    assert examples[0].joint_names == tuple(joints.union_names('smpl'))
    assert examples[0].joint_names[:3] == ('pelv', 'lhip', 'rhip')
    assert [(ex.sequence, ex.camera_id, ex.split) for ex in examples[::N_FRAMES]] == [
        ('train/run0/01_01', 'c0001', 'train'), ('train/run0/01_01', 'c0002', 'train'),
        ('val/run1/02_03', 'c0001', 'validation'), ('test/run2/05_02', 'c0003', 'test')]
    assert [ex.frame for ex in examples[:N_FRAMES]] == list(range(N_FRAMES))
    for ex in examples:
        clip = truth[(ex.sequence, ex.camera_id)]
        np.testing.assert_allclose(ex.world_coords, clip['world'][ex.frame], atol=1e-2)
        # Through the parsed camera, joints land where the dataset's own joints2D say.
        projected = ex.camera.world_to_image(ex.world_coords)
        np.testing.assert_allclose(projected, clip['joints2d'][ex.frame] - 0.5, atol=1e-2)
        x, y = np.round(projected[0]).astype(int)  # the pelvis is on the rendered body
        assert clip['masks'][ex.frame][y, x]
        image = ex.image()
        assert image.shape == IMSHAPE + (3,)
        assert np.mean(np.abs(image.astype(float) - clip['images'][ex.frame])) < 12
        from pycocotools import mask as mask_lib
        decoded = mask_lib.decode({'size': ex.mask['size'], 'counts': ex.mask['counts']})
        np.testing.assert_array_equal(decoded.astype(bool), clip['masks'][ex.frame])
    # World up is SURREAL's -y.
    np.testing.assert_allclose(examples[0].camera.world_up, [0, -1, 0])


def test_split_selection(dataset):
    root = dataset[0]
    examples = list(surreal.convert(root, splits=['val'], masks=False))
    assert {ex.split for ex in examples} == {'validation'} and len(examples) == N_FRAMES
    assert examples[0].mask is None
    with pytest.raises(ValueError, match="unknown SURREAL split folder 'validation'"):
        list(surreal.convert(root, splits=['validation']))


def test_build_cli(dataset, tmp_path):
    root = dataset[0]
    out = tmp_path / 'out'
    assert build.main(['--dataset=surreal', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['surreal']
    assert info['before_dedup'] == {'train': 8, 'validation': 4, 'test': 4}
    # The frozen clip keeps 1 of its 4 frames; the 150 mm/frame walks keep all.
    assert info['num_after_dedup'] == 13
    assert info['skipped'] == {}  # the fixture's bodies are always in view


def test_bad_inputs(dataset, tmp_path):
    root = dataset[0]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    folder = bad / 'cmu/test/run2/05_02'
    info_path = folder / '05_02_c0003_info.mat'
    info = {k: v for k, v in scipy.io.loadmat(info_path).items() if not k.startswith('__')}
    scipy.io.savemat(info_path, {**info, 'joints3D': info['joints3D'][:, :23]})
    with pytest.raises(common.DatasetFormatError,
                       match=r"05_02_c0003_info\.mat: field 'joints3D' has shape \(3, 23, 4\), "
                             r"expected \[3x24xN\]"):
        list(surreal.convert(bad, splits=['test']))
    scipy.io.savemat(info_path, {k: v for k, v in info.items() if k != 'camLoc'})
    with pytest.raises(common.DatasetFormatError, match=r"_info\.mat: missing field 'camLoc'"):
        list(surreal.convert(bad, splits=['test']))
    info_path.write_bytes(b'MATLAB 5.0 MAT-file truncated')
    with pytest.raises(common.DatasetFormatError, match=r'_info\.mat: not a readable MATLAB'):
        list(surreal.convert(bad, splits=['test']))
    scipy.io.savemat(info_path, info)
    segm = {k: v for k, v in scipy.io.loadmat(folder / '05_02_c0003_segm.mat').items()
            if not k.startswith('__')}
    del segm['segm_3']
    scipy.io.savemat(folder / '05_02_c0003_segm.mat', segm)
    with pytest.raises(common.DatasetFormatError, match=r"_segm\.mat: missing field 'segm_3'"):
        list(surreal.convert(bad, splits=['test']))
    frames = np.stack([surreal.common.VideoFrame(folder / '05_02_c0003.mp4', i)()
                       for i in range(2)])
    write_video(folder / '05_02_c0003.mp4', frames)  # truncated to 2 of the 4 frames
    with pytest.raises(common.DatasetFormatError,
                       match=r'05_02_c0003\.mp4: video has 2 frames but 05_02_c0003_info\.mat '
                             r'annotates 4'):
        list(surreal.convert(bad, splits=['test'], masks=False))
    with recording_skips() as counts:
        short = list(surreal.convert(bad, splits=['test'], masks=False,
                                     strict_frame_count=False))
    assert [ex.frame for ex in short] == [0, 1]
    assert dict(counts) == {('surreal', 'frame beyond the end of the video'): 2}
    (folder / '05_02_c0003.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42 not really a video')
    with pytest.raises(common.DatasetFormatError, match=r'05_02_c0003\.mp4: cannot be opened'):
        list(surreal.convert(bad, splits=['test'], masks=False))
    (folder / '05_02_c0003.mp4').unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*05_02_c0003\.mp4'):
        list(surreal.convert(bad, splits=['test']))
    shutil.rmtree(bad / 'cmu/val')
    with pytest.raises(common.DatasetFormatError, match=r'missing directory .*cmu/val'):
        list(surreal.convert(bad))
