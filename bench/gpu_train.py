"""Benchmark: MeTRAbs training examples/s on GPUs, and the CPU input pipeline it needs.

Run from the repository root on a machine with NVIDIA GPUs (setup: pip install -e '.[gpu]'):
    .venv/bin/python -m bench.gpu_train
        [--backbones efficientnetv2-s efficientnetv2-l] [--sides 256 384]
        [--policies mixed_float16] [--xla off on] [--gpus 1 all] [--batch-per-gpu 16]
        [--steps 20] [--input-examples 256]
On a machine without a GPU it says so and exits 0 (--allow-cpu runs the same cells on CPU
devices, for testing this script: the numbers then mean nothing for GPUs).

Training cells: for each (backbone, px, policy, XLA, number of GPUs) a fresh process (so every
cell starts with empty GPU memory and its own XLA setting) builds the model over the joints of the
'real' union with ghost BN 16 (the paper's), AdamW from build_optimizers and
metrabs.training.step.TrainStep under MirroredStrategy over the first n GPUs (one GPU:
OneDeviceStrategy), and times steps on one fixed random batch of batch_per_gpu x n examples after two
warm-up steps (bench.train_step's batch and timing; data loading is timed separately).
XLA 'on' is TF's auto-clustering (tf.config.optimizer.set_jit(True)), which compiles the
step's clusters on every replica under any strategy. A cell that runs out of memory is
reported as OOM.

Input pipeline: bench.input_pipeline's synthetic crops (JPEG, mask, full augmentation) at each
px through metrabs.data.input_pipeline with all cores (tf.data AUTOTUNE), reported per CPU core,
and the numpy augmentation alone on one core. "cores to feed" = a cell's examples/s divided by
the per-core rate of the full pipeline: the host needs that many cores for data alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

RESULT_PREFIX = 'RESULT '
GHOST_BN = 16


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training measurement."""
    backbone: str
    side: int
    policy: str
    xla: bool
    devices: int
    batch_per_device: int
    steps: int
    cpu: bool = False  # --allow-cpu: logical CPU devices instead of GPUs

    @property
    def global_batch(self) -> int:
        return self.batch_per_device * self.devices


def run_cell(cell: Cell) -> dict:
    """Measures one cell in this process (called in the cell's own subprocess)."""
    import tensorflow as tf
    from metrabs.training import distribution
    if cell.cpu and cell.devices > 1:
        distribution.make_logical_cpus(cell.devices)
    if cell.xla:
        tf.config.optimizer.set_jit(True)
    from bench import train_step as bench_step
    from posepile.joints import three_d_union_names
    if cell.cpu:
        devices = [f'/cpu:{i}' for i in range(cell.devices)]
    else:
        gpus = tf.config.list_physical_devices('GPU')
        for gpu in gpus:  # grow memory as needed, so a too-big cell fails alone as OOM
            tf.config.experimental.set_memory_growth(gpu, True)
        devices = [f'/gpu:{i}' for i in range(cell.devices)]
    strategy = (distribution.make_strategy('mirrored', devices) if cell.devices > 1
                else tf.distribute.OneDeviceStrategy(devices[0]))
    joint_names = three_d_union_names('real')
    model, train_step, _ = bench_step.build_train_step(
        cell.backbone, cell.policy, cell.global_batch, cell.side, joint_names,
        min(GHOST_BN, cell.batch_per_device), strategy)
    batch = bench_step.random_batch(cell.global_batch, cell.side, len(joint_names),
                                    len(train_step.label_names_2d))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    distributed = iter(strategy.experimental_distribute_dataset(dataset))
    one_batch = next(distributed)
    rate, first = bench_step.time_steps(lambda b: train_step(b, training=True), one_batch,
                                        cell.steps, cell.global_batch)
    return {'examples_per_second': rate, 'first_step_seconds': first}


