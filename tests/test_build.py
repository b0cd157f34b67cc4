"""posepile.build end to end on hand-made examples with tiny images."""
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from posepile import build, joints, shards
from posepile.camera import Camera
from posepile.example import Pose3DExample
from posepile.tfrecord_schema import SCHEMA_VERSION, decode_example

SKELETON = 'h36m'
IMAGE_SHAPE = (90, 120)


def make_examples():
    """Two tracks of 6 frames and one 2-frame validation track; returns (examples, survivors).

    Track A moves 60 mm per frame (kept: frames 0, 2, 4); track B moves 150 mm per frame (all
    kept); track C (validation) stands still (kept: its first frame).
    """
    skeleton = joints.get_skeleton(SKELETON)
    rng = np.random.default_rng(0)
    base = rng.uniform(-300, 300, (len(skeleton.names), 3)) + [0, 0, 4000]
    camera = Camera(intrinsic_matrix=[[100, 0, 59.5], [0, 100, 44.5], [0, 0, 1]])
    examples, survivors = [], set()
    for sequence, person, step, frames, split in (('walk', 0, 60.0, range(6), 'train'),
                                                  ('run', 1, 150.0, range(6), 'train'),
                                                  ('stand', 0, 0.0, range(10, 12), 'validation')):
        for f in frames:
            coords = base + [step * f, 0, 0]
            proj = camera.world_to_image(coords)
            image = np.full((*IMAGE_SHAPE, 3), 40 + 10 * f, np.uint8)
            lo = proj.min(0)
            examples.append(Pose3DExample(
                image=image, camera=camera, world_coords=coords, joint_names=skeleton.names,
                box=np.concatenate([lo, proj.max(0) - lo]), dataset='toy', sequence=sequence,
                person=person, camera_id='cam0', frame=f, split=split))
    survivors = {('walk', 0), ('walk', 2), ('walk', 4), ('stand', 10)} | {
        ('run', f) for f in range(6)}
    # The converter contract only fixes the order within a track: interleave tracks.
    order = np.random.default_rng(1).permutation(len(examples))
    return [examples[i] for i in order], survivors


CONFIG = build.BuildConfig(crop_size=32, num_shards=3, workers=1, skeleton=SKELETON)


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp('build')
    examples, survivors = make_examples()
    manifest = build.build_dataset(examples, out, CONFIG)
    return out, manifest, survivors


def read_all(out, manifest):
    paths = [out / s['file'] for s in manifest['shards']]
    return [decode_example(r, decode_image=False) for r in shards.read_shards(paths)]


def test_manifest_counts_and_files(built):
    out, manifest, survivors = built
    assert json.loads((out / build.MANIFEST_NAME).read_text()) == manifest
    assert manifest['schema_version'] == SCHEMA_VERSION and manifest['crop_size'] == 32
    toy = manifest['datasets']['toy']
    assert toy['before_dedup'] == {'train': 12, 'validation': 2}
    assert toy['after_dedup'] == {'train': 9, 'validation': 1}
    assert manifest['num_examples'] == 10
    # One shard set per (dataset, split); never more shards than the group has examples.
    expected_files = ([p.relative_to(out).as_posix() for p in shards.shard_paths(out / 'toy/train', 3)]
                      + [p.relative_to(out).as_posix()
                         for p in shards.shard_paths(out / 'toy/validation', 1)])
    assert [s['file'] for s in manifest['shards']] == expected_files
    assert [(s['dataset'], s['split']) for s in manifest['shards']] == (
        [('toy', 'train')] * 3 + [('toy', 'validation')])
    assert [s['num_examples'] for s in manifest['shards']][3] == 1
    assert sum(s['num_examples'] for s in manifest['shards'][:3]) == 9
    for s in manifest['shards']:
        assert shards.file_sha256(out / s['file']) == s['sha256']
        assert shards.check_shard_framing(out / s['file']) == s['num_examples']
    assert manifest['joint_sets'] == [{'dataset': 'toy', 'num_examples': 10,
                                       'joint_names': joints.union_names(SKELETON)}]
    assert not list(out.rglob('*.tmp'))


