"""AGORA converter on the committed fixture in the real format (tests/data/agora/, written by
tests/make_agora_fixture.py): SMPL/ and SMPLX/ *_withjv.pkl DataFrames written by pandas 1.5.3
(one with pandas 1.1's BlockManager pickling) and 2.3.3, and PNGs of rendered people in
train_0/, train_1/ and validation/ (one under its 1280x720 download name).

The fixture's images are 160x90 while gt_joints_2d refer to 3840x2160, as in the release;
truth.npz holds the arrays the frames were written from (camera-frame metres, 2D at 4K, world
millimetres, the render cameras and each person's visible mask); rows.json the rows' metadata.
"""
import json
import pickle
import shutil

import numpy as np
import pytest

from make_agora_fixture import AGORA, DATASET, IMSHAPE
from posepile import build, joints
from posepile.datasets import agora, common
from posepile.datasets.skip_counts import recording_skips
from posepile.safe_unpickle import UnsafePickleError

NAMES = tuple(joints.union_names('smpl') + joints.union_names('smplx'))
HEIGHT, WIDTH = IMSHAPE


@pytest.fixture(scope='module')
def truth():
    with np.load(AGORA / 'truth.npz') as f:
        arrays = dict(f)
    rows = json.loads((AGORA / 'rows.json').read_text())
    person_of = {(r['imgPath'], i): p for r in rows for i, p in enumerate(r['persons'])}
    return arrays, rows, person_of


@pytest.fixture(scope='module')
def converted():
    with recording_skips() as skips:
        examples = list(agora.convert(DATASET))
    return examples, dict(skips)


def image_name(example):
    name = example.image.rsplit('/', 1)[1]
    return name.replace('_1280x720.png', '.png')


def test_examples(converted, truth):
    examples, skips = converted
    arrays, rows, person_of = truth
    assert len(examples) == 7
    assert skips == {('agora', 'isValid False (occlusion outside 0-90 %)'): 1,
                     ('agora', 'occlusion above max_occlusion (75 %)'): 1,
                     ('agora', 'no joint inside the image'): 1}
    assert examples[0].joint_names == NAMES and len(NAMES) == 24 + 55
    assert NAMES[:2] == ('pelv', 'lhip') and NAMES[24:26] == ('pelv_smplx', 'lhip_smplx')
    assert [(ex.split, ex.sequence, ex.camera_id, ex.person) for ex in examples] == [
        # SMPL/train_0 lists cam03 first: rows follow the first model's frame, paired by imgPath
        ('train', 'train/ag_trainset_renderpeople_bfh_archviz_5_10_00001', 'cam03', 0),
        ('train', 'train/ag_trainset_renderpeople_bfh_archviz_5_10_00001', 'cam03', 1),
        ('train', 'train/ag_trainset_renderpeople_bfh_archviz_5_10_00001', 'cam02', 0),
        ('train', 'train/ag_trainset_renderpeople_bfh_archviz_5_10_00001', 'cam02', 1),
        ('train', 'train/ag_trainset_3dpeople_body_construction_5_15_00004', '', 2),
        ('validation', 'validation/ag_validationset_renderpeople_bfh_hdri_50mm_5_10_00002', '', 0),
        ('validation', 'validation/ag_validationset_renderpeople_bfh_hdri_50mm_5_10_00002', '', 1)]
    assert examples[-1].image.endswith('validation/ag_validationset_renderpeople_bfh_hdri_50mm_'
                                       '5_10_00002_1280x720.png')
    assert [ex.extra['kid'] for ex in examples] == [False, True, False, True, False, False, True]
    for ex in examples:
        p = person_of[image_name(ex), ex.person]
        i = p['index']
        # World frame: AGORA's, millimetres; the SMPL rows first, then SMPL-X's 55.
        np.testing.assert_allclose(ex.world_coords[:24], arrays['smpl_world_mm'][i][:24],
                                   atol=1e-2)
        np.testing.assert_allclose(ex.world_coords[24:], arrays['smplx_world_mm'][i][:55],
                                   atol=1e-2)
        # The camera is the one the image was rendered with (the fixture's own coding of
        # AGORA's rules) and reproduces AGORA's 2D at this image size.
        row = next(k for k, r in enumerate(rows) if r['imgPath'] == image_name(ex))
        np.testing.assert_allclose(ex.camera.R, arrays['camera_R'][row], atol=1e-12)
        np.testing.assert_allclose(ex.camera.t, arrays['camera_t_mm'][row], atol=1e-9)
        np.testing.assert_allclose(ex.camera.intrinsic_matrix, arrays['camera_K'][row])
        projected = ex.camera.world_to_image(ex.world_coords.astype(np.float64))
        agora_2d = np.concatenate([arrays['smpl_2d_4k'][i][:24], arrays['smplx_2d_4k'][i][:55]])
        agora_2d = agora_2d * WIDTH / 3840 - 0.5  # AGORA's 4K corner coordinates -> centres
        assert np.max(np.abs(projected - agora_2d)) < 1e-3
        # The SMPL-X pelvis row is a joint centre of the rendered body: it lands on its pixels.
        px, py = np.round(projected[24]).astype(int)
        assert arrays['visible_mask'][i][py, px]
        inside = np.all((projected > -0.5) & (projected < [WIDTH - 0.5, HEIGHT - 0.5]), axis=1)
        x, y, w, h = ex.box
        assert np.all((projected[inside] >= [x, y]) & (projected[inside] <= [x + w, y + h]))
        assert ex.extra['gender'] == p['gender'] and ex.extra['occlusion'] == p['occlusion']


