"""Choosing the tf.distribute strategy: one device, MirroredStrategy, or multi-worker via TF_CONFIG.

Every worker of a multi-worker run is started with the same command and its own TF_CONFIG, e.g.
    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}'
Worker 0 is the chief: it writes the real checkpoints and summaries; the others write to scratch
directories that are deleted (all workers must take part in saving, since it runs collectives).
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGY_NAMES = ('auto', 'default', 'mirrored', 'multiworker')


def tf_config() -> dict | None:
    """The parsed TF_CONFIG environment variable, or None if unset/empty."""
    raw = os.environ.get('TF_CONFIG', '').strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f'environment variable TF_CONFIG is not valid JSON: {e}') from e
    if 'cluster' not in config or 'task' not in config:
        raise ValueError("environment variable TF_CONFIG must have 'cluster' and 'task' fields")
    return config


def make_strategy(name: str = 'auto', devices: list[str] | None = None) -> tf.distribute.Strategy:
    """Returns the distribution strategy.

    Args:
        name: 'default' (one device, no replication), 'mirrored' (all local GPUs, or `devices`),
            'multiworker' (MultiWorkerMirroredStrategy over the TF_CONFIG cluster), or 'auto':
            multiworker if TF_CONFIG names more than one worker, mirrored if there are several
            GPUs, else default.
        devices: explicit device list for 'mirrored' (e.g. ['/cpu:0', '/cpu:1'] after
            `make_logical_cpus(2)`).
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(f'unknown strategy {name!r}; choose from {STRATEGY_NAMES}')
    if name == 'auto':
        config = tf_config()
        if config is not None and len(config['cluster'].get('worker', [])) > 1:
            name = 'multiworker'
        elif len(tf.config.list_physical_devices('GPU')) > 1:
            name = 'mirrored'
        else:
            name = 'default'
    if name == 'default':
        return tf.distribute.get_strategy()
    if name == 'mirrored':
        # GPUs: the default cross-device ops (NCCL all-reduce). CPU devices (tests, logical
        # CPUs): ReductionToOneDevice, since NCCL needs GPUs.
        on_gpus = _has_gpus() and (devices is None or all('gpu' in d.lower() for d in devices))
        return tf.distribute.MirroredStrategy(
            devices=devices,
            cross_device_ops=None if on_gpus else tf.distribute.ReductionToOneDevice())
    if tf_config() is None:
        raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable")
    return tf.distribute.MultiWorkerMirroredStrategy()


def _has_gpus() -> bool:
    return bool(tf.config.list_physical_devices('GPU'))


def make_logical_cpus(n: int):
    """Splits the first physical CPU into n logical devices (for testing MirroredStrategy).

    Must run before TensorFlow initialises its devices (before any op runs).
    """
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints and summaries (worker 0, or the only one)."""
    resolver = getattr(strategy, 'cluster_resolver', None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, 'chief') or (task_type == 'worker' and task_id == 0
                                            and 'chief' not in resolver.cluster_spec().as_dict())


def worker_id(strategy: tf.distribute.Strategy) -> int:
    """Index of this worker (0 when not multi-worker)."""
    resolver = getattr(strategy, 'cluster_resolver', None)
    if resolver is None or resolver.task_id is None:
        return 0
    return int(resolver.task_id)



def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Number of worker processes of a multi-worker run (1 for one-host strategies)."""
    resolver = getattr(strategy, 'cluster_resolver', None)
    if resolver is None:
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get('worker', ())) + len(cluster.get('chief', ())))
