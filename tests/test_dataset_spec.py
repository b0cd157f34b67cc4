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

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import body_models, build, joints
from posepile.camera import fit_translation
from posepile.datasets import common, spec
from posepile.synthetic.body import JOINT_IDS
from test_body_models import model_arrays

IMSHAPE = (108, 192)
# The fixture body's joint centres in SMPL's joint order.
SMPL_FROM_FIXTURE = [JOINT_IDS[n] for n in (
    'pelvis lhip rhip spine1 lknee rknee spine2 lankle rankle spine3 ltoe rtoe neck lclavicle '
    'rclavicle head lshoulder rshoulder lelbow relbow lwrist rwrist lhand rhand').split()]
# Other BODY_25 entries (nose, eyes, ears, feet), filled from nearby SMPL joints.
OPENPOSE_OTHERS = {0: 15, 15: 15, 16: 15, 17: 15, 18: 15, 19: 10, 20: 10, 21: 7, 22: 11, 23: 11,
                   24: 8}
# z-up fixture world -> SPEC's gravity-aligned, y-down posing frame.
Z_UP_TO_Y_DOWN = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
REST_PELVIS = np.array([0.003, -0.35, 0.012])  # metres, like SMPL's template
PREFIX = 'images/{split}/ag_{split}set_renderpeople_bfh_archviz_5_10_cam{cam:02d}_00001.png'
# (split, camera yaw, fixture seed, [(frame, kind), ...]) per image; kind: 'ok', 'noisy'
# (openpose_gt off by ~25 px: skipped), 'sparse' (2 labelled keypoints: skipped).
IMAGES = (
    ('train', -20.0, 0, [(0, 'ok'), (2, 'ok')]),
    ('train', 25.0, 1, [(0, 'ok')]),
    ('train', 5.0, 2, [(0, 'noisy'), (2, 'sparse')]),
    ('test', -10.0, 3, [(0, 'ok'), (2, 'ok')]),
)


def chain_rotations(pose):
    """Global rotation of every SMPL joint [24, 3, 3] for one 72-d pose."""
    local = Rotation.from_rotvec(pose.reshape(24, 3)).as_matrix()
    parents = body_models.OFFICIAL_PARENTS['smpl']
    glob = np.empty_like(local)
    for k in range(24):  # reference, deliberately a plain loop over the tree
        glob[k] = local[k] if parents[k] < 0 else glob[parents[k]] @ local[k]
    return glob


def rest_joints(posed_m, pose):
    """Rest joints [24, 3] whose forward pass with `pose` gives `posed_m` (pelvis fixed)."""
    glob = chain_rotations(pose)
    parents = body_models.OFFICIAL_PARENTS['smpl']
    rest = np.empty_like(posed_m)
    rest[0] = posed_m[0]
    for k in range(1, 24):
        p = parents[k]
        rest[k] = rest[p] + glob[p].T @ (posed_m[k] - posed_m[p])
    return rest


def euler_pitch_roll(rot):
    pitch, _, roll = Rotation.from_matrix(rot).as_euler('xyz')
    return pitch, roll


