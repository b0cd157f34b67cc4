"""3DPW protocol on tiny pickles in the released layout (train / validation / test folders),
against independent implementations: the official evaluate.py's frame rule, errors, PCK and
AUC written out here as that script computes them; SPIN's mesh-regressed 14-joint protocol
through a per-frame SMPL loop (tests/test_body_models.reference_forward) on a tiny SMPL-layout
model; and hand-built detection tracks for the association of detections to actors."""
import json
import pickle

import numpy as np
import pytest
import scipy.integrate
from scipy.spatial.transform import Rotation

from eval import report, run
from eval.benchmarks import pw3d, pw3d_mesh
from eval.predictions import Predictions, load_predictions, save_predictions
from posepile import body_models
from posepile.joints import get_skeleton, union_names
from posepile.dataset_writers.body_models import write_model
from test_body_models import reference_forward

N_FRAMES = 6
# The sequences: (split, name, number of actors).
SEQUENCES = (('train', 'courtyard_fix_00', 2), ('validation', 'outdoors_fix_00', 1),
             ('test', 'downtown_fix_00', 2))
MESH_NAMES = union_names('h36m_17')


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


def official_errors(pred, gt):
    """evaluate.py compute_errors / compute_pck / compute_auc (+ x100), per pose as it loops:
    pelvis-aligned 24-joint MPJPE, PA-MPJPE, PCK (<= 50 mm) on SMPL_MAJOR_JOINTS, AUC = quad of
    np.interp over np.arange(0, 200) / 199."""
    major = [1, 2, 4, 5, 7, 8, 16, 17, 18, 19, 20, 21]
    per_pose, pck_errors = [], []
    for p, g in zip(pred, gt):
        joint_error = np.sqrt(np.sum(((g - g[0]) - (p - p[0])) ** 2, axis=1))
        per_pose.append(np.mean(joint_error))
        pck_errors.append(joint_error[major])
    pck_errors = np.stack(pck_errors)
    thresholds = np.arange(0.0, 200.0)
    curve = [np.mean(np.mean(pck_errors <= t, axis=1)) for t in thresholds]
    x = thresholds / thresholds.max()
    auc = scipy.integrate.quad(lambda v: np.interp(v, x, curve), 0, 1, limit=400,
                               points=x[1:-1][::4])[0]
    return dict(mpjpe=np.mean(per_pose), pa_mpjpe=pa_mpjpe_reference(pred, gt),
                pck50=100 * np.mean(np.mean(pck_errors <= 50, axis=1)), auc=100 * auc)


def official_valid(poses2d, campose_valid):
    """evaluate.py check_valid_inds: poses2d [F, 3, 18] not all zero, and campose_valid."""
    return np.flatnonzero((np.mean(np.mean(np.abs(poses2d), axis=2), axis=1) != 0)
                          & np.asarray(campose_valid).astype(bool))


@pytest.fixture(scope='module')
def mesh_files(tmp_path_factory):
    """Tiny SMPL-layout models (40 vertices; male and female differ) and a 17 x 40 H36M
    regressor that leaves 10 vertices unused (the submodel must skip them exactly)."""
    directory = tmp_path_factory.mktemp('smpl_models')
    write_model(directory, 'smpl', 'male', seed=11)
    write_model(directory, 'smpl', 'female', seed=12)
    rng = np.random.default_rng(13)
    regressor = rng.uniform(0, 1, (17, 40)) * (rng.uniform(size=(17, 40)) < 0.4)
    regressor[:, 30:] = 0
    regressor[regressor.sum(1) == 0, 0] = 1
    regressor /= regressor.sum(1, keepdims=True)
    path = directory / 'J_regressor_h36m.npy'
    np.save(path, regressor)
    return directory, path, regressor


def world_to_camera_mm(world_m, cam_poses):
    return 1000 * np.stack([(c[:3, :3] @ w.T).T + c[:3, 3] for w, c in zip(world_m, cam_poses)])


