"""TF_CONFIG from SLURM's variables: the hostlist / tasks-per-node forms, and the sbatch script's
own TF_CONFIG logic and requeue handling run on fake SLURM environments (fake srun/scontrol)."""
import json
import os
import pathlib
import stat
import subprocess
import sys

import pytest

from metrabs.training import slurm

REPO = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = REPO / 'scripts' / 'train_slurm.sbatch'


@pytest.mark.parametrize('text, hosts', [
    ('node07', ['node07']),
    ('node[01-04,07]', ['node01', 'node02', 'node03', 'node04', 'node07']),
    ('gpu1,gpu3', ['gpu1', 'gpu3']),
    ('c[9-11]', ['c9', 'c10', 'c11']),
    ('x[008-010]', ['x008', 'x009', 'x010']),
    ('n[1,3-4],m7,big-mem[2-3]', ['n1', 'n3', 'n4', 'm7', 'big-mem2', 'big-mem3']),
    ('rack[1-2]-n[08-09]', ['rack1-n08', 'rack1-n09', 'rack2-n08', 'rack2-n09']),
])
def test_hostlists_expand_like_scontrol_show_hostnames(text, hosts):
    assert slurm.expand_hostlist(text) == hosts


@pytest.mark.parametrize('bad', ['n[1-', 'n1]', 'n[3-1]', 'n[a-b]', ''])
def test_malformed_hostlists_are_refused(bad):
    with pytest.raises(slurm.SlurmEnvironmentError, match='hostlist'):
        slurm.expand_hostlist(bad)


def test_tasks_per_node_forms():
    assert slurm.expand_tasks_per_node('2(x3),1') == [2, 2, 2, 1]
    assert slurm.expand_tasks_per_node('8') == [8]
    with pytest.raises(slurm.SlurmEnvironmentError):
        slurm.expand_tasks_per_node('2(3)')


def fake_env(nodes, per_node, procid, job_id=4242, **extra):
    """What SLURM sets in task `procid` under block distribution."""
    places = [(node, local) for node, count in zip(nodes, per_node) for local in range(count)]
    node, local = places[procid]
    env = {'SLURM_JOB_ID': str(job_id), 'SLURM_JOB_NODELIST': extra.pop('nodelist'),
           'SLURM_NTASKS': str(len(places)), 'SLURM_PROCID': str(procid),
           'SLURM_LOCALID': str(local), 'SLURMD_NODENAME': node,
           'SLURM_TASKS_PER_NODE': extra.pop('tasks_per_node')}
    env.update(extra)
    return env


def test_one_task_per_node():
    nodes = ['gpu01', 'gpu02', 'gpu03', 'gpu04', 'gpu07']
    base = 20000 + 4242
    for procid in range(5):
        env = fake_env(nodes, [1] * 5, procid, nodelist='gpu[01-04,07]',
                       tasks_per_node='1(x5)')
        assert slurm.tf_config_from_slurm(env) == {
            'cluster': {'worker': [f'{n}:{base}' for n in nodes]},
            'task': {'type': 'worker', 'index': procid}}


def test_several_tasks_per_node_get_their_own_ports():
    env = fake_env(['a1', 'a2'], [2, 2], 3, nodelist='a[1-2]', tasks_per_node='2(x2)',
                   METRABS_BASE_PORT='31000')
    config = slurm.tf_config_from_slurm(env)
    assert config['cluster']['worker'] == ['a1:31000', 'a1:31001', 'a2:31000', 'a2:31001']
    assert config['task']['index'] == 3
    # The step's own variables win over the job's (srun inside a bigger allocation).
    env.update(SLURM_STEP_NODELIST='a2', SLURM_STEP_TASKS_PER_NODE='1', SLURM_STEP_NUM_TASKS='1',
               SLURM_PROCID='0', SLURM_LOCALID='0', SLURMD_NODENAME='a2')
    assert slurm.tf_config_from_slurm(env)['cluster']['worker'] == ['a2:31000']


def test_inconsistent_environments_are_refused():
    env = fake_env(['a1', 'a2'], [1, 1], 1, nodelist='a[1-2]', tasks_per_node='1(x2)')
    with pytest.raises(slurm.SlurmEnvironmentError, match='distribution=block'):
        slurm.tf_config_from_slurm({**env, 'SLURMD_NODENAME': 'a1'})
    with pytest.raises(slurm.SlurmEnvironmentError, match='SLURM_NTASKS is 3'):
        slurm.tf_config_from_slurm({**env, 'SLURM_NTASKS': '3'})
    with pytest.raises(slurm.SlurmEnvironmentError, match='SLURM_PROCID'):
        slurm.tf_config_from_slurm({k: v for k, v in env.items() if k != 'SLURM_PROCID'})
    with pytest.raises(slurm.SlurmEnvironmentError, match='SLURM_STEP_NODELIST or '
                       'SLURM_JOB_NODELIST'):
        slurm.tf_config_from_slurm({})


