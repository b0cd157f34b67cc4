"""Protocol runners on tiny files in each benchmark's real format; predictions = GT + known
offsets, so every reported number is checked against a hand-computed value."""
import collections
import json
import os
import pickle

import h5py
import numpy as np
import pytest
import scipy.io
from cdflib.cdfwrite import CDF
from scipy.spatial.transform import Rotation

from eval import report, run
from eval.benchmarks import get_benchmark
from eval.benchmarks import h36m, mpi_inf_3dhp, mupots, pw3d
from eval.predictions import Predictions, load_predictions, save_predictions
from posepile.joints import get_skeleton, union_names
from posepile.safe_unpickle import UnsafePickleError, load_pickle, loads_pickle

# Predictions files hold float32 (as models output): ~0.0005 mm resolution at 4 m depth.
TOLERANCE_MM = 2e-3


def close(actual, desired, atol=TOLERANCE_MM):
    np.testing.assert_allclose(actual, desired, rtol=0, atol=atol)


def approx(value):
    return pytest.approx(value, abs=TOLERANCE_MM)



def body(rng, n, j, depth=4000.0):
    return rng.normal(0, 300, size=(n, j, 3)) + np.array([0, 0, depth])


def frac_auc(error_mm):
    """Fraction of the 31 thresholds 0..150 mm (step 5) that an error passes (error < t)."""
    return np.count_nonzero(np.arange(0, 151, 5) > error_mm) / 31


# ------------------------------------------------------------------------------------ H36M ---
H36M_FILES = {  # (subject, file stem): (frames, offset of joint 3 (rank) in mm)
    ('S9', 'Directions 1.54138969'): (130, 34.0),
    ('S9', 'TakingPhoto.55011271'): (100, 51.0),
    ('S11', 'Walking 1.60457274'): (50, 68.0),
}


def write_pose_cdf(path, poses32):
    """A D3_Positions_mono-style file: zVariable 'Pose', one record of [F, 96] doubles."""
    cdf = CDF(str(path), delete=True)
    cdf.write_var({'Variable': 'Pose', 'Data_Type': CDF.CDF_DOUBLE, 'Num_Elements': 1,
                   'Rec_Vary': True, 'Dim_Sizes': [len(poses32), 96]},
                  var_data=poses32.reshape(1, len(poses32), 96))
    cdf.close()


@pytest.fixture(scope='module')
def h36m_case(tmp_path_factory):
    root = tmp_path_factory.mktemp('h36m')
    rng = np.random.default_rng(0)
    rows, names = [], union_names('h36m_17')
    for (subject, stem), (n_frames, offset) in H36M_FILES.items():
        folder = root / subject / 'MyPoseFeatures' / 'D3_Positions_mono'
        folder.mkdir(parents=True, exist_ok=True)
        poses32 = body(rng, n_frames, 32)
        write_pose_cdf(folder / f'{stem}.cdf', poses32)
        for frame in range(0, n_frames, 64):
            pred = poses32[frame, h36m.PROTOCOL_ROWS].copy()
            pred[3, 2] += offset
            rows.append((f'{subject}/{stem}', frame, pred))
    # An extra, unrelated joint and a shuffled joint order: selection must go by name.
    order = np.random.default_rng(1).permutation(18)
    all_names = np.array(list(names) + ['nose_coco'])[order]
    poses = np.stack([np.concatenate([r[2], np.full((1, 3), 7.0)])[order] for r in rows])
    pred_path = root / 'pred.npz'
    save_predictions(pred_path, poses, all_names, [r[0] for r in rows], [r[1] for r in rows])
    return root, pred_path


