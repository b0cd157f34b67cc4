"""Benchmark: this CPU's measured float32 GEMM FLOP/s (numpy and TensorFlow), the physical reference.

Run from the repository root:  .venv/bin/python -m bench.flops [--sizes 1024 2048 --seconds 2]
A square n x n @ n x n float32 matrix product costs 2 n^3 FLOPs (a multiply-add counts 2). The
best rate over sizes and repeats is the reference that bench.train_step divides by to get its
efficiency. Both libraries use all cores available to the process (TF: intra-op pool).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402


def _rate(run, n: int, min_seconds: float) -> float:
    """Best FLOP/s of `run()` (one n x n GEMM) over repeats filling `min_seconds`."""
    run()  # warm-up: thread pools, allocation, TF kernel selection
    best = np.inf
    spent = 0.0
    repeats = 0
    while spent < min_seconds or repeats < 3:
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        repeats += 1
    return 2.0 * n ** 3 / best


def numpy_gemm_flops(n: int, min_seconds: float = 2.0) -> float:
    """Float32 FLOP/s of numpy's n x n matrix product (its BLAS)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), np.float32)
    b = rng.standard_normal((n, n), np.float32)
    out = np.empty((n, n), np.float32)
    return _rate(lambda: np.matmul(a, b, out=out), n, min_seconds)


def tf_gemm_flops(n: int, min_seconds: float = 2.0) -> float:
    """Float32 FLOP/s of tf.linalg.matmul (oneDNN/Eigen on CPU), result pulled to the host."""
    import tensorflow as tf
    # Variables, not captured constants: Grappler would fold a constant product at trace time.
    a = tf.Variable(tf.random.stateless_normal((n, n), (0, 1), dtype=tf.float32))
    b = tf.Variable(tf.random.stateless_normal((n, n), (0, 2), dtype=tf.float32))
    # Reducing to a scalar forces the product to finish without timing a large host copy.
    matmul = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    return _rate(lambda: matmul().numpy(), n, min_seconds)


def graph_flops(fn, input_specs) -> float:
    """Float operations of one call of `fn(*inputs)`, counted on its frozen TF graph.

    TF's graph profiler counts a multiply-add as 2 FLOPs; variables are frozen to constants so
    shapes are static. `input_specs`: tf.TensorSpec per positional argument (fully defined).
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    concrete = tf.function(fn).get_concrete_function(*input_specs)
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options['output'] = 'none'
    profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return float(profile.total_float_ops)


def reference_gemm_flops(sizes=(1024, 2048), min_seconds: float = 2.0) -> dict[str, float]:
    """{'numpy': best FLOP/s, 'tensorflow': best FLOP/s, 'best': max of both} over `sizes`."""
    result = {'numpy': max(numpy_gemm_flops(n, min_seconds) for n in sizes),
              'tensorflow': max(tf_gemm_flops(n, min_seconds) for n in sizes)}
    result['best'] = max(result.values())
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[512, 1024, 2048])
    parser.add_argument('--seconds', type=float, default=2.0, help='minimum timing per cell')
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    print(f'\nfloat32 GEMM, n x n @ n x n (2 n^3 FLOPs), {cores} CPU cores')
    print('| n | numpy GFLOP/s | TensorFlow GFLOP/s |')
    print('|---:|---:|---:|')
    for n in args.sizes:
        print(f'| {n} | {numpy_gemm_flops(n, args.seconds) / 1e9:.1f} | '
              f'{tf_gemm_flops(n, args.seconds) / 1e9:.1f} |')


if __name__ == '__main__':
    main()
