"""3D poses for every frame of a video with an exported model; optional tracks and overlay video.

    python -m metrabs.video --model=DIR --input=VIDEO --out=poses.npz [--render=out.mp4]
        [--skeleton=NAME] [--batch-size=8] [--num-aug=1] [--fov=55] [--camera=JSON]
        [--detector-threshold=0.3] [--max-detections=-1] [--keep-implausible]
        [--no-track] [--iou-threshold=0.3] [--max-age=5] [--no-progress]

The poses file's layout is in metrabs/serving/video_poses.py (one row per detected person and
frame, with frame_splits / frame_index, boxes, poses3d (camera mm), poses2d (px), track_id).
--camera: a JSON object {"intrinsic_matrix": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
"distortion_coeffs": [k1, k2, p1, p2, k3] (optional)} in pixels of the video's frames; without
it a --fov degree field of view along the larger side is assumed. Without a detector in the
exported model (metrabs.export --detector), every frame's whole image is one person box.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from posepile import cli


def load_camera(path: str) -> dict[str, np.ndarray]:
    """intrinsic_matrix [3, 3] and distortion_coeffs [5] (zeros if absent) from a JSON file;
    errors name the file and the field."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'{path}: cannot read camera JSON: {e}') from e
    if not isinstance(data, dict) or 'intrinsic_matrix' not in data:
        raise ValueError(f'{path}: expected an object with "intrinsic_matrix"')
    fields = {'intrinsic_matrix': (3, 3), 'distortion_coeffs': (5,)}
    camera = {}
    for name, shape in fields.items():
        value = data.get(name, np.zeros(shape))
        try:
            array = np.asarray(value, np.float32)
        except (TypeError, ValueError):
            array = None
        if array is None or array.shape != shape or not np.all(np.isfinite(array)):
            raise ValueError(f'{path}: field {name!r} must be {shape} finite numbers, got {value}')
        camera[name] = array
    return camera


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m metrabs.video', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', required=True, help='exported SavedModel directory')
    parser.add_argument('--input', required=True, help='video file (anything ffmpeg reads)')
    parser.add_argument('--out', required=True, help='poses .npz')
    parser.add_argument('--render', help='overlay video to write (.mp4, H.264)')
    parser.add_argument('--skeleton', default='', help="skeleton name ('' = all model joints)")
    parser.add_argument('--batch-size', type=int, default=8, help='frames per model call')
    parser.add_argument('--num-aug', type=int, default=1,
                        help='test-time augmentations averaged per person (default 1)')
    parser.add_argument('--fov', type=float, default=55.0, help='field of view, degrees')
    parser.add_argument('--camera', help='JSON with intrinsic_matrix (and distortion_coeffs)')
    parser.add_argument('--detector-threshold', type=float, default=0.3,
                        help="minimum detector score (the exported detector's)")
    parser.add_argument('--max-detections', type=int, default=-1, help='per frame; -1: all')
    parser.add_argument('--keep-implausible', action='store_true',
                        help='do not filter implausible poses')
    parser.add_argument('--no-track', action='store_true', help='no IoU tracking (ids -1)')
    parser.add_argument('--iou-threshold', type=float, default=0.3,
                        help='tracking: least box IoU to continue a track')
    parser.add_argument('--max-age', type=int, default=5,
                        help='frames a track survives unmatched')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def run(args: argparse.Namespace) -> int:
    from metrabs.serving import video_poses
    from metrabs.serving.loaded_model import load_model

    camera = load_camera(args.camera) if args.camera else {}
    options = video_poses.VideoOptions(
        skeleton=args.skeleton, batch_size=args.batch_size, num_aug=args.num_aug,
        fov_degrees=args.fov, intrinsic_matrix=camera.get('intrinsic_matrix'),
        distortion_coeffs=camera.get('distortion_coeffs'),
        detector_threshold=args.detector_threshold, max_detections=args.max_detections,
        suppress_implausible_poses=not args.keep_implausible, track=not args.no_track,
        iou_threshold=args.iou_threshold, max_age=args.max_age)
    model = load_model(args.model)
    result = video_poses.run(model, args.input, args.out, options, args.render,
                             progress=not args.no_progress)
    frames = len(result['frame_splits']) - 1
    tracks = len(np.unique(result['track_id'][result['track_id'] >= 0]))
    print(f'{frames} frames, {len(result["boxes"])} poses, {tracks} tracks -> {args.out}'
          + (f' and {args.render}' if args.render else ''))
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
