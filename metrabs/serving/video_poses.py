"""Poses for every frame of a video: batched detect_poses, IoU tracks, an optional overlay video.

Frames are decoded and encoded by the ffmpeg binary that the imageio-ffmpeg package ships; the
exported model's detect_poses_batched runs on `batch_size` frames at a time. Frames without a
person (or without detections) simply have no rows.

The poses file (`write_poses_npz`, np.load(path) reads it without pickle), P = detections in all
frames, F = frames, J = joints of the skeleton:
    frame_splits      [F + 1] int64   frame f's rows are frame_splits[f]:frame_splits[f + 1]
    frame_index       [P] int64       the frame of each row
    boxes             [P, 5] float32  x, y, w, h (image px) and detector score
    poses3d           [P, J, 3] float32  mm, camera frame (OpenCV axes: x right, y down, z
                                        forward), from the camera given (default FOV otherwise)
    poses2d           [P, J, 2] float32  image px (integer coordinates are pixel centres)
    track_id          [P] int64       IoU track of each row (>= 0), -1 everywhere without tracking
    joint_names       [J] str, joint_edges [E, 2] int64, skeleton () str ('' = all model joints)
    fps               () float64, image_size [2] int64 (height, width)
    intrinsic_matrix  [3, 3] float32 (the one used), distortion_coeffs [5] float32
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from metrabs.serving import tracking, visualize
from metrabs.serving.loaded_model import skeleton_joints
from posepile.atomic_io import write_npz_atomic


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """What detect_poses_batched is asked per frame (names as its arguments; see
    metrabs/serving/inference_module.py), the batching and the tracking.

    intrinsic_matrix: [3, 3] px, or None for the default field of view fov_degrees along the
    larger image side; distortion_coeffs: OpenCV's 5, or None for none.
    """

    skeleton: str = ''
    batch_size: int = 8
    num_aug: int = 1
    fov_degrees: float = 55.0
    intrinsic_matrix: np.ndarray | None = None
    distortion_coeffs: np.ndarray | None = None
    detector_threshold: float = 0.3
    max_detections: int = -1
    suppress_implausible_poses: bool = True
    track: bool = True
    iou_threshold: float = 0.3
    max_age: int = 5


def read_video(path: str | os.PathLike) -> tuple[dict, Iterator[np.ndarray]]:
    """(metadata: 'fps', 'size' (width, height), 'duration' s, ...; frames [H, W, 3] uint8 RGB).
    A missing or undecodable file fails naming it."""
    import imageio_ffmpeg
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such video file')
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt='rgb24')
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
        raise ValueError(f'{path}: cannot read video: {e}') from e
    width, height = meta['size']

    def frames():
        for buffer in reader:
            yield np.frombuffer(buffer, np.uint8).reshape(height, width, 3)
    return meta, frames()


@contextlib.contextmanager
def video_writer(path: str | os.PathLike, fps: float, size: tuple[int, int]):
    """Yields write(frame [H, W, 3] uint8) encoding H.264 (yuv420p, odd sides padded with black)
    to a temporary file next to path, renamed onto path when the block ends without error."""
    import imageio_ffmpeg
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.stem}.tmp{os.getpid()}{path.suffix}')
    width, height = size
    padded = (width + width % 2, height + height % 2)
    encoder = imageio_ffmpeg.write_frames(str(tmp), padded, fps=fps, codec='libx264',
                                          macro_block_size=1, ffmpeg_log_level='error')
    encoder.send(None)

    def write(frame):
        frame = np.pad(frame, [(0, padded[1] - height), (0, padded[0] - width), (0, 0)])
        encoder.send(np.ascontiguousarray(frame))
    try:
        yield write
        encoder.close()
        os.replace(tmp, path)
    except BaseException:
        encoder.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _batches(frames: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def estimate_video(model, frames: Iterable[np.ndarray], fps: float,
                   options: VideoOptions = VideoOptions(),
                   on_frame: Callable[[np.ndarray, dict], None] | None = None,
                   total_frames: int | None = None, progress: bool = True
                   ) -> dict[str, np.ndarray]:
    """Runs the loaded model on frames [H, W, 3] uint8 (all one size); returns the poses file's
    arrays (module doc). on_frame(frame, rows), if given, sees each frame with its rows
    ('boxes', 'poses2d', 'poses3d', 'track_id') in order, e.g. to render it."""
    names, edges = skeleton_joints(model, options.skeleton)
    tracker = (tracking.IouTracker(options.iou_threshold, options.max_age) if options.track
               else None)
    camera = {}
    if options.intrinsic_matrix is not None:
        camera['intrinsic_matrix'] = np.asarray(options.intrinsic_matrix, np.float32)[None]
    if options.distortion_coeffs is not None:
        camera['distortion_coeffs'] = np.asarray(options.distortion_coeffs, np.float32)[None]
    rows = {'boxes': [], 'poses3d': [], 'poses2d': [], 'track_id': []}
    counts = []
    image_size = None
    bar = tqdm(total=total_frames, unit='frame', disable=not progress)
    for images in _batches(frames, max(int(options.batch_size), 1)):
        if image_size is None:
            image_size = images.shape[1:3]
        elif images.shape[1:3] != image_size:
            raise ValueError(f'frame of size {images.shape[1:3]} in a video of {image_size}')
        pred = model.detect_poses_batched(
            images, default_fov_degrees=options.fov_degrees, num_aug=options.num_aug,
            skeleton=options.skeleton, detector_threshold=options.detector_threshold,
            max_detections=options.max_detections,
            suppress_implausible_poses=options.suppress_implausible_poses, **camera)
        lengths = pred['boxes'].row_lengths().numpy()
        splits = np.concatenate([[0], np.cumsum(lengths)])
        flat = {k: pred[k].flat_values.numpy() for k in ('boxes', 'poses3d', 'poses2d')}
        for i, frame in enumerate(images):
            frame_rows = {k: v[splits[i]:splits[i + 1]] for k, v in flat.items()}
            frame_rows['track_id'] = (tracker.update(frame_rows['boxes']) if tracker
                                      else np.full(lengths[i], -1, np.int64))
            for k, v in frame_rows.items():
                rows[k].append(v)
            counts.append(lengths[i])
            if on_frame is not None:
                on_frame(frame, frame_rows)
        bar.update(len(images))
    bar.close()
    if image_size is None:
        raise ValueError('the video has no frames')
    n_joints = len(names)
    empty = {'boxes': (0, 5), 'poses3d': (0, n_joints, 3), 'poses2d': (0, n_joints, 2)}
    result = {k: (np.concatenate(v).astype(np.float32) if v else np.zeros(empty[k], np.float32))
              for k, v in rows.items() if k != 'track_id'}
    result['track_id'] = np.concatenate(rows['track_id'] or [np.zeros(0)]).astype(np.int64)
    frame_splits = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    height, width = image_size
    intrinsics = (np.asarray(options.intrinsic_matrix, np.float32)
                  if options.intrinsic_matrix is not None
                  else default_intrinsics(options.fov_degrees, height, width))
    distortion = (np.zeros(5, np.float32) if options.distortion_coeffs is None
                  else np.asarray(options.distortion_coeffs, np.float32))
    result.update(
        frame_splits=frame_splits,
        frame_index=np.repeat(np.arange(len(counts)), counts).astype(np.int64),
        joint_names=np.array(names, dtype=str), joint_edges=edges, skeleton=np.array(
            options.skeleton), fps=np.float64(fps),
        image_size=np.array([height, width], np.int64), intrinsic_matrix=intrinsics,
        distortion_coeffs=distortion)
    return result


def default_intrinsics(fov_degrees: float, height: int, width: int) -> np.ndarray:
    """[3, 3] float32: the default camera of estimate_poses (fov along the larger side, principal
    point at ((W-1)/2, (H-1)/2)); posepile.camera.camera_from_fov is the same camera."""
    from posepile.camera import camera_from_fov
    return camera_from_fov((height, width), fov_degrees).intrinsic_matrix.astype(np.float32)


def write_poses_npz(path: str | os.PathLike, result: dict[str, np.ndarray]) -> None:
    write_npz_atomic(path, **result)


def run(model, input_path: str | os.PathLike, out_path: str | os.PathLike,
        options: VideoOptions = VideoOptions(), render_path: str | os.PathLike | None = None,
        progress: bool = True) -> dict[str, np.ndarray]:
    """The video command: poses of every frame of input_path to out_path (npz), optionally an
    overlay video (2D skeletons, boxes, track ids) to render_path."""
    meta, frames = read_video(input_path)
    fps = float(meta.get('fps') or 25.0)
    total = round(meta['duration'] * fps) if meta.get('duration') else None
    _, edges = skeleton_joints(model, options.skeleton)
    with contextlib.ExitStack() as stack:
        write = (stack.enter_context(video_writer(render_path, fps, tuple(meta['size'])))
                 if render_path is not None else None)

        def render(frame, rows):
            write(visualize.draw_overlay(frame, rows['poses2d'], edges, rows['boxes'],
                                         rows['track_id'] if options.track else None))
        result = estimate_video(model, frames, fps, options, render if write else None, total,
                                progress)
    write_poses_npz(out_path, result)
    return result