@pytest.fixture(scope='module')
def pw3d_case(tmp_path_factory, mesh_files):
    """Three sequences in the three split folders, with SMPL parameters, poses2d (all-zero in
    some frames) and campose_valid gaps; predictions = camera-frame GT + noise, for the SMPL
    joints and for the mesh-regressed H36M joints."""
    model_dir, _, regressor = mesh_files
    root = tmp_path_factory.mktemp('pw3d')
    rng = np.random.default_rng(2)
    truth = {}
    for split, name, n_actors in SEQUENCES:
        rot = Rotation.random(N_FRAMES, random_state=rng).as_matrix()
        cam_poses = np.tile(np.eye(4), (N_FRAMES, 1, 1))
        cam_poses[:, :3, :3], cam_poses[:, :3, 3] = rot, rng.normal(0, 2, (N_FRAMES, 3))
        genders = ['m', 'f'][:n_actors]
        poses = [rng.normal(0, 0.3, (N_FRAMES, 72)) for _ in range(n_actors)]
        betas = [rng.normal(0, 1, 10) for _ in range(n_actors)]
        trans = [rng.normal(0, 1, (N_FRAMES, 3)) for _ in range(n_actors)]
        joints_world = [rng.normal(0, 0.3, (N_FRAMES, 24, 3)) for _ in range(n_actors)]
        poses2d = [rng.uniform(1, 500, (N_FRAMES, 3, 18)) for _ in range(n_actors)]
        poses2d[0][1] = 0  # actor 0 has no 2D pose in frame 1: not evaluated
        valid = [np.ones(N_FRAMES, np.int64) for _ in range(n_actors)]
        valid[-1][4] = 0  # the last actor's camera pose is not valid in frame 4
        data = {'sequence': name, 'genders': genders, 'poses': poses, 'betas': betas,
                'trans': trans, 'jointPositions': [j.reshape(N_FRAMES, 72) for j in joints_world],
                'poses2d': poses2d, 'campose_valid': valid, 'cam_poses': cam_poses,
                'cam_intrinsics': np.array([[1960, 0, 540], [0, 1960, 960], [0, 0, 1.0]]),
                'img_frame_ids': np.arange(N_FRAMES)}
        path = root / 'sequenceFiles' / split / f'{name}.pkl'
        path.parent.mkdir(parents=True)
        path.write_bytes(pickle.dumps(data, protocol=2))
        for actor in range(n_actors):
            model = body_models.load_body_model(
                body_models.body_model_path(model_dir, 'smpl', 'male' if actor == 0 else
                                            'female'), 'smpl')
            verts, smpl_joints = reference_forward(
                model, poses[actor], np.tile(betas[actor], (N_FRAMES, 1)), trans[actor])
            truth[name, actor] = dict(
                split=split, poses2d=poses2d[actor], valid=valid[actor],
                joints=world_to_camera_mm(joints_world[actor], cam_poses),
                smpl=world_to_camera_mm(smpl_joints, cam_poses),
                mesh=world_to_camera_mm(np.einsum('jv,fvc->fjc', regressor, verts), cam_poses))
    # Predictions for every frame of every actor (invalid ones must go unused).
    rows, names = [], list(get_skeleton('smpl_24').names) + list(MESH_NAMES)
    for (name, actor), t in truth.items():
        for frame in range(N_FRAMES):
            pose = np.concatenate([t['joints'][frame] + rng.normal(0, 40, (24, 3)),
                                   t['mesh'][frame] + rng.normal(0, 30, (17, 3))])
            rows.append((name, frame, actor, pose))
    pred_path = root / 'pred.npz'
    save_predictions(pred_path, np.stack([r[3] for r in rows]), names, [r[0] for r in rows],
                     [r[1] for r in rows], person=[r[2] for r in rows])
    return root, pred_path, truth


def evaluated(truth, splits, rule='official'):
    """[(name, actor, frame)] evaluated under `rule`, in the loader's order."""
    keys = []
    for split, name, n_actors in sorted(SEQUENCES, key=lambda s: s[0]):
        if split not in splits:
            continue
        for actor in range(n_actors):
            t = truth[name, actor]
            frames = (official_valid(t['poses2d'], t['valid']) if rule == 'official'
                      else np.flatnonzero(t['valid']))
            keys += [(name, actor, int(f)) for f in frames]
    return keys


def reference_arrays(truth, keys, predictions, field='joints'):
    """(pred [n, J, 3], gt [n, J, 3]) for the keys, from the predictions file's own rows."""
    index = {(s, int(p), int(f)): i for i, (s, f, p) in enumerate(
        zip(predictions.sequence, predictions.frame, predictions.person))}
    rows = [index[name, actor, frame] for name, actor, frame in keys]
    gt = np.stack([truth[name, actor][field][frame] for name, actor, frame in keys])
    columns = slice(0, 24) if field != 'mesh' else slice(24, 41)
    return predictions.poses[rows][:, columns], gt


