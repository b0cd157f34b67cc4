"""Demo: an exported model on one image, drawn in 2D and 3D, beside the ground truth if known.

    python -m metrabs.demo --model=DIR --image=PATH --out=out.png [--skeleton=NAME]
        [--num-aug=N] [--fov=DEG] [--keep-implausible] [--ground-truth=auto|none]

Ground truth (--ground-truth=auto): if the image belongs to a dataset on disk that a converter
reads, i.e. one of its parent directories holds the synthetic world's world.json or the custom
layout's dataset.json, its person is looked up there; the model then estimates the pose in the
annotated box with the dataset's camera (as eval.run does), the picture shows the truth dashed,
and the title gives the error (MPJPE after subtracting each pose's joint mean, and the absolute
error, mm). Otherwise detect_poses runs on the whole image with a --fov camera: with the
model's detector if it was exported with one, else the whole image is one person box. The
title names the model, the skeleton and the error.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

import numpy as np

from posepile import cli

# Which converter reads a dataset directory, by the file at its top.
GROUND_TRUTH_MARKERS = {'world.json': 'synthetic', 'dataset.json': 'custom'}


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """One annotated person of the image: the example's camera, box [4] (x, y, w, h px) and
    joints (union names -> camera-frame mm), and where it came from."""
    camera: object
    box: np.ndarray
    joints: dict
    source: str


def find_ground_truth(image_path: pathlib.Path) -> GroundTruth | None:
    """The annotated person of `image_path` in the dataset it belongs to, if any (module doc)."""
    from posepile import datasets
    image_path = image_path.resolve()
    for directory in image_path.parents:
        for marker, converter_name in GROUND_TRUTH_MARKERS.items():
            if (directory / marker).is_file():
                converter = datasets.get_converter(converter_name)
                for example in converter.convert(directory):
                    image = example.image
                    if isinstance(image, str) and pathlib.Path(image).resolve() == image_path:
                        cam = example.camera
                        coords = cam.world_to_camera(np.asarray(example.world_coords, float))
                        return GroundTruth(cam, np.asarray(example.box, np.float32),
                                           dict(zip(example.joint_names, coords)),
                                           f'{converter_name} dataset {directory}')
                return None
    return None


def run_on_image(model, image: np.ndarray, skeleton: str, num_aug: int, fov: float,
                 suppress: bool, truth: GroundTruth | None) -> dict[str, np.ndarray]:
    """Model outputs as numpy: estimate_poses in the annotated box with the dataset's camera
    (camera-frame poses) if `truth`, else detect_poses (module doc)."""
    from eval.model_predictions import opencv5_distortion
    if truth is None:
        out = model.detect_poses(image, default_fov_degrees=fov, num_aug=num_aug,
                                 skeleton=skeleton, suppress_implausible_poses=suppress)
        return {k: v.numpy() for k, v in out.items()}
    cam = truth.camera
    out = model.estimate_poses(
        image, truth.box[None], intrinsic_matrix=cam.intrinsic_matrix.astype(np.float32),
        distortion_coeffs=opencv5_distortion(cam), world_up_vector=(cam.R @ cam.world_up).astype(
            np.float32), num_aug=num_aug, skeleton=skeleton)
    result = {k: v.numpy() for k, v in out.items()}
    result['boxes'] = np.concatenate([truth.box[None], [[np.nan]]], axis=1)
    return result


def truth_of(truth: GroundTruth, joint_names: list[str]) -> np.ndarray:
    """[J, 3] camera-frame mm of the given union joint names (NaN where not annotated)."""
    return np.array([truth.joints.get(n, (np.nan,) * 3) for n in joint_names], np.float64)


def title_of(model_path: str, skeleton: str, n_joints: int, n_poses: int,
             errors: tuple[float, float] | None) -> str:
    name = pathlib.Path(model_path).name or model_path
    what = f'skeleton {skeleton}' if skeleton else f'all {n_joints} joints'
    if errors is None:
        return f'{name} · {what} · {n_poses} pose(s) · no ground truth for this image'
    return (f'{name} · {what} · MPJPE {errors[0]:.0f} mm (joint-mean aligned), absolute '
            f'{errors[1]:.0f} mm · ground truth dashed')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m metrabs.demo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', required=True, help='exported SavedModel directory')
    parser.add_argument('--image', required=True,
                        help='image file (any layout posepile/image_input.py takes)')
    parser.add_argument('--out', required=True, help='output figure (png, jpg, pdf, ...)')
    parser.add_argument('--skeleton', default='', help="skeleton name ('' = all model joints)")
    parser.add_argument('--num-aug', type=int, default=1,
                        help='test-time augmentations averaged per person (default 1)')
    parser.add_argument('--fov', type=float, default=55.0,
                        help='field of view along the larger side, degrees, without ground truth')
    parser.add_argument('--keep-implausible', action='store_true',
                        help="keep the detector's detections whose pose fails the plausibility "
                             'test (without a detector nothing is dropped)')
    parser.add_argument('--ground-truth', choices=('auto', 'none'), default='auto',
                        help='auto: look the image up in the dataset it belongs to (module doc)')
    return parser


def run(args: argparse.Namespace) -> int:
    import imageio.v3 as iio

    from eval import metrics
    from metrabs.serving import visualize
    from metrabs.serving.loaded_model import (MIN_IMAGE_SIDE, check_skeleton, load_model,
                                              skeleton_joints)
    from posepile import joints
    from posepile.image_input import as_rgb_uint8

    model = load_model(args.model)
    check_skeleton(model, args.skeleton)
    image_path = pathlib.Path(args.image)
    if not image_path.is_file():
        raise FileNotFoundError(f'--image {image_path}: no such file')
    try:
        image = iio.imread(image_path)
    except (OSError, ValueError) as error:
        raise ValueError(f'{image_path}: cannot read the image: {error}') from None
    image = as_rgb_uint8(image, str(image_path), MIN_IMAGE_SIDE)
    truth = find_ground_truth(image_path) if args.ground_truth == 'auto' else None
    names, edges = skeleton_joints(model, args.skeleton)
    pred = run_on_image(model, image, args.skeleton, args.num_aug, args.fov,
                        not args.keep_implausible, truth)
    truth2d = truth3d = errors = None
    if truth is not None:
        union = (joints.union_names(args.skeleton) if args.skeleton
                 else [n.decode() for n in model.joint_names.numpy()])
        truth3d = truth_of(truth, union)[None]
        truth2d = truth.camera.camera_to_image(truth3d)
        errors = (metrics.nan_mean(metrics.joint_errors(pred['poses3d'], truth3d, 'mean')),
                  metrics.nan_mean(metrics.joint_errors(pred['poses3d'], truth3d, 'none')))
    title = title_of(args.model, args.skeleton, len(names), len(pred['poses3d']), errors)
    visualize.save_figure(args.out, image, pred['poses2d'], pred['poses3d'], edges,
                          pred['boxes'], truth2d=truth2d, truth3d=truth3d, title=title)
    print(f'{len(pred["poses3d"])} pose(s) drawn to {args.out}: {title}')
    if truth is not None:
        print(f'ground truth from the {truth.source}')
    elif not len(pred['poses3d']):
        everything = run_on_image(model, image, args.skeleton, args.num_aug, args.fov, False,
                                  None)
        if len(everything['boxes']):
            print(f'all {len(everything["boxes"])} detection(s) were dropped as implausible '
                  f'poses; --keep-implausible draws them', file=sys.stderr)
        else:
            print('the detector found no person in the image', file=sys.stderr)
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
