"""SPEC-SYN converter on a tiny fixture in the release's format (annotations/{train,test}.npz with
the keys the official loader and the reference PosePile loader read, PNG renders at the
imgname paths) plus a tiny SMPL model in the official npz layout.

Real renders are 1920x1080; the fixture's are 192x108 with intrinsics to match. The fixture
model has one vertex per joint and a one-hot joint regressor; each row's betas select the shape
direction holding that person's rest joints, built by undoing the row's (random) pose along the
SMPL tree, so the forward pass must apply the full 72-d pose to reproduce the rendered person.
The npz holds no body position, as the release: the converter must recover it from openpose_gt.
"""
import json
import shutil

import numpy as np
import pytest

from posepile import body_models, build, joints
from posepile.dataset_writers import spec as writer
from posepile.dataset_writers.spec import IMSHAPE
from posepile.camera import fit_translation
from posepile.datasets import common, spec


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('spec-syn')
    model_dir = tmp_path_factory.mktemp('body_models')
    model_dir, truth = writer.write(root, model_dir)
    return root, model_dir, truth, list(spec.convert(root, body_model_dir=model_dir))


def test_examples(dataset):
    root, model_dir, truth, examples = dataset
    kept = [t for t in truth if t['kind'] == 'ok']
    assert len(examples) == len(kept) == 5
    assert examples[0].joint_names == tuple(joints.union_names('smpl'))
    assert [(ex.split, ex.person, ex.frame, ex.camera_id) for ex in examples] == [
        ('train', 0, 0, ''), ('train', 1, 0, ''), ('train', 0, 0, ''), ('test', 0, 0, ''),
        ('test', 1, 0, '')]
    assert examples[0].sequence == examples[1].sequence == kept[0]['imgname'][:-len('.png')]
    for ex, t in zip(examples, kept):
        assert ex.split == t['split'] and ex.image == str(root / t['imgname'])
        # World = the y-down posing frame with the camera at the origin, mm.
        expected_world = t['camera_mm'] @ t['cam_rotmat']
        np.testing.assert_allclose(ex.world_coords, expected_world, atol=0.5)
        assert ex.extra['fit_residual_px'] < 1e-2
        # Through the parsed camera the joints land where the fixture camera renders them.
        projected = ex.camera.world_to_image(ex.world_coords)
        assert np.max(np.abs(projected - t['cam'].world_to_image(t['world_mm']))) < 0.05
        x, y = np.round(projected[0]).astype(int)  # the pelvis: inside this person's mask
        assert t['mask'][y, x]
        bone = np.linalg.norm(ex.world_coords[18] - ex.world_coords[16])  # upper arm, mm
        assert abs(bone - np.linalg.norm(t['world_mm'][18] - t['world_mm'][16])) < 0.1
        np.testing.assert_allclose(ex.camera.world_up, [0, -1, 0])
        np.testing.assert_allclose(ex.camera.t, 0, atol=1e-9)
        # The centre/scale square (1.2x the joints' extent here), clipped to the image.
        inside = np.clip(projected, -0.5, np.array(IMSHAPE[::-1]) - 0.5)
        x0, y0, w, h = ex.box
        assert x0 <= inside[:, 0].min() and inside[:, 0].max() <= x0 + w + 1e-4
        assert y0 <= inside[:, 1].min() and inside[:, 1].max() <= y0 + h + 1e-4
        assert x0 >= -0.5 and x0 + w <= IMSHAPE[1] - 0.5 + 1e-4


