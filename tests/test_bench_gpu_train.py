"""bench.gpu_train: on this CPU-only machine it says so and exits 0; its cells (MirroredStrategy
over several devices, the table) are exercised on logical CPU devices with --allow-cpu."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=REPO)
    env.pop('CUDA_VISIBLE_DEVICES', None)
    return subprocess.run([sys.executable, '-m', 'bench.gpu_train', *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_without_a_gpu_it_says_so_and_exits_0():
    done = _run()
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'no GPU visible to TensorFlow' in done.stdout
    assert '| backbone |' not in done.stdout  # nothing was measured


def test_cells_run_on_logical_cpu_devices_with_allow_cpu():
    done = _run('--allow-cpu', '2', '--backbones', 'tiny', '--sides', '64', '--policies',
                'float32', '--xla', 'off', '--gpus', 'all', '--batch-per-gpu', '4', '--steps',
                '1', '--input-examples', '16', '--input-batches', '1')
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith('| tiny |')]
    assert len(rows) == 1, done.stdout
    cells = [c.strip() for c in rows[0].strip('|').split('|')]
    assert cells[:6] == ['tiny', '64', 'float32', 'off', '2', '8']
    assert float(cells[6]) > 0 and abs(float(cells[7]) - float(cells[6]) / 2) <= 0.06
    assert '| 64 |' in done.stdout  # the input pipeline row
