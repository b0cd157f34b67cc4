"""posepile.mix: mix file -> checked builds -> InputConfig JSON, per-batch counts by hand."""
import json
import pathlib

import pytest

from posepile import joints, mix
from posepile.synthetic import world

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / 'configs'


def write_build(directory, counts, skeleton, names=None, num_shards=2):
    """A build directory as posepile.build leaves it: <dataset>/<split>/ shard files +
    manifest.json (one dataset, named like the directory)."""
    directory.mkdir(parents=True)
    names = list(names if names is not None else joints.union_names(skeleton))
    shards = []
    for split in counts:
        for s in range(num_shards):
            file = f'{directory.name}/{split}/examples-{s:05d}-of-{num_shards:05d}.tfrecord'
            (directory / file).parent.mkdir(parents=True, exist_ok=True)
            (directory / file).write_bytes(b'')
            shards.append({'file': file, 'dataset': directory.name, 'split': split,
                           'num_examples': 0, 'sha256': ''})
    manifest = {'schema_version': 1, 'crop_size': 256, 'config': {}, 'skeleton': skeleton,
                'datasets': {directory.name: {'before_dedup': counts, 'after_dedup': counts}},
                'joint_sets': [{'dataset': directory.name, 'joint_names': names,
                                'num_examples': sum(counts.values())}],
                'num_examples': sum(counts.values()), 'shards': shards}
    (directory / 'manifest.json').write_text(json.dumps(manifest))


@pytest.fixture(scope='module')
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp('tfrecords')
    write_build(root / 'h36m', {'train': 3000}, 'h36m')
    write_build(root / 'aspset', {'train': 1000}, 'aspset')
    write_build(root / 'jta', {'train': 500, 'test': 20}, 'jta')
    write_build(root / 'coco', {'train': 900}, 'coco2d')
    write_build(root / 'mpii', {'train': 100, 'validation': 30}, 'mpii')
    return root


def mix_dict(**overrides):
    data = {'union': 'real', 'batch_size_3d': 10, 'batch_size_2d': 6,
            'datasets': [
                {'name': 'h36m', 'kind': '3d', 'examples_per_batch': 'auto'},
                {'name': 'aspset', 'kind': '3d', 'examples_per_batch': 'auto'},
                {'name': 'jta', 'kind': '3d', 'examples_per_batch': 2},
                {'name': 'coco', 'kind': '2d', 'examples_per_batch': 'auto'},
                {'name': 'mpii', 'tfrecords': 'mpii', 'kind': '2d',
                 'examples_per_batch': 'auto'}]}
    data.update(overrides)
    return data


def test_allocate_by_hand():
    # 8 rows left for two auto datasets: 1 each, then 6 split 3:1 = 4.5 / 1.5 -> 5 / 1
    # (equal remainders: the first wins).
    assert mix.allocate(10, [None, None, 2], [300, 100, 0]) == [6, 2, 2]
    # sqrt: weights 30 and 10; 8 split 3:1 = 6 / 2.
    assert mix.allocate(10, [None, None], [900, 100], 'sqrt') == [7, 3]
    # proportional 7 rows over 1:1:1 after 1 each -> 4 rows = 1.33 each -> 2, 1, 1 (+1 each).
    assert mix.allocate(7, [None, None, None], [5, 5, 5]) == [3, 2, 2]
    assert mix.allocate(5, [2, 3], [0, 0]) == [2, 3]
    with pytest.raises(ValueError, match='sum to 4, expected 5'):
        mix.allocate(5, [2, 2], [0, 0], where='m.json')
    with pytest.raises(ValueError, match='leaving 1 for 2 "auto" datasets'):
        mix.allocate(5, [4, None, None], [1, 1, 1])


