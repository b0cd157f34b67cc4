"""The rehearsal (python -m rehearsal) at its CI size: every dataset of the paper's mix and the
four benchmarks written in their real formats, the real commands run on them end to end, and the
wiring checks stopping the run, by name, on each planted error.

One run of the whole pipeline (a few minutes) is shared by the tests; the planted errors reuse its
outputs (copies of the small files) and run only the stage whose check must fire.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from metrabs.pseudo_gt import RELEASED_DATASETS
from posepile import joints, shards
from posepile.dataset_writers import h36m, mpi_inf_3dhp_test, mupots, tdpw
from rehearsal import checks, datasets, paper_configs, sizes, stages

REPO = pathlib.Path(__file__).resolve().parents[1]
PAPER_MIX = json.loads((REPO / 'configs' / 'mix_paper28.json').read_text())
CI = sizes.SIZES['ci']
# A run at load ~8 on 2 cores takes ~8 minutes; the default per-test timeout is 15.
pytestmark = pytest.mark.timeout(2400)


def rehearsal(out, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    return subprocess.run([sys.executable, '-m', 'rehearsal', f'--out={out}', '--size=ci',
                           *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=2400)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp('rehearsal')
    done = rehearsal(out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return out, json.loads((out / 'summary.json').read_text()), done.stdout


def test_every_dataset_of_the_mix_runs_through_every_stage(run):
    out, summary, stdout = run
    rows = {r['dataset']: r for r in summary['datasets']}
    assert sorted(rows) == sorted(d['tfrecords'] for d in PAPER_MIX['datasets'])
    assert len([d for d in PAPER_MIX['datasets'] if d['kind'] == '3d']) == 28
    input_config = json.loads((out / 'input_train.json').read_text())
    parts = {p['name']: p for p in input_config['parts_3d'] + input_config['parts_2d']}
    for entry in PAPER_MIX['datasets']:
        row = rows[entry['tfrecords']]
        assert row['kind'] == entry['kind']
        # Records in the training shards, counted from the files themselves.
        records = sum(shards.check_shard_framing(p) for p in parts[entry['name']]['shard_patterns'])
        assert row['train_after_dedup'] == records > 0
        assert row['converted'] >= row['train_after_dedup']
        assert row['rows_per_batch'] == parts[entry['name']]['examples_per_batch'] == 1
        assert row['drawn_in_training'] == CI.train_steps
        assert row['drawn_in_finetuning'] == CI.finetune_steps
        # Pseudo-GT: every example of the released run's splits of H36M and BML-MoVi, once.
        manifest = json.loads((out / 'tfrecords' / entry['tfrecords'] / 'manifest.json')
                              .read_text())['datasets'].get(entry['tfrecords'], {})
        splits = RELEASED_DATASETS.get(entry['tfrecords'], ())
        expected = sum(manifest['after_dedup'].get(split, 0) for split in splits) or None
        assert row['pseudo_gt'] == expected, entry['name']
    assert sum(r['rows_per_batch'] for r in rows.values()) == CI.batch_size == 32
    assert rows['h36m']['pseudo_gt'] > rows['h36m']['train_after_dedup']  # test split too
    assert '| **total** (32) |' in stdout and 'wrote' in stdout


def test_the_paper_configs_run_with_cpu_overrides_only(run):
    out, summary, _ = run
    allowed = {'model.backbone', 'model.backbone_weights', 'model.proc_side',
               'global_batch_size', 'require_backbone_weights', 'acae_weights'}
    for stage, changes in summary['overrides'].items():
        for field, old, new in changes:
            step_field = field.endswith(('_steps', '_step', '_every'))
            assert field in allowed or step_field, (stage, field, old, new)
    train = json.loads((out / 'configs' / 'train.json').read_text())
    paper = json.loads(paper_configs.TRAIN.read_text())
    assert train['model']['dtype_policy'] == paper['model']['dtype_policy'] == 'mixed_float16'
    assert train['model']['ghost_bn_group_size'] == paper['model']['ghost_bn_group_size'] == 16
    assert train['lr_schedule'] == 'reference'
    assert train['training_steps'] == CI.train_steps
    # The BN inference phase keeps its share of the run: 1000 of 400k -> at least one step.
    assert train['bn_inference_steps'] == max(1, round(1000 * CI.train_steps / 400_000))
    # The fine-tuning starts from the step before the BN inference phase, as released.
    before_bn = CI.train_steps - train['bn_inference_steps']
    state = json.loads((out / 'state.json').read_text())['stages']
    assert state['train']['finetune_init'] == str(out / 'train' / 'checkpoints' /
                                                  f'ckpt-{before_bn}')


def test_benchmarks_run_on_their_real_formats(run):
    out, summary, _ = run
    benches = {b['benchmark']: b for b in summary['benchmarks']}
    # Ground-truth poses of each protocol, counted from what the writers wrote: H36M keeps
    # frames 0, 64, ... of each file; 3DPW and 3DHP their valid frames; MuPoTS every annotated
    # person (the second person of each sequence is unannotated in frame 1).
    h36m_files = sum(len(v) for v in h36m.TEST_STEMS.values())
    expected = {
        'h36m': h36m_files * len(range(0, h36m.TEST_N_FRAMES, 64)),
        'pw3d': len(tdpw.TEST_SEQUENCES) * int(np.sum(tdpw.TEST_VALID)),
        'mpi_inf_3dhp': len(mpi_inf_3dhp_test.SEQUENCES) * int(mpi_inf_3dhp_test.VALID.sum()),
        'mupots': len(mupots.SEQUENCES) * int(np.sum(mupots.TEST_VALID)),
    }
    assert {n: b['gt_poses'] for n, b in benches.items()} == expected
    for name, bench in benches.items():
        assert bench['evaluated'] == bench['gt_poses'], name
        assert all(np.isfinite(v) for v in bench['numbers'].values()), name
        assert json.loads((out / 'eval' / f'{name}.json').read_text())['benchmark'] == name
    model_joints = stages.model_joint_names(out / 'model')
    assert set(joints.union_names('h36m_17')) <= set(model_joints)


def test_stage_times_are_recorded(run):
    out, summary, _ = run
    assert [t['stage'] for t in summary['times']] == list(stages.STAGES)
    assert all(t['seconds'] > 0 and len(t['load']) == 2 for t in summary['times'])
    assert '| stage | seconds |' in (out / 'summary.md').read_text()


# ------------------------------------------------------------------------------ planted errors
def partial_copy(out, dest, *parts):
    """A rehearsal directory holding copies of OUT's state and of the given sub-paths."""
    dest.mkdir()
    for name in ('state.json', 'roots.json', 'input_train.json', *parts):
        source = out / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, dest / name)
    return dest


