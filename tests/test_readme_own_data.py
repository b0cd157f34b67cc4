"""The README's "Your own data" worked example, run as written: its code blocks in order, in an
empty directory, with the venv's python first on PATH (what a user types)."""
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
START, END = '<!-- own-data example: start -->', '<!-- own-data example: end -->'

pytestmark = pytest.mark.slow


def example_blocks() -> list[tuple[str, str]]:
    """[(language, code)] of the fenced blocks between the README's example markers."""
    text = (REPO / 'README.md').read_text(encoding='utf-8')
    section = text[text.index(START) + len(START):text.index(END)]
    return re.findall(r'```(\w+)\n(.*?)```', section, flags=re.S)


def _run(args, cwd, env, stdin=None):
    done = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, f'{args[:2]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}'
    return done


def test_worked_example_runs_as_written(tmp_path):
    blocks = example_blocks()
    assert [language for language, _ in blocks] == ['python', 'bash', 'python']
    env = dict(os.environ, PATH=f'{pathlib.Path(sys.executable).parent}{os.pathsep}'
                                f'{os.environ.get("PATH", "")}')
    env.pop('PYTHONPATH', None)
    outputs = []
    for language, code in blocks:
        if language == 'bash':
            outputs.append(_run(['bash', '-euo', 'pipefail', '-c', code], tmp_path, env))
            continue
        name = re.match(r'# (\S+\.py):', code)
        if name:  # a file the next block runs
            (tmp_path / name.group(1)).write_text(code)
        else:
            outputs.append(_run(['python', '-'], tmp_path, env, stdin=code))
    # What the example says it produces.
    build_log, snippet = outputs
    assert 'wrote 20 frames to mylab/' in build_log.stdout
    assert 'mylab: 20 examples, 20 after dedup' in build_log.stdout
    report = json.loads((tmp_path / 'mylab_eval.json').read_text())
    assert report['protocol']['evaluated_formats'] == ['mylab']
    assert report['counts']['n_poses'] == 5
    assert 0 < report['summary']['mylab_mpjpe'] < 2000
    assert snippet.stdout.strip().endswith('(1, 15, 3)')
    # The tools were quiet: no TensorFlow start-up lines, no tracebacks.
    for output in (build_log, snippet):
        assert 'Traceback' not in output.stderr
    assert 'oneDNN custom operations' not in build_log.stderr
    assert 'cuInit' not in build_log.stderr
