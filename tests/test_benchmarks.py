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

from eval import report, run
from eval.benchmarks import get_benchmark
from eval.benchmarks import h36m, mpi_inf_3dhp, mupots, pw3d
from eval.predictions import Predictions, load_predictions, save_predictions
from posepile.dataset_writers.h36m import fixture_cameras, write_cameras_h5, write_mono_pose_cdf
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


@pytest.fixture(scope='module')
def h36m_case(tmp_path_factory):
    root = tmp_path_factory.mktemp('h36m')
    rng = np.random.default_rng(0)
    rows, names = [], union_names('h36m_17')
    for (subject, stem), (n_frames, offset) in H36M_FILES.items():
        folder = root / subject / 'MyPoseFeatures' / 'D3_Positions_mono'
        folder.mkdir(parents=True, exist_ok=True)
        poses32 = body(rng, n_frames, 32)
        write_mono_pose_cdf(folder / f'{stem}.cdf', poses32)
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
    # The mean of the per-action means (other papers' Avg) beside the pooled one.
    assert result.summary['mpjpe_action_mean'] == approx((2.0 + 3.0 + 4.0) / 3)
    assert 'pooled' in result.conventions['averaging']
    all_frames = h36m.load_ground_truth(root, frame_step=1)
    assert len(all_frames.frame) == 130 + 100 + 50


