"""posepile.build_all on real-format fixtures: a roots file -> one TFRecord tree, in parallel,
resumable, failures isolated and reported by name, with the per-dataset summary."""
import json
import os
import pathlib

import pytest

from posepile import build_all, mix, shards
from posepile.dataset_writers import coco as coco_writer
from posepile.dataset_writers import imar as imar_writer


def _file_states(directory):
    """{relative path: (size, mtime_ns)} of every file under `directory`."""
    directory = pathlib.Path(directory)
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob('*')) if p.is_file()}


def _records_in(out_dir):
    """Records per split of a build, counted from the shard files themselves."""
    counts = {}
    for path in sorted(pathlib.Path(out_dir).glob('*/*/*.tfrecord')):
        split = path.parent.name
        counts[split] = counts.get(split, 0) + shards.check_shard_framing(path)
    return counts


@pytest.fixture(scope='module')
def raw(tmp_path_factory):
    base = tmp_path_factory.mktemp('raw')
    imar_writer.write(base / 'fit3d', 'fit3d', with_test_subject=False)
    coco_writer.write(base / 'coco')
    # HumanSC3D with a truncated joints file: its converter fails inside posepile.build.
    imar_writer.write(base / 'humansc3d', 'humansc3d', with_test_subject=False)
    broken = next((base / 'humansc3d').glob('train/*/joints3d_25/*.json'))
    broken.write_text(broken.read_text()[:40])
    roots = {
        'description': 'test roots',
        'datasets': {
            '_comment': 'ignored',
            'fit3d': 'fit3d',
            'coco': {'root': 'coco', 'options': {'min_keypoints': 6}, 'num_shards': 1},
            'humansc3d': str(base / 'humansc3d'),
            'h36m': 'no_such_directory',
            'mpii': {'root': 'coco', 'options': {'no_such_option': 1}},
        }}
    (base / 'roots.json').write_text(json.dumps(roots))
    return base


ARGS = ['--crop-size=32', '--num-shards=2', '--jobs=2', '--workers=1', '--no-progress']


