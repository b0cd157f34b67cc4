"""Benchmark of the data build: 100 mm dedup throughput and perspective-crop throughput.

Run from the repository root:  .venv/bin/python -m bench.posepile [--poses=1000000 --crops=60]
Prints a table (single process):
  - dedup poses/s on 1 M poses, J=17, smooth motion at 50 fps with still periods, (a) a realistic
    mix of track lengths (log-normal, 50..20000 frames) and (b) one long single track.
    Goal: >= 1 M poses/s.
  - synthetic images rendered/s by posepile.synthetic (world.generate_sequence).
  - crops/s: 256 px crops (JPEG q95 + RLE mask) from 1000x1000 images, person boxes 300..700 px,
    for a pinhole camera (one homography) and a distorted one (interpolated sampling maps),
    per core (CPU time of this process, OpenCV single-threaded), the two interleaved over
    several rounds so the ratio holds under load. Goal: distorted within 1.5x of pinhole.
  - then the build stages of bench.build_stages (decode, video, warp, encode, write, PSNR of
    reduced decoding), unless --no-stages.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

if __package__ in (None, ''):
    # Run as a script, bench/ would shadow the `posepile` package with this file: use the repo root.
    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [_root] + [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(
        os.path.abspath(__file__))]

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from pycocotools import mask as mask_lib  # noqa: E402

from posepile.camera import Camera  # noqa: E402
from bench.build_stages import print_rows, stage_rows  # noqa: E402
from posepile.cropping import CropConfig, crop_example  # noqa: E402
from posepile.dedup import dedup_mask  # noqa: E402
from posepile.example import Pose3DExample  # noqa: E402

FPS = 50
N_JOINTS = 17


def smooth_motion(lengths: np.ndarray, rng: np.random.Generator,
                  chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses [N, 17, 3] float32 mm, track ids [N], frames [N] for tracks of the given lengths.

    Each joint follows sinusoids (limbs swing 30..300 mm at 0.3..2 Hz) on a body that walks at
    0..1.5 m/s; a per-second speed factor of 0 (25 % of seconds), 0.5 or 1 scales time, which
    makes still periods where only 2 mm of noise remains.
    """
    n_tracks = len(lengths)
    n = int(lengths.sum())
    track_ids = np.repeat(np.arange(n_tracks), lengths)
    starts = np.cumsum(lengths) - lengths
    frames = np.arange(n) - np.repeat(starts, lengths)
    speed = rng.choice([0.0, 0.5, 1.0], p=[0.25, 0.35, 0.4], size=n // FPS + 1)
    speed = np.repeat(speed, FPS)[:n]
    # Motion time restarts at each track start.
    t = np.cumsum(speed) / FPS
    t -= np.repeat(t[starts], lengths)

    amplitude = rng.uniform(30, 300, (n_tracks, N_JOINTS, 3)).astype(np.float32)
    frequency = rng.uniform(0.3, 2.0, (n_tracks, N_JOINTS, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n_tracks, N_JOINTS, 3)).astype(np.float32)
    velocity = rng.uniform(0, 1500, (n_tracks, 1, 3)).astype(np.float32) * [1, 0, 1]
    base = rng.uniform(-800, 800, (n_tracks, N_JOINTS, 3)).astype(np.float32)
    coords = np.empty((n, N_JOINTS, 3), np.float32)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        k = track_ids[lo:hi]
        tt = t[lo:hi, None, None].astype(np.float32)
        coords[lo:hi] = (base[k] + velocity[k] * tt
                         + amplitude[k] * np.sin(2 * np.pi * frequency[k] * tt + phase[k])
                         + rng.normal(0, 2, (hi - lo, N_JOINTS, 3)).astype(np.float32))
    return coords, track_ids, frames


def time_dedup(coords, track_ids, frames, repeats=3) -> tuple[float, float]:
    """(poses/s of the best of `repeats`, kept fraction)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        kept = dedup_mask(coords, track_ids, frames, 100.0)
        best = min(best, time.perf_counter() - start)
    return len(coords) / best, kept.mean()


def crop_examples(n: int, distorted: bool, rng: np.random.Generator) -> list[Pose3DExample]:
    side = 1000
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 3)  # JPEG cost depends on content: not pure noise
    distortion = (-0.2, 0.05, 0.001, 0.001, 0.0) if distorted else None
    camera = Camera(intrinsic_matrix=[[1000, 0, 499.5], [0, 1000, 499.5], [0, 0, 1]],
                    distortion_coeffs=distortion)
    examples = []
    for _ in range(n):
        h = rng.uniform(300, 700)
        w = h * rng.uniform(0.3, 0.7)
        x, y = rng.uniform(0, side - w), rng.uniform(0, side - h)
        mask = np.zeros((side, side), np.uint8)
        cv2.ellipse(mask, (int(x + w / 2), int(y + h / 2)), (int(w / 2), int(h / 2)), 0, 0, 360,
                    1, -1)
        rle = mask_lib.encode(np.asfortranarray(mask))
        examples.append(Pose3DExample(
            image=image, camera=camera, world_coords=np.zeros((N_JOINTS, 3)),
            joint_names=[f'j{i}' for i in range(N_JOINTS)], box=[x, y, w, h], dataset='bench',
            mask=rle))
    return examples


def time_crops(example_sets: dict[str, list], config: CropConfig,
               rounds: int = 5) -> dict[str, float]:
    """{name: median crops per CPU second} over `rounds` passes, the sets interleaved."""
    rates: dict[str, list[float]] = {name: [] for name in example_sets}
    for examples in example_sets.values():
        crop_example(examples[0], config)  # warm-up (OpenCV allocations)
    for _ in range(rounds):
        for name, examples in example_sets.items():
            start = time.process_time()
            for example in examples:
                crop_example(example, config)
            rates[name].append(len(examples) / (time.process_time() - start))
    return {name: float(np.median(r)) for name, r in rates.items()}


def time_synthetic_render(n_images: int, seed: int = 0) -> float:
    """Images/s of the synthetic world's renderer (poses + cameras + render.render_person via
    world.generate_sequence), in memory: no JPEG encoding, no files."""
    from posepile.synthetic import world
    plans = world.plan_sequences(n_images, seed)
    start = time.perf_counter()
    count = sum(1 for plan in plans for _ in world.generate_sequence(plan, seed))
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--poses', type=int, default=1_000_000)
    parser.add_argument('--crops', type=int, default=40)
    parser.add_argument('--renders', type=int, default=60,
                        help='synthetic-world images to render')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--video-frames', type=int, default=100)
    parser.add_argument('--no-stages', action='store_true', help='skip bench.build_stages')
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    lengths = np.clip(rng.lognormal(np.log(800), 1.2, size=args.poses // 50), 50, 20000)
    lengths = lengths.astype(np.int64)
    lengths = lengths[np.cumsum(lengths) <= args.poses]
    lengths = np.append(lengths, args.poses - lengths.sum())
    lengths = lengths[lengths > 0]
    rows = []
    coords, track_ids, frames = smooth_motion(lengths, rng)
    shuffle = rng.permutation(len(coords))
    rate, kept = time_dedup(coords[shuffle], track_ids[shuffle], frames[shuffle])
    rows.append((f'dedup, {len(lengths)} tracks of 50..20000 (shuffled input)',
                 f'{rate / 1e6:.2f} M poses/s', f'kept {kept:.1%}'))
    coords, track_ids, frames = smooth_motion(np.array([args.poses]), rng)
    rate, kept = time_dedup(coords, track_ids, frames)
    rows.append((f'dedup, one track of {args.poses} frames', f'{rate / 1e6:.2f} M poses/s',
                 f'kept {kept:.1%}'))

    cv2.setNumThreads(1)
    rates = time_crops({'pinhole': crop_examples(args.crops, False, rng),
                        'distorted': crop_examples(args.crops, True, rng)}, CropConfig())
    for name, rate in rates.items():
        note = 'per core, JPEG q95 + mask'
        if name == 'distorted':
            note += f'; pinhole / distorted = {rates["pinhole"] / rate:.2f}'
        rows.append((f'crop 256 px from 1000x1000, {name}', f'{rate:.1f} crops/s', note))

    rate = time_synthetic_render(args.renders, args.seed)
    rows.append(('synthetic world render (posepile.synthetic)', f'{rate:.1f} images/s',
                 '1 process, all 5 datasets, in memory'))

    print(subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip())
    print_rows(f'posepile benchmark ({args.poses} poses, J={N_JOINTS})', rows)
    if not args.no_stages:
        print_rows('build stages, per core (CPU time of one process, OpenCV single-threaded)',
                   stage_rows(args.crops, args.video_frames, args.seed))
    print(subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip())


if __name__ == '__main__':
    main()
