"""Benchmark: examples/s of the MeTRAbs train step per backbone, and its FLOP/s efficiency.

Run from the repository root:
    .venv/bin/python -m bench.train_step [--backbones tiny efficientnetv2-b0 efficientnetv2-s
        resnet50] [--policies float32 mixed_bfloat16] [--xla off on] [--batch-size 16 --steps 3]
The defaults (tiny and EfficientNetV2-B0, both policies, no XLA) take ~3 min on 2 busy cores:
graph tracing of the large backbones costs 1-3 min per cell, XLA compilation more.
For each (backbone, dtype policy, XLA on/off) it builds MetrabsModel over the joint union of the
'real' formats (620 joints when bench/README.md was measured, 652 since JRDB-Pose and PoseTrack;
--joint-set) at 256 px, AdamW from build_optimizers, and times
metrabs.training.step.TrainStep on one fixed random batch (the batch contract; data loading is not timed: see bench.input_pipeline).
FLOPs per example come from the backbone's frozen inference graph at batch 1 (TF profiler,
multiply-add = 2); a training step is counted as 3x the forward FLOPs (forward + gradients with
respect to activations and to weights, the usual convention for conv nets; the head adds < 1 %).
Efficiency = achieved FLOP/s / the best float32 GEMM FLOP/s of bench.flops on this machine (the
goal's definition). For mixed_bfloat16 rows a second column divides by the bfloat16 GEMM rate,
the peak that policy could reach (higher than float32 on CPUs with bfloat16 dot products).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.flops import graph_flops, reference_gemm_flops  # noqa: E402
from metrabs.data.labels2d import label_names_2d  # noqa: E402
from metrabs.model.config import ModelConfig  # noqa: E402
from metrabs.model.metrabs_model import MetrabsModel  # noqa: E402
from metrabs.training.config import TrainConfig  # noqa: E402
from metrabs.training.step import TrainStep, build_optimizers  # noqa: E402
from posepile.joints import three_d_union_names  # noqa: E402

TRAIN_FLOPS_PER_FORWARD = 3.0


@dataclasses.dataclass(frozen=True)
class StepResult:
    backbone: str
    policy: str
    xla: bool
    examples_per_second: float
    first_step_seconds: float  # tracing (and XLA compilation) + one step
    forward_flops: float  # backbone, one example, inference graph


def random_batch(batch_size: int, side: int, n_joints: int, n_labels: int = 0,
                 seed: int = 0) -> dict[str, tf.Tensor]:
    """A batch honouring metrabs.training.step's contract: crop pixels in [0, 1], poses ~4 m away."""
    rng = np.random.default_rng(seed)
    focal = 1.2 * side
    k = np.array([[focal, 0, (side - 1) / 2], [0, focal, (side - 1) / 2], [0, 0, 1]], np.float32)
    coords3d = (rng.normal(0, 300, (batch_size, n_joints, 3)) + [0, 0, 4000]).astype(np.float32)
    coords2d = (coords3d[..., :2] / coords3d[..., 2:] * focal + (side - 1) / 2).astype(np.float32)
    valid = rng.random((batch_size, n_joints)) < 0.1  # datasets label a small subset of the union
    # The last quarter of the rows is 2D-only (as the paper's 96 + 32), labelling n_labels
    # 2D label names.
    two_d_only = np.arange(batch_size) >= batch_size - batch_size // 4
    valid3d = valid & ~two_d_only[:, None]
    labels_valid = (rng.random((batch_size, n_labels)) < 0.8) & two_d_only[:, None]
    return {
        'image': tf.constant(rng.random((batch_size, side, side, 3), np.float32)),
        'intrinsics': tf.constant(np.repeat(k[None], batch_size, 0)),
        'coords3d_cam': tf.constant(coords3d), 'valid3d': tf.constant(valid3d),
        'coords2d': tf.constant(coords2d), 'valid2d': tf.constant(valid3d),
        'labels2d': tf.constant(coords2d[:, :n_labels]),
        'valid_labels2d': tf.constant(labels_valid),
        'dataset_index': tf.zeros([batch_size], tf.int32)}


def backbone_forward_flops(model: MetrabsModel, side: int) -> float:
    """FLOPs of one example through the backbone (inference graph, batch 1)."""
    return graph_flops(lambda x: model.backbone(x, training=False),
                       [tf.TensorSpec([1, side, side, 3], tf.float32)])