@pytest.fixture(scope='module')
def first_run(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp('tfrecords')
    code = build_all.main([f'--roots={raw / "roots.json"}', f'--out={out}', *ARGS])
    return out, code, json.loads((out / build_all.SUMMARY_NAME).read_text())


def test_builds_what_it_can_and_names_the_failures(first_run, capsys):
    out, code, summary = first_run
    assert code == 1
    rows = {r['name']: r for r in summary['rows']}
    assert [r['name'] for r in summary['rows']] == ['fit3d', 'coco', 'humansc3d', 'h36m', 'mpii']
    assert {n: r['status'] for n, r in rows.items()} == {
        'fit3d': 'built', 'coco': 'built', 'humansc3d': 'FAILED', 'h36m': 'FAILED',
        'mpii': 'FAILED'}
    failed = summary['failed']
    assert 'no_such_directory is not a directory' in failed['h36m']
    assert 'no_such_option' in failed['mpii'] and 'fov_deg' in failed['mpii']
    # The converter's own error, quoted from the dataset's log.
    assert 'humansc3d.log' in failed['humansc3d']
    assert 'joints3d_25/001.json: not valid JSON' in failed['humansc3d']
    assert 'Traceback' not in failed['humansc3d']  # a format error is a message, not a crash
    # Failed datasets leave no manifest behind (the mix would refuse them by name).
    assert not (out / 'humansc3d' / 'manifest.json').exists()
    assert not (out / 'h36m').exists()


def test_summary_counts_match_the_fixture_and_the_shards(first_run):
    out, _, summary = first_run
    rows = {r['name']: r for r in summary['rows']}
    # Fit3D fixture: 2 subjects x 2 cameras x 4 joint rows; each pose appears twice in a row,
    # so the 100 mm rule keeps 2 of 4; the last training subject is the validation one.
    fit3d = rows['fit3d']
    assert (fit3d['examples'], fit3d['converter_skips'], fit3d['after_dedup']) == (16, 0, 8)
    assert fit3d['after_dedup_by_split'] == _records_in(out / 'fit3d') == {
        'train': 4, 'validation': 4}
    # COCO fixture: one usable person per image (2 train, 1 val), 3 skips per image.
    coco = rows['coco']
    assert (coco['examples'], coco['converter_skips'], coco['after_dedup']) == (3, 9, 3)
    assert coco['after_dedup_by_split'] == _records_in(out / 'coco') == {
        'train': 2, 'validation': 1}
    assert coco['shards'] == 2  # one per split (num_shards 1 from the roots file)
    table = build_all.format_summary(summary['rows'])
    assert 'fit3d' in table and 'FAILED' in table
    total = table.splitlines()[-1].split()
    assert total[:4] == ['total', '19', '9', '11']


def test_output_is_what_the_mix_reads(first_run, tmp_path):
    out, _, _ = first_run
    mix_file = tmp_path / 'mix.json'
    mix_file.write_text(json.dumps({
        'union': 'real', 'tfrecord_root': str(out), 'batch_size_3d': 3, 'batch_size_2d': 1,
        'datasets': [{'name': 'fit3d', 'kind': '3d', 'examples_per_batch': 3},
                     {'name': 'coco', 'kind': '2d', 'examples_per_batch': 1}]}))
    config, table = mix.make_input_config(mix.load_mix(mix_file))
    assert [r['examples'] for r in table] == [4, 2]


def test_rerun_skips_finished_datasets_and_resumes_the_failed_one(first_run, raw, tmp_path):
    out, _, _ = first_run
    before = {name: _file_states(out / name) for name in ('fit3d', 'coco')}
    # Repair HumanSC3D (as a user would after re-downloading), drop the hopeless entries.
    imar_writer.write(raw / 'humansc3d', 'humansc3d', with_test_subject=False)
    roots = json.loads((raw / 'roots.json').read_text())
    for name in ('h36m', 'mpii'):
        del roots['datasets'][name]
    roots_file = raw / 'roots_fixed.json'
    roots_file.write_text(json.dumps(roots))
    assert build_all.main([f'--roots={roots_file}', f'--out={out}', *ARGS]) == 0
    summary = json.loads((out / build_all.SUMMARY_NAME).read_text())
    assert {r['name']: r['status'] for r in summary['rows']} == {
        'fit3d': 'up to date', 'coco': 'up to date', 'humansc3d': 'built'}
    # The finished datasets were not touched (not even rewritten with the same bytes).
    for name, states in before.items():
        assert _file_states(out / name) == states
    assert summary['rows'][2]['after_dedup'] == 8  # as Fit3D: one person, same layout


def test_other_settings_or_another_root_are_refused_not_overwritten(first_run, raw, tmp_path):
    out, _, _ = first_run
    before = _file_states(out / 'fit3d')
    entry = build_all.RootEntry('fit3d', 'fit3d', raw / 'fit3d')
    settings = {**build_all.DEFAULT_SETTINGS, 'crop_size': 32, 'num_shards': 2}
    other_size = build_all.build_one(entry, out, {**settings, 'crop_size': 48}, workers=1)
    assert other_size.status == 'FAILED'
    assert 'holds a build with other settings' in other_size.error
    assert 'crop_size' in other_size.error
    moved = build_all.build_one(
        build_all.RootEntry('fit3d', 'fit3d', raw / 'coco'), out, settings, workers=1)
    assert moved.status == 'FAILED' and 'was built from' in moved.error
    assert _file_states(out / 'fit3d') == before
    assert build_all.build_one(entry, out, settings, workers=1).status == 'up to date'


def test_roots_file_errors_name_the_field(tmp_path):
    with pytest.raises(KeyError, match=r'roots.json: unknown fields \[.datasetz.\]'):
        build_all.parse_roots({'datasetz': {}}, tmp_path, 'roots.json')
    with pytest.raises(KeyError, match=r'datasets.h36m: missing field "root"'):
        build_all.parse_roots({'datasets': {'h36m': {'converter': 'h36m'}}}, tmp_path, 'r.json')
    with pytest.raises(KeyError, match=r'datasets.h36m: unknown fields \[.opts.\]'):
        build_all.parse_roots({'datasets': {'h36m': {'root': '.', 'opts': {}}}}, tmp_path, 'r')
    with pytest.raises(ValueError, match='num_shards'):
        build_all.parse_roots({'datasets': {'h36m': {'root': '.', 'num_shards': 0}}}, tmp_path)
    with pytest.raises(ValueError, match='directory name'):
        build_all.parse_roots({'datasets': {'../up': '.'}}, tmp_path)
    entries = build_all.parse_roots(
        {'body_model_dir': 'models', 'datasets': {
            'surreal': 'raw/surreal', 'rich': {'root': '/abs/rich', 'body_model_dir': '/bm'}}},
        tmp_path)
    assert entries[0] == build_all.RootEntry('surreal', 'surreal', tmp_path / 'raw/surreal',
                                             {}, None, str(tmp_path / 'models'))
    assert entries[1].root == pathlib.Path('/abs/rich') and entries[1].body_model_dir == '/bm'


def test_example_roots_file_names_only_registered_converters():
    from posepile import datasets
    path = pathlib.Path(__file__).parent.parent / 'configs' / 'roots_example.json'
    entries = build_all.load_roots(path)
    known = set(datasets.available())
    assert {e.converter for e in entries} <= known
    paper = json.loads((path.parent / 'mix_paper28.json').read_text())
    # Every dataset of the paper's mix has a line in the example (its tfrecords directory).
    assert {d['tfrecords'] for d in paper['datasets']} <= {e.name for e in entries}


def test_parallelism_spreads_the_cores():
    assert build_all.plan_parallelism(30, None, None, cores=64) == (30, 2)
    assert build_all.plan_parallelism(3, None, None, cores=2) == (2, 1)
    assert build_all.plan_parallelism(1, None, None, cores=16) == (1, 16)
    assert build_all.plan_parallelism(5, 2, None, cores=16) == (2, 8)
    assert build_all.plan_parallelism(5, None, 4, cores=16) == (5, 4)
    assert os.cpu_count() >= 1
