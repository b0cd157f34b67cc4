"""The training loop: loss falls, summaries, checkpoints/resume (also after SIGKILL), NaN detection,
fine-tuning init, gradient clipping and loss-share maths against an independent computation."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from metrabs.training import checkpointing, losses
from posepile import joints
from metrabs.model.config import ModelConfig
from metrabs.training.config import LossConfig
from metrabs.model.metrabs_model import MetrabsModel
from metrabs.data.inmemory_synthetic import draw_joints, make_synthetic_dataset_fn
from metrabs.training.loop import NonFiniteLossError, train, validate
from metrabs.training.config import TrainConfig
from metrabs.training.step import OptimizerGroup, TrainStep, build_optimizers, labels_with_nan

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_JOINTS = 6
SIDE = 64
BATCH = 8
JOINTS = [f'j{i}' for i in range(N_JOINTS)]

TINY = TrainConfig(
    model=ModelConfig(backbone='tiny', proc_side=SIDE, ghost_bn_group_size=4),
    loss=LossConfig(abs_loss_start_step=10_000),
    training_steps=40, global_batch_size=BATCH, base_learning_rate=2e-3,
    checkpoint_every=20, log_every=1, image_summary_every=20, bn_inference_steps=5,
    validate_every=20, validation_steps=2, deterministic=False, require_backbone_weights=False)


def _events(directory):
    """{tag: {step: value}} from the TensorBoard event files of `directory`."""
    out = {}
    for name in sorted(os.listdir(directory)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            for value in event.summary.value:
                out.setdefault(value.tag, {})[event.step] = value
    return out


def _scalar(value):
    return float(tf.make_ndarray(value.tensor))


@pytest.fixture(scope='module')
def dataset_fn():
    return make_synthetic_dataset_fn(N_JOINTS, SIDE, BATCH, n_examples=32, seed=1)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, dataset_fn):
    logdir = str(tmp_path_factory.mktemp('run'))
    started = time.perf_counter()
    result = train(TINY, dataset_fn, logdir, JOINTS, val_dataset_fn=lambda: dataset_fn(0).take(2),
                   show_progress=False, label_names_2d=JOINTS,
                   train_eval_dataset_fn=lambda: dataset_fn(5).take(1))
    return result, logdir, time.perf_counter() - started


def test_loss_falls_and_scalars_logged(trained):
    result, logdir, _ = trained
    assert result.step == 40
    events = _events(os.path.join(logdir, 'train'))
    loss = np.array([_scalar(events['loss/loss'][s]) for s in range(1, 41)])
    assert np.all(np.isfinite(loss))
    # Compare before the BN switch: after only 35 steps the moving statistics (momentum 0.99)
    # are still far from the batch statistics, so inference mode raises the loss again.
    assert loss[30:35].mean() < 0.6 * loss[:5].mean(), loss
    # With the abs term off, the total is meanrel + proj + 0.2 * proj2d at every step.
    for s in (1, 17, 40):
        want = (_scalar(events['loss/meanrel'][s]) + _scalar(events['loss/proj'][s])
                + 0.2 * _scalar(events['loss/proj2d'][s]))
        assert _scalar(events['loss/loss'][s]) == pytest.approx(want, rel=1e-5)
    # The logged LR is the schedule at the optimizer's iteration count after the step.
    for s in (1, 20, 37, 40):
        t0 = 0.92 * 40
        # Default (released) schedule: x1/3 over 92 %, then base/30 decaying x0.3.
        want = (2e-3 * (1 / 3) ** (s / t0) if s < t0
                else 2e-3 / 30 * 0.3 ** ((s - t0) / (40 - t0)))
        assert _scalar(events['learning_rate'][s]) == pytest.approx(want, rel=1e-5)
    # BN runs in inference mode for the last 5 steps (36..40 are steps 35..39 0-based).
    assert [_scalar(events['bn_training_mode'][s]) for s in (35, 36, 40)] == [1.0, 0.0, 0.0]
    assert set(events['predictions']) == {20, 40}
    val = _events(os.path.join(logdir, 'validation'))
    assert set(val['val_mpjpe_meanrel']) == {20, 40}
    assert 0 < _scalar(val['val_mpjpe_meanrel'][40]) < 2000
    # The learning curve's training-set side is logged next to the loss.
    assert set(events['train_mpjpe_meanrel']) == {20, 40} and 'train_pa_mpjpe' in events


def test_checkpoints_and_resume_is_noop(trained, dataset_fn):
    result, logdir, _ = trained
    ckpt_dir = os.path.join(logdir, 'checkpoints')
    assert tf.train.latest_checkpoint(ckpt_dir).endswith('ckpt-40')
    assert os.path.exists(os.path.join(ckpt_dir, 'ckpt-20.index'))
    with open(os.path.join(logdir, 'config.json')) as f:
        assert TrainConfig.from_dict(json.load(f)) == TINY
    again = train(TINY, dataset_fn, logdir, JOINTS, show_progress=False)
    assert again.resumed_from.endswith('ckpt-40') and again.step == 40
    for a, b in zip(result.model.weights, again.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_init_from_checkpoint_loads_backbone_and_keeps_new_head(trained):
    result, logdir, _ = trained
    keras.utils.set_random_seed(123)
    model = MetrabsModel(TINY.model, ['a', 'b', 'c'])
    model(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]))
    head_before = [w.numpy() for w in model.head.weights]
    checkpointing.init_from_checkpoint(model, os.path.join(logdir, 'checkpoints'))
    for a, b in zip(result.model.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for before, w in zip(head_before, model.head.weights):
        np.testing.assert_array_equal(before, w.numpy())
    assert model.head.weights[0].shape[-1] == 3 * (TINY.model.depth + 1)
    # The training logdir itself is accepted too (its checkpoints/ holds the checkpoints) ...
    checkpointing.init_from_checkpoint(model, logdir)
    for a, b in zip(result.model.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # ... a directory without checkpoints is not.
    with pytest.raises(FileNotFoundError, match='no checkpoint'):
        checkpointing.init_from_checkpoint(model, os.path.join(logdir, 'train'))


def test_fine_tuning_with_the_same_joints_starts_where_the_source_is(trained, dataset_fn,
                                                                     tmp_path):
    """--init-from a model of the same joints keeps its head: the step-0 validation of the
    fine-tuning is the source's own validation error, not an untrained head's."""
    result, logdir, _ = trained
    val = lambda: dataset_fn(0).take(2)  # noqa: E731
    source_error = validate(result.model, val())['val_mpjpe_meanrel']
    config = dataclasses.replace(TINY, training_steps=1, validate_every=1, checkpoint_every=1)
    train(config, dataset_fn, str(tmp_path / 'ft'), JOINTS, val_dataset_fn=val,
          init_from=logdir, show_progress=False, label_names_2d=JOINTS)
    events = _events(str(tmp_path / 'ft' / 'validation'))
    assert set(events['val_mpjpe_meanrel']) == {0, 1}
    assert _scalar(events['val_mpjpe_meanrel'][0]) == pytest.approx(source_error, rel=1e-4)
    # (another joint set re-initialises the head: tests/test_init_from_savedmodel.py)


def test_nan_loss_raises_with_step_and_keeps_checkpoint(tmp_path, dataset_fn):
    def poisoned(start_step):
        def poison(s, batch):
            bad = tf.equal(s, 7)
            return {**batch, 'image': tf.where(bad, float('nan'), batch['image'])}
        steps = tf.data.Dataset.range(start_step, 1_000_000)
        return tf.data.Dataset.zip(steps, dataset_fn(start_step)).map(poison)

    config = dataclasses.replace(TINY, training_steps=12, checkpoint_every=5, validate_every=0,
                                 image_summary_every=0)
    with pytest.raises(NonFiniteLossError, match=r'at step 7 \(0-based'):
        train(config, poisoned, str(tmp_path), JOINTS, show_progress=False,
              label_names_2d=JOINTS)
    ckpt_dir = tmp_path / 'checkpoints'
    assert tf.train.latest_checkpoint(str(ckpt_dir)).endswith('ckpt-5')
    assert not (ckpt_dir / 'ckpt-10.index').exists()


def test_clipping_and_loss_shares_against_independent_gradient(dataset_fn):
    """One step with SGD(lr=1): the update must equal minus the clipped gradient of
    combined_loss, computed here independently with its own tape and numpy clipping."""
    keras.utils.set_random_seed(5)
    config = dataclasses.replace(TINY, grad_clip_norm=0.05,
                                 loss=LossConfig(abs_loss_start_step=0))
    strategy = tf.distribute.get_strategy()
    model = MetrabsModel(config.model, JOINTS)
    model(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]))
    batch = next(iter(dataset_fn(3)))
    variables = list(model.trainable_variables)
    before = [v.numpy() for v in variables]
    # Independent reference gradient (BN in inference mode, so the forward pass is pure; then
    # the step uses the test-time mix, and at step 0 the weak-perspective fit).
    true3d, labels = labels_with_nan(batch)
    groups = np.eye(N_JOINTS, dtype=np.float32)  # each joint is its own 2D label name
    assert batch['valid_labels2d'].numpy().any() and batch['valid3d'].numpy().any()
    with tf.GradientTape() as tape:
        pred = model(batch['image'], batch['intrinsics'], training=False, weak_perspective=True)
        terms = losses.loss_terms(pred['coords3d_abs_mm'], batch['intrinsics'], true3d, labels,
                                  groups, SIDE, 32, 2200.0, config.loss)
        want_loss = losses.combined_loss(terms, 0, config.loss)['loss']
    grads = [g.numpy() for g in tape.gradient(want_loss, variables)]
    norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    assert norm > 0.05, 'the test needs a gradient that actually gets clipped'
    clipped = [g * (0.05 / norm) for g in grads]

    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    optimizer.build(variables)
    step = tf.Variable(0, dtype=tf.int64)
    train_step = TrainStep(model, [OptimizerGroup(optimizer, variables)], config, strategy, step,
                           label_names_2d=JOINTS)
    values = train_step(batch, training=False)
    assert float(values['loss']) == pytest.approx(float(want_loss), rel=1e-5)
    assert float(values['grad_norm']) == pytest.approx(norm, rel=1e-4)
    assert int(step.numpy()) == 1
    for b, v, g in zip(before, variables, clipped):
        np.testing.assert_allclose(v.numpy(), b - g, atol=1e-6)


def test_training_mix_is_uniform_per_example_and_a_function_of_the_step():
    model = MetrabsModel(TINY.model, JOINTS)
    step = tf.Variable(3, dtype=tf.int64)
    train_step = TrainStep(model, [], TINY, tf.distribute.get_strategy(), step)
    wide = dataclasses.replace(TINY, global_batch_size=256)
    train_step = TrainStep(model, [], wide, tf.distribute.get_strategy(), step)
    first = train_step._mix(256, training=True).numpy()
    assert first.shape == (256,) and 0 <= first.min() and first.max() <= 1
    assert 0.4 < first.mean() < 0.6 and first.std() > 0.25  # U(0, 1): std 0.29
    np.testing.assert_array_equal(train_step._mix(256, training=True).numpy(), first)
    step.assign(4)
    assert not np.array_equal(train_step._mix(256, training=True).numpy(), first)
    # Batch norm in inference mode (the final steps) and random_mix=False: the exported mix.
    assert train_step._mix(8, training=False) is None
    fixed = dataclasses.replace(TINY, loss=LossConfig(random_mix=False))
    assert TrainStep(model, [], fixed, tf.distribute.get_strategy(), step)._mix(8, True) is None


def test_fresh_start_refuses_a_random_backbone_unless_asked(tmp_path, dataset_fn, capsys):
    from metrabs.training.config import RandomBackboneError
    strict = dataclasses.replace(TINY, training_steps=1, require_backbone_weights=True,
                                 validate_every=0, image_summary_every=0)
    with pytest.raises(RandomBackboneError, match='require_backbone_weights'):
        train(strict, dataset_fn, str(tmp_path / 'a'), JOINTS, show_progress=False)
    with pytest.raises(ValueError, match='carry 6 2D label names but label_names_2d has 0'):
        train(dataclasses.replace(strict, require_backbone_weights=False), dataset_fn,
              str(tmp_path / 'c'), JOINTS, show_progress=False)
    from metrabs.train import main
    (tmp_path / 'c.json').write_text(json.dumps(
        {'model': {'backbone': 'tiny', 'proc_side': 32, 'ghost_bn_group_size': 0},
         'training_steps': 1, 'global_batch_size': 2}))
    # The command refuses it as a user error: one line, exit status 2 (posepile.cli).
    assert main([f'--config={tmp_path / "c.json"}', f'--logdir={tmp_path / "b"}',
                 '--data=synthetic-inmemory', '--no-progress']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "backbone_weights is not set" in err[0] and "'imagenet'" in err[0]


def test_backbone_lr_factor_splits_variables():
    config = dataclasses.replace(TINY, backbone_lr_factor=0.1)
    model = MetrabsModel(config.model, JOINTS)
    model(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]))
    backbone_group, head_group = build_optimizers(config, model)
    assert len(backbone_group.variables) == len(model.backbone.trainable_variables)
    assert len(head_group.variables) == len(model.head.trainable_variables)
    assert float(backbone_group.optimizer.learning_rate) == pytest.approx(
        0.1 * float(head_group.optimizer.learning_rate), rel=1e-6)
    with pytest.raises(ValueError, match='backbone_lr_factor'):
        dataclasses.replace(config, model=ModelConfig(backbone='tiny', proc_side=SIDE,
                                                      dtype_policy='mixed_float16'))


def test_mixed_float16_uses_loss_scaling(tmp_path, dataset_fn):
    config = dataclasses.replace(
        TINY, model=dataclasses.replace(TINY.model, dtype_policy='mixed_float16'),
        training_steps=3, validate_every=0, image_summary_every=0)
    result = train(config, dataset_fn, str(tmp_path), JOINTS, show_progress=False,
                   label_names_2d=JOINTS)
    assert np.isfinite(result.last_losses['loss'])
    optimizer = build_optimizers(config, result.model)[0].optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def test_draw_joints_by_hand():
    images = np.zeros([1, 5, 6, 3], np.float32)
    coords = np.array([[[1.0, 2.0], [4.4, 0.2], [9.0, 9.0]]], np.float32)  # (x, y)
    out = draw_joints(images, coords, np.array([[True, True, True]]), (1, 0, 0), radius=1)
    want = np.zeros([5, 6], bool)
    want[[1, 2, 2, 2, 3], [1, 0, 1, 2, 1]] = True   # disk around x=1, y=2
    want[[0, 0, 0, 1], [3, 4, 5, 4]] = True          # disk around x=4, y=0, clipped at the top
    np.testing.assert_array_equal(out[0, ..., 0] == 1, want)
    assert images.max() == 0  # input untouched


def test_validate_by_hand(dataset_fn):
    batch = next(iter(dataset_fn(0)))
    offset = np.zeros([N_JOINTS, 3], np.float32)
    offset[1] = [30.0, 40.0, 0.0]  # 50 mm error on joint 1 (absolute)

    def fake_model(images, intrinsics, training):
        truth = batch['coords3d_cam'].numpy() + offset
        # validate reads only the exported (absolute) output; a wrong raw head must not matter.
        return {'coords3d_rel_mm': tf.constant(truth * 0), 'coords3d_abs_mm': tf.constant(truth)}

    valid = batch['valid3d'].numpy()
    results = validate(fake_model, [batch])
    assert results['val_mpjpe_abs'] == pytest.approx(50.0 * valid[:, 1].sum() / valid.sum())
    # A similarity fit can only lower the error.
    assert 0 < results['val_pa_mpjpe'] < results['val_mpjpe_meanrel']
    # Centred on the labelled mean, the offset spreads: hand-computed per example.
    errs = []
    for v in valid:
        if not v.any():
            continue
        o = offset[v] - offset[v].mean(axis=0)
        errs.extend(np.linalg.norm(o, axis=-1))
    assert results['val_mpjpe_meanrel'] == pytest.approx(np.mean(errs), rel=1e-5)


def _cli(config_path, logdir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=REPO,
               TF_NUM_INTRAOP_THREADS='1', TF_NUM_INTEROP_THREADS='2')
    return subprocess.Popen(
        [sys.executable, '-m', 'metrabs.train', f'--config={config_path}', f'--logdir={logdir}',
         '--data=synthetic-inmemory', '--synthetic-joints=5', '--synthetic-examples=24',
         '--no-progress'],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_and_resume_equals_uninterrupted_run(tmp_path):
    config = {'model': {'backbone': 'tiny', 'proc_side': 64, 'ghost_bn_group_size': 4},
              'training_steps': 40, 'global_batch_size': 8, 'base_learning_rate': 1e-3,
              'checkpoint_every': 10, 'log_every': 10, 'image_summary_every': 0,
              'bn_inference_steps': 5, 'loss': {'abs_loss_start_step': 20,
                                                'weak_perspective_steps': 5}, 'seed': 3,
              'deterministic': True, 'require_backbone_weights': False}
    config_path = tmp_path / 'config.json'
    config_path.write_text(json.dumps(config))
    full_dir, killed_dir = tmp_path / 'full', tmp_path / 'killed'
    full = _cli(config_path, full_dir)
    victim = _cli(config_path, killed_dir)
    deadline = time.monotonic() + 240
    first_ckpt = killed_dir / 'checkpoints' / 'checkpoint'
    while not first_ckpt.exists():
        assert victim.poll() is None, victim.communicate()[0][-3000:]
        assert time.monotonic() < deadline, 'no checkpoint appeared in time'
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    survivor = tf.train.latest_checkpoint(str(killed_dir / 'checkpoints'))
    killed_at = int(survivor.rsplit('-', 1)[1])
    assert killed_at < 40, 'the run finished before it could be killed'

    resumed = _cli(config_path, killed_dir)
    out_resumed = resumed.communicate(timeout=240)[0]
    out_full = full.communicate(timeout=240)[0]
    assert resumed.returncode == 0, out_resumed[-3000:]
    assert full.returncode == 0, out_full[-3000:]
    assert f'resuming from {survivor} at step {killed_at}' in out_resumed

    a = tf.train.load_checkpoint(str(full_dir / 'checkpoints' / 'ckpt-40'))
    b = tf.train.load_checkpoint(str(killed_dir / 'checkpoints' / 'ckpt-40'))
    names = [n for n, _ in tf.train.list_variables(str(full_dir / 'checkpoints' / 'ckpt-40'))
             if n != '_CHECKPOINTABLE_OBJECT_GRAPH']
    assert any('moving_mean' in n for n in names) and len(names) > 20
    for name in names:
        np.testing.assert_allclose(b.get_tensor(name), a.get_tensor(name), atol=1e-6,
                                   err_msg=name)


def test_bad_batches_and_configs_are_named(tmp_path, dataset_fn):
    def missing_field(start_step):
        return dataset_fn(start_step).map(
            lambda b: {k: v for k, v in b.items() if k != 'valid2d'})

    config = dataclasses.replace(TINY, training_steps=2, validate_every=0, image_summary_every=0)
    with pytest.raises(KeyError, match=r"dataset_fn\(0\): batch lacks fields \['valid2d'\]"):
        train(config, missing_field, str(tmp_path / 'a'), JOINTS, show_progress=False)

    def wrong_dtype(start_step):
        return dataset_fn(start_step).map(
            lambda b: {**b, 'valid3d': tf.cast(b['valid3d'], tf.int32)})

    with pytest.raises(ValueError, match="field 'valid3d' must be bool"):
        train(config, wrong_dtype, str(tmp_path / 'b'), JOINTS, show_progress=False)

    bad_json = tmp_path / 'bad.json'
    bad_json.write_text(json.dumps({'training_steps': 5, 'learning_rate': 1.0}))
    with pytest.raises(KeyError, match=r"bad.json: unknown TrainConfig fields \['learning_rate'\]"):
        TrainConfig.from_json(bad_json)
    with pytest.raises(ValueError, match='TrainConfig.lr_schedule'):
        TrainConfig(lr_schedule='cosine')


def test_cli_tfrecords_source_checks_its_input_config(tmp_path, capsys):
    from metrabs.train import main
    (tmp_path / 'c.json').write_text('{"global_batch_size": 8}')
    common = [f'--config={tmp_path / "c.json"}', f'--logdir={tmp_path / "log"}', '--data=tfrecords']
    assert main(common) == 2
    assert 'needs --input-config' in capsys.readouterr().err
    # An input config whose per-dataset counts do not add up to the global batch is refused.
    joint_names = list(joints.get_union('synthetic').names[:4])
    (tmp_path / 'in.json').write_text(json.dumps({
        'joint_names': joint_names, 'union': 'synthetic',
        'parts_3d': [{'name': 'a', 'shard_patterns': [str(tmp_path / '*.tfrecord')],
                      'examples_per_batch': 6}]}))
    assert main(common + [f'--input-config={tmp_path / "in.json"}']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert 'sum to 6 examples per batch' in err and 'global_batch_size=8' in err


def test_cli_backbone_weights_flag_reaches_the_model(tmp_path, capsys):
    from metrabs.train import main
    (tmp_path / 'c.json').write_text(json.dumps(
        {'model': {'backbone': 'tiny', 'proc_side': 32, 'ghost_bn_group_size': 0},
         'training_steps': 1, 'global_batch_size': 2}))
    missing = tmp_path / 'imagenet.weights.h5'
    args = [f'--config={tmp_path / "c.json"}', f'--logdir={tmp_path / "log"}',
            '--data=synthetic-inmemory', f'--backbone-weights={missing}', '--no-progress']
    assert main(args) == 2
    assert 'imagenet.weights.h5' in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match='imagenet.weights.h5'):
        main(args + ['--debug'])  # --debug: the exception itself, with its traceback


def test_sigterm_checkpoints_the_current_step_and_the_rerun_resumes_there(tmp_path):
    """SLURM's preemption / time-limit signal: the run saves the step it is at (not only the
    last periodic checkpoint), exits with the 'resumable' status, and the same command
    continues from exactly that step."""
    from metrabs.training.preemption import PREEMPTED_EXIT_CODE
    config = {'model': {'backbone': 'tiny', 'proc_side': 32, 'ghost_bn_group_size': 4},
              'training_steps': 100_000, 'global_batch_size': 8, 'checkpoint_every': 1_000_000,
              'log_every': 1, 'image_summary_every': 0, 'bn_inference_steps': 5,
              'deterministic': False, 'require_backbone_weights': False}
    config_path = tmp_path / 'config.json'
    config_path.write_text(json.dumps(config))
    logdir = tmp_path / 'run'
    victim = _cli(config_path, logdir)
    events = logdir / 'train'
    deadline = time.monotonic() + 240
    while not (events.exists() and any(events.iterdir())):  # training steps are being logged
        assert victim.poll() is None, victim.communicate()[0][-3000:]
        assert time.monotonic() < deadline, 'training did not start in time'
        time.sleep(0.1)
    time.sleep(1.0)
    victim.send_signal(signal.SIGTERM)
    out = victim.communicate(timeout=120)[0]
    assert victim.returncode == PREEMPTED_EXIT_CODE, out[-3000:]
    saved = tf.train.latest_checkpoint(str(logdir / 'checkpoints'))
    stopped_at = int(saved.rsplit('-', 1)[1])
    assert 0 < stopped_at < 100_000
    assert f'SIGTERM received: stopped after step {stopped_at}' in out

    config['training_steps'] = stopped_at + 2
    config_path.write_text(json.dumps(config))
    resumed = _cli(config_path, logdir)
    out = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, out[-3000:]
    assert f'resuming from {saved} at step {stopped_at}' in out
    assert tf.train.latest_checkpoint(str(logdir / 'checkpoints')).endswith(
        f'ckpt-{stopped_at + 2}')
