"""Stopping cleanly when the cluster takes the machine away: checkpoint, then exit.

Resuming is the default anyway (metrabs.training.loop restores the newest checkpoint of the
logdir and the data order is a function of the step), so a preempted run loses at most the
steps since its last checkpoint. This module shrinks that loss to none: SLURM (and most
schedulers) send SIGTERM some seconds before SIGKILL (`KillWait`, 30 s by default), and
`sbatch --signal=USR1@T` sends SIGUSR1 T seconds before the time limit. On either signal the
loop finishes the current step, saves a checkpoint of it and returns with `preempted=True`;
`metrabs.train` then exits with PREEMPTED_EXIT_CODE, and the same command resumes from there.

Several workers: saving is collective (every worker must call it at the same step), while a
signal may reach the workers at different steps, or only some of them. The stop request is
therefore agreed on with an all-reduce (sum) of each worker's flag after every step: one scalar
across the cluster, negligible next to a training step's gradient all-reduce.
"""
from __future__ import annotations

import logging
import signal
import threading

import tensorflow as tf

from metrabs.training import distribution

log = logging.getLogger('metrabs.train')

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# metrabs.train's exit status after a preemption checkpoint (neither success nor a crash: the
# run is incomplete and resumable; the sbatch script requeues on it).
PREEMPTED_EXIT_CODE = 3


class PreemptionWatcher:
    """Context manager: while active, PREEMPTION_SIGNALS set a flag instead of killing the
    process; `should_stop()` (called by every worker after each step) says whether any worker
    got one. Outside the main thread (where Python cannot install signal handlers) it only
    honours `request_stop()`."""

    def __init__(self, strategy: tf.distribute.Strategy):
        self.strategy = strategy
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}
        self._multi_worker = distribution.num_workers(strategy) > 1

    def request_stop(self, signal_name: str = 'request_stop') -> None:
        if not self.requested:
            self.signal_name = signal_name
        self.requested = True

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        # Logging from a signal handler can deadlock on the logging lock; a flag is safe.
        self.request_stop(name)

    def __enter__(self) -> PreemptionWatcher:
        if threading.current_thread() is threading.main_thread():
            for sig in PREEMPTION_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
        return False

    def barrier(self) -> None:
        """Returns once every worker got here (multi-worker; a no-op otherwise): after the
        preemption checkpoint, so that no worker exits (and makes srun kill the others) while
        the chief may still be writing it."""
        if self._multi_worker:
            self.should_stop()

    def should_stop(self) -> bool:
        """True if this or any other worker was asked to stop. Collective in multi-worker runs:
        every worker must call it at the same steps."""
        if not self._multi_worker:
            return self.requested
        flag = tf.constant(1.0 if self.requested else 0.0)
        per_replica = self.strategy.run(tf.identity, args=(flag,))
        return bool(self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica,
                                         axis=None).numpy() > 0)
