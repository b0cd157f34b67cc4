"""Fault and bad-input tests: a killed build, damaged shards and images, NaN, wrong joint counts,
unknown skeletons, mismatched ACAE weights. docs/FAULTS.md lists each case and its outcome."""
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from acae import export as acae_export
from metrabs.data import input_pipeline as ip
from posepile import joints, shards, tfrecord_schema
from posepile.camera import Camera
from posepile.cropping import CropConfig, crop_example
from posepile.datasets import get_converter
from posepile.example import Pose3DExample
from posepile.synthetic.writer import write_world

from test_input_pipeline import JOINTS, make_example

REPO = pathlib.Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ a build killed by SIGKILL
def _build(world, out):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(REPO),
               TF_NUM_INTRAOP_THREADS='1', TF_NUM_INTEROP_THREADS='1')
    return subprocess.Popen(
        [sys.executable, '-m', 'posepile.build', '--dataset=synthetic', f'--root={world}',
         f'--out={out}', '--crop-size=128', '--num-shards=6', '--workers=1'],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _example_keys(out: pathlib.Path) -> list[tuple]:
    """(dataset, split, sequence, person, camera_id, frame) of every record under `out`."""
    keys = []
    for path in sorted(out.rglob('*.tfrecord')):
        for record in shards.read_shards([path]):
            d = tfrecord_schema.decode_example(record, decode_image=False, source=str(path))
            keys.append((d['dataset'], d['split'], d['sequence'], d['person'], d['camera_id'],
                         d['frame']))
    return keys


def test_build_killed_mid_shard_leaves_no_partial_shard_and_rerun_completes(tmp_path):
    world = tmp_path / 'world'
    write_world(world, 36, seed=4, progress=False)
    full_out, killed_out = tmp_path / 'full', tmp_path / 'killed'
    victim = _build(world, killed_out)
    deadline = time.monotonic() + 120
    # Kill as soon as shard writing has started: a '.tmp' or a first complete shard exists.
    while not any(killed_out.rglob('*.tfrecord*')):
        assert victim.poll() is None, 'build ended before writing shards:\n' + \
            victim.communicate()[0][-3000:]
        assert time.monotonic() < deadline, 'no shard appeared in time'
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    full = _build(world, full_out)  # the reference runs after the kill: 2 cores, no contention
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_out / 'manifest.json').exists(), 'the build finished before the kill'

    # No partial shard is visible: every final-named file is complete and well framed; any
    # interrupted write is only a '.tmp'.
    finals = sorted(killed_out.rglob('*.tfrecord'))
    for path in finals:
        assert shards.check_shard_framing(path) > 0
    out_full = full.communicate(timeout=180)[0]
    assert full.returncode == 0, out_full[-3000:]
    n_full_shards = len(list(full_out.rglob('*.tfrecord')))
    assert len(finals) < n_full_shards, 'killed build had already written every shard'

    rerun = _build(world, killed_out)
    out_rerun = rerun.communicate(timeout=180)[0]
    assert rerun.returncode == 0, out_rerun[-3000:]
    assert not list(killed_out.rglob('*.tmp')) or all(
        p.with_suffix('').exists() for p in killed_out.rglob('*.tmp'))

    expected, got = _example_keys(full_out), _example_keys(killed_out)
    assert len(expected) > 20
    assert len(set(got)) == len(got), 'duplicate examples after the rerun'
    assert sorted(got) == sorted(expected)
    # Each shard holds the same examples in the same order as the uninterrupted build's. (Not
    # compared byte for byte: protobuf map fields serialize in an order that may differ between
    # processes unless SerializeToString(deterministic=True) is used.)
    for path in full_out.rglob('*.tfrecord'):
        twin = killed_out / path.relative_to(full_out)
        assert [tfrecord_schema.decode_example(r, decode_image=False)['frame']
                for r in shards.read_shards([twin])] == [
            tfrecord_schema.decode_example(r, decode_image=False)['frame']
            for r in shards.read_shards([path])], path


# --------------------------------------------------------------------------- damaged shards
@pytest.fixture(scope='module')
def records():
    rng = np.random.default_rng(0)
    examples = [make_example('alpha', i, rng, False) for i in range(4)]
    return examples, [tfrecord_schema.encode_example(e) for e in examples]


def _config(pattern, count=2):
    return ip.InputConfig.from_mappings(JOINTS, {'alpha': str(pattern)}, {'alpha': count},
                                        proc_side=48, seed=1, num_parallel_calls=1)