def make_rows(split, imgname, cam, world_mm, kind, rng, shape_index):
    """One npz row (dict of per-person arrays) of a person with fixture joints `world_mm`."""
    cam_rotmat = cam.R @ Z_UP_TO_Y_DOWN.T  # posing frame -> camera
    camera_mm = cam.world_to_camera(world_mm)
    posed = Z_UP_TO_Y_DOWN @ (world_mm - world_mm[0]).T / 1000
    posed = posed.T + REST_PELVIS  # the SMPL output: posing frame, no translation
    pose = rng.normal(0, 0.3, 72)
    shape = np.zeros(10)
    shape[shape_index] = 1.0
    keypoints = np.zeros((25, 3))
    projected = cam.world_to_image(world_mm)
    keypoints[spec.OPENPOSE_BODY, :2] = projected[spec.OPENPOSE_BODY_TO_SMPL]
    for op, smpl in OPENPOSE_OTHERS.items():
        keypoints[op, :2] = projected[smpl]
    keypoints[:, 2] = 1.0
    if kind == 'noisy':
        keypoints[spec.OPENPOSE_BODY, :2] += rng.normal(0, 25.0, (14, 2))
    if kind == 'sparse':
        keypoints[spec.OPENPOSE_BODY[2:], 2] = 0.0
    K = cam.intrinsic_matrix
    pitch, roll = euler_pitch_roll(cam_rotmat)
    box = np.concatenate([projected.min(0), projected.max(0)])
    row = {
        'imgname': imgname,
        'center': (box[:2] + box[2:]) / 2, 'scale': 1.2 * np.max(box[2:] - box[:2]) / 200,
        'pose': pose, 'shape': shape, 'cam_rotmat': cam_rotmat, 'cam_int': K,
        'cam_pitch': pitch, 'cam_roll': roll, 'focal_length': K[[0, 1], [0, 1]],
        'openpose_gt': keypoints, 'openpose': keypoints + [1.5, -2.0, -0.3],
        'part': np.concatenate([projected[[8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12, 15, 0,
                                           9, 6, 15, 15, 15, 15, 15, 15, 15]],
                                np.ones((24, 1))], axis=1),
        'S': np.concatenate([camera_mm[:24] / 1000, np.ones((24, 1))], axis=1),
        'gender': 'm' if shape_index % 2 else 'f',
    }
    if split == 'test':
        row.update(camcalib_pitch=pitch + 0.05, camcalib_roll=roll - 0.02,
                   camcalib_vfov=2 * np.arctan(IMSHAPE[0] / 2 / K[1, 1]), camcalib_f_pix=K[0, 0])
    return row, rest_joints(posed, pose), {
        'camera_mm': camera_mm, 'world_mm': world_mm, 'cam_rotmat': cam_rotmat}


def write_npz(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {key: np.stack([np.asarray(r[key]) for r in rows]) for key in rows[0]}
    for key, value in arrays.items():
        if value.dtype.kind == 'f':
            arrays[key] = value.astype(np.float32)  # the release's float width is not known
    np.savez(path, **arrays)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('spec-syn')
    model_dir = tmp_path_factory.mktemp('body_models')
    rng = np.random.default_rng(7)
    rows = {'train': [], 'test': []}
    rests, truth = [], []
    for i_image, (split, yaw, seed, persons) in enumerate(IMAGES):
        cam = default_camera(IMSHAPE, distance_mm=4000, yaw_deg=yaw)
        people = make_people_sequence([cam], IMSHAPE, n_frames=3, n_joints=25, seed=seed,
                                      step_mm_per_frame=700.0)[0]
        image = people.images[persons[-1][0]].copy()
        for frame, _ in persons:  # composite the people (no overlap: 1.4 m apart)
            image[people.masks[frame]] = people.images[frame][people.masks[frame]]
        imgname = PREFIX.format(split=split, cam=i_image)
        for frame, kind in persons:
            world_mm = people.joints[frame][SMPL_FROM_FIXTURE].astype(np.float64)
            row, rest, info = make_rows(split, imgname, cam, world_mm, kind, rng, len(rests))
            rows[split].append(row)
            rests.append(rest)
            truth.append({**info, 'split': split, 'kind': kind, 'cam': cam,
                          'mask': people.masks[frame], 'imgname': imgname})
        (root / imgname).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / imgname), np.ascontiguousarray(image[..., ::-1]))
    for split, split_rows in rows.items():
        write_npz(root / 'annotations' / f'{split}.npz', split_rows)
    arrays = model_arrays('smpl', seed=3, one_hot_joints=True)
    n_verts = arrays['v_template'].shape[0]
    arrays['v_template'] = np.zeros((n_verts, 3))
    arrays['shapedirs'] = np.zeros((n_verts, 3, 10))
    for i, rest in enumerate(rests):
        arrays['shapedirs'][:24, :, i] = rest
    path = body_models.body_model_path(model_dir, 'smpl', 'neutral')
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)
    examples = list(spec.convert(root, body_model_dir=model_dir))
    return root, model_dir, truth, examples


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
