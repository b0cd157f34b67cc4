"""Benchmark: how much of an augmented training crop lies outside the stored crop (black border),
and how much the augmentation magnifies the stored pixels, for a stored-crop margin and
resolution and an augmentation framing.

Run from the repository root:
    .venv/bin/python -m bench.black_borders [--draws=2000 --grid=64]

Pure geometry (no images): a person box in an HD camera is stored as posepile.cropping stores it
(make_crop_camera at the stored side and margin); each draw makes the augmented crop camera with
metrabs.data.augmentation.recrop_camera, maps a grid of output pixel centres back into the stored
crop with reproject_image_points, and counts the ones outside it (there the warp fills black).
"Upsampling" is the stored crop's focal length over the augmented one's, inverted: > 1 means
one stored pixel spreads over more than one output pixel (blur).

Settings compared (output 256 px):
    before: stored 256 px at margin 1.25; the box x 1.25 spans the output, zoom-out U(0.8, 1.25),
        roll +-20 deg, shift +-10 % in a square (the code before the released framing);
    after, real-data default: stored 640 px at margin 2 (box 320 px); the box spans the output,
        magnification U(0.75, 1.25), roll +-20 deg, shift in a disc of 10 % (released framing);
    after, ./run.sh: stored 384 px at margin 2 (box 192 px), same augmentation.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from metrabs.data import augmentation as aug  # noqa: E402
from posepile.camera import Camera, make_crop_camera, reproject_image_points  # noqa: E402
from posepile.cropping import box_to_crop  # noqa: E402

OUTPUT_SIDE = 256


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    stored_side: int
    stored_margin: float
    box_scale: float
    old_framing: bool  # zoom-out U(0.8, 1.25) and a square shift, instead of the released draw


SETTINGS = (
    Setting('before: stored 256 px, margin 1.25; box x 1.25, zoom-out 0.8-1.25', 256, 1.25,
            1.25, True),
    Setting('after (real-data default): stored 640 px, margin 2; box fills, zoom 0.75-1.25',
            640, 2.0, 1.0, False),
    Setting('after (./run.sh): stored 384 px, margin 2; box fills, zoom 0.75-1.25', 384, 2.0,
            1.0, False),
)


def draw(rng: np.random.Generator, setting: Setting, config: aug.AugmentationConfig
         ) -> aug.GeometryParams:
    if not setting.old_framing:
        return aug.draw_geometry(rng, config)
    # The earlier draw: zoom-out s ~ U(0.8, 1.25), i.e. magnification 1 / s; square shift.
    return aug.GeometryParams(
        zoom=1 / rng.uniform(0.8, 1.25),
        rotation_rad=float(np.deg2rad(rng.uniform(-20, 20))),
        shift=tuple(rng.uniform(-0.1, 0.1, 2)), flip=bool(rng.uniform() < 0.5))


def measure(setting: Setting, n_draws: int, grid: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    config = aug.AugmentationConfig(box_scale=setting.box_scale)
    original = Camera(intrinsic_matrix=[[1000, 0, 959.5], [0, 1000, 539.5], [0, 0, 1]])
    centres = (np.arange(grid) + 0.5) * OUTPUT_SIDE / grid - 0.5
    output_points = np.stack(np.meshgrid(centres, centres), -1).reshape(-1, 2)
    fractions, upsampling = [], []
    for _ in range(n_draws):
        # A person box somewhere in the HD frame (tall, 250-700 px), stored like posepile does.
        height = rng.uniform(250, 700)
        width = height * rng.uniform(0.35, 0.8)
        corner = rng.uniform([0, 0], [1920 - width, 1080 - height])
        box = np.array([*corner, width, height])
        stored = make_crop_camera(original, box, setting.stored_side, scale=setting.stored_margin)
        stored_box = box_to_crop(box, original, stored)
        camera = aug.recrop_camera(stored, stored_box, setting.stored_side, OUTPUT_SIDE,
                                   draw(rng, setting, config), setting.box_scale)
        source = reproject_image_points(output_points, camera, stored)
        inside = np.all((source >= -0.5) & (source <= setting.stored_side - 0.5), axis=-1)
        fractions.append(1 - inside.mean())
        upsampling.append(camera.intrinsic_matrix[0, 0] / stored.intrinsic_matrix[0, 0])
    fractions, upsampling = np.array(fractions), np.array(upsampling)
    return {'any': float(np.mean(fractions > 0)), 'mean': float(fractions.mean()),
            'p90': float(np.quantile(fractions, 0.9)), 'max': float(fractions.max()),
            'up_mean': float(upsampling.mean()), 'up_max': float(upsampling.max()),
            'up_share': float(np.mean(upsampling > 1.0 + 1e-9))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--draws', type=int, default=2000)
    parser.add_argument('--grid', type=int, default=64, help='output pixels sampled per side')
    args = parser.parse_args(argv)
    print(f'{args.draws} draws, {args.grid}x{args.grid} output samples each, output '
          f'{OUTPUT_SIDE} px\n')
    print('| setting | crops with black | black area: mean | p90 | max | '
          'magnification of stored px: mean | max | share > 1 |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for setting in SETTINGS:
        r = measure(setting, args.draws, args.grid)
        print(f'| {setting.name} | {100 * r["any"]:.1f} % | {100 * r["mean"]:.1f} % | '
              f'{100 * r["p90"]:.1f} % | {100 * r["max"]:.1f} % | {r["up_mean"]:.2f} | '
              f'{r["up_max"]:.2f} | {100 * r["up_share"]:.0f} % |')


if __name__ == '__main__':
    main()