def test_truncated_shard_is_named_when_the_training_pipeline_starts(tmp_path, records):
    writer = shards.ShardWriter(tmp_path, 2)
    writer.write_shard(0, records[1][:2])
    writer.write_shard(1, records[1][2:])
    bad = writer.paths[1]
    bad.write_bytes(bad.read_bytes()[:-7])
    with pytest.raises(shards.CorruptShardError, match=bad.name):
        ip.make_training_dataset(_config(tmp_path / '*.tfrecord'))
    with pytest.raises(shards.CorruptShardError, match=bad.name):
        ip.make_eval_dataset(_config(tmp_path / '*.tfrecord'), 2)


def test_flipped_data_byte_is_caught_by_the_record_crc(tmp_path, records):
    writer = shards.ShardWriter(tmp_path, 1)
    writer.write_shard(0, records[1])
    data = bytearray(writer.paths[0].read_bytes())
    data[40] ^= 0x10  # inside record 0's payload: framing is intact, the data CRC is not
    writer.paths[0].write_bytes(bytes(data))
    assert shards.check_shard_framing(writer.paths[0]) == 4  # headers alone look fine
    with pytest.raises(shards.CorruptShardError, match=writer.paths[0].name):
        shards.verify_shards([writer.paths[0]])
    # Inside tf.data the record CRC check stops training and evaluation naming the shard.
    for dataset in (ip.make_eval_dataset(_config(writer.paths[0]), 4),
                    ip.make_training_dataset(_config(writer.paths[0]))):
        with pytest.raises(tf.errors.OpError,
                           match=f'CorruptShardError.*{writer.paths[0]}: corrupted record'):
            next(iter(dataset))


def _build_like_tree(root, records, num_shards=2):
    """Shards under root/alpha/train/ and root/manifest.json as posepile.build writes them."""
    writer = shards.ShardWriter(root / 'alpha' / 'train', num_shards)
    per_shard = np.array_split(np.arange(len(records)), num_shards)
    infos = [writer.write_shard(i, [records[j] for j in rows]) for i, rows in
             enumerate(per_shard)]
    manifest = {'shards': [{'file': info.path.relative_to(root).as_posix(), 'dataset': 'alpha',
                            'split': 'train', 'num_examples': info.num_records,
                            'sha256': info.sha256, 'num_bytes': info.num_bytes}
                           for info in infos]}
    (root / shards.MANIFEST_NAME).write_text(json.dumps(manifest))
    return writer.paths


def test_start_up_takes_counts_from_the_manifest_without_reading_records(
        tmp_path, records, monkeypatch):
    paths = _build_like_tree(tmp_path, records[1])

    def no_walk(path):
        raise AssertionError(f'start-up walked the records of {path}')
    monkeypatch.setattr(shards, 'check_shard_framing', no_walk)
    assert shards.record_counts(paths) == [2, 2]
    batch = next(iter(ip.make_training_dataset(_config(tmp_path / 'alpha/train/*.tfrecord'))))
    assert batch['image'].shape[0] == 2
    assert sum(1 for _ in ip.make_eval_dataset(_config(tmp_path / 'alpha/train/*'), 1)) == 4


@pytest.mark.parametrize('damage', ['truncate mid-record', 'drop last record', 'append'])
def test_shard_changed_since_the_manifest_is_named_at_start_up(tmp_path, records, damage):
    paths = _build_like_tree(tmp_path, records[1])
    data = paths[1].read_bytes()
    first_record_end = 16 + int.from_bytes(data[:8], 'little')
    changed = {'truncate mid-record': data[:-7], 'drop last record': data[:first_record_end],
               'append': data + data[:first_record_end]}[damage]
    paths[1].write_bytes(changed)
    config = _config(tmp_path / 'alpha/train/*.tfrecord')
    for start in (ip.make_training_dataset, lambda c: ip.make_eval_dataset(c, 2),
                  lambda c: list(shards.read_shards(paths))):
        with pytest.raises(shards.CorruptShardError, match=f'{paths[1].name}.*bytes on disk'):
            start(config)


def test_record_count_other_than_the_manifest_is_named_when_read(tmp_path, records):
    # A manifest from before num_bytes was recorded: the count check catches a shard cut at a
    # record boundary when the shard is read.
    paths = _build_like_tree(tmp_path, records[1])
    manifest = json.loads((tmp_path / shards.MANIFEST_NAME).read_text())
    for entry in manifest['shards']:
        del entry['num_bytes']
    (tmp_path / shards.MANIFEST_NAME).write_text(json.dumps(manifest))
    data = paths[0].read_bytes()
    first_record_end = 16 + int.from_bytes(data[:8], 'little')
    paths[0].write_bytes(data[:first_record_end])
    with pytest.raises(shards.CorruptShardError, match=f'{paths[0].name}: holds 1 records'):
        shards.verify_shards(paths)
    dataset = ip.make_eval_dataset(_config(tmp_path / 'alpha/train/*.tfrecord'), 4)
    with pytest.raises(tf.errors.OpError, match=f'{paths[0]}: holds 1 records'):
        list(dataset)