def test_planted_joint_outside_the_union_is_named(run, tmp_path):
    out = run[0]
    copy = partial_copy(out, tmp_path / 'copy', 'tfrecords')
    manifest_path = copy / 'tfrecords' / 'tdoh' / 'manifest.json'
    manifest = json.loads(manifest_path.read_text())
    # As if the 3DOH50K converter named its neck joint by a name no skeleton registers.
    names = manifest['joint_sets'][0]['joint_names']
    names[names.index('neck_3doh')] = 'throat_3doh'
    manifest_path.write_text(json.dumps(manifest))
    done = rehearsal(copy, '--stages=mix')
    assert done.returncode == 2, done.stdout + done.stderr
    assert 'WIRING ERROR' in done.stderr and 'missing from the \'real\' joint union' in done.stderr
    assert 'tdoh (converter posepile/datasets/tdoh.py' in done.stderr
    assert 'throat_3doh' in done.stderr


def test_planted_dataset_missing_from_the_build_is_named(run, tmp_path):
    out = run[0]
    copy = partial_copy(out, tmp_path / 'copy', 'tfrecords')
    # The user's roots file lacks GPA, so nothing built it.
    roots = json.loads((copy / 'roots.json').read_text())
    del roots['datasets']['gpa']
    (copy / 'roots.json').write_text(json.dumps(roots))
    shutil.rmtree(copy / 'tfrecords' / 'gpa')
    done = rehearsal(copy, '--stages=mix')
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'gpa': no build" in done.stderr and 'the roots file has no entry of that name' \
        in done.stderr


def test_mix_checks_name_every_mismatch(run, tmp_path):
    out = run[0]
    tree = out / 'tfrecords'
    roots = list(json.loads((out / 'roots.json').read_text())['datasets'])
    mix = stages.scaled_mix(CI, tree)
    # A mix row whose dataset name is not the one inside its build, and a built dataset that
    # no row uses.
    mix['datasets'][0] = dict(mix['datasets'][0], dataset='surreal_typo')
    mix['datasets'] = [d for d in mix['datasets'] if d['name'] != 'ikea']
    path = tmp_path / 'mix.json'
    path.write_text(json.dumps(mix))
    with pytest.raises(checks.WiringError) as error:
        checks.mix_finds_datasets(path, tree, roots)
    message = str(error.value)
    assert "build 'surreal' holds datasets ['surreal'], not 'surreal_typo'" in message
    assert "built but in no row of the mix: ['ikea']" in message