@pytest.mark.parametrize('split', ['all', 'test'])
def test_pw3d_matches_official_evaluate(pw3d_case, split):
    root, pred_path, truth = pw3d_case
    predictions = load_predictions(pred_path)
    gt = pw3d.load_ground_truth(root, split=split)
    keys = evaluated(truth, ('train', 'validation', 'test') if split == 'all' else ('test',))
    assert len(gt.poses) == len(keys)
    assert sorted(zip(gt.sequence.tolist(), gt.person.tolist(), gt.frame.tolist())) == \
        sorted(keys)
    result = pw3d.evaluate(gt, predictions)
    pred, ref_gt = reference_arrays(truth, keys, predictions)
    expected = official_errors(pred, ref_gt)
    for key in ('mpjpe', 'pa_mpjpe', 'pck50'):
        assert result.summary[key] == pytest.approx(expected[key], abs=1e-3), key
    assert result.summary['auc'] == pytest.approx(expected['auc'], abs=2e-3)
    assert 0 < result.summary['pck50'] < 100  # the noise puts errors on both sides of 50 mm
    assert result.counts['n_poses'] == len(keys)
    assert result.counts['n_unused_predictions'] == len(predictions) - len(keys)
    assert result.counts['n_sequences'] == (3 if split == 'all' else 1)
    assert 'every split' in result.conventions['sequences'] if split == 'all' else \
        'test split' in result.conventions['sequences']
    # Without the SMPL files the mesh numbers are unavailable, not substituted.
    assert np.isnan(result.summary['mpjpe_14']) and not result.protocol['mesh_14_available']
    assert result.conventions['14 joints'].startswith('unavailable')
    data = report.result_to_json(result)
    assert data['summary']['mpjpe_14'] is None and data['conventions']['14 joints']


def test_pw3d_campose_rule_and_pickle_gt(pw3d_case):
    root, pred_path, truth = pw3d_case
    gt = pw3d.load_ground_truth(root, valid_frames='campose')
    keys = evaluated(truth, ('train', 'validation', 'test'), rule='campose')
    assert len(gt.poses) == len(keys) > len(evaluated(truth, ('train', 'validation', 'test')))
    order = {k: i for i, k in enumerate(zip(gt.sequence, gt.person, gt.frame))}
    for name, actor, frame in keys:  # camera-frame GT: 1000 (R X + t) of jointPositions
        np.testing.assert_allclose(gt.poses[order[name, actor, frame]],
                                   truth[name, actor]['joints'][frame], atol=1e-6)
    assert 'SPIN' in pw3d.evaluate(gt, load_predictions(pred_path)).conventions['frames']


def test_pw3d_mesh_14_joints_match_spin(pw3d_case, mesh_files):
    """SPIN eval.py for 3DPW: gendered mesh -> J_regressor_h36m -> minus the regressed pelvis ->
    H36M_TO_J14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]; MPJPE and PA-MPJPE."""
    root, pred_path, truth = pw3d_case
    model_dir, regressor_path, _ = mesh_files
    gt = pw3d.load_ground_truth(root, split='test', body_model_dir=str(model_dir),
                                h36m_regressor=str(regressor_path))
    predictions = load_predictions(pred_path)
    result = pw3d.evaluate(gt, predictions)
    keys = evaluated(truth, ('test',))
    pred17, gt17 = reference_arrays(truth, keys, predictions, 'mesh')
    j14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]
    pred14, gt14 = pred17[:, j14] - pred17[:, :1], gt17[:, j14] - gt17[:, :1]
    assert result.summary['mpjpe_14'] == pytest.approx(
        np.mean(np.linalg.norm(pred14 - gt14, axis=-1)), abs=1e-3)
    assert result.summary['pa_mpjpe_14'] == pytest.approx(pa_mpjpe_reference(pred14, gt14),
                                                          abs=1e-3)
    assert result.protocol['mesh_14_available'] and 'SPIN' in result.conventions['14 joints']
    # The 24-joint numbers do not depend on the mesh options.
    plain = pw3d.evaluate(pw3d.load_ground_truth(root, split='test'), predictions)
    assert result.summary['mpjpe'] == pytest.approx(plain.summary['mpjpe'])
    # Predictions without the H36M joints: unavailable, with the reason.
    names = list(get_skeleton('smpl_24').names)
    only_smpl = Predictions(predictions.poses[:, :24], tuple(names), predictions.sequence,
                            predictions.frame, predictions.person)
    missing = pw3d.evaluate(gt, only_smpl)
    assert np.isnan(missing.summary['mpjpe_14'])
    assert 'no h36m_17 joints' in missing.conventions['14 joints']


