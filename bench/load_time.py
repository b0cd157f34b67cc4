"""Benchmark what a user waits for: export, `tf.saved_model.load`, the first call, steady latency.

    python -m bench.load_time [--backbones small efficientnetv2-s] [--sides 256 384]
        [--joint-set real] [--batches 1 8 32] [--image-size 640 480] [--keep DIR]
(run from the repository root; `python bench/load_time.py` works too)

For each backbone and crop side a freshly initialised model (random weights: time does not
depend on them) over the joint set is exported by metrabs.serving.saved_model.export to a
temporary directory. Then fresh Python processes (nothing cached by an earlier load) time:
    load:        tf.saved_model.load(DIR) (TensorFlow already imported);
    first call:  the first detect_poses (one process) and the first estimate_poses (another
                 process), each on one image of --image-size with one person box, num_aug=1;
                 without a detector the whole image is that box (documented fallback);
    steady:      per-crop latency of predict_crops and per-image latency of
                 estimate_poses_batched / detect_poses_batched with B images of one person each,
                 at each batch B, after two warm-up calls.
Every measurement prints the machine's `uptime` (the load average: other processes on the
cores make every number pessimistic) and the table gives, next to wall time, the process's CPU
time (time.process_time, all its threads), which depends much less on what else runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

# Run as a script, Python puts bench/ first on the path, where bench/posepile.py (another
# benchmark) would shadow the posepile package; the repository root must come first instead.
_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or '.') == _BENCH_DIR:
    sys.path[0] = os.path.dirname(_BENCH_DIR)
_REPO = os.path.dirname(_BENCH_DIR)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def uptime() -> str:
    return subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()


def export_random_model(backbone: str, side: int, joint_set: str, out_dir: str) -> float:
    """Exports a freshly initialised model; returns the seconds the export took."""
    import tensorflow as tf

    from metrabs.model.config import ModelConfig
    from metrabs.model.description import joint_names_of_set
    from metrabs.model.metrabs_model import MetrabsModel
    from metrabs.serving.saved_model import export
    config = ModelConfig(backbone=backbone, proc_side=side, ghost_bn_group_size=0)
    model = MetrabsModel(config, joint_names_of_set(joint_set))
    model(tf.zeros([1, side, side, 3]), tf.eye(3, batch_shape=[1]))
    start = time.perf_counter()
    export(model, out_dir)
    return time.perf_counter() - start


def _steady(call, min_seconds: float) -> float:
    """Seconds per call after two warm-up calls, averaged over at least min_seconds."""
    for _ in range(2):
        call()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds or count < 2:
        call()
        count += 1
    return (time.perf_counter() - start) / count


def measure(model_dir: str, first: str, image_size: tuple[int, int], batches: list[int],
            min_seconds: float) -> dict:
    """In this (fresh) process: load time, the first `first` call, then (for 'detect') steady
    latencies. Returns a JSON-able dict of seconds."""
    import numpy as np
    import tensorflow as tf
    result = {'uptime_before': uptime()}
    start, cpu = time.perf_counter(), time.process_time()
    model = tf.saved_model.load(model_dir)
    result['load_s'] = time.perf_counter() - start
    result['load_cpu_s'] = time.process_time() - cpu
    width, height = image_size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    box = np.array([[width * 0.3, height * 0.1, width * 0.4, height * 0.8]], np.float32)
    start, cpu = time.perf_counter(), time.process_time()
    if first == 'detect':
        model.detect_poses(image, num_aug=1)['poses3d'].numpy()
    else:
        model.estimate_poses(image, box, num_aug=1)['poses3d'].numpy()
    result[f'first_{first}_s'] = time.perf_counter() - start
    result[f'first_{first}_cpu_s'] = time.process_time() - cpu
    if first == 'detect':
        side = int(model.input_resolution.numpy())
        k = np.array([[side, 0, (side - 1) / 2], [0, side, (side - 1) / 2], [0, 0, 1]],
                     np.float32)
        steady = {}
        for batch in batches:
            crops = tf.constant(rng.integers(0, 256, (batch, side, side, 3)).astype(np.uint8))
            intr = tf.constant(np.tile(k, (batch, 1, 1)))
            images = tf.constant(np.repeat(image[None], batch, axis=0))
            boxes = tf.RaggedTensor.from_row_lengths(np.repeat(box, batch, axis=0),
                                                     np.ones(batch, np.int64))
            steady[batch] = {
                'predict_crops_s_per_crop': _steady(
                    lambda: model.predict_crops(crops, intr)['poses3d'].numpy(),
                    min_seconds) / batch,
                'estimate_batched_s_per_image': _steady(
                    lambda: model.estimate_poses_batched(images, boxes, num_aug=1)[
                        'poses3d'].flat_values.numpy(), min_seconds) / batch,
                'detect_batched_s_per_image': _steady(
                    lambda: model.detect_poses_batched(images, num_aug=1)[
                        'poses3d'].flat_values.numpy(), min_seconds) / batch}
        result['steady'] = steady
    result['uptime_after'] = uptime()
    return result


def _child(model_dir: str, first: str, args) -> dict:
    cmd = [sys.executable, '-m', 'bench.load_time', f'--measure={model_dir}', f'--first={first}',
           '--image-size', *map(str, args.image_size), '--seconds', str(args.seconds),
           '--batches', *map(str, args.batches if first == 'detect' else [])]
    out = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f'measurement of {model_dir} failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--backbones', nargs='+', default=['small', 'efficientnetv2-s'])
    parser.add_argument('--sides', type=int, nargs='+', default=[256, 384])
    parser.add_argument('--joint-set', default='real')
    parser.add_argument('--batches', type=int, nargs='*', default=[1, 8, 32])
    parser.add_argument('--image-size', type=int, nargs=2, default=[640, 480],
                        metavar=('WIDTH', 'HEIGHT'))
    parser.add_argument('--seconds', type=float, default=2.0, help='minimum steady timing')
    parser.add_argument('--keep', help='export into this directory (kept) instead of a temp one')
    parser.add_argument('--measure', help=argparse.SUPPRESS)
    parser.add_argument('--first', choices=['detect', 'estimate'], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.first, tuple(args.image_size), args.batches,
                                 args.seconds)))
        return

    rows, steady_rows = [], []
    for backbone in args.backbones:
        for side in args.sides:
            root = args.keep or tempfile.mkdtemp(prefix='bench_load_')
            model_dir = os.path.join(root, f'{backbone}_{side}')
            print(f'[{backbone} {side} px] export ... {uptime()}', flush=True)
            export_s = export_random_model(backbone, side, args.joint_set, model_dir)
            size_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(model_dir)
                          for f in files) / 1e6
            detect = _child(model_dir, 'detect', args)
            estimate = _child(model_dir, 'estimate', args)
            for r in (detect, estimate):
                print(f'  measured between "{r["uptime_before"]}" and "{r["uptime_after"]}"',
                      flush=True)
            rows.append(f'| {backbone} | {side} | {export_s:.1f} | {size_mb:.0f} | '
                        f'{detect["load_s"]:.1f} / {estimate["load_s"]:.1f} '
                        f'({detect["load_cpu_s"]:.1f} / {estimate["load_cpu_s"]:.1f}) | '
                        f'{detect["first_detect_s"]:.2f} ({detect["first_detect_cpu_s"]:.2f}) | '
                        f'{estimate["first_estimate_s"]:.2f} '
                        f'({estimate["first_estimate_cpu_s"]:.2f}) |')
            for batch, s in detect['steady'].items():
                steady_rows.append(
                    f'| {backbone} | {side} | {batch} | {1000 * s["predict_crops_s_per_crop"]:.1f}'
                    f' | {1000 * s["estimate_batched_s_per_image"]:.1f} | '
                    f'{1000 * s["detect_batched_s_per_image"]:.1f} |')
    print(f'\njoint set {args.joint_set!r}; image {args.image_size[0]}x{args.image_size[1]}, '
          f'one person box, num_aug=1')
    print('wall seconds (CPU seconds of the process, all threads, in brackets)')
    print('| backbone | side px | export s | SavedModel MB | load s (2 runs) '
          '| first detect_poses s | first estimate_poses s |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    print('\n'.join(rows))
    print('\n| backbone | side px | batch | predict_crops ms/crop | estimate_poses_batched ms/image'
          ' | detect_poses_batched ms/image |')
    print('|---|---:|---:|---:|---:|---:|')
    print('\n'.join(steady_rows))
    print(f'\n{uptime()}')


if __name__ == '__main__':
    main()
