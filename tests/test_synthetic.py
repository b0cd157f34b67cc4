"""Tests of the synthetic multi-skeleton world: body, formats, poses, renderer, CLI, converter."""
import json
import pathlib
from collections import Counter

import numpy as np
import pytest
from pycocotools import mask as mask_tools
from scipy.spatial.transform import Rotation

from posepile import joints
from posepile.datasets import synthetic as converter
from posepile.datasets.skip_counts import recording_skips
from posepile.synthetic import __main__ as cli
from posepile.synthetic import body as body_lib
from posepile.synthetic import cameras as cameras_lib
from posepile.synthetic import format_weights
from posepile.synthetic import ground_truth
from posepile.synthetic import poses as poses_lib
from posepile.synthetic import render as render_lib
from posepile.synthetic import world
from posepile.synthetic.formats import SYNTHETIC_2D_SKELETONS, SYNTHETIC_SKELETONS
from posepile.synthetic.writer import write_world


@pytest.fixture(scope='module')
def motion_sample():
    rng = np.random.default_rng(7)
    body = body_lib.sample_body(rng)
    motion = poses_lib.sample_motion(rng, body, 150)
    hidden = body_lib.forward_kinematics(body, motion.pose_deg, motion.root_rot, motion.root_pos)
    return body, motion, hidden


@pytest.fixture(scope='module')
def written_world(tmp_path_factory):
    out = tmp_path_factory.mktemp('world')
    cli.main(['--out', str(out), '--num', '60', '--num-2d', '16', '--seed', '3'])
    return out


@pytest.fixture(scope='module')
def examples(written_world):
    return list(converter.convert(written_world))


def test_formats_are_affine_combinations_of_hidden_points(motion_sample):
    _, _, hidden = motion_sample
    assert body_lib.N_HIDDEN >= 50
    assert len(SYNTHETIC_SKELETONS) >= 5
    assert len(SYNTHETIC_SKELETONS['synsmpl'][0]) == 24
    assert {'nose', 'leye', 'reye', 'lear', 'rear'} <= set(SYNTHETIC_SKELETONS['syncoco'][0])
    rotation = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    shift = np.array([120.0, -3400.0, 55.0])
    for fmt, weights in format_weights.FORMAT_WEIGHTS.items():
        names = {**SYNTHETIC_SKELETONS, **SYNTHETIC_2D_SKELETONS}[fmt][0]
        assert weights.shape == (len(names), body_lib.N_HIDDEN)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
        coords = format_weights.format_joints(fmt, hidden[:5])
        np.testing.assert_allclose(coords, weights @ hidden[:5], atol=1e-9)
        # Affine combinations commute with rigid motions of the whole body.
        moved = format_weights.format_joints(fmt, hidden[:5] @ rotation.T + shift)
        np.testing.assert_allclose(moved, coords @ rotation.T + shift, atol=1e-6)


def test_formats_disagree_like_real_datasets(motion_sample):
    _, _, hidden = motion_sample
    mocap = format_weights.format_joints('synmocap', hidden)
    head = format_weights.format_joints('synhead', hidden)
    names_m = SYNTHETIC_SKELETONS['synmocap'][0]
    names_h = SYNTHETIC_SKELETONS['synhead'][0]
    lhip_m, lhip_h = mocap[:, names_m.index('lhip')], head[:, names_h.index('lhip')]
    rhip_m, rhip_h = mocap[:, names_m.index('rhip')], head[:, names_h.index('rhip')]
    # Mocap hips are wider apart than the joint centres, and lower along the thigh.
    assert np.all(np.linalg.norm(lhip_m - rhip_m, axis=-1)
                  > np.linalg.norm(lhip_h - rhip_h, axis=-1) + 20)
    assert np.all(np.linalg.norm(lhip_m - lhip_h, axis=-1) > 30)


def test_euler_convention_matches_scipy():
    angles = np.random.default_rng(0).uniform(-170, 170, (20, 3))
    expected = Rotation.from_euler('ZXY', angles[:, [2, 0, 1]], degrees=True).as_matrix()
    np.testing.assert_allclose(body_lib.euler_to_matrix(angles), expected, atol=1e-12)


def test_stature_in_range_and_rest_height():
    rng = np.random.default_rng(1)
    for _ in range(30):
        body = body_lib.sample_body(rng)
        assert 1500 <= body.stature_mm <= 2000
        rest = body_lib.forward_kinematics(body, np.zeros((1, len(body_lib.JOINT_NAMES), 3)),
                                           body_lib.yaw_to_root_rotation(np.zeros(1)),
                                           np.zeros((1, 3)))[0]
        assert np.ptp(rest[:, 2]) == pytest.approx(body.stature_mm, rel=1e-9)