def _with_bad_jpeg(example):
    return dataclasses.replace(example, image_jpeg=b'\xff\xd8\xff\xe0' + b'\x00garbage' * 8)


def test_corrupt_jpeg_in_a_record_fails_decoding_in_python(records):
    record = tfrecord_schema.encode_example(_with_bad_jpeg(records[0][0]))
    with pytest.raises(ValueError, match='could not decode 68 JPEG bytes'):
        tfrecord_schema.decode_example(record)
    # Without decoding the image the rest of the record is still readable.
    assert tfrecord_schema.decode_example(record, decode_image=False)['frame'] == 0


def test_corrupt_jpeg_error_names_the_record(records):
    record = tfrecord_schema.encode_example(_with_bad_jpeg(records[0][0]))
    with pytest.raises(ValueError, match='shard-7.tfrecord'):
        tfrecord_schema.decode_example(record, source='shard-7.tfrecord record 3')


def test_corrupt_jpeg_in_a_shard_stops_the_training_pipeline(tmp_path, records):
    writer = shards.ShardWriter(tmp_path, 1)
    writer.write_shard(0, [records[1][0], tfrecord_schema.encode_example(
        _with_bad_jpeg(records[0][1])), *records[1][2:]])
    with pytest.raises(tf.errors.InvalidArgumentError, match='(?i)jpeg|image file format'):
        list(ip.make_training_dataset(_config(writer.paths[0], 4)).take(1))