def test_cameras_follow_the_scene_rules(converted):
    examples = converted[0]
    focal = {('hdri' if 'hdri' in ex.sequence else ex.camera_id or 'scene'):
             ex.camera.intrinsic_matrix[0, 0] for ex in examples}
    # f_px = f_mm / 36 mm * 160 px: 18 mm (archviz rigs), 28 mm (other scenes), 50 mm (hdri)
    assert focal == pytest.approx({'cam02': 80.0, 'cam03': 80.0, 'scene': 124.4444444,
                                   'hdri': 222.2222222})
    for ex in examples:
        np.testing.assert_allclose(ex.camera.intrinsic_matrix[:2, 2], [79.5, 44.5])
        np.testing.assert_allclose(ex.camera.world_up, [0, -1, 0])
    # The two archviz cameras see the same people in one world frame.
    by_cam = {(ex.camera_id, ex.person): ex.world_coords for ex in examples[:4]}
    np.testing.assert_allclose(by_cam['cam02', 0], by_cam['cam03', 0], atol=1e-2)
    # Unit checks of the rules against hand-derived values: cam02 sits at Unreal
    # (-490, 170, 265) cm = AGORA world (1.70, -2.65, -4.90) m, pitched 30 degrees down.
    focal_mm, rot, centre = agora.scene_camera_pose('x_cam02_00001.png', (0, 0, 0), 0)
    assert focal_mm == 18.0
    np.testing.assert_allclose(centre, [1700, -2650, -4900])
    np.testing.assert_allclose(rot.T @ [0, 0, 1], [-np.sqrt(0.5) * np.cos(np.pi / 6),
                                                   np.sin(np.pi / 6),
                                                   np.sqrt(0.5) * np.cos(np.pi / 6)], atol=1e-12)
    focal_mm, rot, centre = agora.scene_camera_pose('ag_trainset_x_5_15_00001.png',
                                                    (100, -200, 0), 90)
    assert focal_mm == 28.0  # other scenes: 1.7 m ground offset, yaw from camYaw
    np.testing.assert_allclose(centre, [-2000, -1700, 1000])
    np.testing.assert_allclose(rot.T @ [0, 0, 1], [1, 0, 0], atol=1e-12)


def test_options(converted):
    with recording_skips() as skips:
        no_kids = list(agora.convert(DATASET, drop_kids=True, max_occlusion=100))
    assert len(no_kids) == 5 and not any(ex.extra['kid'] for ex in no_kids)
    assert dict(skips) == {('agora', 'kid (drop_kids)'): 3,
                           ('agora', 'isValid False (occlusion outside 0-90 %)'): 1,
                           ('agora', 'no joint inside the image'): 1}
    only_smplx = list(agora.convert(DATASET, models=['smplx'], splits=['validation']))
    assert len(only_smplx) == 2 and only_smplx[0].joint_names == tuple(
        joints.union_names('smplx'))
    np.testing.assert_allclose(only_smplx[0].world_coords,
                               converted[0][5].world_coords[24:])
    with pytest.raises(ValueError, match='models must be distinct names'):
        next(agora.convert(DATASET, models=['smplh']))