def test_bone_lengths_constant_within_a_sequence(motion_sample):
    body, _, hidden = motion_sample
    assert len(body_lib.BONES) >= 18
    ids = body_lib.HIDDEN_POINT_IDS
    a = np.array([ids[p] for p, _ in body_lib.BONES])
    b = np.array([ids[c] for _, c in body_lib.BONES])
    lengths = np.linalg.norm(hidden[:, a] - hidden[:, b], axis=-1)  # [T, bones]
    np.testing.assert_allclose(lengths, lengths[:1].repeat(len(lengths), 0), atol=1e-6)
    np.testing.assert_allclose(lengths[0], np.linalg.norm(body.offsets_mm[1:], axis=-1), atol=1e-6)


def test_poses_within_joint_limits_and_knee_angle(motion_sample):
    _, motion, hidden = motion_sample
    limits = body_lib.JOINT_LIMITS_DEG
    assert np.all(motion.pose_deg >= limits[..., 0] - 1e-9)
    assert np.all(motion.pose_deg <= limits[..., 1] + 1e-9)
    # Independent check from positions: the knee only flexes, 0..140 degrees.
    ids = body_lib.HIDDEN_POINT_IDS
    thigh = hidden[:, ids['lknee']] - hidden[:, ids['lhip']]
    shank = hidden[:, ids['lankle']] - hidden[:, ids['lknee']]
    cos = np.sum(thigh * shank, -1) / (np.linalg.norm(thigh, axis=-1)
                                       * np.linalg.norm(shank, axis=-1))
    assert np.all(np.degrees(np.arccos(np.clip(cos, -1, 1))) < 145)
    # Feet on the ground, person upright on average.
    np.testing.assert_allclose(hidden[..., 2].min(axis=1), 0, atol=1e-6)
    assert np.all(hidden[:, ids['headtop'], 2] > hidden[:, ids['lankle'], 2])


def test_motion_is_smooth_and_varied():
    rng = np.random.default_rng(3)
    moves, archetypes = [], set()
    for _ in range(4):
        body = body_lib.sample_body(rng)
        motion = poses_lib.sample_motion(rng, body, 100)
        hidden = body_lib.forward_kinematics(body, motion.pose_deg, motion.root_rot,
                                             motion.root_pos)
        moves.append(np.linalg.norm(np.diff(hidden, axis=0), axis=-1).max(axis=1))
        archetypes |= set(motion.archetypes)
    moves = np.concatenate(moves)
    # Consecutive frames are near-duplicates: most move less than the 100 mm dedup threshold.
    assert np.mean(moves < 100) > 0.9
    assert np.max(moves) < 250
    assert len(archetypes) >= 4


@pytest.fixture(scope='module')
def rendered():
    rng = np.random.default_rng(11)
    body = body_lib.sample_body(rng)
    motion = poses_lib.sample_motion(rng, body, 5)
    hidden = body_lib.forward_kinematics(body, motion.pose_deg, motion.root_rot, motion.root_pos)
    rig = cameras_lib.CameraRig('static', 1, (4000, 4500), (1200, 1500), (50, 55), (256, 256),
                                aim_jitter=0.0)
    camera = cameras_lib.sample_camera(rng, rig, motion.root_pos[0, :2])
    background = render_lib.random_background(rng, 256, 256)
    result = render_lib.render_person(hidden[0], body, render_lib.sample_appearance(rng), camera,
                                      background, rng, occluder_prob=0.0)
    return hidden[0], camera, result


def test_render_mask_agrees_with_projected_body(rendered):
    hidden, camera, result = rendered
    ids = body_lib.HIDDEN_POINT_IDS
    torso = hidden[[ids[n] for n in ('pelvis', 'spine1', 'spine2', 'spine3', 'sternum')]]
    pixels = np.round(camera.world_to_image(torso)).astype(int)
    assert np.all(result.mask[pixels[:, 1], pixels[:, 0]])
    # The visible surface is in front of the torso centre line, by less than the torso's radius.
    depth_at = result.depth[pixels[:, 1], pixels[:, 0]]
    z = camera.world_to_camera(torso)[:, 2]
    assert np.all(depth_at < z) and np.all(depth_at > z - 300)
    # Every projected hidden point lies inside the mask's box (up to a capsule radius).
    box = render_lib.mask_box(result.mask)
    proj = camera.world_to_image(hidden)
    assert np.all(proj >= box[:2] - 5) and np.all(proj <= box[:2] + box[2:] + 5)
    # Far from the body (beyond all projected points + margin) there is no mask.
    far = np.ones_like(result.mask)
    lo = np.maximum(np.floor(proj.min(0)).astype(int) - 40, 0)
    hi = np.ceil(proj.max(0)).astype(int) + 40
    far[lo[1]:hi[1], lo[0]:hi[0]] = False
    assert not np.any(result.mask & far)