def test_pw3d_smpl_forward_ground_truth(pw3d_case, mesh_files):
    """--gt-joints=smpl: the official evaluate.py's GT, SMPL's kinematic joints of the gendered
    model from poses, betas[:10], trans, then the camera pose."""
    root, _, truth = pw3d_case
    model_dir, _, _ = mesh_files
    gt = pw3d.load_ground_truth(root, split='test', gt_joints='smpl',
                                body_model_dir=str(model_dir))
    for row, (name, actor, frame) in enumerate(zip(gt.sequence, gt.person, gt.frame)):
        np.testing.assert_allclose(gt.poses[row], truth[name, actor]['smpl'][frame], atol=1e-6)
    with pytest.raises(ValueError, match='needs the licensed body models'):
        pw3d.load_ground_truth(root, split='test', gt_joints='smpl', body_model_dir=None)


def test_regressor_submodel_is_exact(mesh_files):
    model_dir, _, regressor = mesh_files
    model = body_models.get_body_model(str(model_dir), 'smpl', 'female')
    small, small_regressor = pw3d_mesh.regressor_submodel(model, regressor)
    support = np.flatnonzero(np.any(regressor != 0, axis=0))
    assert len(support) <= 30 and small.n_vertices == len(support) + 24
    np.testing.assert_array_equal(small_regressor, regressor[:, support])
    rng = np.random.default_rng(3)
    pose, betas, trans = rng.normal(0, 0.4, (3, 72)), rng.normal(0, 1, 10), rng.normal(0, 1, (3, 3))
    full = body_models.forward(model, pose, betas, trans)
    reduced = body_models.forward(small, pose, betas, trans)
    np.testing.assert_allclose(reduced.vertices[:, :len(support)], full.vertices[:, support],
                               atol=1e-12)
    np.testing.assert_allclose(reduced.joints, full.joints, atol=1e-12)


def test_mesh_files_errors(tmp_path, mesh_files):
    model_dir, _, _ = mesh_files
    bad = tmp_path / 'reg.npy'
    np.save(bad, np.zeros((17, 41)))
    files = pw3d_mesh.MeshFiles(str(model_dir), str(bad))
    with pytest.raises(ValueError, match=r'reg\.npy: the regressor has 41 vertex columns'):
        files.regressed_h36m('m', np.zeros((1, 72)), np.zeros(10), np.zeros((1, 3)))
    np.save(bad, np.zeros((16, 40)))
    with pytest.raises(ValueError, match=r'reg\.npy: the regressor must be a numeric \[17'):
        pw3d_mesh.load_regressor(bad)
    with pytest.raises(ValueError, match="field 'genders' has 'x'"):
        files.smpl_joints('x', np.zeros((1, 72)), np.zeros(10), np.zeros((1, 3)), path='s.pkl')


def test_cli_flags_reach_the_protocol(pw3d_case, mesh_files, tmp_path, capsys):
    root, pred_path, _ = pw3d_case
    model_dir, regressor_path, _ = mesh_files
    out = tmp_path / 'pw3d.json'
    assert run.main(['--benchmark=pw3d', f'--root={root}', f'--predictions={pred_path}',
                     f'--out={out}', '--split=test', '--valid-frames=campose',
                     f'--body-model-dir={model_dir}', f'--h36m-regressor={regressor_path}']) == 0
    printed = capsys.readouterr().out
    assert 'conventions:' in printed and 'SPIN' in printed and '14 from mesh' in printed
    data = json.loads(out.read_text())
    assert data['protocol']['split'] == 'test' and data['protocol']['valid_frames'] == 'campose'
    assert data['summary']['mpjpe_14'] > 0 and data['conventions']['boxes'].startswith('unknown')
    assert run.main(['--benchmark=mupots', f'--root={root}', '--predictions=x.npz',
                     '--split=test']) == 2
    assert '--split does not apply' in capsys.readouterr().err


# --------------------------------------------------------- detections tracked to the actors ---
def _pose2d_at(x, y):
    """[18, 3] poses2d-style keypoints (OpenPose order) around (x, y), confidence 1."""
    offsets = np.linspace(-40, 40, 18)
    return np.stack([x + offsets, y + offsets[::-1], np.ones(18)], axis=1)


def _smpl2d_like(pose2d):
    """[24, 2] smpl_24 image joints whose association joints sit on the poses2d ones."""
    out = np.zeros((24, 2))
    out[:] = pose2d[:, :2].mean(0)
    out[pw3d.ASSOCIATION_JOINTS[:, 1]] = pose2d[pw3d.ASSOCIATION_JOINTS[:, 0], :2]
    return out