def test_cli_writes_input_config(builds, tmp_path, capsys):
    config_path = tmp_path / 'mix.json'
    config_path.write_text(json.dumps(mix_dict(tfrecord_root=str(builds))))
    out = tmp_path / 'input_config.json'
    assert mix.main([f'--config={config_path}', f'--out={out}']) == 0
    printed = capsys.readouterr()
    assert 'h36m' in printed.out and 'total' in printed.out
    data = json.loads(out.read_text())
    # 3D: jta fixed 2; 8 left: 1 + 1, then 6 split 3000:1000 = 4.5 / 1.5 -> 5 / 1.
    assert [(p['name'], p['examples_per_batch']) for p in data['parts_3d']] == \
        [('h36m', 6), ('aspset', 2), ('jta', 2)]
    # 2D: 6 rows: 1 + 1, then 4 split 900:100 = 3.6 / 0.4 -> 4 / 0.
    assert [(p['name'], p['examples_per_batch']) for p in data['parts_2d']] == \
        [('coco', 5), ('mpii', 1)]
    assert data['parts_3d'][0]['shard_patterns'] == sorted(
        str(p.resolve()) for p in (builds / 'h36m/h36m/train').glob('*.tfrecord'))
    # jta's build also holds test shards: training reads only its train shards.
    assert all('/jta/train/' in p for p in data['parts_3d'][2]['shard_patterns'])
    # Every union joint that a 3D format labels: not the 16 joints each of the 2D-only formats
    # MPII, JRDB-Pose and PoseTrack.
    two_d_only = ('_mpii', '_jrdb', '_posetrack')
    expected = [n for n in joints.get_union('real').names if not n.endswith(two_d_only)]
    assert data['joint_names'] == expected and len(expected) == len(
        joints.get_union('real').names) - 48

    from metrabs.data.input_pipeline import InputConfig
    config = InputConfig.from_dict(data, source=str(out))
    assert config.batch_size == 16
    assert [p.name for p in config.parts] == ['h36m', 'aspset', 'jta', 'coco', 'mpii']
    assert len(config.parts[0].shard_paths()) == 2


def test_relative_root_and_other_splits(builds, tmp_path):
    config_path = builds / 'configs' / 'mix.json'
    config_path.parent.mkdir(exist_ok=True)
    config_path.write_text(json.dumps(mix_dict(tfrecord_root='..')))
    loaded = mix.load_mix(config_path)
    assert pathlib.Path(loaded.tfrecord_root).resolve() == builds.resolve()
    # Only jta has test shards; a test-split config of the others fails naming what they hold.
    with pytest.raises(ValueError, match=r"no 'test' shards of dataset 'h36m' .*'h36m/train'"):
        mix.make_input_config(loaded, split='test')
    only_jta = mix.parse_mix(mix_dict(batch_size_2d=0, datasets=[
        {'name': 'jta', 'kind': '3d', 'examples_per_batch': 10}]), 'm.json')
    config, table = mix.make_input_config(only_jta, builds, split='test')
    assert all('/jta/test/' in p for p in config['parts_3d'][0]['shard_patterns'])
    assert table[0]['examples'] == 20
    _, table = mix.make_input_config(loaded)
    assert [row['share'] for row in table] == \
        pytest.approx([6 / 16, 2 / 16, 2 / 16, 5 / 16, 1 / 16])


def test_bad_inputs(builds, tmp_path):
    def run(data, root=builds):
        return mix.make_input_config(mix.parse_mix(data, 'm.json'), root)

    with pytest.raises(FileNotFoundError, match=r'missing file .*nope/manifest\.json'):
        run(mix_dict(datasets=[{'name': 'nope', 'kind': '3d', 'examples_per_batch': 10}]))
    with pytest.raises(ValueError, match=r"'coco' is listed as '3d' but .* 2D skeleton 'coco2d'"):
        run(mix_dict(datasets=[{'name': 'coco', 'kind': '3d', 'examples_per_batch': 10}]))
    with pytest.raises(KeyError, match=r"not in the 'synthetic' union"):
        run(mix_dict(union='synthetic',
                     datasets=[{'name': 'h36m', 'kind': '3d', 'examples_per_batch': 10}]))
    with pytest.raises(ValueError, match=r'3d datasets.*sum to 3, expected 10'):
        run(mix_dict(datasets=[{'name': 'h36m', 'kind': '3d', 'examples_per_batch': 3}]))
    with pytest.raises(ValueError, match=r'datasets\[0\]: field "examples_per_batch" is 0'):
        mix.parse_mix(mix_dict(datasets=[{'name': 'h36m', 'kind': '3d',
                                          'examples_per_batch': 0}]), 'm.json')
    with pytest.raises(KeyError, match=r"m.json: unknown mix fields \['batchsize'\]"):
        mix.parse_mix(mix_dict(batchsize=3), 'm.json')
    broken = tmp_path / 'broken'
    write_build(broken / 'h36m', {'train': 5}, 'h36m')
    (broken / 'h36m' / 'h36m/train/examples-00001-of-00002.tfrecord').unlink()
    with pytest.raises(FileNotFoundError, match=r"manifest\.json: lists shard "
                                                r"'h36m/train/examples-00001-of-00002\.tfrecord'"):
        run(mix_dict(datasets=[{'name': 'h36m', 'kind': '3d', 'examples_per_batch': 10}]),
            broken)