def test_records_are_the_deduplicated_examples(built):
    out, manifest, survivors = built
    records = read_all(out, manifest)
    assert sorted((r['sequence'], r['frame']) for r in records) == sorted(survivors)
    walk2 = next(r for r in records if (r['sequence'], r['frame']) == ('walk', 2))
    assert walk2['joint_names'] == joints.union_names(SKELETON)
    assert walk2['split'] == 'train' and walk2['camera_id'] == 'cam0'
    # World coordinates are stored unchanged (frame 2 of track A is the base pose + 120 mm in x).
    examples, _ = make_examples()
    source = next(e for e in examples if (e.sequence, e.frame) == ('walk', 2))
    np.testing.assert_allclose(walk2['world_coords'], source.world_coords, rtol=1e-6)


def test_resume_after_interruption_rebuilds_only_missing_shards(built, tmp_path):
    out, manifest, survivors = built
    copy = tmp_path / 'resume'
    shutil.copytree(out, copy)
    first, second = (copy / s['file'] for s in manifest['shards'][:2])
    # Simulate a kill: shard 0 never renamed (half-written .tmp), manifest not yet written.
    tmp = first.with_name(first.name + '.tmp')
    tmp.write_bytes(first.read_bytes()[:17])
    os.remove(first)
    os.remove(copy / build.MANIFEST_NAME)
    mtime_second = second.stat().st_mtime_ns

    examples, _ = make_examples()
    resumed = build.build_dataset(examples, copy, CONFIG)
    assert resumed == manifest
    assert second.stat().st_mtime_ns == mtime_second  # complete shards are not rewritten
    assert not tmp.exists()
    records = read_all(copy, resumed)
    assert sorted((r['sequence'], r['frame']) for r in records) == sorted(survivors)


def test_parallel_workers_write_identical_shards(built, tmp_path):
    out, manifest, _ = built
    examples, _ = make_examples()
    parallel = build.build_dataset(
        examples, tmp_path / 'par', build.BuildConfig(**{**vars(CONFIG), 'workers': 2}))
    assert parallel['shards'] == manifest['shards']


def test_dedup_warns_when_most_of_a_split_is_dropped(built, tmp_path):
    # The module build keeps 9 of 12 train and 1 of 2 validation examples: no warning.
    assert build.dedup_warnings(built[1]) == []
    # At 200 mm, track A (60 mm a frame) keeps frames 0 and 4 and track B (150 mm) keeps 0, 2
    # and 4: 5 of 12 train examples; validation keeps 1 of 2 (half: no warning).
    examples, _ = make_examples()
    manifest = build.build_dataset(examples, tmp_path / 'coarse', dataclasses.replace(
        CONFIG, dedup_threshold_mm=200.0))
    (line,) = build.dedup_warnings(manifest)
    assert line.startswith('warning: the 200 mm rule kept 5 of 12 toy train examples (42%)')
    assert '--dedup-threshold-mm=0' in line
    manifest = build.build_dataset(examples, tmp_path / 'all', dataclasses.replace(
        CONFIG, dedup_threshold_mm=0.0))
    assert manifest['datasets']['toy']['after_dedup'] == {'train': 12, 'validation': 2}
    assert build.dedup_warnings(manifest) == []


def test_rerun_with_other_settings_is_refused(built):
    out, _, _ = built
    examples, _ = make_examples()
    with pytest.raises(ValueError, match='crop_size'):
        build.build_dataset(examples, out, build.BuildConfig(
            crop_size=48, num_shards=3, skeleton=SKELETON))
    # Converter options decide which examples exist, so they are settings too.
    with pytest.raises(ValueError, match=r'converter_options'):
        build.build_dataset(examples, out, dataclasses.replace(
            CONFIG, converter_options={'persons_per_image': 2}))
    # A build recorded before options were recorded counts as built with none.
    recorded = json.loads((out / build.CONFIG_NAME).read_text())
    legacy = {k: v for k, v in recorded.items() if k != 'converter_options'}
    (out / build.CONFIG_NAME).write_text(json.dumps(legacy))
    build.build_dataset(examples, out, CONFIG)