def test_h36m_per_action_numbers(h36m_case):
    root, pred_path = h36m_case
    gt = h36m.load_ground_truth(root)
    np.testing.assert_array_equal(np.sort(gt.frame), [0, 0, 0, 64, 64, 128])
    result = h36m.evaluate(gt, load_predictions(pred_path))
    table = result.tables[0]
    assert table.columns == ['Dir', 'Photo', 'Walk', 'Avg']
    # One joint of 17 is off by the file's offset: MPJPE = offset / 17.
    close(table.rows['MPJPE'], [2.0, 3.0, 4.0, (3 * 2 + 2 * 3 + 4) / 6])
    assert result.summary['mpjpe'] == approx(16 / 6)
    assert result.summary['mpjpe_abs'] == approx(16 / 6)
    assert result.summary['pck'] == approx(100.0)
    # AUC: 16 exact joints pass 30 of 31 thresholds (not 0 mm); the offset joint those > it.
    expected_auc = np.mean([(16 * 30 / 31 + frac_auc(o)) / 17 for o in [34] * 3 + [51] * 2 + [68]])
    assert result.summary['auc'] == approx(100 * expected_auc)
    assert result.counts['n_poses'] == 6
    assert result.counts['n_missing_gt_joints'] == 0
    assert result.per_joint['MPJPE']['rank'] == approx((3 * 34 + 2 * 51 + 68) / 6)
    all_frames = h36m.load_ground_truth(root, frame_step=1)
    assert len(all_frames.frame) == 130 + 100 + 50


def test_h36m_reads_the_cdf_values(h36m_case):
    root, _ = h36m_case
    path = root / 'S11' / 'MyPoseFeatures' / 'D3_Positions_mono' / 'Walking 1.60457274.cdf'
    poses = h36m.read_pose_cdf(path)
    assert poses.shape == (50, 32, 3)
    assert h36m.action_class('TakingPhoto') == 'Photo'
    assert h36m.action_class('WalkingDog 1') == 'WalkDog'


def test_h36m_missing_prediction_is_named(h36m_case, tmp_path):
    root, pred_path = h36m_case
    preds = load_predictions(pred_path)
    partial = tmp_path / 'partial.npz'
    save_predictions(partial, preds.poses[1:], preds.joint_names, preds.sequence[1:],
                     preds.frame[1:])
    with pytest.raises(KeyError, match='no prediction for 1 of 6'):
        h36m.evaluate(h36m.load_ground_truth(root), load_predictions(partial))


def test_cli_writes_json_and_prints_table(h36m_case, tmp_path, capsys):
    root, pred_path = h36m_case
    out = tmp_path / 'sub' / 'report.json'
    assert run.main(['--benchmark=h36m', f'--root={root}', f'--predictions={pred_path}',
                     f'--out={out}']) == 0
    printed = capsys.readouterr().out
    assert 'Dir' in printed and 'WalkT' not in printed and 'MPJPE' in printed
    data = json.loads(out.read_text())
    assert data['summary']['mpjpe'] == approx(16 / 6)
    assert data['protocol']['frame_step'] == 64
    assert [p.name for p in out.parent.iterdir()] == ['report.json']  # no temporary left


def test_cli_rejects_model_and_inapplicable_flags(h36m_case, capsys, monkeypatch):
    root, _ = h36m_case
    # Every registered benchmark supports --model now; one without model_inputs is refused.
    assert all(hasattr(get_benchmark(name), 'model_inputs') for name in run.BENCHMARKS)
    monkeypatch.delattr(h36m, 'model_inputs')
    assert run.main(['--benchmark=h36m', f'--root={root}', '--model=/some/savedmodel']) == 2
    assert 'exported model API' in capsys.readouterr().err
    monkeypatch.undo()
    assert run.main(['--benchmark=h36m', f'--root={root}', '--model=/some/savedmodel']) == 2
    assert '--model needs --out' in capsys.readouterr().err
    with pytest.raises(SystemExit, match='--rescale-bones does not apply'):
        run.main(['--benchmark=h36m', f'--root={root}', '--predictions=x.npz',
                  '--rescale-bones'])


# ------------------------------------------------------------------------------------ 3DPW ---
class NotAllowed:
    pass


def pw3d_sequence(rng, n_frames, valid):
    """A sequence dict like the 3DPW pickles (metres, world frame) + the camera-frame GT (mm)."""
    rot = Rotation.random(n_frames, random_state=rng).as_matrix()
    trans = rng.normal(0, 2, size=(n_frames, 3))
    cam_poses = np.tile(np.eye(4), (n_frames, 1, 1))
    cam_poses[:, :3, :3], cam_poses[:, :3, 3] = rot, trans
    camera_mm = [body(rng, n_frames, 24) for _ in valid]
    # world = R^T (camera - t), in metres: built from the camera frame, independently of pw3d.py.
    world_m = [np.einsum('nji,nkj->nki', rot, c / 1000 - trans[:, None]) for c in camera_mm]
    data = {
        'sequence': 'x', 'jointPositions': [w.reshape(n_frames, 72) for w in world_m],
        'cam_poses': cam_poses, 'campose_valid': [np.asarray(v, bool) for v in valid],
        'cam_intrinsics': np.array([[1960, 0, 540], [0, 1960, 960], [0, 0, 1.0]]),
        'poses': [np.zeros((n_frames, 72)) for _ in valid], 'betas': [np.zeros(10)] * len(valid),
        'trans': [np.zeros((n_frames, 3)) for _ in valid], 'genders': ['m', 'f'][:len(valid)],
        'img_frame_ids': np.arange(n_frames), 'poses2d': [np.zeros((n_frames, 3, 18))] * 2,
    }
    return data, camera_mm