def test_shipped_configs():
    paper = mix.load_mix(CONFIGS / 'mix_paper28.json')
    kinds = [e.kind for e in paper.datasets]
    assert kinds.count('3d') == 28 and kinds.count('2d') == 4
    assert paper.batch_size_3d + paper.batch_size_2d == 128
    # The released training code's per-batch rows (hand-copied): they fill the 3D batch exactly.
    counts = {e.name: e.examples_per_batch for e in paper.datasets}
    assert sum(n for e, n in zip(paper.datasets, counts.values()) if e.kind == '3d') == 96
    assert (counts['panoptic'], counts['h36m'], counts['muco'], counts['human4d']) == (7, 4, 6, 1)
    # Released code, organize_data_stream2d ('huge2d'): mpii 8, coco 8, jrdb 8, posetrack 8.
    assert {e.name: counts[e.name] for e in paper.datasets if e.kind == '2d'} == {
        'mpii': 8, 'coco': 8, 'jrdb': 8, 'posetrack': 8}
    assert paper.batch_size_2d == 32
    from posepile import datasets, joints
    for entry in paper.datasets:  # a converter each, whose skeleton is of the entry's kind
        skeleton = datasets.get_converter(
            {'muco': 'muco_composite'}.get(entry.tfrecords, entry.tfrecords)).SKELETON
        assert joints.get_format(skeleton).is_2d == (entry.kind == '2d'), entry.name
    synthetic = mix.load_mix(CONFIGS / 'mix_synthetic.json')
    assert [e.name for e in synthetic.datasets] == [d.name for d in world.DATASETS]
    assert synthetic.union == 'synthetic'


def test_per_dataset_background_prob_and_training_splits(builds):
    data = mix_dict(datasets=[
        {'name': 'h36m', 'kind': '3d', 'examples_per_batch': 'auto', 'background_prob': 0.2},
        {'name': 'aspset', 'kind': '3d', 'examples_per_batch': 'auto'},
        {'name': 'mpii', 'kind': '2d', 'examples_per_batch': 6,
         'train_splits': ['train', 'validation']}],
        batch_size_3d=10, background_dir='/photos')
    config, table = mix.make_input_config(mix.parse_mix(data, 'm.json'), builds)
    assert config['parts_3d'][0]['background_prob'] == 0.2
    assert 'background_prob' not in config['parts_3d'][1]
    assert config['background_dir'] == '/photos'
    # The 2D dataset trains on its train and validation shards (2 + 2), counted together.
    patterns = config['parts_2d'][0]['shard_patterns']
    assert len(patterns) == 4 and sum('/validation/' in p for p in patterns) == 2
    assert table[-1]['examples'] == 130
    validation, _ = mix.make_input_config(
        mix.parse_mix({**data, 'datasets': data['datasets'][2:]}, 'm.json'), builds,
        split='validation')
    assert all('/validation/' in p for p in validation['parts_2d'][0]['shard_patterns'])
    for bad, message in (({'background_prob': 2}, 'background_prob'),
                         ({'train_splits': ['dev']}, 'train_splits')):
        entry = {'name': 'h36m', 'kind': '3d', 'examples_per_batch': 10, **bad}
        with pytest.raises(ValueError, match=message):
            mix.parse_mix(mix_dict(datasets=[entry]), 'm.json')


def test_multi_format_build_checks_each_dataset_by_its_joints(tmp_path):
    # A synthetic-world build holds 3D datasets and the 2D-only synwild under one skeleton.
    root = tmp_path / 'synthetic'
    write_build(root, {'train': 50}, 'synmocap', names=joints.union_names('syn2d'))
    data = {'union': 'synthetic', 'batch_size_3d': 0, 'batch_size_2d': 4, 'datasets': [
        {'name': 'synthetic', 'tfrecords': 'synthetic', 'kind': '2d', 'examples_per_batch': 4}]}
    config, _ = mix.make_input_config(mix.parse_mix(data, 'm.json'), tmp_path)
    assert config['parts_2d'][0]['examples_per_batch'] == 4
    assert not any(n.endswith('_syn2d') for n in config['joint_names'])
    data['datasets'][0]['kind'] = '3d'
    data['batch_size_3d'], data['batch_size_2d'] = 4, 0
    with pytest.raises(ValueError, match="listed as '3d' but .* 2D skeleton 'syn2d'"):
        mix.make_input_config(mix.parse_mix(data, 'm.json'), tmp_path)
