"""Every command-line tool behaves the same way (posepile/cli.py): --help without TensorFlow, a
user error in one line with exit status 2 (--debug: the traceback), and no TensorFlow start-up
lines. The commands and their example errors are bench/cli_startup.py's table."""
import importlib
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

from bench.cli_startup import COMMANDS
from posepile import cli

REPO = pathlib.Path(__file__).resolve().parents[1]

# What TensorFlow 2.21 printed on this machine for `import tensorflow` and the first device
# listing (bench/README.md), and two lines that are not start-up noise.
MEASURED = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796219898.000642   24601 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796219898.014181   24601 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796219898.535026   24601 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796219907.194007   24601 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796219907.195102   24601 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1796219909.876444   24601 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
W0000 00:00:1796219909.9 24601 some_op.cc:12] something a user should see
a Python warning printed while importing
"""


def test_start_up_lines_are_filtered_and_nothing_else():
    assert cli.filter_start_up_lines(MEASURED) == [
        'W0000 00:00:1796219909.9 24601 some_op.cc:12] something a user should see',
        'a Python warning printed while importing']
    # With a CUDA driver present, a failed cuInit is news and stays.
    with_driver = '\n'.join(line for line in MEASURED.splitlines()
                            if 'Could not find cuda drivers' not in line)
    assert any('failed call to cuInit' in line
               for line in cli.filter_start_up_lines(with_driver))


def test_one_line_of_errors():
    assert cli.one_line(KeyError('x.npz: missing keys [\'a\']')) == "x.npz: missing keys ['a']"
    assert cli.one_line(ValueError('first\n  second')) == 'first second'
    with pytest.raises(OSError) as info:
        open('/nonexistent/dir/train.json', encoding='utf-8')
    assert cli.one_line(info.value) == '/nonexistent/dir/train.json: No such file or directory'
    assert cli.one_line(FileNotFoundError('x.npz: no such file')) == 'x.npz: no such file'

    class InvalidArgumentError(Exception):  # the shape of a TensorFlow graph assertion
        message = ('Graph execution error:\n\nDetected at node Assert/Assert defined at (most '
                   'recent call last):\n<stack traces unavailable>\nassertion failed: [unknown '
                   "skeleton name; available: '', 'coco'] [got:] [smpl]\n\t [[{{node "
                   'Assert/Assert}}]] [Op:__inference_estimate_poses_123]')

    assert cli.one_line(InvalidArgumentError()) == \
        "unknown skeleton name; available: '', 'coco' got: smpl"


def _fresh(args, env=None):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=600)


@pytest.mark.parametrize('module', sorted(COMMANDS))
def test_help_answers_without_tensorflow(module):
    code = ('import runpy, sys\n'
            f'sys.argv = [{module!r}, "--help"]\n'
            'try:\n'
            f'    runpy.run_module({module!r}, run_name="__main__")\n'
            'except SystemExit as e:\n'
            '    assert e.code in (0, None), e.code\n'
            'print("tensorflow" in sys.modules, "keras" in sys.modules)\n')
    done = _fresh(['-c', code])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == 'False False'
    assert 'usage: python -m' in done.stdout and '--debug' in done.stdout


@pytest.mark.parametrize('module', sorted(COMMANDS))
def test_user_error_is_one_line_with_exit_status_2(module, tmp_path, capsys, monkeypatch):
    for name in [n for n in os.environ if n.startswith('SLURM')]:  # (if run inside a job)
        monkeypatch.delenv(name)
    # A package's CLI is its __main__ module (python -m posepile.joints).
    path = module if importlib.util.find_spec(module).submodule_search_locations is None \
        else f'{module}.__main__'
    main = importlib.import_module(path).main
    argv = [a.format(tmp=tmp_path) for a in COMMANDS[module]]
    if module == 'posepile.joints':  # no input files: argparse's own usage error
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].startswith(
            'python -m posepile.joints: error: unrecognized arguments')
        return
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(f'python -m {module}: error: '), err
    if module == 'metrabs.training.slurm':  # its input is the environment SLURM sets
        assert 'SLURM_JOB_NODELIST is not set' in err
    elif module != 'posepile.synthetic':  # (its example error is a bad --num)
        assert str(tmp_path) in err  # it names the missing input
    with pytest.raises(Exception) as info:  # --debug: the error itself, traceback and all
        main(argv + ['--debug'])
    assert cli.is_user_error(info.value) or isinstance(info.value, SystemExit)


@pytest.mark.slow
def test_a_tensorflow_command_prints_only_its_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    done = _fresh(['-m', 'metrabs.export', f'--checkpoint={tmp_path}/missing',
                   f'--out={tmp_path}/model'], env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith('python -m metrabs.export: error: ')