def pa_mpjpe_reference(pred, gt):
    """PA-MPJPE via scipy's Kabsch (Rotation.align_vectors) + the closed-form best scale."""
    errors = []
    for p, g in zip(pred, gt):
        p_c, g_c = p - p.mean(0), g - g.mean(0)
        rot = Rotation.align_vectors(g_c, p_c)[0].as_matrix()
        rotated = p_c @ rot.T
        scale = np.sum(rotated * g_c) / np.sum(p_c ** 2)
        errors.append(np.linalg.norm(scale * rotated - g_c, axis=-1))
    return np.mean(errors)


@pytest.fixture(scope='module')
def pw3d_case(tmp_path_factory):
    root = tmp_path_factory.mktemp('pw3d')
    folder = root / 'sequenceFiles' / 'test'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    valid = [[1, 1, 0, 1], [1, 0, 1, 1]]
    data, camera_mm = pw3d_sequence(rng, 4, valid)
    (folder / 'downtown_test_00.pkl').write_bytes(pickle.dumps(data, protocol=2))
    rows = []
    for person, flags in enumerate(valid):
        for frame in np.flatnonzero(flags):
            pred = camera_mm[person][frame] + [0, 0, 240.0]  # everything 240 mm too far
            pred[16, 2] += 48.0  # lsho another 48 mm
            rows.append((person, frame, pred))
    pred_path = root / 'pred.npz'
    save_predictions(pred_path, np.stack([r[2] for r in rows]), get_skeleton('smpl_24').names,
                     ['downtown_test_00'] * len(rows), [r[1] for r in rows],
                     person=[r[0] for r in rows])
    return root, pred_path


def test_pw3d_numbers(pw3d_case):
    root, pred_path = pw3d_case
    gt = pw3d.load_ground_truth(root)
    assert len(gt.poses) == 6
    result = pw3d.evaluate(gt, load_predictions(pred_path))
    s = result.summary
    assert s['mpjpe'] == approx(48 / 24)
    assert s['mpjpe_abs'] == approx((23 * 240 + 288) / 24)
    assert s['pck'] == approx(100.0)
    assert s['auc'] == approx(100 * (23 * 30 / 31 + frac_auc(48)) / 24)
    # 14 joints: lsho is one of them; the mid-hip root is exact.
    assert s['mpjpe_14'] == approx(48 / 14)
    assert s['mpjpe_abs_14'] == approx((13 * 240 + 288) / 14)
    gt_cam = gt.poses
    pred_cam = gt_cam + [0, 0, 240.0]
    pred_cam[:, 16, 2] += 48.0
    assert s['pa_mpjpe'] == approx(pa_mpjpe_reference(pred_cam, gt_cam))
    assert s['pa_mpjpe_14'] == approx(
        pa_mpjpe_reference(pred_cam[:, pw3d.JOINTS_14], gt_cam[:, pw3d.JOINTS_14]))
    assert result.counts['n_poses'] == 6 and result.counts['n_unused_predictions'] == 0
    assert result.tables[0].rows['SMPL 24'][0] == approx(2.0)