def test_h36m_s9_correction(tmp_path):
    """S9 'Greeting' (not 'Greeting 1'), 'SittingDown 1', 'Waiting 1': correct_s9 moves their
    camera-frame GT by R (-200, 0, 0), R = that camera's world-to-camera rotation."""
    cams = fixture_cameras()
    write_cameras_h5(tmp_path / 'cameras.h5', (9,), cams)
    folder = tmp_path / 'S9' / 'MyPoseFeatures' / 'D3_Positions_mono'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    stems = ('Greeting.55011271', 'Greeting 1.55011271', 'Waiting 1.60457274')
    for stem in stems:
        write_mono_pose_cdf(folder / f'{stem}.cdf', body(rng, 3, 32))
    plain = h36m.load_ground_truth(tmp_path, subjects=('S9',))
    fixed = h36m.load_ground_truth(tmp_path, subjects=('S9',), correct_s9=True)
    shift = {'S9/Greeting.55011271': cams[1].R @ [-200.0, 0, 0],
             'S9/Greeting 1.55011271': np.zeros(3),
             'S9/Waiting 1.60457274': cams[3].R @ [-200.0, 0, 0]}
    for row, sequence in enumerate(plain.sequence):
        close(fixed.poses[row] - plain.poses[row], np.broadcast_to(shift[sequence], (17, 3)))
    assert fixed.protocol['correct_s9'] and not plain.protocol['correct_s9']


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
    assert run.main(['--benchmark=h36m', f'--root={root}', '--predictions=x.npz',
                     '--rescale-bones']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "--rescale-bones does not apply to benchmark 'h36m'" in err


# ------------------------------------------------------------------- 3DPW pickles (safety) ---
# (the 3DPW protocol itself: tests/test_benchmark_pw3d.py)
class NotAllowed:
    pass


def test_pw3d_rejects_malicious_pickle(tmp_path):
    folder = tmp_path / 'sequenceFiles' / 'test'
    folder.mkdir(parents=True)

    class Exploit:
        def __reduce__(self):
            return os.system, ('echo should-not-run',)

    (folder / 'evil.pkl').write_bytes(pickle.dumps({'jointPositions': Exploit()}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r'evil\.pkl.*system'):
        pw3d.load_ground_truth(tmp_path, split='test')


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
    gt = mpi_inf_3dhp.load_ground_truth(root, universal=True)
    assert len(gt.poses) == 12
    result = mpi_inf_3dhp.evaluate(gt, load_predictions(pred_path))
    pck_by_setting = {'GS': 100.0, 'noGS': 100 * 13 / 14, 'Outdoor': 100 * 12 / 14}
    # MPJPE over all 17 joints (official mpii_evaluate_errors.m), the 14-joint one beside it.
    mpjpe_by_setting = {'GS': 0.0, 'noGS': 200 / 17, 'Outdoor': 500 / 17}
    by_setting = result.tables[2]
    assert by_setting.columns == ['GS', 'noGS', 'Outdoor', 'Avg']
    close(by_setting.rows['PCK'][:3], list(pck_by_setting.values()))
    close(by_setting.rows['MPJPE'][:3], list(mpjpe_by_setting.values()))
    close(by_setting.rows['AUC'][:3], [p * 30 / 31 for p in pck_by_setting.values()])
    assert result.summary['pck'] == approx(np.mean(list(pck_by_setting.values())))
    assert result.summary['mpjpe'] == approx(np.mean(list(mpjpe_by_setting.values())))
    assert result.summary['mpjpe_14'] == approx(np.mean([0, 200 / 14, 500 / 14]))
    by_activity = result.tables[1]
    assert by_activity.columns == ['Stand/Walk', 'Sit', 'Avg']
    close(by_activity.rows['PCK'][:2], result.summary['pck'])
    assert result.tables[3].columns == [f'TS{i}' for i in range(1, 7)] + ['Avg']
    assert result.counts['n_unused_predictions'] == 6
    assert len(result.protocol['pck_joints']) == 14 and len(result.protocol['joints']) == 17
    assert 'univ_annot3' in result.conventions['skeleton']
    assert result.tables[4].rows['mpjpe'][0] == approx(result.summary['mpjpe'])  # WACV'23


def test_mpi_inf_3dhp_default_is_annot3(tdhp_case):
    root, pred_path = tdhp_case
    gt = mpi_inf_3dhp.load_ground_truth(root)
    result = mpi_inf_3dhp.evaluate(gt, load_predictions(pred_path))
    assert result.protocol['pose_field'] == 'annot3'
    assert result.conventions['skeleton'].startswith('annot3')
    assert result.summary['mpjpe'] > 20  # predictions match univ_annot3, not the 1.1x annot3


def official_3dhp(per_sequence_errors, per_sequence_activity):
    """mpii_evaluate_errors.m + mpii_compute_3d_pck.m, written out as the MATLAB loops do:
    errors 17 x nf per sequence; MPJPE = mean over the 17 joints of the per-joint frame means;
    PCK / AUC over the joint groups (1-based) weighted by group size, thresholds 0:5:150, <."""
    groups = [[1], [2], [3, 6], [4, 7], [5, 8], [9, 12], [10, 13], [11, 14]]
    thresholds = np.arange(0, 151, 5)

    def pck_auc(error):
        nf = error.shape[1]
        curve_total, pck_total, count = np.zeros(len(thresholds)), 0.0, 0
        for group in groups:
            rows = [j - 1 for j in group]
            curve = np.array([np.sum(error[rows] < t) / (len(rows) * nf) for t in thresholds])
            curve_total += curve * len(rows)
            pck_total += 100 * np.sum(error[rows] < 150) / (len(rows) * nf) * len(rows)
            count += len(rows)
        return pck_total / count, 100 * np.sum(curve_total / count) / len(thresholds)

    all_errors = np.concatenate(per_sequence_errors, axis=1)
    activities = np.concatenate(per_sequence_activity)
    table = {'All': (*pck_auc(all_errors), np.mean(np.mean(all_errors, axis=1)))}
    for activity in np.unique(activities):
        chosen = all_errors[:, activities == activity]
        table[int(activity)] = (*pck_auc(chosen), np.mean(np.mean(chosen, axis=1)))
    return table


def test_mpi_inf_3dhp_matches_the_official_scripts(tmp_path):
    """Noisy predictions on the HDF5 layout; every number against `official_3dhp`."""
    rng = np.random.default_rng(8)
    valid = np.array([1, 1, 0, 1, 1, 1, 0, 1])
    activity = np.array([1, 2, 2, 3, 7, 1, 4, 3])
    rows, per_sequence_errors, per_sequence_activity = [], [], []
    for sequence in ('TS1', 'TS5'):
        annot3 = body(rng, len(valid), 17)
        path = tmp_path / sequence / 'annot_data.mat'
        path.parent.mkdir()
        with h5py.File(path, 'w') as f:
            f['annot3'] = annot3[:, None]
            f['univ_annot3'] = annot3[:, None] * 0.95
            f['valid_frame'] = valid[None].astype(np.float64)
            f['activity_annotation'] = activity[None].astype(np.float64)
        pred = annot3 + rng.normal(0, 70, annot3.shape)
        errors = []
        for frame in range(len(valid)):
            rows.append((sequence, frame, pred[frame]))
            if valid[frame]:  # mpii_test_predictions_py.m: P - P(:, 15), pred root-relative
                p = annot3[frame] - annot3[frame, 14]
                q = pred[frame] - pred[frame, 14]
                errors.append(np.sqrt(np.sum((q - p) ** 2, axis=1)))
        per_sequence_errors.append(np.stack(errors, axis=1))
        per_sequence_activity.append(activity[valid == 1])
    pred_path = tmp_path / 'pred.npz'
    save_predictions(pred_path, np.stack([r[2] for r in rows]), union_names('mpi_inf_3dhp_17'),
                     [r[0] for r in rows], [r[1] for r in rows])
    gt = mpi_inf_3dhp.load_ground_truth(tmp_path, sequences=('TS1', 'TS5'))
    result = mpi_inf_3dhp.evaluate(gt, load_predictions(pred_path))
    official = official_3dhp(per_sequence_errors, per_sequence_activity)
    pck, auc, mpjpe = official['All']
    assert 5 < pck < 95  # the noise puts joints on both sides of 150 mm
    assert result.summary['pck'] == approx(pck)
    assert result.summary['auc'] == approx(auc)
    assert result.summary['mpjpe'] == approx(mpjpe)
    by_activity = result.tables[1]
    assert len(by_activity.columns) == 4 + 1  # activities 1, 2, 3, 7 among the valid frames
    for index, name in enumerate(by_activity.columns[:-1]):
        activity_id = [k for k, v in mpi_inf_3dhp.ACTIVITIES.items() if v == name][0]
        for metric, value in zip(('PCK', 'AUC', 'MPJPE'), official[activity_id]):
            assert by_activity.rows[metric][index] == approx(value), (name, metric)


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
    one = exact[:1] - exact[:1, 14:15]
    close(mupots.rescale_bones(2 * one, one), one, atol=1e-9)


def test_mupots_head_top_is_rebuilt_from_the_neck():
    """mpii_get_joints.m 'relevant' parents: head top (1) and head (17) hang off the neck (2),
    not head top off the head. Rebuilt from the (rescaled) neck with the GT neck-head-top
    length, in the predicted neck-head-top direction."""
    rng = np.random.default_rng(12)
    gt = body(rng, 1, 17)[0]
    pred = gt + rng.normal(0, 30, (17, 3))
    pred[0] += [0, -80, 0]  # head top moved: its bone to the neck changes length and direction
    out = mupots.rescale_bones(pred[np.newaxis], gt[np.newaxis])[0]
    neck, head, htop, spine, pelvis = 1, 16, 0, 15, 14
    # Pelvis stays; spine, then neck, are rebuilt along the predicted directions.
    close(out[pelvis], pred[pelvis], atol=1e-9)

    def along(child, parent, start):
        direction = pred[child] - pred[parent]
        return start + direction / np.linalg.norm(direction) * np.linalg.norm(gt[child] -
                                                                              gt[parent])
    close(out[spine], along(spine, pelvis, out[pelvis]), atol=1e-9)
    close(out[neck], along(neck, spine, out[spine]), atol=1e-9)
    close(out[htop], along(htop, neck, out[neck]), atol=1e-9)
    close(out[head], along(head, neck, out[neck]), atol=1e-9)
    # The posepile skeleton's head -> head-top edge would give another point.
    assert np.linalg.norm(out[htop] - along(htop, head, out[head])) > 1.0


MATLAB_PARENTS = [2, 16, 2, 3, 4, 2, 6, 7, 15, 9, 10, 15, 12, 13, 15, 15, 2]  # 1-based, o1
MATLAB_ORDER = [16, 2, 1, 17, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]  # traversal(2:end)


def official_rescale(pred_p, gt_p):
    """mpii_map_to_gt_bone_lengths on 3 x 17 MATLAB-style arrays, 1-based loop."""
    out = pred_p.copy()
    for j in MATLAB_ORDER:
        parent = MATLAB_PARENTS[j - 1]
        bone = pred_p[:, j - 1] - pred_p[:, parent - 1]
        length = np.linalg.norm(gt_p[:, j - 1] - gt_p[:, parent - 1])
        out[:, j - 1] = out[:, parent - 1] + bone / np.linalg.norm(bone) * length
    return out


def official_mupots(sequences, is_relative, rescale, evaluation_mode):
    """mpii_mupots_multiperson_eval.m per sequence, then the mean over sequences. sequences:
    [[(gt univ 17 x 3, matched prediction 17 x 3 or None) per annotated person]]. Unmatched
    people get 100000 (evaluation_mode 0 = all) or are skipped (1 = matched). PCK: 14 joints
    < 150; AUC: mean over 0:5:150 of PCK."""
    pck, auc = [], []
    for people in sequences:
        errors = []
        for gt, pred in people:
            P = gt.T - (gt.T[:, [14]] if is_relative else 0)
            if pred is None:
                if evaluation_mode == 1:
                    continue
                pred_p = 100000 * np.ones_like(P)
            else:
                pred_p = pred.T - (pred.T[:, [14]] if is_relative else 0)
                if rescale:
                    pred_p = official_rescale(pred_p, P)
            errors.append(np.sqrt(np.sum((pred_p - P) ** 2, axis=0))[:14])
        errors = np.stack(errors)
        pck.append(100 * np.mean(errors < 150))
        auc.append(100 * np.mean([np.mean(errors < t) for t in range(0, 151, 5)]))
    return np.mean(pck), np.mean(auc)


def test_mupots_variants_match_the_official_script(tmp_path):
    """Detections = GT scaled by 1.02 about the camera and moved 60 mm, plus noise: every
    variant (root-relative / absolute, rescaled / not) against `official_mupots`."""
    rng = np.random.default_rng(21)
    ts = {name: mupots_people(rng, 3, 2) for name in ('TS1', 'TS2')}
    rows, per_sequence = [], {}
    for name, (annotations, univ, image) in ts.items():
        (tmp_path / name).mkdir()
        scipy.io.savemat(tmp_path / name / 'annot.mat', {'annotations': annotations})
        people = []
        for f in range(3):
            for p in range(2):
                if (name, f, p) == ('TS2', 1, 0):  # missed by the "detector"
                    people.append((univ[f, p], None))
                    continue
                pred = 1.02 * univ[f, p] + [60.0, 0, 0] + rng.normal(0, 45, (17, 3))
                rows.append((name, f, pred, image[f, p]))
                people.append((univ[f, p], pred))
        per_sequence[name] = people
    pred_path = tmp_path / 'pred.npz'
    save_predictions(pred_path, np.stack([r[2] for r in rows]), union_names('mupots_17'),
                     [r[0] for r in rows], [r[1] for r in rows],
                     poses2d=np.stack([r[3] for r in rows]))
    predictions = load_predictions(pred_path)
    for root_relative in (True, False):
        for rescale in (True, False):
            gt = mupots.load_ground_truth(tmp_path, sequences=('TS1', 'TS2'),
                                          rescale_bones=rescale, root_relative=root_relative)
            result = mupots.evaluate(gt, predictions)
            for mode, label in ((0, 'all'), (1, 'matched')):
                pck, auc = official_mupots(list(per_sequence.values()), root_relative, rescale,
                                           mode)
                assert result.summary[f'pck_{label}'] == approx(pck), (root_relative, rescale)
                assert result.summary[f'auc_{label}'] == approx(auc), (root_relative, rescale)
            assert ('root-relative' if root_relative else 'absolute') in \
                result.conventions['PCK']
            assert 0 < result.summary['pck_matched'] < 100  # errors on both sides of 150 mm
    # The released eval_mupots.py set comes with every run (here: the last one, abs unscaled).
    released = result.tables[1].rows
    pck_abs, _ = official_mupots(list(per_sequence.values()), False, True, 0)
    assert released['PCK all, abs, univ, rescaled'][-1] == approx(pck_abs)
    assert result.summary['pck_all_abs_univ_rescaled'] == approx(pck_abs)
    assert released['recall (Avg: pooled)'][-1] == approx(100 * 11 / 12)


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
