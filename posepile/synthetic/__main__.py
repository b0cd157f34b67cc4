"""CLI: python -m posepile.synthetic --out DIR --num N [--num-2d M] --seed S

Renders the synthetic multi-skeleton world (N images in total over the 3D datasets and their
splits, M more for the 2D-only dataset 'synwild') into DIR in the layout documented in
`posepile.synthetic.raw_format`.
"""
from __future__ import annotations

import argparse
import sys
import time

import cv2

from posepile import cli
from posepile.synthetic.writer import write_world


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m posepile.synthetic', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--num', type=int, default=1000,
                        help='images of the 3D datasets (all splits together)')
    parser.add_argument('--num-2d', type=int, default=0,
                        help='images of the 2D-only dataset synwild (train and validation)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (deterministic output)')
    return parser


def run(args: argparse.Namespace) -> int:
    # One core per process: the renderer is vectorised numpy, cv2's threads only add contention.
    cv2.setNumThreads(1)
    start = time.perf_counter()
    count = write_world(args.out, args.num, args.seed, num_2d=args.num_2d)
    elapsed = time.perf_counter() - start
    print(f'wrote {count} images to {args.out} in {elapsed:.1f} s ({count / elapsed:.0f} img/s)')
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv)


if __name__ == '__main__':
    sys.exit(main())
