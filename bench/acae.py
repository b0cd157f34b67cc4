"""Benchmark: wall-clock seconds to fit an ACAE (J=555, L=48) on 100k poses, default fit length.

Run from the repository root:  .venv/bin/python -m bench.acae [--poses=100000 --steps=30000]
The poses come from a random affine world like tests/test_acae.py: K hidden points per pose
(mirror-symmetric cloud, randomly deformed, rotated, ~4 m from the camera), each joint a fixed
affine combination of 3 hidden points, left/right joints mirrored. Goal: fit < 2 min on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

if __package__ in (None, ''):
    # Run as a script, bench/ would shadow the `acae` package with this file: use the repo root.
    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [_root] + [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(
        os.path.abspath(__file__))]

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from acae import train, weight_stats  # noqa: E402


def make_affine_world(n_poses: int, n_joint_pairs: int, n_joint_centre: int,
                      n_hidden_pairs: int, n_hidden_centre: int, seed: int = 0,
                      chunk: int = 10000) -> tuple[np.ndarray, list[str]]:
    """Poses [N, J, 3] float32 (mm, camera frame) and joint names ('l*'/'r*' pairs, 'c*').

    The world's structure (template, joint definitions) is fixed; `seed` only draws the poses.
    """
    rng = np.random.default_rng(1234)
    kp, kc = n_hidden_pairs, n_hidden_centre
    k = 2 * kp + kc
    hidden_perm = np.concatenate([np.arange(kp, 2 * kp), np.arange(kp), np.arange(2 * kp, k)])
    left = np.stack([rng.uniform(80, 250, kp), rng.uniform(-800, 800, kp),
                     rng.uniform(-100, 100, kp)], -1)
    centre = np.stack([np.zeros(kc), rng.uniform(-800, 800, kc), rng.uniform(-100, 100, kc)], -1)
    template = np.concatenate([left, left * [-1, 1, 1], centre])
    jp, jc = n_joint_pairs, n_joint_centre
    rows = np.zeros((jp + jc, k))
    picks = np.argsort(rng.random((jp + jc, k)), axis=1)[:, :3]
    vals = rng.uniform(-0.3, 1.0, (jp + jc, 3))
    vals[:, -1] = 1 - vals[:, :-1].sum(1)
    np.put_along_axis(rows, picks, vals, axis=1)
    weights = np.concatenate([rows[:jp], rows[:jp, hidden_perm],
                              0.5 * (rows[jp:] + rows[jp:, hidden_perm])])
    names = ([f'lj{i:03d}' for i in range(jp)] + [f'rj{i:03d}' for i in range(jp)]
             + [f'cj{i:03d}' for i in range(jc)])
    poses = np.empty((n_poses, len(names), 3), np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, n_poses, chunk):
        n = min(chunk, n_poses - start)
        hidden = template + rng.normal(0, 60, (n, k, 3))
        angles = np.stack([rng.uniform(-20, 20, n), rng.uniform(-20, 20, n),
                           rng.uniform(-180, 180, n)], -1)
        rot = Rotation.from_euler('ZXY', angles, degrees=True).as_matrix()
        hidden = np.einsum('nij,nkj->nki', rot, hidden) + rng.normal(
            [0, 0, 4000], [300, 300, 500], (n, 1, 3))
        poses[start:start + n] = np.einsum('jk,nkc->njc', weights, hidden)
    return poses, names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--poses', type=int, default=100_000)
    parser.add_argument('--joint-pairs', type=int, default=200)
    parser.add_argument('--joint-centre', type=int, default=155)
    parser.add_argument('--hidden-pairs', type=int, default=10)
    parser.add_argument('--hidden-centre', type=int, default=4)
    parser.add_argument('--latents', type=int, default=train.TrainConfig.n_latents)
    parser.add_argument('--steps', type=int, default=train.TrainConfig.steps)
    parser.add_argument('--batch-size', type=int, default=train.TrainConfig.batch_size)
    args = parser.parse_args(argv)

    rows = []
    t0 = time.perf_counter()
    poses, names = make_affine_world(args.poses, args.joint_pairs, args.joint_centre,
                                     args.hidden_pairs, args.hidden_centre)
    rows.append(('generate world (not part of fit)', time.perf_counter() - t0))
    config = train.TrainConfig(n_latents=args.latents, steps=args.steps,
                               batch_size=args.batch_size)
    t0, cpu0 = time.perf_counter(), time.process_time()
    model = train.train_acae(poses, names, config)
    fit_seconds = time.perf_counter() - t0
    rows.append((f'fit: init + {args.steps} steps x batch {args.batch_size}', fit_seconds))
    # CPU seconds of this process (all threads): shows when other jobs slowed the wall clock.
    rows.append(('  (fit CPU time, all threads)', time.process_time() - cpu0))
    t0 = time.perf_counter()
    test, _ = make_affine_world(2000, args.joint_pairs, args.joint_centre, args.hidden_pairs,
                                args.hidden_centre, seed=1)
    error = train.reconstruction_errors_mm(model, test)['mean_3d']
    rows.append(('evaluate 2000 held-out poses', time.perf_counter() - t0))

    k = 2 * args.hidden_pairs + args.hidden_centre
    print(f'\nACAE fit: N={args.poses} poses, J={len(names)} joints, L={args.latents} latents, '
          f'K={k} hidden points, {os.cpu_count()} CPUs')
    print(f'{"phase":<45} {"seconds":>9}')
    for phase, seconds in rows:
        print(f'{phase:<45} {seconds:9.2f}')
    print(f'{"held-out mean joint error (mm)":<45} {error:9.3f}')
    print(weight_stats.format_statistics(weight_stats.weight_statistics(*model.weights_numpy())))
    print(f'{"goal: fit < 120 s":<45} {"met" if fit_seconds < 120 else "NOT met":>9}')


if __name__ == '__main__':
    main()