def test_fit_translation_closed_form():
    rng = np.random.default_rng(0)
    K = np.array([[1500.0, 3.0, 960.0], [0, 1490.0, 540.0], [0, 0, 1]])
    points = rng.normal(0, 400, (6, 14, 3))  # mm, camera orientation
    t = np.stack([rng.uniform(-800, 800, 6), rng.uniform(-500, 500, 6),
                  rng.uniform(3000, 9000, 6)], axis=1)
    camera = (points + t[:, None]) @ K.T
    pixels = camera[..., :2] / camera[..., 2:]
    valid = np.ones((6, 14), bool)
    valid[1, 2:] = False  # two points still fix t
    valid[2, 1:] = False  # one does not
    pixels[3, 5] = np.nan  # unusable pairs are ignored
    fitted = fit_translation(points, pixels, K, valid)
    keep = [0, 1, 3, 4, 5]
    np.testing.assert_allclose(fitted[keep], t[keep], rtol=1e-9, atol=1e-6)
    assert np.isnan(fitted[2]).all()
    np.testing.assert_allclose(fit_translation(points[0], pixels[0], K), t[0], rtol=1e-9)


def test_build_cli(dataset, tmp_path, monkeypatch):
    root, model_dir = dataset[:2]
    monkeypatch.delenv(body_models.ENV_VAR, raising=False)  # the flag alone must suffice
    out = tmp_path / 'out'
    assert build.main(['--dataset=spec', f'--root={root}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1', f'--body-model-dir={model_dir}']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['spec']
    assert info['before_dedup'] == {'train': 3, 'test': 2}
    # Independent stills: every person is its own track, so the 100 mm rule drops nothing.
    assert info['num_after_dedup'] == 5
    assert info['skipped'] == {
        'fewer than 3 labelled openpose_gt body keypoints to fit the translation': 1,
        'translation fit residual above max_fit_residual_px': 1}


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=True) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    np.savez(path, **arrays)


def test_bad_inputs(dataset, tmp_path, monkeypatch):
    root, model_dir = dataset[:2]
    monkeypatch.delenv(body_models.ENV_VAR, raising=False)
    with pytest.raises(ValueError, match=r'SPEC-SYN \(SMPL\) needs the licensed body models'):
        next(spec.convert(root))
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    test_npz = bad / 'annotations' / 'test.npz'
    with np.load(test_npz) as data:
        pose, imgname = data['pose'], data['imgname']

    def run():
        return list(spec.convert(bad, model_dir, splits=['test']))

    _rewrite(test_npz, pose=pose[:, :69])
    with pytest.raises(common.DatasetFormatError,
                       match=r"test\.npz: field 'pose' has shape \(2, 69\), expected \[Nx72\]"):
        run()
    _rewrite(test_npz, pose=pose, openpose_gt=None)
    with pytest.raises(common.DatasetFormatError, match=r"test\.npz: missing field 'openpose_gt'"):
        run()
    with np.load(bad / 'annotations' / 'train.npz') as data:
        _rewrite(test_npz, openpose_gt=data['openpose_gt'][:3])
    with pytest.raises(common.DatasetFormatError,
                       match=r"field 'openpose_gt' has 3 rows but 'imgname' has 2"):
        run()
    with np.load(root / 'annotations' / 'test.npz') as data:
        _rewrite(test_npz, openpose_gt=data['openpose_gt'], imgname=imgname.astype(object))
    with pytest.raises(common.DatasetFormatError,
                       match=r"test\.npz: field 'imgname' cannot be read without pickles"):
        run()
    _rewrite(test_npz, imgname=np.array(['../../etc/passwd.png'] * 2))
    with pytest.raises(common.DatasetFormatError, match='escapes the dataset root'):
        run()
    _rewrite(test_npz, imgname=imgname)
    (bad / imgname[0]).write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    with pytest.raises(common.DatasetFormatError, match=r'cam03_00001\.png: not a readable image'):
        run()
    (bad / imgname[0]).unlink()
    with pytest.raises(common.DatasetFormatError,
                       match=r'missing file .*\.png \(expected: the image of row 0 of test\.npz'):
        run()
    test_npz.write_bytes(test_npz.read_bytes()[:200])
    with pytest.raises(common.DatasetFormatError, match=r'test\.npz: (not a readable npz|field)'):
        run()
    test_npz.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*annotations/test\.npz'):
        run()
    with pytest.raises(ValueError, match="unknown SPEC-SYN split 'val'"):
        list(spec.convert(bad, model_dir, splits=['val']))
