"""Benchmark: this CPU's measured GEMM FLOP/s (float32: numpy and TF; bfloat16: TF), the reference.

Run from the repository root:  .venv/bin/python -m bench.flops [--sizes 1024 2048 --seconds 2]
A square n x n @ n x n float32 matrix product costs 2 n^3 FLOPs (a multiply-add counts 2). The
best rate over sizes and repeats is the reference that bench.train_step divides by to get its
efficiency. Both libraries use all cores available to the process (TF: intra-op pool).
The bfloat16 rate (TF only; numpy has no bfloat16 GEMM) is the reference for mixed_bfloat16
training: CPUs with bfloat16 dot-product instructions (AVX512_BF16, AMX) reach a higher peak in
it than in float32, so judging a bfloat16 step against the float32 rate alone would flatter it.
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


def tf_gemm_flops(n: int, min_seconds: float = 2.0, dtype: str = 'float32') -> float:
    """FLOP/s of tf.linalg.matmul in `dtype` ('float32' or 'bfloat16'; oneDNN/Eigen on CPU),
    result pulled to the host."""
    import tensorflow as tf
    # Variables, not captured constants: Grappler would fold a constant product at trace time.
    a = tf.Variable(tf.cast(tf.random.stateless_normal((n, n), (0, 1)), dtype))
    b = tf.Variable(tf.cast(tf.random.stateless_normal((n, n), (0, 2)), dtype))
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
    """Best FLOP/s over `sizes`: {'numpy', 'tensorflow'} in float32, 'best' = max of those two,
    and 'tensorflow_bfloat16'."""
    result = {'numpy': max(numpy_gemm_flops(n, min_seconds) for n in sizes),
              'tensorflow': max(tf_gemm_flops(n, min_seconds) for n in sizes)}
    result['best'] = max(result.values())
    result['tensorflow_bfloat16'] = max(tf_gemm_flops(n, min_seconds, 'bfloat16')
                                        for n in sizes)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[512, 1024, 2048])
    parser.add_argument('--seconds', type=float, default=2.0, help='minimum timing per cell')
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    print(f'\nGEMM, n x n @ n x n (2 n^3 FLOPs), {cores} CPU cores')
    print('| n | numpy float32 GFLOP/s | TF float32 GFLOP/s | TF bfloat16 GFLOP/s |')
    print('|---:|---:|---:|---:|')
    for n in args.sizes:
        print(f'| {n} | {numpy_gemm_flops(n, args.seconds) / 1e9:.1f} | '
              f'{tf_gemm_flops(n, args.seconds) / 1e9:.1f} | '
              f'{tf_gemm_flops(n, args.seconds, "bfloat16") / 1e9:.1f} |')


if __name__ == '__main__':
    main()