def test_mask_box_is_tight():
    mask = np.zeros((20, 30), bool)
    mask[4:9, 10:13] = True
    mask[12, 20] = True
    np.testing.assert_array_equal(render_lib.mask_box(mask), [9.5, 3.5, 11, 9])
    np.testing.assert_array_equal(render_lib.mask_box(np.zeros((5, 5), bool)), [0, 0, 0, 0])


def test_occluders_remove_mask_pixels():
    rng = np.random.default_rng(5)
    body = body_lib.sample_body(rng)
    motion = poses_lib.sample_motion(rng, body, 1)
    hidden = body_lib.forward_kinematics(body, motion.pose_deg, motion.root_rot, motion.root_pos)
    rig = cameras_lib.CameraRig('static', 1, (3000, 3000), (1300, 1300), (50, 50), (256, 256),
                                aim_jitter=0.0)
    camera = cameras_lib.sample_camera(rng, rig, motion.root_pos[0, :2])
    background = render_lib.random_background(rng, 256, 256)
    appearance = render_lib.sample_appearance(rng)
    clear = render_lib.render_person(hidden[0], body, appearance, camera, background,
                                     np.random.default_rng(0), occluder_prob=0.0)
    occluded = render_lib.render_person(hidden[0], body, appearance, camera, background,
                                        np.random.default_rng(0), occluder_prob=1.0)
    assert not np.any(occluded.mask & ~clear.mask)
    assert occluded.occluded_fraction == pytest.approx(
        1 - occluded.mask.sum() / clear.mask.sum(), abs=1e-9)


def test_deterministic_by_seed(tmp_path):
    write_world(tmp_path / 'a', 25, seed=9, progress=False)
    write_world(tmp_path / 'b', 25, seed=9, progress=False)
    files_a = sorted(p.relative_to(tmp_path / 'a') for p in (tmp_path / 'a').rglob('*')
                     if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / 'b') for p in (tmp_path / 'b').rglob('*')
                     if p.is_file())
    assert files_a == files_b and len(files_a) > 25
    for rel in files_a:
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes(), rel
    write_world(tmp_path / 'c', 25, seed=10, progress=False)
    some_jpeg = next(r for r in files_a if r.suffix == '.jpg')
    assert (tmp_path / 'c' / some_jpeg).read_bytes() != (tmp_path / 'a' / some_jpeg).read_bytes()


def test_cli_layout(written_world):
    info = json.loads((written_world / 'world.json').read_text())
    assert info['datasets'] == [d.name for d in world.DATASETS] and len(info['datasets']) >= 6
    assert (info['num'], info['num_2d']) == (60, 16)
    for spec in world.DATASETS:
        for split in world.SPLITS:
            expected = not (spec.two_d_only and split == 'test')  # 2D-only: no test split
            assert bool(list((written_world / spec.name / 'images' / split).glob(
                '*/cam*/*.jpg'))) == expected
            assert bool(list((written_world / spec.name / 'annotations' / split).glob(
                '*/cam*.json'))) == expected
    assert not list(written_world.rglob('*.tmp*'))


def test_converter_roundtrip_projections(examples):
    assert examples
    annotations = {}
    for ex in examples:
        if ex.coords2d is not None:
            continue  # 2D-only: test_2d_only_dataset
        path = ex.extra['annotation_file']
        if path not in annotations:
            ann = json.loads(pathlib.Path(path).read_text())
            annotations[path] = {fr['frame']: fr for fr in ann['frames']}
        record = annotations[path][ex.frame]
        stored2d = np.concatenate([np.asarray(record['joints2d'][f]) for f in ex.extra['formats']])
        projected = ex.camera.world_to_image(ex.world_coords.astype(np.float64))
        assert np.max(np.abs(projected - stored2d)) < 1.0
        assert pathlib.Path(ex.image).is_file()
        # The RLE mask decodes to the stored box.
        decoded = mask_tools.decode({'size': ex.mask['size'], 'counts': ex.mask['counts'].encode()})
        np.testing.assert_array_equal(render_lib.mask_box(decoded.astype(bool)), ex.box)


