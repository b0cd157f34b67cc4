"""Benchmark of the training start-up on a synthetic tree of >= 1 M small records.

Run from the repository root:  .venv/bin/python -m bench.startup [--records=1048576 --shards=128]
Writes a tree as posepile.build lays it out (OUT/<dataset>/train/*.tfrecord + OUT/manifest.json)
of tiny real examples (16 px crops, 17 joints; ~1.9 KB each) into a temporary directory, then
times, each in a fresh process (nothing cached but the OS page cache, which the first run warms):
  - before: the start commit's metrabs.data.input_pipeline (loaded from git), which walks every
    record header of every shard in Python before the dataset exists;
  - after: this tree's, which reads the record counts and sizes from manifest.json;
for (a) building the training dataset and (b) the first batch (which reads one shard of each
part). Prints a table and `uptime`.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ''):
    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [_root] + [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(
        os.path.abspath(__file__))]

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEFORE_COMMIT = 'b64eda9'
JOINTS = ('head_h36m', 'neck_h36m', 'lsho_h36m', 'rsho_h36m', 'lelb_h36m', 'relb_h36m',
          'lwri_h36m', 'rwri_h36m', 'lhip_h36m', 'rhip_h36m', 'lkne_h36m', 'rkne_h36m',
          'lank_h36m', 'rank_h36m', 'pelv_h36m', 'spin_h36m', 'htop_h36m')
PARTS = ('alpha', 'beta')


def tiny_record(index: int) -> bytes:
    """One real serialized example: a 16 px crop of a person 4 m in front of the camera."""
    import numpy as np

    from posepile.camera import Camera, make_crop_camera
    from posepile.cropping import CroppedExample, encode_jpeg
    from posepile.tfrecord_schema import encode_example
    rng = np.random.default_rng(index)
    camera = Camera(intrinsic_matrix=[[1000, 0, 500], [0, 1000, 500], [0, 0, 1]])
    world = (rng.uniform(-300, 300, (len(JOINTS), 3)) + [0, 0, 4000]).astype(np.float32)
    points = camera.world_to_image(world.astype(np.float64))
    lo, hi = points.min(0), points.max(0)
    box = np.concatenate([lo, hi - lo])
    crop_camera = make_crop_camera(camera, box, 16, scale=1.25)
    image = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    return encode_example(CroppedExample(
        image_jpeg=encode_jpeg(image, 90), camera=crop_camera, world_coords=world,
        joint_names=JOINTS, box=np.array([2, 2, 12, 12], np.float32), crop_size=16,
        dataset='bench', sequence=f'seq{index}', frame=index))


def write_tree(out: pathlib.Path, total: int, num_shards: int) -> None:
    """OUT/<part>/train/examples-*.tfrecord for each part, and OUT/manifest.json."""
    import tensorflow as tf

    from posepile.shards import MANIFEST_NAME, file_sha256, shard_paths
    records = [tiny_record(i) for i in range(64)]
    per_part = total // len(PARTS)
    entries = []
    for part in PARTS:
        paths = shard_paths(out / part / 'train', num_shards)
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for s, path in enumerate(paths):
            count = per_part // num_shards + (s < per_part % num_shards)
            with tf.io.TFRecordWriter(str(path)) as writer:
                for i in range(count):
                    writer.write(records[i % len(records)])
            entries.append({'file': path.relative_to(out).as_posix(), 'dataset': part,
                            'split': 'train', 'num_examples': count,
                            'sha256': file_sha256(path), 'num_bytes': path.stat().st_size})
    (out / MANIFEST_NAME).write_text(json.dumps({'shards': entries}))


_CHILD = r'''
import importlib.util, json, sys, time
import tensorflow as tf
tf.get_logger().setLevel('ERROR')
pipeline_file, tree, joints = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
spec = importlib.util.spec_from_file_location('pipeline_under_test', pipeline_file)
ip = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = ip
spec.loader.exec_module(ip)
config = ip.InputConfig.from_mappings(
    joints, {p: f'{tree}/{p}/train/*.tfrecord' for p in ('alpha', 'beta')},
    {'alpha': 4, 'beta': 4}, proc_side=16, seed=0)
start = time.perf_counter()
dataset = ip.make_training_dataset(config)
built = time.perf_counter() - start
batch = next(iter(dataset))
first = time.perf_counter() - start
assert batch['image'].shape == (8, 16, 16, 3)
print(json.dumps({'built': built, 'first_batch': first}))
'''


def time_start_up(pipeline_file: pathlib.Path, tree: pathlib.Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, '-c', _CHILD, str(pipeline_file), str(tree), json.dumps(JOINTS)],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', 'PYTHONPATH': str(ROOT)})
    if result.returncode:
        raise RuntimeError(f'start-up run of {pipeline_file} failed:\n{result.stderr[-3000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--records', type=int, default=1 << 20)
    parser.add_argument('--shards', type=int, default=128, help='per dataset part')
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--keep', default=None, help='write the tree here and keep it')
    args = parser.parse_args()
    tree = pathlib.Path(args.keep or tempfile.mkdtemp(prefix='startup_bench_'))
    try:
        start = time.perf_counter()
        if not (tree / 'manifest.json').exists():
            write_tree(tree, args.records, args.shards)
        size = sum(p.stat().st_size for p in tree.rglob('*.tfrecord'))
        print(f'tree: {args.records} records in {2 * args.shards} shards, {size / 1e6:.0f} MB, '
              f'written in {time.perf_counter() - start:.0f} s')
        before = tree / 'input_pipeline_before.py'
        before.write_text(subprocess.run(
            ['git', 'show', f'{BEFORE_COMMIT}:metrabs/data/input_pipeline.py'], cwd=ROOT,
            capture_output=True, text=True, check=True).stdout)
        after = ROOT / 'metrabs' / 'data' / 'input_pipeline.py'
        time_start_up(after, tree)  # warms the page cache for both
        rows = []
        for label, path in ((f'before ({BEFORE_COMMIT}: framing walk)', before),
                            ('after (manifest counts)', after)):
            runs = [time_start_up(path, tree) for _ in range(args.repeats)]
            rows.append((label, min(r['built'] for r in runs),
                         min(r['first_batch'] for r in runs)))
        print(f'{"start-up path":40s} {"dataset built s":>16s} {"first batch s":>14s}')
        for label, built, first in rows:
            print(f'{label:40s} {built:16.2f} {first:14.2f}')
        print(subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip())
    finally:
        if args.keep is None:
            shutil.rmtree(tree, ignore_errors=True)


if __name__ == '__main__':
    main()