def test_track_sequence_hand_case():
    """Two actors, five frames. Frame 0: only actor 1 is detected (actor 0 has no pose yet).
    Frame 2: actor 1 has no confident keypoints, so its previous detection decides. Frame 3:
    one detection, of actor 0 (actor 1 keeps frame 2's). Detection rows are shuffled."""
    true2d = np.zeros((2, 5, 18, 3))
    for f in range(5):
        true2d[0, f] = _pose2d_at(200 + 5 * f, 300)
        true2d[1, f] = _pose2d_at(700 - 5 * f, 320)
    true2d[1, 2, :, 2] = 0.1  # below the 0.2 confidence floor
    detections = [  # (frame, actor it shows, 2D offset px)
        (0, 1, 3.0), (1, 0, -4.0), (1, 1, 2.0), (2, 1, 10.0), (2, 0, 1.0), (3, 0, 0.0),
        (4, 1, -3.0), (4, 0, 2.0)]
    order = np.random.default_rng(0).permutation(len(detections))
    frames = np.array([detections[i][0] for i in order])
    pred2d = np.stack([_smpl2d_like(true2d[detections[i][1], detections[i][0]]) +
                       detections[i][2] for i in order])
    # Actor 1's frame-2 keypoints are unusable: put them on actor 0 to prove they are ignored.
    true2d[1, 2, :, :2] = true2d[0, 2, :, :2]
    assigned = pw3d.track_sequence(true2d, frames, pred2d)
    row_of = {(detections[i][0], detections[i][1]): j for j, i in enumerate(order)}
    expected = np.array([[-1, row_of[1, 0], row_of[2, 0], row_of[3, 0], row_of[4, 0]],
                         [row_of[0, 1], row_of[1, 1], row_of[2, 1], row_of[2, 1],
                          row_of[4, 1]]])
    np.testing.assert_array_equal(assigned, expected)


def test_assign_detections_and_detector_evaluation(pw3d_case):
    """Detector-mode rows for the test sequence: every GT pose gets the detection tracked to its
    actor; a pose before the actor's first detection stays NaN and is left out (counted)."""
    root, _, truth = pw3d_case
    gt = pw3d.load_ground_truth(root, split='test')
    name = 'downtown_fix_00'
    rng = np.random.default_rng(9)
    rows = []
    for frame in range(N_FRAMES):
        for actor in range(2):
            if frame == 0 and actor == 1:
                continue  # actor 1 is not detected in frame 0
            pose2d = truth[name, actor]['poses2d'][frame].T
            if not np.any(pose2d):  # no keypoints: track by the previous detection instead
                pose2d = truth[name, actor]['poses2d'][frame - 1].T
            rows.append((frame, actor, truth[name, actor]['joints'][frame] +
                         rng.normal(0, 5, (24, 3)), _smpl2d_like(pose2d)))
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    detections = Predictions(
        poses=np.stack([r[2] for r in rows]), joint_names=tuple(get_skeleton('smpl_24').names),
        sequence=np.full(len(rows), name), frame=np.array([r[0] for r in rows]),
        person=np.zeros(len(rows), np.int64), poses2d=np.stack([r[3] for r in rows]),
        boxes=np.tile([0, 0, 10, 10, 0.9], (len(rows), 1)), box_source='detector',
        inference={'num_aug': 1, 'detector': {'threshold': 0.2}})
    assigned = pw3d.assign_detections(gt, detections)
    assert len(assigned) == len(gt.poses) and assigned.box_source == 'detector'
    for i, (actor, frame) in enumerate(zip(gt.person, gt.frame)):
        source = [r for r in rows if r[0] == frame and r[1] == actor]
        if actor == 1 and frame == 0:
            assert np.all(np.isnan(assigned.poses[i]))
        else:
            np.testing.assert_allclose(assigned.poses[i], source[0][2])
    result = pw3d.evaluate(gt, assigned)
    has_frame0_actor1 = np.any((gt.person == 1) & (gt.frame == 0))
    assert result.counts['n_poses_without_prediction'] == int(has_frame0_actor1)
    assert result.counts['n_poses'] == len(gt.poses) - int(has_frame0_actor1)
    assert result.summary['mpjpe'] < 15
    assert result.conventions['boxes'].startswith("the model's detector")
    assert 'num_aug=1' in result.conventions['inference']
    # NaN rows are only tolerated from tracked detections.
    with pytest.raises(ValueError, match='NaN'):
        pw3d.evaluate(gt, Predictions(assigned.poses, assigned.joint_names, assigned.sequence,
                                      assigned.frame, assigned.person))