def test_chunked_dedup_writes_the_same_shards(built, tmp_path):
    out, manifest, _ = built
    examples, _ = make_examples()
    # Chunks of 3 split every track; each track must then arrive in frame order (the contract).
    in_time_order = sorted(examples, key=lambda ex: ex.frame)
    chunked = build.build_dataset(in_time_order, tmp_path / 'chunked', CONFIG, dedup_chunk=3)
    whole = build.build_dataset(in_time_order, tmp_path / 'whole', CONFIG)
    # Same records in the same order (shards keep the input order, hence one input for both).
    assert [s['sha256'] for s in chunked['shards']] == [s['sha256'] for s in whole['shards']]
    assert chunked['datasets'] == whole['datasets'] == manifest['datasets']
    # A track going back in time across chunks cannot be deduplicated by streaming: refused.
    with pytest.raises(ValueError, match=r"track \('toy', '\w+', \d, 'cam0'\): frame \d+ comes after "
                                         r'frame \d+ of the same track'):
        build.build_dataset(in_time_order[::-1], tmp_path / 'reversed', CONFIG, dedup_chunk=3)


def test_shard_by_sequence_keeps_each_sequence_in_one_shard(tmp_path):
    examples, survivors = make_examples()
    manifest = build.build_dataset(examples, tmp_path / 'out', dataclasses.replace(
        CONFIG, shard_by='sequence'))
    shard_of_sequence = {}
    for shard in manifest['shards']:
        for record in shards.read_shards([tmp_path / 'out' / shard['file']]):
            sequence = decode_example(record, decode_image=False)['sequence']
            shard_of_sequence.setdefault(sequence, set()).add(shard['file'])
    assert {k: len(v) for k, v in shard_of_sequence.items()} == {'walk': 1, 'run': 1, 'stand': 1}
    assert manifest['num_examples'] == len(survivors)
    with pytest.raises(ValueError, match=r"shard_by must be one of \('example', 'sequence'\)"):
        build.BuildConfig(shard_by='person')


def test_unknown_joint_names_are_reported(tmp_path):
    examples, _ = make_examples()
    bad = examples[0]
    bad.joint_names = ('nosuchjoint',) + bad.joint_names[1:]
    with pytest.raises(KeyError, match='nosuchjoint'):
        build.build_dataset(examples, tmp_path, CONFIG)


def test_cli_arguments_and_unknown_dataset(tmp_path, capsys):
    args = build.parse_args(['--dataset=toy', f'--root={tmp_path}', '--out=o', '--crop-size=64',
                             '--num-shards=5', '--workers=2'])
    assert (args.crop_size, args.num_shards, args.workers) == (64, 5, 2)
    assert build.main(['--dataset=no_such_dataset', f'--root={tmp_path}',
                       f'--out={tmp_path}/o']) == 2
    assert "unknown dataset 'no_such_dataset'" in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_dedup_compares_shared_joints_when_a_track_changes_joint_set():
    union = joints.union_names(SKELETON)
    a, b, c = union[:3]
    camera = Camera(intrinsic_matrix=[[100, 0, 59.5], [0, 100, 44.5], [0, 0, 1]])

    def example(names, coords, frame, sequence='s'):
        return Pose3DExample(image=np.zeros((*IMAGE_SHAPE, 3), np.uint8), camera=camera,
                             world_coords=coords, joint_names=names, box=[0, 0, 10, 10],
                             dataset='toy', sequence=sequence, frame=frame)

    examples = [
        example((a, b), [[0, 0, 4000], [0, 0, 4000]], 0),
        example((b, c), [[50, 0, 4000], [900, 0, 4000]], 1),   # shares b only: moved 50 -> drop
        example((b, c), [[150, 0, 4000], [0, 0, 4000]], 2),    # b moved 150 vs frame 0 -> keep
        example((c,), [[0, 0, 4000]], 3),                      # c vs frame 2: 0 -> drop
        example((a, b), [[0, 0, 4000], [0, 0, 4000]], 0, 'other'),  # another track: keep
    ]
    names = [e.joint_names for e in examples]
    assert build._dedup(examples, names, 100.0).tolist() == [True, False, True, False, True]


def test_body_model_dir_is_refused_for_converters_without_a_body_model(tmp_path, capsys):
    assert build.main(['--dataset=h36m', f'--root={tmp_path}', f'--out={tmp_path / "out"}',
                       f'--body-model-dir={tmp_path}']) == 2
    assert 'h36m converter uses no body model' in capsys.readouterr().err