def test_planted_model_outputs_that_miss_dataset_joints(run):
    out = run[0]
    state = json.loads((out / 'state.json').read_text())['stages']['mix']
    tree = out / 'tfrecords'
    manifests = {n: checks.read_manifest(tree, b) for n, b in state['builds'].items()}
    outputs = json.loads((out / 'input_train.json').read_text())['joint_names']
    checks.outputs_cover_datasets(outputs, manifests, state['kinds'])  # the real run: fine
    without_bmhad = [n for n in outputs if not n.endswith('_bmhad')]
    with pytest.raises(checks.WiringError, match=r'- bmhad \(3D\): its joints .*_bmhad'):
        checks.outputs_cover_datasets(without_bmhad, manifests, state['kinds'])
    # No 3D output named 'htop' at all: the 2D head-top labels would supervise nothing.
    without_htop = [n for n in outputs if joints.split_union_name(n)[0] != 'htop']
    with pytest.raises(checks.WiringError, match=r'- mpii \(2D\): .*htop_mpii.*supervise nothing'):
        checks.outputs_cover_datasets(without_htop, manifests, state['kinds'])


def test_planted_benchmark_joint_the_model_lacks_is_named(run, tmp_path):
    out = run[0]
    copy = partial_copy(out, tmp_path / 'copy', 'model/assets')
    names_path = copy / 'model' / 'assets' / 'joint_names.json'
    names = [n for n in json.loads(names_path.read_text()) if n != 'htop_3dhp']
    names_path.write_text(json.dumps(names))
    done = rehearsal(copy, '--stages=evaluate')
    assert done.returncode == 2, done.stdout + done.stderr
    assert 'does not output joints the benchmarks evaluate' in done.stderr
    assert "mpi_inf_3dhp evaluates skeleton 'mpi_inf_3dhp_17'; missing: htop_3dhp" in done.stderr
    assert "mupots evaluates skeleton 'mupots_17'; missing: htop_3dhp" in done.stderr
    assert 'h36m evaluates' not in done.stderr


def test_a_failing_command_is_reported_with_its_log(run, tmp_path):
    out = run[0]
    copy = partial_copy(out, tmp_path / 'copy', 'model/assets')
    done = rehearsal(copy, '--stages=evaluate')  # the SavedModel itself was not copied
    assert done.returncode == 1
    assert 'python -m eval.run exited with status' in done.stderr and 'evaluate_' in done.stderr


# --------------------------------------------------------------------------- pure functions
def test_scale_steps_keeps_the_schedule_shape():
    config = {'training_steps': 400_000, 'bn_inference_steps': 1000, 'checkpoint_every': 2000,
              'validate_every': 0, 'seed': 3, 'loss': {'abs_loss_start_step': 5000},
              'finetune': {'teacher_start_step': 0}}
    scaled, changes = sizes.scale_steps(config, 800)
    assert scaled == {'training_steps': 800, 'bn_inference_steps': 2, 'checkpoint_every': 800,
                      'validate_every': 0, 'seed': 3, 'loss': {'abs_loss_start_step': 10},
                      'finetune': {'teacher_start_step': 0}}
    assert ('loss.abs_loss_start_step', 5000, 10) in changes and len(changes) == 4
    assert sizes.scale_steps(config, 20)[0]['bn_inference_steps'] == 1  # never rounded to 0


def test_scaled_mix_keeps_every_dataset_and_the_paper_proportions(tmp_path):
    mix = stages.scaled_mix(sizes.SIZES['default'], tmp_path)
    rows = {d['name']: d['examples_per_batch'] for d in mix['datasets']}
    paper = {d['name']: d['examples_per_batch'] for d in PAPER_MIX['datasets']}
    assert rows.keys() == paper.keys()
    three = [d['name'] for d in PAPER_MIX['datasets'] if d['kind'] == '3d']
    assert sum(rows[n] for n in three) == mix['batch_size_3d'] == 48
    assert min(rows.values()) >= 1
    # Largest remainder after one row each: 48 - 28 = 20 rows in proportion to the paper's 96.
    expected = 1 + np.floor(20 * np.array([paper[n] for n in three]) / 96)
    assert all(rows[n] in (e, e + 1) for n, e in zip(three, expected))
    assert (sum(rows[n] for n in three) + mix['batch_size_2d']) % 16 == 0  # ghost BN groups
    assert mix['proc_side'] == 128 and mix['tfrecord_root'] == str(tmp_path)


def test_every_written_dataset_has_a_real_converter_and_mix_row():
    from posepile.datasets import available
    names = [e.name for e in datasets.TRAINING_SETS]
    assert sorted(names) == sorted(d['tfrecords'] for d in PAPER_MIX['datasets'])
    assert {e.converter for e in datasets.TRAINING_SETS} <= set(available())
    roots_example = json.loads((REPO / 'configs' / 'roots_example.json').read_text())['datasets']
    for entry in datasets.TRAINING_SETS:
        example = roots_example[entry.name]
        converter = example.get('converter', entry.name) if isinstance(example, dict) \
            else entry.name
        assert entry.converter == converter, entry.name
    from eval.benchmarks import BENCHMARKS
    # The paper's four; 'synthetic' and 'tfrecords' (one's own held-out shards) are not.
    assert {b.name for b in datasets.BENCHMARKS} == set(BENCHMARKS) - {'synthetic',
                                                                   'tfrecords'}
