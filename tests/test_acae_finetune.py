"""ACAE consistency fine-tuning: the three variants' losses against numpy hand computation on a
fixed batch, the latent model's decoding, the stop-gradient on the teacher, and an end-to-end
fine-tuning run from a trained checkpoint."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from acae.export import write_npz_atomic
from metrabs.data.inmemory_synthetic import make_synthetic_dataset_fn
from metrabs.model import latent_model
from metrabs.model.acae_matrices import AcaeMatrices
from metrabs.model.config import ModelConfig
from metrabs.model.metrabs_model import MetrabsModel
from metrabs.training import consistency, finetune_lr
from metrabs.training.config import LossConfig, TrainConfig
from metrabs.training.finetune_config import FinetuneConfig
from metrabs.training.loop import train
from metrabs.training.step import TrainStep, build_optimizers

N_JOINTS, N_LATENTS, SIDE, BATCH = 6, 4, 64, 8
JOINTS = [f'j{i}' for i in range(N_JOINTS)]
LAMBDA_ACAE = 0.7
LAMBDA_PROJ = 0.2


def _affine_rows(rng, shape):
    w = rng.normal(0, 0.6, shape)
    return w + (1 - w.sum(axis=1, keepdims=True)) / shape[1]


@pytest.fixture(scope='module')
def acae_file(tmp_path_factory):
    rng = np.random.default_rng(3)
    w_enc = _affine_rows(rng, (N_LATENTS, N_JOINTS))
    w_dec = _affine_rows(rng, (N_JOINTS, N_LATENTS))
    # The file lists the joints in another order than the model, to exercise the reordering.
    order = np.array([3, 0, 5, 1, 4, 2])
    path = tmp_path_factory.mktemp('acae') / 'weights.npz'
    write_npz_atomic(path, W_enc=w_enc[:, order].astype(np.float32),
                     W_dec=w_dec[order].astype(np.float32),
                     joint_names=np.array([JOINTS[i] for i in order]),
                     latent_names=np.array([f'c_{i}' for i in range(N_LATENTS)]))
    # In model joint order, float32 as stored.
    return str(path), w_enc.astype(np.float32).astype(np.float64), \
        w_dec.astype(np.float32).astype(np.float64)


def _config(mode, acae_path, **kwargs):
    return TrainConfig(
        model=ModelConfig(backbone='tiny', proc_side=SIDE, ghost_bn_group_size=4),
        # No weak-perspective phase, so the step's output is the inference-mode prediction.
        loss=LossConfig(lambda_proj=LAMBDA_PROJ, abs_loss_start_step=10_000,
                        weak_perspective_steps=0),
        training_steps=20, global_batch_size=BATCH, base_learning_rate=2e-3, log_every=1,
        image_summary_every=0, bn_inference_steps=2, deterministic=False, finetune_mode=mode,
        require_backbone_weights=False,
        acae_weights=acae_path if mode not in ('none', 'control') else None,
        lambda_acae=LAMBDA_ACAE, **kwargs)


@pytest.fixture(scope='module')
def batch():
    dataset_fn = make_synthetic_dataset_fn(N_JOINTS, SIDE, BATCH, n_examples=16, seed=5)
    return next(iter(dataset_fn(0)))


def _model_for(config, acae_path):
    if config.finetune_mode in ('latent', 'hybrid'):
        acae = AcaeMatrices.load(acae_path, JOINTS, require_all=True)
        model = latent_model.build_latent_model(config.model, JOINTS, acae,
                                                 config.finetune_mode == 'hybrid')
    else:
        model = MetrabsModel(config.model, JOINTS)
    model(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]), training=False)
    return model


def _run_step(config, acae_path, batch):
    """Predictions before the update (inference mode) and the values the step reports."""
    tf.random.set_seed(0)
    model = _model_for(config, acae_path)
    predictions = {k: v.numpy().astype(np.float64) for k, v in
                   model(batch['image'], batch['intrinsics'], training=False).items()}
    step = tf.Variable(0, dtype=tf.int64)
    train_step = TrainStep(model, build_optimizers(config, model), config,
                           tf.distribute.get_strategy(), step, label_names_2d=JOINTS)
    values = {k: float(v) for k, v in train_step(batch, training=False).items()}
    return model, predictions, values


# ---- independent numpy references ----

def _meanrel_np(pred_mm, true_mm):
    """L1 in metres after centring on the labelled joints' mean, over labelled entries (truth
    NaN where unlabelled)."""
    valid = np.isfinite(true_mm).all(axis=-1)
    pred, true = pred_mm / 1000, np.where(valid[..., None], true_mm, 0) / 1000
    w = valid[..., None].astype(float)
    count = np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    pc = pred - (pred * w).sum(axis=1, keepdims=True) / count
    tc = true - (true * w).sum(axis=1, keepdims=True) / count
    diff = np.abs(np.where(w > 0, pc - tc, 0))
    return diff.sum() / max(w.sum() * 3, 1e-12)


def _project_np(points, intrinsics):
    points = points / np.maximum(points[..., 2:], 1.0)
    return np.einsum('nij,nkj->nki', intrinsics[:, :2], points)


def _in_view_np(px, border_strides):
    low, high = -0.5 + 32 * border_strides, SIDE - 0.5 - 32 * border_strides
    return np.all((px >= low) & (px <= high), axis=-1)


def _labels(batch):
    """(3D labels [B, J, 3] mm, 2D-only labels [B, J, 2] px), NaN where unlabelled."""
    v3, v2 = batch['valid3d'].numpy(), batch['valid_labels2d'].numpy()
    return (np.where(v3[..., None], batch['coords3d_cam'].numpy().astype(np.float64), np.nan),
            np.where(v2[..., None], batch['labels2d'].numpy().astype(np.float64), np.nan))


def _pose_np(pred, true3d, labels2d, intrinsics):
    """The MeTRAbs loss on the absolute output with the released gates (the abs term is off):
    meanrel + proj + 0.2 * proj2d; each joint is its own 2D label name here (labels2d None:
    no 2D-only labels)."""
    absolute = pred['coords3d_abs_mm']
    v3 = np.isfinite(true3d).all(axis=-1)
    true = np.where(v3[..., None], true3d, [0, 0, 1000])
    meanrel = _meanrel_np(absolute, true3d)
    metres_per_px = 2200 / SIDE / 1000
    pred2d = _project_np(absolute, intrinsics)
    true2d = _project_np(true, intrinsics)
    gate = (v3 & (true[..., 2] > 300) & _in_view_np(pred2d, 0.75) & (absolute[..., 2] > 1)
            & _in_view_np(true2d, -20))
    proj = np.abs(pred2d - true2d)[gate].sum() * metres_per_px / max(2 * gate.sum(), 1)
    proj2d = 0.0
    if labels2d is not None:
        v_labels = np.isfinite(labels2d).all(axis=-1)
        labels = np.nan_to_num(labels2d)
        gate2d = v_labels & _in_view_np(pred2d, 0.75) & _in_view_np(labels, -20)
        proj2d = (np.abs(pred2d - labels)[gate2d].sum() * metres_per_px
                  / max(2 * gate2d.sum(), 1))
    return meanrel + proj + 0.2 * proj2d


def _supervised_np(pred, batch):
    return _pose_np(pred, *_labels(batch), batch['intrinsics'].numpy().astype(np.float64))


def _combine(w, points):
    return np.einsum('ab,nbc->nac', w, points)


def _rows3d(batch):
    return batch['valid3d'].numpy().any(axis=1)


def _regularization_np(coords_abs, w_rec, rows3d, weight2d):
    """mean |P - R P| / 1000 per row; mean over 3D rows + weight2d * mean over 2D-only rows."""
    per_row = np.abs(coords_abs - _combine(w_rec, coords_abs)).mean(axis=(1, 2)) / 1000
    return per_row[rows3d].mean() + weight2d * per_row[~rows3d].mean()


def test_output_regularization_loss_by_hand(acae_file, batch):
    path, w_enc, w_dec = acae_file
    _, pred, values = _run_step(_config('output_reg', path), path, batch)
    rows3d = _rows3d(batch)
    assert rows3d.any() and not rows3d.all()  # both kinds of rows are in the batch
    # Released: the absolute output, 3D rows x 1, 2D-only rows x loss2d_factor 0.2.
    expected_reg = _regularization_np(pred['coords3d_abs_mm'], w_dec @ w_enc, rows3d, 0.2)
    assert expected_reg > 1e-3  # an untrained net is far from the ACAE's subspace
    np.testing.assert_allclose(values['acae'], LAMBDA_ACAE * expected_reg, rtol=2e-4)
    np.testing.assert_allclose(values['loss'], _supervised_np(pred, batch)
                               + LAMBDA_ACAE * expected_reg, rtol=2e-4)


def test_latent_model_outputs_are_decoded_latents_and_loss_by_hand(acae_file, batch):
    path, w_enc, w_dec = acae_file
    _, pred, values = _run_step(_config('latent', path), path, batch)
    for out, lat in (('coords3d_rel_mm', 'latents3d_rel_mm'), ('coords2d_px', 'latents2d_px'),
                     ('coords3d_abs_mm', 'latents3d_abs_mm')):
        assert pred[lat].shape[1] == N_LATENTS
        np.testing.assert_allclose(pred[out], _combine(w_dec, pred[lat]), rtol=1e-5, atol=2e-3)
    assert values['acae'] == 0.0
    np.testing.assert_allclose(values['loss'], _supervised_np(pred, batch), rtol=2e-4)


def test_latent_absolute_is_the_latents_own_reconstruction(acae_file, batch):
    from metrabs.model import reconstruction
    path, _, _ = acae_file
    config = _config('latent', path)
    model = _model_for(config, path)
    pred = model(batch['image'], batch['intrinsics'], training=False)
    cfg = config.model
    expected = reconstruction.reconstruct_absolute(
        pred['latents2d_px'], pred['latents3d_rel_mm'], batch['intrinsics'], cfg.proc_side,
        cfg.stride, cfg.mix_3d_inside_fov, cfg.fov_border_factor)
    np.testing.assert_allclose(pred['latents3d_abs_mm'], expected, rtol=1e-6, atol=1e-3)


def _hybrid_expected(pred, batch, w_enc, w_dec, distill: bool):
    """The released hybrid loss (metrabs_tf/models/metrabs.py:320-391) in numpy."""
    teacher = {k: pred['teacher_' + k] for k in latent_model.OUTPUT_KEYS}
    student = {k: pred[k] for k in latent_model.OUTPUT_KEYS}
    latents = {'coords3d_abs_mm': pred['latents3d_abs_mm']}
    w_rec = w_dec @ w_enc
    true3d, labels2d = _labels(batch)
    intrinsics = batch['intrinsics'].numpy().astype(np.float64)
    rows3d = _rows3d(batch)
    extra = (_pose_np(student, true3d, labels2d, intrinsics)  # decoded student vs GT
             + _pose_np({k: _combine(w_rec, v) for k, v in teacher.items()}, true3d, labels2d,
                        intrinsics)
             + LAMBDA_ACAE * _regularization_np(teacher['coords3d_abs_mm'], w_rec, rows3d,
                                                0.2 * 0.5))
    if distill:
        # The encoded teacher is the 3D target of every row; its projection the 2D one.
        target3d = _combine(w_enc, teacher['coords3d_abs_mm'])

        def on(rows):
            return _pose_np(latents, np.where(rows[:, None, None], target3d, np.nan), None,
                            intrinsics)

        extra += on(rows3d) + 0.2 * 0.5 * on(~rows3d)
    return _supervised_np(teacher, batch), extra


@pytest.fixture(scope='module')
def hybrid_run(acae_file, batch):
    path, _, _ = acae_file
    return _run_step(_config('hybrid', path, finetune=FinetuneConfig(teacher_start_step=0)),
                     path, batch)


def test_hybrid_loss_by_hand(acae_file, batch, hybrid_run):
    _, w_enc, w_dec = acae_file
    _, pred, values = hybrid_run
    supervised, extra = _hybrid_expected(pred, batch, w_enc, w_dec, distill=True)
    assert extra > 1e-4
    np.testing.assert_allclose(values['acae'], extra, rtol=2e-4)
    np.testing.assert_allclose(values['loss'], supervised + extra, rtol=2e-4)
    np.testing.assert_allclose(pred['coords3d_rel_mm'], _combine(w_dec, pred['latents3d_rel_mm']),
                               rtol=1e-5, atol=2e-3)


def test_hybrid_distillation_waits_for_the_teacher_start_step(acae_file, batch):
    path, w_enc, w_dec = acae_file
    config = _config('hybrid', path, finetune=FinetuneConfig(teacher_start_step=1))
    _, pred, values = _run_step(config, path, batch)
    supervised, extra = _hybrid_expected(pred, batch, w_enc, w_dec, distill=False)
    np.testing.assert_allclose(values['acae'], extra, rtol=2e-4)
    np.testing.assert_allclose(values['loss'], supervised + extra, rtol=2e-4)


def test_hybrid_distillation_sends_no_gradient_into_the_teacher(acae_file, batch, hybrid_run):
    model, _, _ = hybrid_run
    path = acae_file[0]
    config = _config('hybrid', path, finetune=FinetuneConfig(teacher_start_step=0))
    acae = AcaeMatrices.load(path, JOINTS, require_all=True)
    term = consistency.FinetuneTerm('hybrid', acae, config, N_JOINTS)
    step = TrainStep(model, build_optimizers(config, model), config,
                     tf.distribute.get_strategy(), tf.Variable(0, dtype=tf.int64),
                     label_names_2d=JOINTS)
    true3d, labels2d = (tf.constant(x, tf.float32) for x in _labels(batch))
    ctx = consistency.LossContext(
        true3d, labels2d, step.step,
        lambda p, t3, l2: step._pose_loss(p, batch['intrinsics'], t3, l2)[0], step._row_mean)
    teacher_vars = model.head.trainable_variables
    student_vars = model.latent_head.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        pred = model(batch['image'], batch['intrinsics'], training=False)
        value = term.distillation(pred, ctx)
        teacher_out = tf.reduce_sum(pred['teacher_coords3d_rel_mm'])
    teacher_grads = tape.gradient(value, teacher_vars)
    student_grads = tape.gradient(value, student_vars)
    backbone_grads = tape.gradient(value, model.backbone.trainable_variables)
    assert teacher_vars and all(g is None for g in teacher_grads)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in student_grads)
    assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in backbone_grads)
    # Sanity check of the probe: the teacher head does influence its own output.
    assert all(g is not None for g in tape.gradient(teacher_out, teacher_vars))
    # The rest of the hybrid loss does train the teacher (it is supervised and regularised).
    with tf.GradientTape() as tape:
        pred = model(batch['image'], batch['intrinsics'], training=False)
        value = term(pred, ctx)
    assert all(g is not None for g in tape.gradient(value, teacher_vars))


def test_dual_finetune_learning_rates_as_released(acae_file):
    """Backbone base/30 x 0.3^(s/T); heads base x (1/3)^(s/(T/2)), from T/2 base/30 x 0.3^...;
    weight decay normalised by the pretraining's 400k steps (metrabs_tf/main.py:215-282)."""
    path = acae_file[0]
    config = dataclasses.replace(_config('output_reg', path), training_steps=1000,
                                 base_learning_rate=3e-4)
    model = _model_for(config, path)
    groups = build_optimizers(config, model)
    assert len(groups) == 2
    backbone_ids = {id(v) for v in model.backbone.trainable_variables}
    assert {id(v) for v in groups[0].variables} == backbone_ids
    assert {id(v) for v in groups[1].variables} == {id(v) for v in model.head.trainable_variables}
    base = 3e-4
    backbone_schedule, head_schedule = finetune_lr.dual_schedules(config)
    for s, backbone_lr, head_lr in [(0, base / 30, base),
                                    (250, base / 30 * 0.3 ** 0.25, base * (1 / 3) ** 0.5),
                                    (500, base / 30 * 0.3 ** 0.5, base / 30),
                                    (750, base / 30 * 0.3 ** 0.75, base / 30 * 0.3 ** 0.5)]:
        np.testing.assert_allclose(float(backbone_schedule(s)), backbone_lr, rtol=1e-5)
        np.testing.assert_allclose(float(head_schedule(s)), head_lr, rtol=1e-5)
    # The optimizers run these schedules (their current LR at iteration 0).
    np.testing.assert_allclose(float(groups[0].optimizer.learning_rate), base / 30, rtol=1e-6)
    np.testing.assert_allclose(float(groups[1].optimizer.learning_rate), base, rtol=1e-6)
    for group in groups:
        np.testing.assert_allclose(group.optimizer.weight_decay,
                                   3e-3 / np.sqrt(400_000) / base, rtol=1e-6)
    single = dataclasses.replace(config, finetune=FinetuneConfig(optimizer='single'))
    assert len(build_optimizers(single, model)) == 1
    with pytest.raises(ValueError, match="finetune.*mixed_float16"):
        dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                              dtype_policy='mixed_float16'))