def build_train_step(backbone: str, policy: str, batch_size: int, side: int, joint_names,
                     ghost_bn_group_size: int, strategy: tf.distribute.Strategy | None = None):
    """(MetrabsModel, TrainStep, step variable) as metrabs.training.loop builds them, under
    `strategy` (default: one device); `batch_size` is the global batch."""
    strategy = strategy or tf.distribute.get_strategy()
    model_config = ModelConfig(backbone=backbone, proc_side=side, dtype_policy=policy,
                               ghost_bn_group_size=ghost_bn_group_size)
    config = TrainConfig(model=model_config, global_batch_size=batch_size, deterministic=False)
    with strategy.scope():
        model = MetrabsModel(model_config, joint_names)
        model(tf.zeros([1, side, side, 3]), tf.eye(3, batch_shape=[1]), training=False)
        step = tf.Variable(0, dtype=tf.int64, trainable=False,
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        groups = build_optimizers(config, model)
    # The 2D label names of the union's 2D formats (COCO and MPII's for the real union).
    names_2d = label_names_2d('all', joint_names)
    return model, TrainStep(model, groups, config, strategy, step, label_names_2d=names_2d), step


def time_steps(run, batch, steps: int, batch_size: int) -> tuple[float, float]:
    """(examples/s over `steps` timed steps, seconds of the first step incl. tracing): one
    first call, one warm-up call, then the timed ones; `run(batch)` returns the loss dict."""
    start = time.perf_counter()
    float(run(batch)['loss'])
    first = time.perf_counter() - start
    float(run(batch)['loss'])  # second call: thread pools and allocator warmed up
    start = time.perf_counter()
    for _ in range(steps):
        losses = run(batch)
    float(losses['loss'])
    return steps * batch_size / (time.perf_counter() - start), first


def time_train_step(backbone: str, policy: str, xla: bool, batch_size: int, steps: int,
                    side: int, joint_names, ghost_bn_group_size: int) -> StepResult:
    model, train_step, step = build_train_step(backbone, policy, batch_size, side, joint_names,
                                               ghost_bn_group_size)
    if xla:
        # TrainStep compiles without XLA; its one-replica body is what an XLA build would wrap.
        replica_step = tf.function(lambda b: train_step._replica_step(b, True), jit_compile=True)

        def run(b):
            out = replica_step(b)
            step.assign_add(1)
            return out
    else:
        def run(b):
            return train_step(b, training=True)
    batch = random_batch(batch_size, side, len(joint_names), len(train_step.label_names_2d))
    rate, first = time_steps(run, batch, steps, batch_size)
    return StepResult(backbone, policy, xla, rate, first, backbone_forward_flops(model, side))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backbones', nargs='+', default=['tiny', 'efficientnetv2-b0'])
    parser.add_argument('--policies', nargs='+', default=['float32', 'mixed_bfloat16'])
    parser.add_argument('--xla', nargs='+', choices=['off', 'on'], default=['off'])
    parser.add_argument('--joint-set', default='real', help="union of output joints: 'real', "
                        "'synthetic' or 'all' (its 3D joints: posepile.joints.three_d_union_names)")
    parser.add_argument('--side', type=int, default=256)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--ghost-bn', type=int, default=16, help='ghost BN group size (0: off)')
    parser.add_argument('--steps', type=int, default=3, help='timed steps after 2 warm-up steps')
    parser.add_argument('--gemm-sizes', type=int, nargs='+', default=[512, 1024])
    args = parser.parse_args(argv)

    gemm = reference_gemm_flops(args.gemm_sizes, min_seconds=1.0)
    joint_names = three_d_union_names(args.joint_set)
    results = []
    for backbone in args.backbones:
        for policy in args.policies:
            for xla in args.xla:
                try:
                    results.append(time_train_step(
                        backbone, policy, xla == 'on', args.batch_size, args.steps, args.side,
                        joint_names, args.ghost_bn))
                except Exception as error:  # noqa: BLE001 - report the failing cell, go on
                    print(f'{backbone} {policy} xla={xla}: FAILED {type(error).__name__}: '
                          f'{str(error).splitlines()[0][:200]}')
                print(f'done: {backbone} {policy} xla={xla}', flush=True)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    print(f'\nTrain step at {args.side} px, batch {args.batch_size}, ghost BN '
          f'{args.ghost_bn}, {len(joint_names)} joints, {cores} CPU cores; reference GEMM '
          f'{gemm["best"] / 1e9:.1f} GFLOP/s (numpy {gemm["numpy"] / 1e9:.1f}, '
          f'TF {gemm["tensorflow"] / 1e9:.1f}); bfloat16 GEMM '
          f'{gemm["tensorflow_bfloat16"] / 1e9:.1f} GFLOP/s')
    print('| backbone | policy | XLA | examples/s | fwd GFLOPs/ex | train GFLOP/s | '
          'efficiency (vs float32 GEMM) | vs same-dtype GEMM | first step s |')
    print('|---|---|---|---:|---:|---:|---:|---:|---:|')
    same_dtype = {'float32': gemm['best'], 'mixed_float16': gemm['best'],
                  'mixed_bfloat16': gemm['tensorflow_bfloat16']}
    for r in results:
        achieved = r.examples_per_second * TRAIN_FLOPS_PER_FORWARD * r.forward_flops
        print(f'| {r.backbone} | {r.policy} | {"on" if r.xla else "off"} | '
              f'{r.examples_per_second:.2f} | {r.forward_flops / 1e9:.3f} | '
              f'{achieved / 1e9:.1f} | {achieved / gemm["best"]:.0%} | '
              f'{achieved / same_dtype[r.policy]:.0%} | {r.first_step_seconds:.1f} |')


if __name__ == '__main__':
    main()