def test_converter_splits_and_formats(examples):
    by_split = {}
    for ex in examples:
        by_split.setdefault(ex.split, []).append(ex)
    assert set(by_split) == {'train', 'validation', 'test'}
    all_union = [n for f in format_weights.FORMAT_NAMES for n in joints.union_names(f)]
    for ex in by_split['test']:
        assert list(ex.joint_names) == all_union
    for ex in by_split['train'] + by_split['validation']:
        spec = world.DATASET_BY_NAME[ex.dataset]
        assert list(ex.joint_names) == [n for f in spec.formats for n in joints.union_names(f)]
    assert not any(world.DATASET_BY_NAME[ex.dataset].two_d_only for ex in by_split['test'])
    assert {ex.dataset for ex in examples} == set(world.DATASET_BY_NAME)
    # Distortion reaches the parsed camera of the wide-angle dataset.
    assert any(ex.camera.has_distortion for ex in examples if ex.dataset == 'synwide')
    # Tracks come in increasing frame order.
    last = {}
    for ex in examples:
        assert ex.frame > last.get(ex.track_key, -1)
        last[ex.track_key] = ex.frame


def test_converter_names_missing_field(written_world, tmp_path):
    import shutil
    copy = tmp_path / 'w'
    shutil.copytree(written_world, copy)
    path = sorted((copy / 'synlab' / 'annotations' / 'train').glob('*/*.json'))[0]
    ann = json.loads(path.read_text())
    del ann['frames'][0]['camera']['K']
    path.write_text(json.dumps(ann))
    with pytest.raises(ValueError, match=r"cam0\.json.*'K'"):
        list(converter.convert(copy, datasets=['synlab']))
    (copy / 'world.json').unlink()
    with pytest.raises(ValueError, match='world.json'):
        list(converter.convert(copy))


def test_converter_counts_invisible_frames(written_world, tmp_path):
    import shutil
    copy = tmp_path / 'w'
    shutil.copytree(written_world, copy)
    path = sorted((copy / 'synlab' / 'annotations' / 'train').glob('*/*.json'))[0]
    ann = json.loads(path.read_text())
    ann['frames'][0]['box'] = [0, 0, 0, 0]  # the person left the picture
    path.write_text(json.dumps(ann))
    # Expected from the raw files: every record whose box has no area, by dataset.
    expected = Counter()
    for p in copy.glob('*/annotations/*/*/*.json'):
        record = json.loads(p.read_text())
        expected[(record['dataset'], 'person not visible (empty box)')] += sum(
            fr['box'][2] <= 0 or fr['box'][3] <= 0 for fr in record['frames'])
    with recording_skips() as counts:
        kept = list(converter.convert(copy))
    assert counts == +expected and counts[('synlab', 'person not visible (empty box)')] >= 1
    n_records = sum(len(json.loads(p.read_text())['frames'])
                    for p in copy.glob('*/annotations/*/*/*.json'))
    assert len(kept) + sum(counts.values()) == n_records


def test_2d_only_dataset(written_world, examples):
    # Like COCO: labels are image points of the 2D format, nothing 3D, no calibration.
    two_d = [ex for ex in examples if ex.dataset == 'synwild']
    assert two_d and {ex.split for ex in two_d} == {'train', 'validation'}
    assert joints.get_format('syn2d').is_2d
    names = joints.union_names('syn2d')
    for ex in two_d:
        assert list(ex.joint_names) == names and np.isnan(ex.world_coords).all()
        assert ex.coords2d.shape == (len(names), 2)
        # The 8 degree pinhole guess over the larger side, principal point at the centre.
        np.testing.assert_allclose(ex.camera.intrinsic_matrix[0, 0],
                                   160 / np.tan(np.deg2rad(4.0)), rtol=1e-9)
        np.testing.assert_allclose(ex.camera.R, np.eye(3))
    # The labels are the rendered points (the projections of the hidden body's syn2d joints),
    # with points outside the image, or below 95 % of its height, unlabelled.
    ex = two_d[0]
    ann = json.loads(pathlib.Path(ex.extra['annotation_file']).read_text())
    record = next(fr for fr in ann['frames'] if fr['frame'] == ex.frame)
    assert 'camera' not in record and 'joints3d' not in record
    stored = np.array([[np.nan, np.nan] if p is None else p for p in record['joints2d']['syn2d']])
    expected = np.where((stored[:, 1:] > 0.95 * 320), np.nan, stored)
    np.testing.assert_allclose(ex.coords2d, expected, atol=1e-4)
    inside = np.isfinite(stored).all(axis=1)
    assert inside.any() and np.all((stored[inside] >= -0.5) & (stored[inside] <= 319.5))
    # Base names shared with the 3D formats (what lets it supervise every skeleton).
    three_d_bases = {joints.split_union_name(n)[0] for n in joints.three_d_union_names('synthetic')}
    assert {joints.split_union_name(n)[0] for n in names} <= three_d_bases
    assert not set(names) & set(joints.three_d_union_names('synthetic'))