def _sourced(env, command):
    """Runs `command` in bash after sourcing the sbatch script (which then only defines)."""
    full_env = {'PATH': os.environ['PATH'], 'PYTHONPATH': str(REPO), 'PYTHON': sys.executable,
                **env}
    return subprocess.run(['bash', '-c', f'source "{SCRIPT}" && {command}'], env=full_env,
                          capture_output=True, text=True, cwd=REPO)


def test_the_sbatch_scripts_tf_config_on_fake_environments():
    nodes = ['node01', 'node02', 'node03', 'node04', 'node07']
    configs = []
    for procid in range(5):
        env = fake_env(nodes, [1] * 5, procid, nodelist='node[01-04,07]',
                       tasks_per_node='1(x5)', job_id=77)
        done = _sourced(env, 'tf_config_for_this_task')
        assert done.returncode == 0, done.stderr
        configs.append(json.loads(done.stdout))
    assert all(c['cluster'] == configs[0]['cluster'] for c in configs)
    assert configs[0]['cluster']['worker'] == [f'{n}:20077' for n in nodes]
    assert [c['task'] for c in configs] == [{'type': 'worker', 'index': i} for i in range(5)]
    outside = _sourced({}, 'tf_config_for_this_task')
    assert outside.returncode != 0 and 'inside a SLURM job step' in outside.stderr


FAKE_SRUN = '''#!/usr/bin/env bash
# Starts SLURM_NTASKS copies of the command, one per host of $FAKE_HOSTS, as SLURM would.
read -r -a hosts <<< "$FAKE_HOSTS"
while [[ $1 == --* ]]; do shift; done
pids=()
for i in "${!hosts[@]}"; do
  SLURM_PROCID=$i SLURM_LOCALID=0 SLURMD_NODENAME=${hosts[$i]} "$@" > "$FAKE_OUT/task$i.out" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || { s=$?; (( s > status )) && status=$s; }; done
exit $status
'''
FAKE_PYTHON = '''#!/usr/bin/env bash
# Stands in for the training process: reports its TF_CONFIG and arguments.
if [[ $1 == -m && $2 == metrabs.train ]]; then
  shift 2
  printf '%s\\n' "$TF_CONFIG" "$@"
  exit "${FAKE_TRAIN_EXIT:-0}"
fi
exec "$REAL_PYTHON" "$@"
'''
FAKE_SCONTROL = '''#!/usr/bin/env bash
echo "$@" >> "$FAKE_OUT/scontrol.log"
'''


@pytest.mark.parametrize('train_exit, script_exit, requeued', [(0, 0, False), (3, 0, True),
                                                              (1, 1, False)])
def test_the_whole_sbatch_script_with_fake_srun(tmp_path, train_exit, script_exit, requeued):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL),
                       ('python', FAKE_PYTHON)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    env = {'PATH': f'{bin_dir}:{os.environ["PATH"]}', 'PYTHONPATH': str(REPO),
           'PYTHON': str(bin_dir / 'python'), 'REAL_PYTHON': sys.executable,
           'FAKE_OUT': str(tmp_path), 'FAKE_HOSTS': 'gpu1 gpu2 gpu3',
           'FAKE_TRAIN_EXIT': str(train_exit), 'SLURM_JOB_ID': '9', 'SLURM_NTASKS': '3',
           'SLURM_JOB_NODELIST': 'gpu[1-3]', 'SLURM_TASKS_PER_NODE': '1(x3)'}
    done = subprocess.run(['bash', str(SCRIPT), 'cfg.json', 'logs/run', 'input.json', 'val.json',
                           '--', '--backbone-weights=w.h5'], env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == script_exit, done.stdout + done.stderr
    outputs = [(tmp_path / f'task{i}.out').read_text().splitlines() for i in range(3)]
    for i, lines in enumerate(outputs):
        tf_config = json.loads(lines[0])
        assert tf_config == {'cluster': {'worker': ['gpu1:20009', 'gpu2:20009', 'gpu3:20009']},
                             'task': {'type': 'worker', 'index': i}}
        assert lines[1:] == ['--config=cfg.json', '--logdir=logs/run', '--data=tfrecords',
                             '--input-config=input.json', '--strategy=multiworker',
                             '--no-progress', '--val-input-config=val.json',
                             '--backbone-weights=w.h5']
    log = tmp_path / 'scontrol.log'
    assert (log.exists() and log.read_text().split() == ['requeue', '9']) == requeued