def measure_in_subprocess(cell: Cell) -> dict:
    command = [sys.executable, '-m', 'bench.gpu_train', '--cell',
               json.dumps(dataclasses.asdict(cell))]
    done = subprocess.run(command, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    text = done.stderr + done.stdout
    if 'ResourceExhaustedError' in text or 'OOM' in text or 'out of memory' in text:
        return {'error': 'OOM'}
    tail = [line for line in text.splitlines() if line.strip()][-1:] or ['no output']
    return {'error': f'exit {done.returncode}: {tail[0][:160]}'}


def input_pipeline_rates(side: int, batch_size: int, n_examples: int, batches: int) -> dict:
    """{'full_per_core', 'full_all_cores', 'numpy_one_core'} examples/s at `side` px."""
    from bench import input_pipeline as bench_ip
    from metrabs.data import input_pipeline as ip
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix='bench_gpu_train_') as root:
        pattern = bench_ip.write_shards(root, n_examples, max(1, min(8, n_examples // 32)),
                                        side)
        config = ip.InputConfig.from_mappings(bench_ip.JOINTS, {'synthetic': pattern},
                                              {'synthetic': batch_size}, proc_side=side)
        full = bench_ip.time_batches(ip.make_training_dataset(config), batches, batch_size,
                                     f'input {side} px')
        numpy_rate = bench_ip.time_numpy_augment(pattern, config, min(n_examples, 48))
    return {'full_all_cores': full, 'full_per_core': full / cores, 'numpy_one_core': numpy_rate,
            'cores': cores}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backbones', nargs='+', default=['efficientnetv2-s', 'efficientnetv2-l'])
    parser.add_argument('--sides', nargs='+', type=int, default=[256, 384])
    parser.add_argument('--policies', nargs='+', default=['mixed_float16'])
    parser.add_argument('--xla', nargs='+', choices=['off', 'on'], default=['off', 'on'])
    parser.add_argument('--gpus', nargs='+', default=['1', 'all'],
                        help="device counts per cell: integers and/or 'all'")
    parser.add_argument('--batch-per-gpu', type=int, default=16,
                        help='examples per GPU (8 GPUs x 16 = the paper\'s batch of 128)')
    parser.add_argument('--steps', type=int, default=20, help='timed steps after 2 warm-up ones')
    parser.add_argument('--input-examples', type=int, default=256,
                        help='examples in the temporary shards of the input pipeline test')
    parser.add_argument('--input-batches', type=int, default=8)
    parser.add_argument('--allow-cpu', type=int, default=0, metavar='N',
                        help='without GPUs: run the cells on N logical CPU devices instead '
                             '(tests this script; meaningless numbers)')
    parser.add_argument('--cell', default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _device_counts(requested, available: int) -> list[int]:
    counts = []
    for item in requested:
        n = available if item == 'all' else int(item)
        if 1 <= n <= available and n not in counts:
            counts.append(n)
    return counts


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.cell is not None:
        result = run_cell(Cell(**json.loads(args.cell)))
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    import tensorflow as tf
    n_gpus = len(tf.config.list_physical_devices('GPU'))
    if n_gpus == 0 and not args.allow_cpu:
        print('bench.gpu_train: no GPU visible to TensorFlow '
              f'(tf.config.list_physical_devices("GPU") is empty; TF {tf.__version__}). This '
              'benchmark measures GPU training; nothing to do on a CPU-only machine. '
              '(CUDA_VISIBLE_DEVICES=' + os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>') + ')')
        return 0
    cpu = n_gpus == 0
    available = args.allow_cpu if cpu else n_gpus
    if cpu:
        device_name = 'CPU devices (--allow-cpu)'
    else:
        device_name = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices('GPU')[0]).get('device_name', 'GPU')
    counts = _device_counts(args.gpus, available)
    rows = []
    for backbone in args.backbones:
        for side in args.sides:
            for policy in args.policies:
                for xla in args.xla:
                    for n in counts:
                        cell = Cell(backbone, side, policy, xla == 'on', n, args.batch_per_gpu,
                                    args.steps, cpu)
                        started = time.perf_counter()
                        result = measure_in_subprocess(cell)
                        print(f'done: {backbone} {side}px {policy} xla={xla} x{n}: {result} '
                              f'({time.perf_counter() - started:.0f} s)', flush=True)
                        rows.append((cell, result))
    pipeline = {side: input_pipeline_rates(side, args.batch_per_gpu, args.input_examples,
                                           args.input_batches) for side in args.sides}

    cores = len(os.sched_getaffinity(0))
    from posepile.joints import three_d_union_names
    print(f'\nTraining on {available} x {device_name}; {cores} CPU cores; '
          f'{len(three_d_union_names("real"))} joints, ghost BN '
          f'{GHOST_BN}, batch {args.batch_per_gpu} per device, {args.steps} timed steps')
    print('| backbone | px | policy | XLA | devices | batch | examples/s | per device | '
          'scaling | first step s | cores to feed |')
    print('|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|')
    single = {(c.backbone, c.side, c.policy, c.xla): r.get('examples_per_second')
              for c, r in rows if c.devices == 1}
    for cell, result in rows:
        head = (f'| {cell.backbone} | {cell.side} | {cell.policy} | '
                f'{"on" if cell.xla else "off"} | {cell.devices} | {cell.global_batch} |')
        if 'error' in result:
            print(f'{head} {result["error"]} | | | | |')
            continue
        rate = result['examples_per_second']
        one = single.get((cell.backbone, cell.side, cell.policy, cell.xla))
        scaling = f'{rate / (one * cell.devices):.0%}' if one and cell.devices > 1 else ''
        feed = rate / pipeline[cell.side]['full_per_core']
        print(f'{head} {rate:.1f} | {rate / cell.devices:.1f} | {scaling} | '
              f'{result["first_step_seconds"]:.1f} | {feed:.1f} |')
    print(f'\nInput pipeline (full augmentation, batch {args.batch_per_gpu}), {cores} cores')
    print('| px | examples/s, all cores | per core | numpy augment, 1 core |')
    print('|---:|---:|---:|---:|')
    for side, rates in pipeline.items():
        print(f'| {side} | {rates["full_all_cores"]:.1f} | {rates["full_per_core"]:.1f} | '
              f'{rates["numpy_one_core"]:.1f} |')
    print('scaling = examples/s / (n x one device); cores to feed = examples/s / per-core '
          'input rate (more than this host has: the input pipeline limits training)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
