"""Every command-line tool: how long `--help` takes, and what a user error prints, as a table.

    python -m bench.cli_startup [--repeats=3] [--commands posepile.mix eval.run ...]

For each CLI (fresh process each time): the median wall time of `python -m CLI --help`, whether
`--help` imported TensorFlow (`-X importtime` lists the modules a process imports), and for one
typical user error (a missing input file) the exit status, the number of stderr lines, how many
of them are TensorFlow's C++ start-up logging (absl 'I0000 / W0000 / E0000 …' lines and their
banner), and the last stderr line. Plus the start-up lines of a bare `import tensorflow` under
TF_CPP_MIN_LOG_LEVEL 0..3, which is what the CLIs have to silence.
Nothing is written outside a temporary directory.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or '.') == _BENCH_DIR:
    sys.path[0] = os.path.dirname(_BENCH_DIR)

# One user error per CLI: an input that does not exist ({tmp} is a fresh empty directory).
COMMANDS = {
    'posepile.build': ['--dataset=custom', '--root={tmp}/missing', '--out={tmp}/out'],
    'posepile.build_all': ['--roots={tmp}/missing.json', '--out={tmp}/out'],
    'posepile.mix': ['--config={tmp}/missing.json', '--out={tmp}/input.json'],
    'posepile.synthetic': ['--out={tmp}/world', '--num=-5'],
    'posepile.joints': ['--skeleton=nosuchskeleton'],
    'metrabs.train': ['--config={tmp}/missing.json', '--logdir={tmp}/log', '--data=tfrecords'],
    'metrabs.export': ['--checkpoint={tmp}/missing', '--out={tmp}/model'],
    'metrabs.pseudo_gt': ['--model={tmp}/missing', '--datasets=a={tmp}/*.tfrecord',
                          '--out={tmp}/p.npz'],
    'metrabs.demo': ['--model={tmp}/missing', '--image={tmp}/missing.jpg', '--out={tmp}/d.png'],
    'metrabs.video': ['--model={tmp}/missing', '--input={tmp}/missing.mp4', '--out={tmp}/v.npz'],
    'metrabs.config_reference': ['--check={tmp}/missing.md'],
    'metrabs.training.slurm': [],  # outside a SLURM job: no SLURM_*NODELIST variable
    'acae.train': ['--poses={tmp}/missing.npz', '--out={tmp}/acae'],
    'eval.run': ['--benchmark=synthetic', '--root={tmp}/missing', '--predictions={tmp}/p.npz'],
    'eval.compare': ['a={tmp}/missing.json'],
    'eval.consistency': ['--predictions=a={tmp}/missing.npz'],
    'eval.acae_depth_noise': ['--json={tmp}/missing/out.json'],
}
TF_LOG_LINE = re.compile(r'^(WARNING: All log messages before absl::InitializeLog|'
                         r'[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|To enable the following '
                         r'instructions)')


def _module_exists(name: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(args: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                            env=env, timeout=600)
    return time.perf_counter() - start, result


def help_row(module: str, repeats: int) -> tuple[float, float, bool, int]:
    """(median wall seconds of --help, median CPU seconds of its process (user + system: far less
    sensitive to other load than the wall time), whether --help imported tensorflow, its exit
    status)."""
    times, cpu = [], []
    for _ in range(repeats):
        cpu_before = _children_cpu_seconds()
        seconds, result = _run(['-m', module, '--help'])
        times.append(seconds)
        cpu.append(_children_cpu_seconds() - cpu_before)
    _, traced = _run(['-X', 'importtime', '-m', module, '--help'])
    imported_tf = any(re.search(r'\|\s+tensorflow$', line) for line in traced.stderr.splitlines())
    return statistics.median(times), statistics.median(cpu), imported_tf, result.returncode


def error_row(module: str, argv: list[str], tmp: str) -> tuple[int, int, int, str]:
    """(exit status, stderr lines, of which TF start-up lines, last stderr line)."""
    _, result = _run(['-m', module, *[a.format(tmp=tmp) for a in argv]])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    n_tf = sum(1 for line in lines if TF_LOG_LINE.match(line))
    return result.returncode, len(lines), n_tf, (lines[-1] if lines else '')


def import_tf_lines() -> dict[str, int]:
    """TF_CPP_MIN_LOG_LEVEL -> start-up lines of `import tensorflow` + one device listing."""
    code = 'import tensorflow as tf; tf.config.list_physical_devices()'
    counts = {}
    for level in ('0', '1', '2', '3'):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=level)
        _, result = _run(['-c', code], env=env)
        counts[level] = sum(1 for line in result.stderr.splitlines() if line.strip())
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.cli_startup', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=3, help='--help runs per CLI (median)')
    parser.add_argument('--commands', nargs='*', default=None, help='subset of the CLIs')
    args = parser.parse_args(argv)
    print(f'load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} (1 / 5 min), '
          f'{os.cpu_count()} CPUs')
    counts = import_tf_lines()
    print('import tensorflow + list_physical_devices, stderr lines by TF_CPP_MIN_LOG_LEVEL: '
          + ', '.join(f'{k}: {v}' for k, v in counts.items()))
    print()
    print('| CLI | --help s | --help CPU s | --help imports TF | error exit | stderr lines | '
          'TF log lines | last stderr line |')
    print('|---|---:|---:|---|---:|---:|---:|---|')
    with tempfile.TemporaryDirectory() as tmp:
        for module, error_argv in COMMANDS.items():
            if args.commands and module not in args.commands:
                continue
            if not _module_exists(module):
                print(f'| {module} | – | – | (not in this tree) | | | | |')
                continue
            seconds, cpu, imported_tf, _ = help_row(module, args.repeats)
            code, n_lines, n_tf, last = error_row(module, error_argv, tmp)
            last = last.replace(tmp, '$TMP').replace('|', '\\|')
            if len(last) > 90:
                last = last[:87] + '...'
            print(f'| {module} | {seconds:.2f} | {cpu:.2f} | {"yes" if imported_tf else "no"} | '
                  f'{code} | {n_lines} | {n_tf} | `{last}` |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
