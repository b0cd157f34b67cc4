"""Tests of metrabs.data.input_pipeline on tiny hand-made TFRecord shards."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from metrabs.data import augmentation as aug
from metrabs.data import input_pipeline as ip
from posepile import tfrecord_schema
from posepile.camera import Camera, make_crop_camera
from posepile.cropping import CroppedExample, box_to_crop, decode_rle, encode_jpeg, encode_rle
from posepile.shards import ShardWriter

SIDE = 64
JOINTS = ('head_h36m', 'lsho_h36m', 'rsho_h36m', 'lhip_h36m', 'rhip_h36m', 'lank_h36m',
          'rank_h36m')
# The records also hold a joint the model does not use, to test picking from the union.
STORED_JOINTS = JOINTS + ('neck_h36m',)
# The 2D-only dataset labels MPII joints (a 2D-only format): the same body points under the
# base names 'lsho', ..., which supervise the model's h36m joints of those names.
STORED_JOINTS_2D = ('htop_mpii', 'lsho_mpii', 'rsho_mpii', 'lhip_mpii', 'rhip_mpii', 'lank_mpii',
                    'rank_mpii', 'neck_mpii')
LABEL_NAMES = ('lsho', 'rsho', 'lhip', 'rhip', 'lank', 'rank')  # the bases JOINTS and MPII share
OFFSETS = np.array([[0, -750, 0], [180, -500, 30], [-180, -500, -30], [110, 0, 20],
                    [-110, 0, -20], [120, 800, 60], [-120, 790, -50], [0, -550, 0]], np.float64)
SIZES = {'alpha': (4, 3), 'beta': (5,), 'gamma2d': (2, 2)}  # records per shard
COUNTS_3D = {'alpha': 2, 'beta': 1}
COUNTS_2D = {'gamma2d': 1}


def make_example(dataset, index, rng, is_2d):
    original = Camera(optical_center=rng.uniform(-500, 500, 3) + [0, -1000, -4000],
                      intrinsic_matrix=[[1000, 0, 960], [0, 1000, 540], [0, 0, 1]])
    person = np.array([0, -900, 0]) + rng.uniform(-300, 300, 3)
    original.turn_towards(target_world_point=person + rng.uniform(-200, 200, 3))
    world = (person + OFFSETS).astype(np.float32)
    world[rng.integers(len(world))] = np.nan  # one unlabelled joint per example
    valid = np.all(np.isfinite(world), axis=1)
    points = original.world_to_image(world[valid].astype(np.float64))
    lo, hi = points.min(0), points.max(0)
    box = np.concatenate([lo - 0.1 * (hi - lo), 1.2 * (hi - lo)])
    camera = make_crop_camera(original, box, SIDE, scale=1.25)
    image = rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8)
    mask = np.zeros((SIDE, SIDE), bool)
    mask[16:48, 20:44] = True
    coords2d = camera.world_to_image(world.astype(np.float64)).astype(np.float32)
    return CroppedExample(
        image_jpeg=encode_jpeg(image, 95), camera=camera,
        world_coords=np.full_like(world, np.nan) if is_2d else world,
        joint_names=STORED_JOINTS_2D if is_2d else STORED_JOINTS,
        box=box_to_crop(box, original, camera), crop_size=SIDE,
        dataset=dataset, sequence=f'seq{index}', frame=index,
        mask=encode_rle(mask) if dataset == 'beta' else None,
        coords2d=coords2d if is_2d else None)


@pytest.fixture(scope='module')
def shard_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('shards')
    rng = np.random.default_rng(0)
    for dataset, sizes in SIZES.items():
        writer = ShardWriter(root / dataset, len(sizes))
        index = 0
        for shard, size in enumerate(sizes):
            records = []
            for _ in range(size):
                records.append(tfrecord_schema.encode_example(
                    make_example(dataset, index, rng, dataset.endswith('2d'))))
                index += 1
            writer.write_shard(shard, records)
    return root


@pytest.fixture(scope='module')
def config(shard_dir):
    patterns = {name: str(shard_dir / name / '*.tfrecord') for name in SIZES}
    return ip.InputConfig.from_mappings(JOINTS, patterns, COUNTS_3D, COUNTS_2D, proc_side=48,
                                        seed=3, num_parallel_calls=2)


@pytest.fixture(scope='module')
def first_batches(config):
    return list(ip.make_training_dataset(config, 0).take(6).as_numpy_iterator())


def test_batch_contract_and_composition(config, first_batches):
    from metrabs.training.step import check_batch_spec
    check_batch_spec(ip.make_training_dataset(config).element_spec)
    for batch in first_batches:
        assert batch['image'].shape == (4, 48, 48, 3) and batch['image'].dtype == np.float32
        assert batch['coords3d_cam'].shape == (4, len(JOINTS), 3)
        assert 0 <= batch['image'].min() and batch['image'].max() <= 1
        # Fixed rows per dataset, 3D parts first: alpha x2, beta x1, then the 2D part.
        np.testing.assert_array_equal(batch['dataset_index'], [0, 0, 1, 2])
        assert not batch['valid3d'][3].any() and not batch['valid2d'][3].any()
        assert batch['labels2d'].shape == (4, len(LABEL_NAMES), 2)
        assert batch['valid_labels2d'][3].sum() >= len(LABEL_NAMES) - 1
        assert not batch['valid_labels2d'][:3].any()
        assert batch['valid3d'][:3].sum(axis=1).min() >= len(JOINTS) - 1
        assert (batch['coords3d_cam'][~batch['valid3d']] == 0).all()
        assert (batch['coords2d'][~batch['valid2d']] == 0).all()
        assert (batch['labels2d'][~batch['valid_labels2d']] == 0).all()


def test_label_names_and_2d_only_joints(config):
    assert config.label_names_2d == LABEL_NAMES
    with pytest.raises(ValueError, match=r"labelled only by 2D-only formats"):
        ip.InputConfig.from_mappings(JOINTS + ('lsho_mpii',), {'a': 'x'}, {'a': 1})


def test_coords2d_is_the_projection_of_coords3d(first_batches):
    for batch in first_batches:
        cam3d = batch['coords3d_cam'].astype(np.float64)
        K = batch['intrinsics'].astype(np.float64)
        projected = np.einsum('bij,bkj->bki', K, cam3d)
        valid = batch['valid3d']
        projected = projected[..., :2] / np.where(valid, projected[..., 2], 1)[..., None]
        np.testing.assert_allclose(batch['coords2d'][valid], projected[valid], atol=2e-3)
        assert (cam3d[valid][:, 2] > 1000).all()  # in front, metres away


def test_same_batches_from_step_k_whether_started_at_0_or_k(config, first_batches):
    # Steps 3..5 cross an epoch boundary of every part (7, 5 and 4 records).
    resumed = list(ip.make_training_dataset(config, 3).take(3).as_numpy_iterator())
    for expected, got in zip(first_batches[3:], resumed):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    # Different steps do differ.
    assert not np.array_equal(first_batches[0]['image'], first_batches[1]['image'])


def test_stream_visits_every_record_once_per_epoch_and_resumes_exactly(config):
    paths = config.parts[0].shard_paths()
    stream = list(ip.example_stream(paths, key=5).take(14).as_numpy_iterator())
    records = [r for r, _ in stream]
    np.testing.assert_array_equal([p for _, p in stream], np.arange(14))
    all_records = [r.numpy() for r in tf.data.TFRecordDataset(paths)]
    assert sorted(records[:7]) == sorted(all_records)
    assert sorted(records[7:]) == sorted(all_records)
    assert records[:7] != records[7:]  # each epoch has its own order
    for start in (3, 4, 9):
        tail = list(ip.example_stream(paths, key=5, start_position=start).take(14 - start)
                    .as_numpy_iterator())
        assert tail == stream[start:]


def test_eval_dataset_is_fixed_and_unaugmented(config, shard_dir):
    same_side = ip.InputConfig.from_mappings(
        JOINTS, {'alpha': str(shard_dir / 'alpha' / '*.tfrecord')}, {'alpha': 1}, proc_side=SIDE)
    batches = list(ip.make_eval_dataset(same_side, batch_size=3).as_numpy_iterator())
    again = list(ip.make_eval_dataset(same_side, batch_size=3).as_numpy_iterator())
    assert [len(b['image']) for b in batches] == [3, 3, 1]
    records = [r.numpy() for r in tf.data.TFRecordDataset(same_side.parts[0].shard_paths())]
    intrinsics = np.concatenate([b['intrinsics'] for b in batches])
    coords2d = np.concatenate([b['coords2d'] for b in batches])
    for i, record in enumerate(records):
        parsed = tfrecord_schema.decode_example(record, union_names=STORED_JOINTS)
        # The test-time crop: the stored box filling the output (posepile's make_crop_camera).
        camera = make_crop_camera(tfrecord_schema.camera_from_parsed(parsed), parsed['box'],
                                  SIDE, scale=1.0)
        np.testing.assert_allclose(intrinsics[i], camera.intrinsic_matrix, atol=1e-3)
        expected = camera.world_to_image(parsed['world_coords'][:len(JOINTS)].astype(np.float64))
        valid = parsed['joint_valid'][:len(JOINTS)]
        np.testing.assert_allclose(coords2d[i][valid], expected[valid], atol=1e-3)
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(np.concatenate([b['dataset_index'] for b in batches]), 0)


def test_geometry_survives_the_pipeline_in_the_image(shard_dir):
    """Without appearance changes, the augmented image equals warping the decoded crop into the
    returned camera (so the pixels and the labels describe the same view)."""
    quiet = aug.AugmentationConfig(color=False, occlusion_prob=0, background_prob=0)
    config = ip.InputConfig.from_mappings(
        JOINTS, {'beta': str(shard_dir / 'beta' / '*.tfrecord')}, {'beta': 1}, proc_side=SIDE,
        augmentation=quiet)
    batch = next(ip.make_training_dataset(config, 2).as_numpy_iterator())
    paths = config.parts[0].shard_paths()
    key = ip.order_key(config, config.parts[0])
    record, position = next(ip.example_stream(paths, key, start_position=2).as_numpy_iterator())
    parsed = tfrecord_schema.decode_example(record, union_names=STORED_JOINTS)
    rng = aug.example_rng(config.seed, ip.stream_id('beta'), position)
    n = len(JOINTS)
    mask = decode_rle({'size': parsed['mask_size'].tolist(), 'counts': parsed['mask_counts']})
    no_labels = np.full((len(config.label_names_2d), 2), np.nan)
    expected = aug.augment(parsed['image'], tfrecord_schema.camera_from_parsed(parsed),
                           parsed['world_coords'][:n], parsed['joint_valid'][:n],
                           no_labels, False, parsed['box'], mask.astype(bool),
                           aug.mirror_perm_for(JOINTS), np.arange(len(no_labels)), rng, quiet,
                           SIDE)
    np.testing.assert_allclose(batch['image'][0], expected['image'], atol=1e-6)
    np.testing.assert_allclose(batch['coords2d'][0], expected['coords2d'], atol=1e-4)


def test_config_errors_name_the_problem(shard_dir):
    with pytest.raises(KeyError, match='not in the'):
        ip.InputConfig.from_mappings(('nosuchjoint_h36m',), {'a': 'x'}, {'a': 1})
    with pytest.raises(KeyError, match='no shard pattern'):
        ip.InputConfig.from_mappings(JOINTS, {}, {'a': 1})
    config = ip.InputConfig.from_mappings(JOINTS, {'a': str(shard_dir / 'none*')}, {'a': 1})
    with pytest.raises(FileNotFoundError, match="'a'"):
        ip.make_training_dataset(config)
    with pytest.raises(FileNotFoundError, match='background_dir'):
        ip.InputConfig.from_mappings(JOINTS, {'a': 'x'}, {'a': 1}, background_dir='/nowhere')
    with pytest.raises(ValueError, match="'a': background_prob"):
        ip.DatasetPart('a', 'x', 1, background_prob=1.5)


def test_config_dict_round_trip(config):
    import json
    restored = ip.InputConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    with pytest.raises(KeyError, match='unknown augmentation fields'):
        ip.InputConfig.from_dict({**config.to_dict(), 'augmentation': {'spin': 1}})


_RESUME_IN_NEW_PROCESS = '''
import json, sys
import numpy as np
from metrabs.data import input_pipeline as ip
config = ip.InputConfig.from_dict(json.load(open(sys.argv[1])), source=sys.argv[1])
batches = list(ip.make_training_dataset(config, int(sys.argv[2])).take(3).as_numpy_iterator())
np.savez(sys.argv[3], **{f'{i}/{k}': v for i, b in enumerate(batches) for k, v in b.items()})
'''


def test_resume_in_a_new_process_sees_the_uninterrupted_batches(config, first_batches, tmp_path):
    """A resumed run is a new process (after SIGKILL): other hash seed, fresh TF state. Its batches
    from step k must equal those an uninterrupted run saw at steps k, k+1, ..."""
    import json
    import os
    import pathlib
    import subprocess
    import sys
    repo = pathlib.Path(__file__).resolve().parents[1]
    config_path = tmp_path / 'input.json'
    config_path.write_text(json.dumps(config.to_dict()))
    out = tmp_path / 'batches.npz'
    env = dict(os.environ, PYTHONHASHSEED='12345', TF_CPP_MIN_LOG_LEVEL='2',
               PYTHONPATH=str(repo))
    done = subprocess.run([sys.executable, '-c', _RESUME_IN_NEW_PROCESS, str(config_path), '3',
                           str(out)], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as resumed:
        for i, expected in enumerate(first_batches[3:6]):
            for key, value in expected.items():
                np.testing.assert_array_equal(resumed[f'{i}/{key}'], value, err_msg=key)


def test_2d_only_labels_are_gathered_by_base_name_and_follow_the_crop(shard_dir):
    quiet = aug.AugmentationConfig(color=False, occlusion_prob=0, background_prob=0)
    config = ip.InputConfig.from_mappings(
        JOINTS, {'gamma2d': str(shard_dir / 'gamma2d' / '*.tfrecord')}, {}, {'gamma2d': 1},
        proc_side=SIDE, augmentation=quiet)
    batch = next(ip.make_training_dataset(config, 1).as_numpy_iterator())
    paths = config.parts[0].shard_paths()
    record, position = next(ip.example_stream(paths, ip.order_key(config, config.parts[0]),
                                              start_position=1).as_numpy_iterator())
    parsed = tfrecord_schema.decode_example(record, union_names=STORED_JOINTS_2D)
    # By hand: the MPII label of base name b is the stored row '<b>_mpii'.
    labels = np.stack([parsed['coords2d'][STORED_JOINTS_2D.index(f'{b}_mpii')]
                       for b in LABEL_NAMES])
    rng = aug.example_rng(config.seed, ip.stream_id('gamma2d'), position)
    from metrabs.data import labels2d
    expected = aug.augment(parsed['image'], tfrecord_schema.camera_from_parsed(parsed),
                           np.full((len(JOINTS), 3), np.nan), np.zeros(len(JOINTS), bool), labels,
                           True, parsed['box'], None, aug.mirror_perm_for(JOINTS),
                           labels2d.mirror_perm(LABEL_NAMES), rng, quiet, SIDE)
    valid = expected['valid_labels2d']
    assert valid.sum() >= len(LABEL_NAMES) - 1
    np.testing.assert_array_equal(batch['valid_labels2d'][0], valid)
    np.testing.assert_allclose(batch['labels2d'][0], expected['labels2d'], atol=1e-4)


@pytest.mark.parametrize('n_workers', [2, 4])
def test_worker_rows_concatenate_to_the_global_batches(config, first_batches, n_workers):
    """W workers each building their rows (the loop's rows=(w*B/W, (w+1)*B/W)) together produce
    exactly the global batches: also a part cut between two workers (alpha at W=4)."""
    per_worker = config.batch_size // n_workers
    shares = [list(ip.make_training_dataset(config, 0, rows=(w * per_worker,
                                                             (w + 1) * per_worker))
                   .take(len(first_batches)).as_numpy_iterator())
              for w in range(n_workers)]
    for step, expected in enumerate(first_batches):
        for key in expected:
            got = np.concatenate([share[step][key] for share in shares])
            np.testing.assert_array_equal(got, expected[key], err_msg=f'step {step} {key}')


def test_a_worker_opens_only_the_parts_of_its_rows(config, tmp_path):
    """Rows 0..1 come from alpha only: beta's and gamma2d's shards are never opened (here they
    do not even exist); rows 1..2 reach beta, whose absence is then named."""
    gone = str(tmp_path / 'gone' / '*.tfrecord')
    parts_3d = (config.parts_3d[0], dataclasses.replace(config.parts_3d[1], shard_patterns=gone))
    parts_2d = (dataclasses.replace(config.parts_2d[0], shard_patterns=gone),)
    partial = dataclasses.replace(config, parts_3d=parts_3d, parts_2d=parts_2d)
    batch = next(iter(ip.make_training_dataset(partial, 0, rows=(0, 2))))
    np.testing.assert_array_equal(batch['dataset_index'], [0, 0])
    with pytest.raises(FileNotFoundError, match="part 'beta'"):
        ip.make_training_dataset(partial, 0, rows=(1, 3))
    assert ip.rows_of_parts(config, (1, 3)) == [(1, 2), (0, 1), None]
    assert ip.rows_of_parts(config, None) == [(0, 2), (0, 1), (0, 1)]
    with pytest.raises(ValueError, match='rows'):
        ip.rows_of_parts(config, (2, 9))