def test_pw3d_rejects_malicious_pickle(tmp_path):
    folder = tmp_path / 'sequenceFiles' / 'test'
    folder.mkdir(parents=True)

    class Exploit:
        def __reduce__(self):
            return os.system, ('echo should-not-run',)

    (folder / 'evil.pkl').write_bytes(pickle.dumps({'jointPositions': Exploit()}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r'evil\.pkl.*system'):
        pw3d.load_ground_truth(tmp_path)


def test_restricted_unpickler():
    arrays = {'a': np.arange(6.0).reshape(2, 3), 'b': [np.int64(3), np.float32(2.5)],
              'c': np.array([True, False]), 'd': 'text', 'e': (1, b'raw', None)}
    loaded = loads_pickle(pickle.dumps(arrays, protocol=2))
    np.testing.assert_array_equal(loaded['a'], arrays['a'])
    assert loaded['b'] == [3, 2.5] and loaded['d'] == 'text' and loaded['e'] == (1, b'raw', None)
    with pytest.raises(UnsafePickleError, match='NotAllowed'):
        loads_pickle(pickle.dumps({'x': NotAllowed()}, protocol=2))
    with pytest.raises(UnsafePickleError, match='OrderedDict'):
        loads_pickle(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    # A Python-2 style pickle: str payload decoded with latin1.
    py2 = (b'\x80\x02}q\x00U\x01kq\x01U\x02\xe9\xffq\x02s.')
    assert loads_pickle(py2) == {'k': '\xe9\xff'}


def test_load_pickle_names_file(tmp_path):
    path = tmp_path / 'bad.pkl'
    path.write_bytes(pickle.dumps(NotAllowed(), protocol=2))
    with pytest.raises(UnsafePickleError, match=r'bad\.pkl.*test_benchmarks\.NotAllowed'):
        load_pickle(path)


# ---------------------------------------------------------------------------- MPI-INF-3DHP ---
TDHP_OFFSETS = {  # per sequence: {joint index: offset mm}
    'TS1': {}, 'TS2': {}, 'TS3': {4: 200.0}, 'TS4': {4: 200.0},
    'TS5': {4: 200.0, 13: 300.0}, 'TS6': {4: 200.0, 13: 300.0}}


@pytest.fixture(scope='module')
def tdhp_case(tmp_path_factory):
    root = tmp_path_factory.mktemp('3dhp')
    rng = np.random.default_rng(3)
    valid, activity = np.array([1, 0, 1]), np.array([1, 2, 3])
    rows = []
    for sequence, offsets in TDHP_OFFSETS.items():
        (root / sequence).mkdir()
        univ = body(rng, 3, 17)
        path = root / sequence / 'annot_data.mat'
        if sequence == 'TS2':  # an older-format .mat, as scipy.io.savemat writes (MATLAB shapes)
            scipy.io.savemat(path, {
                'univ_annot3': univ.transpose(2, 1, 0)[:, :, None, :],
                'annot3': (univ * 1.1).transpose(2, 1, 0)[:, :, None, :],
                'valid_frame': valid[:, None], 'activity_annotation': activity[:, None]})
        else:  # MATLAB v7.3 = HDF5, axes reversed: 3x17x1xn -> n x 1 x 17 x 3
            with h5py.File(path, 'w') as f:
                f['univ_annot3'] = univ[:, None]
                f['annot3'] = univ[:, None] * 1.1
                f['annot2'] = univ[:, None, :, :2]
                f['valid_frame'] = valid[None].astype(np.float64)
                f['activity_annotation'] = activity[None].astype(np.float64)
        for frame in range(3):  # frame 1 is invalid: its prediction must go unused
            pred = univ[frame].copy()
            for joint, offset in offsets.items():
                pred[joint, 0] += offset
            rows.append((sequence, frame, pred))
    pred_path = root / 'pred.npz'
    save_predictions(pred_path, np.stack([r[2] for r in rows]), union_names('mpi_inf_3dhp_17'),
                     [r[0] for r in rows], [r[1] for r in rows])
    return root, pred_path


def test_mpi_inf_3dhp_numbers(tdhp_case):
    root, pred_path = tdhp_case
    gt = mpi_inf_3dhp.load_ground_truth(root)
    assert len(gt.poses) == 12
    result = mpi_inf_3dhp.evaluate(gt, load_predictions(pred_path))
    pck_by_setting = {'GS': 100.0, 'noGS': 100 * 13 / 14, 'Outdoor': 100 * 12 / 14}
    mpjpe_by_setting = {'GS': 0.0, 'noGS': 200 / 14, 'Outdoor': 500 / 14}
    by_setting = result.tables[2]
    assert by_setting.columns == ['GS', 'noGS', 'Outdoor', 'Avg']
    close(by_setting.rows['PCK'][:3], list(pck_by_setting.values()))
    close(by_setting.rows['MPJPE'][:3], list(mpjpe_by_setting.values()))
    close(by_setting.rows['AUC'][:3], [p * 30 / 31 for p in pck_by_setting.values()])
    assert result.summary['pck'] == approx(np.mean(list(pck_by_setting.values())))
    assert result.summary['mpjpe'] == approx(np.mean(list(mpjpe_by_setting.values())))
    by_activity = result.tables[1]
    assert by_activity.columns == ['Stand/Walk', 'Sit', 'Avg']
    close(by_activity.rows['PCK'][:2], result.summary['pck'])
    assert result.counts['n_unused_predictions'] == 6
    assert len(result.protocol['joints']) == 14


def test_mpi_inf_3dhp_annot3_option(tdhp_case):
    root, pred_path = tdhp_case
    gt = mpi_inf_3dhp.load_ground_truth(root, universal=False)
    result = mpi_inf_3dhp.evaluate(gt, load_predictions(pred_path))
    assert result.protocol['pose_field'] == 'annot3'
    assert result.summary['mpjpe'] > 20  # predictions match univ_annot3, not the 1.1x annot3


# -------------------------------------------------------------------------------- MuPoTS-3D ---
def mupots_people(rng, n_frames, n_people, invalid=()):
    annotations = np.empty((n_frames, n_people), dtype=object)
    univ = body(rng, n_frames * n_people, 17).reshape(n_frames, n_people, 17, 3)
    image = rng.uniform(100, 1900, size=(n_frames, n_people, 1, 2)) + \
        rng.normal(0, 60, size=(n_frames, n_people, 17, 2))
    for f in range(n_frames):
        for p in range(n_people):
            annotations[f, p] = {
                'annot2': image[f, p].T, 'annot3': (univ[f, p] * 1.1).T,
                'univ_annot3': univ[f, p].T,
                'isValidFrame': np.array([[0 if (f, p) in invalid else 1]])}
    return annotations, univ, image


@pytest.fixture(scope='module')
def mupots_case(tmp_path_factory):
    root = tmp_path_factory.mktemp('mupots')
    rng = np.random.default_rng(4)
    ts1, univ1, image1 = mupots_people(rng, 2, 2, invalid={(1, 1)})
    ts2, univ2, image2 = mupots_people(rng, 1, 2)
    for name, annotations in (('TS1', ts1), ('TS2', ts2)):
        (root / name).mkdir()
        scipy.io.savemat(root / name / 'annot.mat', {'annotations': annotations})
    wrist = np.zeros((17, 3))
    wrist[4, 2] = 200.0
    ankle = np.zeros((17, 3))
    ankle[13, 2] = 50.0
    noise = rng.uniform(-20, 20, size=(17, 2))  # < 40 px: still a match
    rows = [  # (sequence, frame, 3D, 2D); detections listed out of annotation order
        ('TS1', 0, univ1[0, 1], image1[0, 1] + noise),
        ('TS1', 0, univ1[0, 0] + wrist, image1[0, 0]),
        ('TS1', 1, univ1[1, 0] + wrist, image1[1, 0] - noise),
        ('TS1', 1, univ1[1, 0], image1[1, 0] + 500),  # a false positive far away
        ('TS2', 0, univ2[0, 0] + ankle, image2[0, 0]),  # person 1 of TS2 is missed
    ]
    pred_path = root / 'pred.npz'
    save_predictions(pred_path, np.stack([r[2] for r in rows]), union_names('mupots_17'),
                     [r[0] for r in rows], [r[1] for r in rows],
                     poses2d=np.stack([r[3] for r in rows]))
    # The univ_annot3 pose each detection row shows (the false positive copies person 0).
    exact = np.stack([univ1[0, 1], univ1[0, 0], univ1[1, 0], univ1[1, 0], univ2[0, 0]])
    return root, pred_path, exact


def test_mupots_all_and_matched(mupots_case):
    root, pred_path, _ = mupots_case
    gt = mupots.load_ground_truth(root, sequences=('TS1', 'TS2'), rescale_bones=False)
    assert len(gt.sequence) == 5
    result = mupots.evaluate(gt, load_predictions(pred_path))
    rows = result.tables[0].rows
    pck_ts1 = 100 * (13 / 14 + 1 + 13 / 14) / 3
    auc_ts2 = 100 * (13 * 30 / 31 + frac_auc(50)) / 14
    auc_ts1 = pck_ts1 * 30 / 31
    close(rows['PCK matched'], [pck_ts1, 100, (pck_ts1 + 100) / 2])
    close(rows['PCK all'], [pck_ts1, 50, (pck_ts1 + 50) / 2])
    close(rows['AUC matched'], [auc_ts1, auc_ts2, (auc_ts1 + auc_ts2) / 2])
    close(rows['AUC all'], [auc_ts1, auc_ts2 / 2, (auc_ts1 + auc_ts2 / 2) / 2])
    assert result.summary['recall'] == approx(80.0)
    assert result.counts['n_matched_people'] == 4 and result.counts['n_unmatched_predictions'] == 1


def test_mupots_bone_rescaling_removes_size_error(mupots_case, tmp_path):
    root, pred_path, exact = mupots_case
    preds = load_predictions(pred_path)
    # Exact poses blown up 2x about the pelvis (and moved): rescaling the bones to the GT lengths
    # restores them, so every matched person is perfect; without rescaling they are not.
    names = union_names('mupots_17')
    pelvis = exact[:, 14:15]
    doubled = 2 * (exact - pelvis) + pelvis + [0, 0, 500.0]
    scaled = tmp_path / 'scaled.npz'
    save_predictions(scaled, doubled, names, preds.sequence, preds.frame, poses2d=preds.poses2d)
    sequences = ('TS1', 'TS2')
    result = mupots.evaluate(mupots.load_ground_truth(root, sequences=sequences),
                             load_predictions(scaled))
    assert result.protocol['rescale_bones']
    close(result.tables[0].rows['PCK matched'], [100.0, 100.0, 100.0])
    close(result.tables[0].rows['AUC matched'], [100 * 30 / 31] * 3)
    close(result.tables[0].rows['PCK all'], [100.0, 50.0, 75.0])
    unscaled = mupots.evaluate(
        mupots.load_ground_truth(root, sequences=sequences, rescale_bones=False),
        load_predictions(scaled))
    assert unscaled.summary['auc_matched'] < 50

    bones = mupots.traversal_bones(get_skeleton('mupots_17').edges, 14, 17)
    assert len(bones) == 16 and bones[0][1] == 14
    one = exact[:1] - exact[:1, 14:15]
    close(mupots.rescale_bones(2 * one, one, bones), one, atol=1e-9)


def test_mupots_match_people_greedy():
    true2d = np.zeros((2, 3, 2))
    true2d[1] += 100
    pred2d = np.stack([true2d[1] + 5, true2d[0] + 39, true2d[0] + 41])
    assert mupots.match_people(true2d, pred2d) == [(0, 1), (1, 0)]
    assert mupots.match_people(true2d, pred2d[2:]) == []


# ------------------------------------------------------------------------------ interfaces ---
def test_registry_and_report(tmp_path):
    for name in ('h36m', 'pw3d', 'mpi_inf_3dhp', 'mupots'):
        module = get_benchmark(name)
        assert get_skeleton(module.SKELETON).n_joints in (17, 24)
    with pytest.raises(KeyError, match='known: h36m'):
        get_benchmark('nope')
    path = tmp_path / 'r.json'
    report.write_json(path, {'a': float('nan'), 'b': np.float32(1.5), 'c': np.arange(2)})
    assert json.loads(path.read_text()) == {'a': None, 'b': 1.5, 'c': [0, 1]}


def test_predictions_validation(tmp_path):
    path = tmp_path / 'p.npz'
    np.savez(path, poses=np.zeros((2, 3, 3)), joint_names=np.array(['a', 'b', 'c']),
             sequence=np.array(['s', 's']))
    with pytest.raises(KeyError, match=r"p\.npz: missing keys \['frame'\]"):
        load_predictions(path)
    with pytest.raises(ValueError, match='joint_names has 2'):
        Predictions(np.zeros((1, 3, 3)), ('a', 'b'), np.array(['s']), np.array([0]))


def test_predictions_byte_strings_are_decoded(tmp_path):
    path = tmp_path / 'bytes.npz'
    np.savez(path, poses=np.ones((1, 2, 3)), joint_names=np.array([b'pelv', b'neck']),
             sequence=np.array([b'TS1']), frame=np.array([3]))
    preds = load_predictions(path)
    assert preds.joint_names == ('pelv', 'neck') and preds.sequence.tolist() == ['TS1']
    close(preds.select_joints(['neck'])[0, 0], [1, 1, 1])