def test_corrupt_jpeg_in_a_shard_error_names_the_shard(tmp_path, records):
    writer = shards.ShardWriter(tmp_path, 1)
    writer.write_shard(0, [records[1][0], tfrecord_schema.encode_example(
        _with_bad_jpeg(records[0][1])), *records[1][2:]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=writer.paths[0].name):
        list(ip.make_training_dataset(_config(writer.paths[0], 4)).take(1))


def _toy_example(image, **changes):
    camera = Camera(intrinsic_matrix=[[100, 0, 59.5], [0, 100, 44.5], [0, 0, 1]])
    world = np.random.default_rng(0).uniform(-300, 300, (3, 3)) + [0, 0, 4000]
    fields = dict(image=image, camera=camera, world_coords=world, joint_names=('a', 'b', 'c'),
                  box=[20, 10, 60, 70], dataset='toy', sequence='s', frame=3)
    fields.update(changes)
    return Pose3DExample(**fields)


def test_corrupt_or_missing_image_file_is_named_when_cropping(tmp_path):
    truncated = tmp_path / 'frame_000003.jpg'
    truncated.write_bytes(b'\xff\xd8\xff\xe0\x00\x10JFIF')
    with pytest.raises(ValueError, match=r"toy 's'.*frame 3.*could not decode image file .*"
                                         r"frame_000003\.jpg"):
        crop_example(_toy_example(str(truncated)), CropConfig(crop_size=32))
    with pytest.raises(FileNotFoundError, match='nothere.jpg does not exist'):
        crop_example(_toy_example(str(tmp_path / 'nothere.jpg')), CropConfig(crop_size=32))
    with pytest.raises(ValueError, match='could not decode the 5 image bytes'):
        crop_example(_toy_example(b'\x00\x01\x02\x03\x04'), CropConfig(crop_size=32))


# ----------------------------------------------------------------------------- NaN and shapes
def test_all_nan_example_is_kept_with_no_labels_and_contributes_no_loss(tmp_path, records):
    example = records[0][0]
    unlabelled = dataclasses.replace(example, world_coords=np.full_like(example.world_coords,
                                                                        np.nan))
    writer = shards.ShardWriter(tmp_path, 1)
    writer.write_shard(0, [tfrecord_schema.encode_example(unlabelled)] * 2)
    batch = next(iter(ip.make_training_dataset(_config(writer.paths[0]))))
    assert not batch['valid3d'].numpy().any() and not batch['valid2d'].numpy().any()
    assert np.all(batch['coords3d_cam'].numpy() == 0)  # the contract: 0 where not valid
    assert np.all(np.isfinite(batch['image'].numpy()))


def test_inf_coordinates_count_as_unlabelled(records):
    example = records[0][0]
    coords = example.world_coords.copy()
    coords[1, 2] = np.inf
    decoded = tfrecord_schema.decode_example(tfrecord_schema.encode_example(
        dataclasses.replace(example, world_coords=coords)), decode_image=False)
    assert not decoded['joint_valid'][1]
    np.testing.assert_array_equal(decoded['joint_valid'],
                                  np.all(np.isfinite(coords), axis=1))


@pytest.mark.parametrize('field, value, message', [
    ('intrinsic_matrix', [[np.nan, 0, 1], [0, 1, 1], [0, 0, 1]], 'intrinsic_matrix'),
    ('optical_center', [0, np.nan, 0], 'optical_center'),
    ('rot_world_to_cam', np.full((3, 3), np.nan), 'rot_world_to_cam')])
def test_nan_camera_parameters_are_refused_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        Camera(**{field: value})


def test_nan_box_is_refused_naming_the_example():
    image = np.zeros((90, 120, 3), np.uint8)
    with pytest.raises(ValueError, match=r"toy 's'.*frame 3.*field box"):
        crop_example(_toy_example(image, box=[np.nan, 10, 60, 70]), CropConfig(crop_size=32))


def test_wrong_joint_counts_are_refused():
    image = np.zeros((90, 120, 3), np.uint8)
    with pytest.raises(ValueError, match='world_coords has 3 joints but joint_names has 2'):
        _toy_example(image, joint_names=('a', 'b'))
    with pytest.raises(ValueError, match=r'coords2d must be \[3, 2\]'):
        _toy_example(image, coords2d=np.zeros((4, 2)))


def test_record_with_wrong_joint_count_names_the_feature(records):
    proto = tf.train.Example.FromString(records[1][0])
    del proto.features.feature['joints/valid'].int64_list.value[-1]
    with pytest.raises(ValueError, match=r"shard\.tfrecord: feature 'joints/valid' has 7 values, "
                                         r"expected 8"):
        tfrecord_schema.decode_example(proto.SerializeToString(), source='shard.tfrecord')
    proto = tf.train.Example.FromString(records[1][0])
    del proto.features.feature['joints/world_coords'].float_list.value[:3]
    with pytest.raises(ValueError, match="feature 'joints/world_coords' has 21 values"):
        tfrecord_schema.decode_example(proto.SerializeToString())


def test_record_joint_outside_the_union_is_named(records):
    with pytest.raises(KeyError, match=r"joints not in the given union_names: \['neck_h36m'\]"):
        tfrecord_schema.decode_example(records[1][0], union_names=JOINTS)


# --------------------------------------------------------------------- names that do not exist
def test_unknown_skeleton_and_dataset_names_list_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown skeleton 'h37m'; known: .*h36m"):
        joints.get_skeleton('h37m')
    with pytest.raises(KeyError, match="unknown skeleton 'h37m'"):
        joints.union_names('h37m')
    with pytest.raises(KeyError, match=r"unknown dataset 'h37m'.*h36m"):
        get_converter('h37m')


# ----------------------------------------------------------------- mismatched ACAE weights
def _write_acae(path, n_joints, n_latents, joint_names=None, **overrides):
    w_enc = np.full((n_latents, n_joints), 1.0 / n_joints)
    w_dec = np.full((n_joints, n_latents), 1.0 / n_latents)
    arrays = dict(W_enc=w_enc, W_dec=w_dec,
                  joint_names=np.array(joint_names or [f'c{i}' for i in range(n_joints)]),
                  latent_names=np.array([f'c_lat{i:02d}' for i in range(n_latents)]))
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


def test_acae_weights_with_mismatched_shapes_are_named(tmp_path):
    good = _write_acae(tmp_path / 'good.npz', 5, 2)
    assert acae_export.load_weights(good)['W_enc'].shape == (2, 5)
    bad = _write_acae(tmp_path / 'weights.npz', 5, 2, W_dec=np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match=r'weights\.npz: W_dec has shape \(4, 2\), expected '
                                         r'\(5, 2\)'):
        acae_export.load_weights(bad)
    bad = _write_acae(tmp_path / 'weights.npz', 5, 2,
                      W_enc=np.where(np.eye(2, 5) > 0, np.nan, 0.2))
    with pytest.raises(ValueError, match=r'weights\.npz: W_enc contains NaN/inf'):
        acae_export.load_weights(bad)


def test_acae_weights_for_other_joints_are_named(tmp_path):
    from metrabs.model.acae_matrices import AcaeMatrices
    path = _write_acae(tmp_path / 'weights.npz', 3, 2, joint_names=['a', 'b', 'c'])
    with pytest.raises(KeyError, match=r'weights\.npz'):
        AcaeMatrices.load(path, ['a', 'b', 'zz'], require_all=True)