def test_2d_budget_leaves_the_3d_datasets_unchanged(tmp_path):
    write_world(tmp_path / 'a', 30, seed=4, progress=False)
    write_world(tmp_path / 'b', 30, seed=4, progress=False, num_2d=8)
    for path in (tmp_path / 'a').rglob('*'):
        if path.is_file() and path.name != 'world.json':
            assert (tmp_path / 'b' / path.relative_to(tmp_path / 'a')).read_bytes() == \
                path.read_bytes(), path
    assert len(list((tmp_path / 'b' / 'synwild').rglob('*.jpg'))) == 8


def test_test_ground_truth_and_format_maps(written_world):
    gt = ground_truth.load_test_ground_truth(written_world)
    assert len(gt) > 0
    assert set(gt.coords) == set(format_weights.FORMAT_NAMES)
    for fmt, coords in gt.coords.items():
        assert coords.shape == (len(gt), len(gt.joint_names[fmt]), 3)
        assert np.all(np.isfinite(coords))
    same, residual = ground_truth.format_map('synhead', 'synhead')
    np.testing.assert_allclose(same, np.eye(len(gt.joint_names['synhead'])), atol=1e-6)
    assert residual < 1e-6
    mapping, residual = ground_truth.format_map('synmocap', 'synhead')
    np.testing.assert_allclose(mapping.sum(axis=1), 1.0, atol=1e-9)
    # On unseen test people the map predicts the other format to about its fitted residual.
    predicted = np.einsum('ds,nsc->ndc', mapping, gt.coords['synmocap'])
    rms = np.sqrt(np.mean((predicted - gt.coords['synhead']) ** 2))
    assert rms < 3 * residual + 5
    assert rms < 30


def test_off_frame_pan_moves_target_by_closed_form():
    position, target = np.array([4000.0, 0.0, 1500.0]), np.array([0.0, 0.0, 1000.0])
    aimed = cameras_lib.make_camera(position, target, 60.0, (240, 320))
    panned = cameras_lib.make_camera(position, target, 60.0, (240, 320), pan_tilt_rad=(0.3, 0.0))
    focal = 160 / np.tan(np.deg2rad(30))
    np.testing.assert_allclose(aimed.intrinsic_matrix[0, 0], focal)
    np.testing.assert_allclose(aimed.world_to_image(target), [159.5, 119.5], atol=1e-6)
    shifted = panned.world_to_image(target)
    np.testing.assert_allclose(abs(shifted[0] - 159.5), focal * np.tan(0.3), atol=1e-6)
    np.testing.assert_allclose(shifted[1], 119.5, atol=1e-6)
    # Level camera: the world's vertical projects to the image's vertical through the centre.
    above = aimed.world_to_image(target + [0, 0, 500.0])
    assert above[1] < 119.5 and abs(above[0] - 159.5) < 1e-6


def test_plan_has_exact_image_count():
    for num in (1, 37, 500):
        plans = world.plan_sequences(num, seed=0)
        assert sum(p.n_images for p in plans) == num


def test_dedup_has_work_on_the_written_world(examples):
    from posepile.dedup import dedup_mask
    train = [ex for ex in examples if ex.dataset == 'synring' and ex.split == 'train']
    keys = {k: i for i, k in enumerate(sorted({ex.track_key for ex in train}))}
    kept = dedup_mask(np.stack([ex.world_coords for ex in train]),
                      np.array([keys[ex.track_key] for ex in train]),
                      np.array([ex.frame for ex in train]))
    assert len(keys) <= kept.sum() < 0.8 * len(train)