def test_control_finetune_has_no_acae_term(batch):
    config = _config('control', None)
    assert config.uses_dual_optimizer and not config.uses_acae
    _, pred, values = _run_step(config, None, batch)
    assert values['acae'] == 0.0
    np.testing.assert_allclose(values['loss'], _supervised_np(pred, batch), rtol=2e-4)


def test_affine_combine_2d_matches_numpy():
    rng = np.random.default_rng(0)
    w = _affine_rows(rng, (5, 7))
    points = rng.normal(100, 300, (3, 7, 2))
    got = latent_model.affine_combine(w.astype(np.float32), points.astype(np.float32))
    np.testing.assert_allclose(got, _combine(w, points), atol=1e-2)


def test_bad_acae_and_config_are_named(acae_file, tmp_path):
    path = acae_file[0]
    with pytest.raises(KeyError, match='weights.npz.*not know'):
        AcaeMatrices.load(path, JOINTS + ['extra'], require_all=True)
    with pytest.raises(KeyError, match='weights.npz.*does not predict'):
        AcaeMatrices.load(path, JOINTS[:4])
    with pytest.raises(ValueError, match='acae_weights'):
        _config('latent', None)
    with pytest.raises(ValueError, match='finetune_mode'):
        dataclasses.replace(_config('none', None), finetune_mode='bogus')


