"""Demo: detect and estimate poses in one image with an exported model, draw 2D and 3D.

    python -m metrabs.demo --model=DIR --image=PATH --out=out.png [--skeleton=NAME]
        [--num-aug=N] [--fov=DEG] [--keep-implausible]

Without a detector in the exported model, the whole image is treated as one person box.
"""
from __future__ import annotations

import argparse

import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from metrabs.serving import visualize
from metrabs.serving.loaded_model import skeleton_joints


def load_rgb(path: str) -> np.ndarray:
    """[H, W, 3] uint8 RGB (grey is replicated, alpha dropped); errors name the file."""
    try:
        image = iio.imread(path)
    except (OSError, ValueError) as e:
        raise ValueError(f'{path}: cannot read image: {e}') from e
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f'{path}: expected an RGB(A) or grey image, got shape {image.shape}')
    if image.dtype != np.uint8:
        raise ValueError(f'{path}: expected 8-bit pixels, got {image.dtype}')
    return np.ascontiguousarray(image[..., :3])


def run(model_dir: str, image_path: str, out_path: str, skeleton: str = '', num_aug: int = 1,
        fov_degrees: float = 55.0, suppress_implausible: bool = True) -> dict[str, np.ndarray]:
    model = tf.saved_model.load(model_dir)
    image = load_rgb(image_path)
    _, edges = skeleton_joints(model, skeleton)
    pred = model.detect_poses(image, default_fov_degrees=fov_degrees, num_aug=num_aug,
                              skeleton=skeleton, suppress_implausible_poses=suppress_implausible)
    pred = {k: v.numpy() for k, v in pred.items()}
    visualize.save_figure(out_path, image, pred['poses2d'], pred['poses3d'], edges, pred['boxes'])
    return pred


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m metrabs.demo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', required=True, help='exported SavedModel directory')
    parser.add_argument('--image', required=True)
    parser.add_argument('--out', required=True, help='output figure (png, jpg, pdf, ...)')
    parser.add_argument('--skeleton', default='', help="skeleton name ('' = all model joints)")
    parser.add_argument('--num-aug', type=int, default=1)
    parser.add_argument('--fov', type=float, default=55.0, help='field of view, degrees')
    parser.add_argument('--keep-implausible', action='store_true',
                        help='do not filter implausible poses (useful for untrained models)')
    args = parser.parse_args(argv)
    pred = run(args.model, args.image, args.out, args.skeleton, args.num_aug, args.fov,
               not args.keep_implausible)
    print(f'{len(pred["boxes"])} pose(s) drawn to {args.out}')


if __name__ == '__main__':
    main()