def test_build_cli(tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=agora', f'--root={DATASET}', f'--out={out}', '--crop-size=32',
                       '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['agora']
    assert info['before_dedup'] == {'train': 5, 'validation': 2}
    assert info['num_after_dedup'] == 7  # every person is its own track: nothing to dedup
    assert info['skipped'] == {'isValid False (occlusion outside 0-90 %)': 1,
                               'no joint inside the image': 1,
                               'occlusion above max_occlusion (75 %)': 1}


@pytest.fixture
def bad(tmp_path):
    root = tmp_path / 'agora'
    shutil.copytree(DATASET, root)
    return root


@pytest.mark.parametrize('variant, message', [
    ('bad_shape', r"SMPLX/train_1_withjv\.pkl: row 0 \(ag_trainset_3dpeople_body_construction_"
                  r"5_15_00004\.png\) person 2: gt_joints_3d has shape \(127, 2\), expected "
                  r"\[J >= 55, 3\]"),
    ('no_joints3d', r"SMPLX/train_1_withjv\.pkl: missing column 'gt_joints_3d'"),
    ('wrong_focal', r'SMPLX/train_1_withjv\.pkl: row 0 .* person 2: gt_joints_2d disagree '
                    r'\(> 1\.0 px\) with the AGORA camera of this scene \(28 mm\)'),
    ('short_list', r"SMPLX/train_1_withjv\.pkl: row 0 .*: column 'occlusion' is not a list of 4 "
                   r"persons like gt_joints_3d"),
])
def test_bad_frames(bad, variant, message):
    shutil.copy(AGORA / f'bad/SMPLX_train_1_{variant}.pkl', bad / 'SMPLX/train_1_withjv.pkl')
    with pytest.raises(common.DatasetFormatError, match=message):
        list(agora.convert(bad, splits=['train']))


def test_strict_2d_off_counts_instead(bad):
    shutil.copy(AGORA / 'bad/SMPLX_train_1_wrong_focal.pkl', bad / 'SMPLX/train_1_withjv.pkl')
    with recording_skips() as skips:
        examples = list(agora.convert(bad, splits=['train'], strict_2d=False))
    assert len(examples) == 4  # train_0's; train_1's two candidates (persons 2, 3) fail
    assert skips[('agora', 'gt_joints_2d disagree with the scene camera')] == 2


def test_bad_files(bad):
    frame = bad / 'SMPL/train_1_withjv.pkl'
    data = frame.read_bytes()
    frame.write_bytes(data[:len(data) // 3])
    with pytest.raises(common.DatasetFormatError,
                       match=r'SMPL/train_1_withjv\.pkl: not a readable pickle'):
        list(agora.convert(bad, splits=['train']))
    frame.write_bytes(pickle.dumps(shutil.rmtree))
    with pytest.raises(UnsafePickleError, match=r'train_1_withjv\.pkl: refusing to unpickle '
                                                r'global shutil\.rmtree'):
        list(agora.convert(bad, splits=['train']))
    shutil.copy(bad / 'SMPL/validation_0_withjv.pkl', frame)  # other images than SMPLX's
    with pytest.raises(common.DatasetFormatError,
                       match=r'SMPLX/train_1_withjv\.pkl: lists other images than .*SMPL/'
                             r'train_1_withjv\.pkl'):
        list(agora.convert(bad, splits=['train']))
    frame.unlink()
    with pytest.raises(common.DatasetFormatError,
                       match=r'missing file .*SMPL/train_1_withjv\.pkl \(expected: an AGORA'):
        list(agora.convert(bad, splits=['train']))
    (bad / 'validation/ag_validationset_renderpeople_bfh_hdri_50mm_5_10_00002_1280x720.png'
     ).unlink()
    with pytest.raises(common.DatasetFormatError,
                       match=r'missing file .*validation/ag_validationset_renderpeople_bfh_hdri_'
                             r'50mm_5_10_00002\.png \(expected: the image of a row of .*'
                             r'validation_0_withjv\.pkl; also looked for .*_1280x720\.png\)'):
        list(agora.convert(bad, splits=['validation']))
    shutil.rmtree(bad / 'SMPLX')
    with pytest.raises(common.DatasetFormatError, match=r'missing directory .*SMPLX'):
        list(agora.convert(bad, models=['smplx']))


def test_2d_check_accepts_both_released_resolutions(truth):
    arrays = truth[0]
    cam_m, gt_4k = arrays['smplx_cam_m'][0], arrays['smplx_2d_4k'][0]
    assert agora.frame_2d_scale(gt_4k, cam_m, 18.0) == 3840
    assert agora.frame_2d_scale(gt_4k * 720 / 2160, cam_m, 18.0) == 1280  # the docs' rescaling
    assert agora.frame_2d_scale(gt_4k, cam_m, 28.0) is None
    assert agora.frame_2d_scale(gt_4k + [0, 1.5], cam_m, 18.0) is None
