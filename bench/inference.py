"""Benchmark predict_crops on CPU: crops/s at batch 1 and 32, and FLOPs per crop, as a table.

    python -m bench.inference --model=EXPORTED_DIR
    python -m bench.inference --backbone=efficientnetv2-s [--proc-side=256] [--joint-set=real]
(run from the repository root; `python bench/inference.py` works too)

With --backbone a freshly initialised model (random weights; speed does not depend on them) is
wrapped in the same PoseEstimatorModule that metrabs.export saves. FLOPs come from TF's graph
profiler on the frozen batch-1 graph (multiply-add = 2 FLOPs), so they count the backbone, the
head, soft-argmax and the absolute reconstruction.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# Run as a script, Python puts bench/ first on the path, where bench/posepile.py (another
# benchmark) would shadow the posepile package; the repository root must come first instead.
_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or '.') == _BENCH_DIR:
    sys.path[0] = os.path.dirname(_BENCH_DIR)

import numpy as np
import tensorflow as tf

from bench.flops import graph_flops


def flops_per_crop(predict_crops, side: int) -> float:
    """Float operations for one crop, from the frozen graph of predict_crops at batch 1."""
    return graph_flops(lambda images, intrinsics: predict_crops(images, intrinsics),
                       [tf.TensorSpec([1, side, side, 3], tf.uint8),
                        tf.TensorSpec([1, 3, 3], tf.float32)])


def crops_per_second(predict_crops, side: int, batch: int, min_seconds: float = 3.0,
                     warmup: int = 2) -> float:
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (batch, side, side, 3)).astype(np.uint8))
    k = np.array([[side * 1.5, 0, (side - 1) / 2], [0, side * 1.5, (side - 1) / 2], [0, 0, 1]])
    intrinsics = tf.constant(np.tile(k[None], (batch, 1, 1)).astype(np.float32))
    for _ in range(warmup):
        predict_crops(images, intrinsics)['poses3d'].numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds or count < 2:
        predict_crops(images, intrinsics)['poses3d'].numpy()
        count += 1
    return count * batch / (time.perf_counter() - start)


def detect_poses_latency(module, image_side: int, num_aug: int, min_seconds: float = 3.0,
                         warmup: int = 1) -> float:
    """Seconds per detect_poses call on one random image [image_side, image_side, 3] uint8.

    Without a detector in the module the whole image is one person box (documented fallback),
    so this is the latency of cropping + num_aug test-time augmentations + filtering for one
    person; a detector's own time comes on top.
    """
    rng = np.random.default_rng(1)
    image = tf.constant(rng.integers(0, 256, (image_side, image_side, 3)).astype(np.uint8))
    for _ in range(warmup):
        module.detect_poses(image, num_aug=num_aug)['poses3d'].numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds or count < 2:
        module.detect_poses(image, num_aug=num_aug)['poses3d'].numpy()
        count += 1
    return (time.perf_counter() - start) / count


def _module_from_args(args):
    if args.model:
        module = tf.saved_model.load(args.model)
        side = int(module.input_resolution.numpy())
        return module, side, args.model
    from metrabs.model.config import ModelConfig
    from metrabs.model.description import joint_names_of_set
    from metrabs.serving.inference_module import PoseEstimatorModule
    from metrabs.model.metrabs_model import MetrabsModel
    config = ModelConfig(backbone=args.backbone, proc_side=args.proc_side, ghost_bn_group_size=0)
    model = MetrabsModel(config, joint_names_of_set(args.joint_set))
    model(tf.zeros([1, args.proc_side, args.proc_side, 3]), tf.eye(3, batch_shape=[1]))
    return PoseEstimatorModule(model), args.proc_side, (
        f'{args.backbone} ({args.proc_side} px, {len(model.joint_names)} joints)')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', help='exported SavedModel directory')
    parser.add_argument('--backbone', default='efficientnetv2-s')
    parser.add_argument('--proc-side', type=int, default=256)
    parser.add_argument('--joint-set', default='real')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 32])
    parser.add_argument('--seconds', type=float, default=3.0, help='minimum timing per batch')
    parser.add_argument('--image-side', type=int, default=1000,
                        help='side of the square image given to detect_poses, pixels')
    parser.add_argument('--num-aug', type=int, nargs='+', default=[1, 5],
                        help='test-time augmentations per detect_poses call')
    args = parser.parse_args(argv)
    module, side, label = _module_from_args(args)
    gflops = flops_per_crop(module.predict_crops, side) / 1e9
    threading = tf.config.threading
    print(f'model: {label}; CPU threads: inter {threading.get_inter_op_parallelism_threads()} '
          f'intra {threading.get_intra_op_parallelism_threads()} (0 = all cores)')
    print('| batch | crops/s | ms/crop | GFLOPs/crop |')
    print('|---:|---:|---:|---:|')
    for batch in args.batches:
        rate = crops_per_second(module.predict_crops, side, batch, args.seconds)
        print(f'| {batch} | {rate:.1f} | {1000 / rate:.1f} | {gflops:.3f} |')
    print(f'\ndetect_poses on one {args.image_side}x{args.image_side} image (no detector: the '
          f'whole image is one box)')
    print('| num_aug | ms/call |')
    print('|---:|---:|')
    for num_aug in args.num_aug:
        latency = detect_poses_latency(module, args.image_side, num_aug, args.seconds)
        print(f'| {num_aug} | {1000 * latency:.1f} |')


if __name__ == '__main__':
    main()
