"""Benchmark: examples/s of the MeTRAbs input pipeline (TFRecords -> augmented batches) on CPU.

Run from the repository root:
    .venv/bin/python -m bench.input_pipeline [--side=256 --stored-side=384 --stored-margin=2
        --batch-size=32 --batches=8] [--need=EXAMPLES_PER_S | --need-backbone=efficientnetv2-s]
Writes temporary shards of synthetic crops (random textures, a person mask, 17 labelled joints,
JPEG quality 95, stored like posepile's crops at --stored-side px with --stored-margin box sides),
then times full batches after a warm-up, for:
    test mode (decode + the test-time crop), geometry only (re-crop + warp), full augmentation
    (geometry + background p=0.7 + occlusion p=0.5 + colour),
and the numpy augmentation alone in this process's main thread (one core).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tqdm  # noqa: E402

from metrabs.data import augmentation as aug  # noqa: E402
from metrabs.data import input_pipeline as ip  # noqa: E402
from metrabs.data import occlusion  # noqa: E402
from posepile import tfrecord_schema  # noqa: E402
from posepile.camera import Camera, make_crop_camera  # noqa: E402
from posepile.cropping import (CroppedExample, box_to_crop, decode_rle, encode_jpeg,  # noqa: E402
                               encode_rle)
from posepile.joints import union_names  # noqa: E402
from posepile.shards import ShardWriter  # noqa: E402

JOINTS = tuple(union_names('h36m_17'))


def synthetic_crop(rng: np.random.Generator, side: int, index: int,
                   margin: float = 2.0) -> CroppedExample:
    """One crop: a person ~1.7 m tall 3-6 m away from an HD camera, random texture image."""
    original = Camera(optical_center=rng.uniform(-500, 500, 3) + [0, -1000, -4500],
                      intrinsic_matrix=[[1000, 0, 960], [0, 1000, 540], [0, 0, 1]])
    person = np.array([0, -900, 0]) + rng.uniform(-1000, 1000, 3)
    original.turn_towards(target_world_point=person)
    world = (person + rng.normal(0, 1, (len(JOINTS), 3)) * [200, 450, 150]).astype(np.float32)
    points = original.world_to_image(world.astype(np.float64))
    lo, hi = points.min(0), points.max(0)
    box = np.concatenate([lo, hi - lo])
    camera = make_crop_camera(original, box, side, scale=margin)
    image = np.round(occlusion.random_texture(rng, (side, side)) * 255).astype(np.uint8)
    mask = np.zeros((side, side), np.uint8)
    cv2.ellipse(mask, (side // 2, side // 2), (side // 5, side * 2 // 5), 0, 0, 360, 1, -1)
    return CroppedExample(encode_jpeg(image, 95), camera, world, JOINTS,
                          box_to_crop(box, original, camera), side, 'synthetic', frame=index,
                          mask=encode_rle(mask.astype(bool)))


def write_shards(root: str, n_examples: int, n_shards: int, side: int, seed: int = 0,
                 margin: float = 2.0) -> str:
    rng = np.random.default_rng(seed)
    writer = ShardWriter(root, n_shards)
    per_shard = np.array_split(np.arange(n_examples), n_shards)
    for shard, indices in enumerate(tqdm.tqdm(per_shard, desc='writing shards', unit='shard')):
        writer.write_shard(shard, [tfrecord_schema.encode_example(
            synthetic_crop(rng, side, int(i), margin)) for i in indices])
    return os.path.join(root, '*.tfrecord')


def time_batches(dataset, n_batches: int, batch_size: int, name: str) -> float:
    """Examples/s over `n_batches` batches after one warm-up batch."""
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in tqdm.trange(n_batches, desc=name, unit='batch', leave=False):
        next(iterator)
    return n_batches * batch_size / (time.perf_counter() - start)


def time_numpy_augment(pattern: str, config: ip.InputConfig, n: int) -> float:
    """Examples/s of `augmentation.augment` (full) on decoded records, one thread."""
    import tensorflow as tf
    records = [r.numpy() for r in tf.data.TFRecordDataset(
        ip.DatasetPart('x', pattern, 1).shard_paths()).take(n)]
    parsed = [tfrecord_schema.decode_example(r, union_names=JOINTS) for r in records]
    perm = aug.mirror_perm_for(JOINTS)
    no_labels = np.full((len(config.label_names_2d), 2), np.nan)
    perm2d = np.arange(len(no_labels))
    start = time.perf_counter()
    for i, p in enumerate(parsed):
        mask = decode_rle({'size': p['mask_size'].tolist(), 'counts': p['mask_counts']})
        aug.augment(p['image'], tfrecord_schema.camera_from_parsed(p), p['world_coords'],
                    p['joint_valid'], no_labels, False, p['box'], mask.astype(bool), perm,
                    perm2d, aug.example_rng(0, 0, i), config.augmentation, config.proc_side)
    return len(parsed) / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--side', type=int, default=256, help='proc_side (output crop side)')
    parser.add_argument('--stored-side', type=int, default=None,
                        help='stored crop side (default: --side)')
    parser.add_argument('--stored-margin', type=float, default=2.0,
                        help='stored crop margin in box sides (posepile.cropping.CropConfig)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--batches', type=int, default=8, help='timed batches per setting')
    parser.add_argument('--examples', type=int, default=96, help='examples in the temp shards')
    parser.add_argument('--shards', type=int, default=4)
    parser.add_argument('--parallel', type=int, default=-1,
                        help='num_parallel_calls (-1: tf.data.AUTOTUNE)')
    parser.add_argument('--need', type=float, default=None,
                        help="the train step's examples/s to compare with (e.g. from "
                             'bench.train_step)')
    parser.add_argument('--need-backbone', default=None,
                        help="measure the train step's need here instead: float32 train step "
                             'of this backbone (bench.train_step), at --side and --batch-size')
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix='bench_input_pipeline_') as root:
        pattern = write_shards(root, args.examples, args.shards, args.stored_side or args.side,
                               margin=args.stored_margin)
        base = ip.InputConfig.from_mappings(
            JOINTS, {'synthetic': pattern}, {'synthetic': args.batch_size},
            proc_side=args.side, num_parallel_calls=args.parallel)
        geometry_only = dataclasses.replace(base, augmentation=dataclasses.replace(
            base.augmentation, color=False, occlusion_prob=0, background_prob=0))
        rows = [
            ('test mode (no augmentation)',
             time_batches(ip.make_eval_dataset(base, args.batch_size).repeat(), args.batches,
                          args.batch_size, 'test mode')),
            ('geometry only', time_batches(ip.make_training_dataset(geometry_only),
                                           args.batches, args.batch_size, 'geometry')),
            ('full augmentation', time_batches(ip.make_training_dataset(base), args.batches,
                                               args.batch_size, 'full')),
            ('numpy augment() alone, 1 thread',
             time_numpy_augment(pattern, base, min(args.examples, 48))),
        ]
    need, need_source = args.need, 'given by --need'
    if args.need_backbone:
        from bench import train_step as bench_train_step
        from posepile.joints import get_union
        need = bench_train_step.time_train_step(
            args.need_backbone, 'float32', False, args.batch_size, 3, args.side,
            get_union('real').names, min(16, args.batch_size)).examples_per_second
        need_source = f'{args.need_backbone} float32 train step measured here'
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    print(f'\nInput pipeline at {args.side} px, batch {args.batch_size}, {cores} CPU cores')
    print(f'| {"setting":<34} | {"examples/s":>10} |')
    print(f'|{"-" * 36}|{"-" * 12}|')
    for name, rate in rows:
        print(f'| {name:<34} | {rate:>10.1f} |')
    if need:
        print(f'| {"train step need":<34} | {need:>10.1f} |  ({need_source})')
        full = dict(rows)['full augmentation']
        print(f'full augmentation / need = {full / need:.2f} '
              f'({"enough" if full >= need else "the input pipeline is the bottleneck"}; both '
              f'share the same cores in training)')


if __name__ == '__main__':
    main()