def test_finetune_from_trained_checkpoint_end_to_end(acae_file, tmp_path):
    """Base model trained a few steps, then hybrid fine-tuning initialised from it: backbone and
    teacher head come from the checkpoint, the latent head is new, and the run trains."""
    path = acae_file[0]
    dataset_fn = make_synthetic_dataset_fn(N_JOINTS, SIDE, BATCH, n_examples=16, seed=1)
    base = train(dataclasses.replace(_config('none', None), training_steps=3,
                                     checkpoint_every=3),
                 dataset_fn, str(tmp_path / 'base'), JOINTS, show_progress=False,
                 label_names_2d=JOINTS)
    config = dataclasses.replace(_config('hybrid', path), training_steps=4, checkpoint_every=4,
                                 bn_inference_steps=0)
    result = train(config, dataset_fn, str(tmp_path / 'hybrid'), JOINTS,
                   init_from=base.checkpoint_path, show_progress=False, label_names_2d=JOINTS)
    # Initial values are overwritten by training, so compare against the checkpoint via a
    # fresh restore into a new hybrid model instead of the trained one.
    fresh = _model_for(_config('hybrid', path), path)
    consistency.init_backbone_and_head(fresh, base.checkpoint_path)
    for a, b in zip(fresh.head.weights, base.model.head.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(fresh.backbone.weights, base.model.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert result.step == 4 and np.isfinite(result.last_losses['loss'])
    assert result.last_losses['acae'] > 0
    assert isinstance(result.model, latent_model.AcaeLatentModel)
    # Pseudo-GT / the consistency evaluation reload the fine-tuned model from its logdir.
    from metrabs import pseudo_gt
    loaded, names = pseudo_gt.load_model(str(tmp_path / 'hybrid'))
    assert isinstance(loaded, latent_model.AcaeLatentModel) and loaded.with_teacher
    assert list(names) == JOINTS
    for a, b in zip(loaded.weights, result.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The exported SavedModel of the hybrid model outputs W_dec @ latents, like the in-memory one.
    from metrabs import export
    out = tmp_path / 'exported'
    export.main([f'--checkpoint={tmp_path / "hybrid"}', f'--out={out}'])
    served = tf.saved_model.load(str(out))
    images = np.random.default_rng(0).integers(0, 255, (2, SIDE, SIDE, 3), dtype=np.uint8)
    focal = 1.2 * SIDE
    intrinsics = np.tile(np.array([[focal, 0, (SIDE - 1) / 2], [0, focal, (SIDE - 1) / 2],
                                   [0, 0, 1]], np.float32), [2, 1, 1])
    got = served.predict_crops(images, intrinsics)['poses3d'].numpy()
    want = loaded(tf.constant(images), tf.constant(intrinsics), training=False)
    np.testing.assert_allclose(got, want['coords3d_abs_mm'].numpy(), rtol=1e-4, atol=1e-2)
    w_dec = AcaeMatrices.load(path, JOINTS, require_all=True).reordered_for(
        len(JOINTS))[1]
    np.testing.assert_allclose(
        got, np.einsum('jl,nlc->njc', w_dec, want['latents3d_abs_mm'].numpy()),
        rtol=1e-4, atol=1e-2)
