"""TF_CONFIG for MultiWorkerMirroredStrategy from the variables SLURM sets in every task.

    python -m metrabs.training.slurm [--port=N]      # prints this task's TF_CONFIG (JSON)

scripts/train_slurm.sbatch runs this in each task of `srun` and exports the result before
starting `metrabs.train`. Every task becomes one worker; with one task per node (the
recommended layout) each worker mirrors over all GPUs of its node. Worker i is the task with
SLURM_PROCID i; worker 0 is the chief (it writes checkpoints and summaries).

Read: SLURM_STEP_NODELIST or SLURM_JOB_NODELIST (hostlist syntax, e.g. 'gpu[01-04,07],big1'),
SLURM_STEP_TASKS_PER_NODE or SLURM_TASKS_PER_NODE ('2(x3),1' = 2,2,2,1), else
SLURM_NTASKS_PER_NODE, else SLURM_NTASKS spread evenly; SLURM_NTASKS, SLURM_PROCID, and, to
check the task really is where the list puts it, SLURMD_NODENAME and SLURM_LOCALID.
Tasks are numbered node by node (SLURM's default 'block' distribution); another distribution
is detected and refused, since the worker list would not match the tasks.

Ports: worker k on a node listens on base + k, base = $METRABS_BASE_PORT or
20000 + (SLURM_JOB_ID mod 20000), so jobs sharing a node rarely collide.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence

from posepile import cli

_RANGE = re.compile(r'^(\d+)(?:-(\d+))?$')
_TASKS = re.compile(r'^(\d+)(?:\(x(\d+)\))?$')


class SlurmEnvironmentError(ValueError):
    """The SLURM variables are missing or do not describe a consistent set of tasks."""


def _split_top_level(text: str) -> list[str]:
    """Splits at commas outside brackets: 'a[1,2],b' -> ['a[1,2]', 'b']."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == '[':
            depth += 1
        elif char == ']':
            depth -= 1
            if depth < 0:
                raise SlurmEnvironmentError(f'hostlist {text!r}: unbalanced "]"')
        elif char == ',' and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise SlurmEnvironmentError(f'hostlist {text!r}: unbalanced "["')
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _expand_brackets(spec: str, where: str) -> list[str]:
    """'7,9-11' -> ['7', '9', '10', '11'], keeping zero padding ('01-03' -> '01', '02', '03')."""
    values = []
    for item in spec.split(','):
        match = _RANGE.match(item.strip())
        if not match:
            raise SlurmEnvironmentError(f'hostlist {where!r}: cannot read range {item!r}')
        lo, hi = match.group(1), match.group(2) or match.group(1)
        if int(hi) < int(lo):
            raise SlurmEnvironmentError(f'hostlist {where!r}: range {item!r} runs backwards')
        width = len(lo) if lo.startswith('0') or len(lo) == len(hi) else 0
        values += [str(n).zfill(width) for n in range(int(lo), int(hi) + 1)]
    return values


def expand_hostlist(text: str) -> list[str]:
    """SLURM hostlist -> host names in order (what `scontrol show hostnames` prints).

    'node[01-04,07]' -> node01..node04, node07; 'a[1-2]-b[1-2]' -> a1-b1, a1-b2, a2-b1, a2-b2;
    plain names and several comma-separated expressions mix freely.
    """
    hosts = []
    for expression in _split_top_level(text):
        pieces = re.split(r'(\[[^\]]*\])', expression)
        choices = [_expand_brackets(p[1:-1], text) if p.startswith('[') else [p]
                   for p in pieces if p]
        hosts += [''.join(combo) for combo in itertools.product(*choices)]
    if not hosts:
        raise SlurmEnvironmentError(f'hostlist {text!r} names no host')
    return hosts


def expand_tasks_per_node(text: str) -> list[int]:
    """SLURM_TASKS_PER_NODE form '2(x3),1' -> [2, 2, 2, 1]."""
    counts = []
    for item in text.split(','):
        match = _TASKS.match(item.strip())
        if not match:
            raise SlurmEnvironmentError(f'tasks per node {text!r}: cannot read {item!r}')
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def _required(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        if env.get(name, '').strip():
            return env[name].strip()
    raise SlurmEnvironmentError(f'environment variable {" or ".join(names)} is not set: run '
                                f'this inside a SLURM job step (srun)')


def tf_config_from_slurm(env: Mapping[str, str] | None = None, base_port: int | None = None
                         ) -> dict:
    """This task's TF_CONFIG dict {'cluster': {'worker': [host:port, ...]}, 'task': {'type':
    'worker', 'index': SLURM_PROCID}} (module docstring)."""
    env = os.environ if env is None else env
    nodes = expand_hostlist(_required(env, 'SLURM_STEP_NODELIST', 'SLURM_JOB_NODELIST'))
    n_tasks = int(_required(env, 'SLURM_STEP_NUM_TASKS', 'SLURM_NTASKS'))
    per_node_text = env.get('SLURM_STEP_TASKS_PER_NODE') or env.get('SLURM_TASKS_PER_NODE')
    if per_node_text:
        per_node = expand_tasks_per_node(per_node_text)
    elif env.get('SLURM_NTASKS_PER_NODE'):
        per_node = [int(env['SLURM_NTASKS_PER_NODE'])] * len(nodes)
    else:
        if n_tasks % len(nodes):
            raise SlurmEnvironmentError(
                f'{n_tasks} tasks on {len(nodes)} nodes and no SLURM_TASKS_PER_NODE: cannot '
                f'tell how the tasks are placed')
        per_node = [n_tasks // len(nodes)] * len(nodes)
    if len(per_node) != len(nodes):
        raise SlurmEnvironmentError(f'tasks per node {per_node} does not match the {len(nodes)} '
                                    f'nodes {nodes}')
    if sum(per_node) != n_tasks:
        raise SlurmEnvironmentError(f'tasks per node {per_node} sum to {sum(per_node)}, but '
                                    f'SLURM_NTASKS is {n_tasks}')
    if base_port is None:
        if env.get('METRABS_BASE_PORT'):
            base_port = int(env['METRABS_BASE_PORT'])
        else:
            base_port = 20000 + int(env.get('SLURM_JOB_ID', '0') or 0) % 20000
    places = [(node, local) for node, count in zip(nodes, per_node) for local in range(count)]
    workers = [f'{node}:{base_port + local}' for node, local in places]
    index = int(_required(env, 'SLURM_PROCID'))
    if not 0 <= index < n_tasks:
        raise SlurmEnvironmentError(f'SLURM_PROCID={index} outside 0..{n_tasks - 1}')
    node, local = places[index]
    here = env.get('SLURMD_NODENAME')
    local_id = env.get('SLURM_LOCALID')
    if (here is not None and here != node) or (local_id is not None and int(local_id) != local):
        raise SlurmEnvironmentError(
            f'task {index} runs on {here} as local task {local_id}, but block distribution '
            f'would put it on {node} as local task {local}: start the tasks with '
            f'srun --distribution=block')
    return {'cluster': {'worker': workers}, 'task': {'type': 'worker', 'index': index}}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m metrabs.training.slurm',
                                     description='Print this SLURM task\'s TF_CONFIG.')
    parser.add_argument('--port', type=int, default=None,
                        help='base port (default $METRABS_BASE_PORT or 20000 + job id mod 20000)')
    return parser


def run(args: argparse.Namespace) -> int:
    print(json.dumps(tf_config_from_slurm(base_port=args.port)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(build_parser, run, argv)


if __name__ == '__main__':
    sys.exit(main())
