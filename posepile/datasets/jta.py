"""Converter for JTA (Joint Track Auto; GTA-V pedestrians, 512 videos of 900 frames, 22 joints).

Expected layout under `root`, as the official download (github.com/fabbrimatteo/JTA-Dataset,
download_data.sh / the aimagelab archive) extracts it:

    <root>/
        annotations/{train,val,test}/seq_<N>.json
        videos/{train,val,test}/seq_<N>.mp4          1920x1080, 30 fps

Each annotation file is a list of rows, one per (frame, person, joint):
    [frame (1-based), person_id, joint_type (0..21), x2D, y2D (px), x3D, y3D, z3D (metres,
     camera frame), occluded (0/1), self_occluded (0/1)].

Joints: the 22 joint types in id order (head_top, head_center, neck, right clavicle, shoulder,
elbow, wrist, left ditto, spine0..spine4, right hip, knee, ankle, left ditto), the 'jta'
skeleton. Joint types a person lacks in a frame are NaN.

Camera and frames: one fixed camera per sequence, K = [[1158, 0, 960], [0, 1158, 540], [0, 0, 1]]
(the dataset's README), no distortion. The world frame is the camera frame (identity
extrinsics); 3D coordinates are converted from metres to millimetres. If a video is a uniformly
resized copy of the 1920x1080 original, K is rescaled to its width (`Camera.scale_output`);
other aspect ratios are refused. Annotation frame f is video frame f - 1 (decoded lazily).

Split: the directories: train -> 'train', val -> 'validation', test -> 'test' (the JTA paper
reports on val + test together).

Skipped (options of `convert`): person-frames with fewer than `min_visible_joints` = 6 joints
that are neither occluded nor self-occluded and project inside the image, with any joint at
z <= 0 (behind the camera), or whose box (projected joints + 10 % margin) has a larger side below
`min_box_side_px` = 32 px of the video's resolution. Crowds of tiny background pedestrians are
the bulk of JTA's rows; they carry little signal for a person-centred crop.

Tracks: sequence = '<split dir>/seq_<N>', person = person_id, camera_id = ''. Examples come in
frame order (the video is read sequentially).

Not read: the per-row x2D/y2D (the box comes from projecting the 3D joints, which agree with them).
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'jta'
DESCRIPTION = 'JTA (GTA-V): per-sequence joint json (22 joints, camera frame, m), 1080p mp4'
N_JOINTS = 22
N_COLUMNS = 10
INTRINSIC_MATRIX = ((1158.0, 0.0, 960.0), (0.0, 1158.0, 540.0), (0.0, 0.0, 1.0))
ORIGINAL_SIZE = (1080, 1920)
_SPLIT_DIRS = {'train': 'train', 'validation': 'val', 'test': 'test'}
_SEQUENCE_NAME = re.compile(r'^seq_(\d+)\.json$')


def sequence_files(annotation_dir: pathlib.Path) -> list[pathlib.Path]:
    """seq_<N>.json files of one split directory in numeric order."""
    found = [(int(m.group(1)), p) for p in annotation_dir.iterdir()
             if (m := _SEQUENCE_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def load_annotation_matrix(path: pathlib.Path) -> np.ndarray:
    """[N, 10] float64 rows of one seq_<N>.json, checked."""
    data = common.load_json(path)
    try:
        matrix = np.asarray(data, np.float64)
    except (TypeError, ValueError) as e:
        raise common.DatasetFormatError(
            f'{path}: expected a list of rows of {N_COLUMNS} numbers ({e})') from None
    if matrix.size == 0:
        return np.zeros((0, N_COLUMNS))
    if matrix.ndim != 2 or matrix.shape[1] != N_COLUMNS:
        raise common.DatasetFormatError(
            f'{path}: rows have shape {matrix.shape}, expected [N, {N_COLUMNS}] (frame, person, '
            f'joint, x2D, y2D, x3D, y3D, z3D, occluded, self_occluded)')
    joint_types = matrix[:, 2]
    if np.any((joint_types < 0) | (joint_types >= N_JOINTS) | (joint_types % 1 != 0)):
        raise common.DatasetFormatError(
            f'{path}: column "joint_type" has values outside 0..{N_JOINTS - 1}')
    if np.any(matrix[:, 0] < 1) or np.any(matrix[:, 0] % 1 != 0):
        raise common.DatasetFormatError(f'{path}: column "frame" must hold integers >= 1')
    return matrix


def group_poses(matrix: np.ndarray, path: pathlib.Path):
    """Rows -> per (frame, person) arrays, sorted by frame then person.

    Returns (frames [P] 1-based, person_ids [P], coords_m [P, 22, 3] NaN where absent,
    occluded [P, 22] bool (absent joints count as occluded)).
    """
    frames_col = matrix[:, 0].astype(np.int64)
    persons_col = matrix[:, 1].astype(np.int64)
    keys, group = np.unique(np.stack([frames_col, persons_col], 1), axis=0, return_inverse=True)
    group = group.reshape(-1)
    joint = matrix[:, 2].astype(np.int64)
    slot = group * N_JOINTS + joint
    if len(np.unique(slot)) != len(slot):
        raise common.DatasetFormatError(
            f'{path}: some (frame, person, joint_type) appears in more than one row')
    coords = np.full((len(keys) * N_JOINTS, 3), np.nan)
    coords[slot] = matrix[:, 5:8]
    occluded = np.ones(len(keys) * N_JOINTS, bool)
    occluded[slot] = (matrix[:, 8] != 0) | (matrix[:, 9] != 0)
    return (keys[:, 0], keys[:, 1], coords.reshape(-1, N_JOINTS, 3),
            occluded.reshape(-1, N_JOINTS))


def camera_for_video(video: pathlib.Path) -> tuple[Camera, tuple[int, int]]:
    """The documented JTA camera, rescaled to the video's resolution; and (H, W)."""
    import cv2
    common.require_file(video, 'a JTA sequence video (mp4)')
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise common.DatasetFormatError(f'{video}: cannot be opened as a video')
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if width <= 0 or height <= 0 or abs(height * ORIGINAL_SIZE[1] - width * ORIGINAL_SIZE[0]) \
            > ORIGINAL_SIZE[1]:
        raise common.DatasetFormatError(
            f'{video}: frame size {width}x{height}, expected 1920x1080 (or a uniform resize)')
    camera = Camera(intrinsic_matrix=INTRINSIC_MATRIX)
    if width != ORIGINAL_SIZE[1]:
        camera.scale_output(width / ORIGINAL_SIZE[1])
    return camera, (height, width)


def convert(root, splits: Iterable[str] = ('train', 'validation', 'test'),
            min_visible_joints: int = 6, min_box_side_px: float = 32.0
            ) -> Iterator[Pose3DExample]:
    """Yields one example per usable (sequence, frame, person).

    Args:
        root: the JTA-Dataset directory (see module docstring).
        splits: which of 'train', 'validation', 'test' to read.
        min_visible_joints: fewer non-occluded in-image joints -> skipped.
        min_box_side_px: smaller box (larger side, video pixels) -> skipped.
    """
    root = common.require_dir(root, 'the JTA-Dataset directory')
    splits = set(splits)
    unknown = sorted(splits - set(_SPLIT_DIRS))
    if unknown:
        raise ValueError(f'unknown JTA splits {unknown}; expected some of {list(_SPLIT_DIRS)}')
    names = joints.union_names(SKELETON)
    for split, subdir in _SPLIT_DIRS.items():
        if split not in splits:
            continue
        annotation_dir = common.require_dir(root / 'annotations' / subdir,
                                            f'the JTA {subdir} annotations (seq_<N>.json)')
        for path in sequence_files(annotation_dir):
            video = root / 'videos' / subdir / path.with_suffix('.mp4').name
            camera, imshape = camera_for_video(video)
            frames, person_ids, coords_m, occluded = group_poses(load_annotation_matrix(path), path)
            n_video_frames = common.video_frame_count(video)
            if len(frames) and frames.max() > n_video_frames:
                raise common.DatasetFormatError(
                    f'{path}: annotates frame {frames.max()} but {video} has {n_video_frames} '
                    f'frames')
            coords_mm = coords_m * 1000.0
            with np.errstate(invalid='ignore'):
                in_front = np.all(np.isnan(coords_mm[..., 2]) | (coords_mm[..., 2] > 0), axis=1)
            projected = camera.world_to_image(np.nan_to_num(coords_mm, nan=1.0))
            projected[np.isnan(coords_mm[..., 0])] = np.nan
            inside = common.inside_image(projected, imshape)
            n_visible = np.count_nonzero(inside & ~occluded, axis=1)
            count_skipped('jta', 'joint behind the camera', np.count_nonzero(~in_front))
            count_skipped('jta', 'fewer visible joints than min_visible_joints',
                          np.count_nonzero(in_front & (n_visible < min_visible_joints)))
            for i in np.flatnonzero(in_front & (n_visible >= min_visible_joints)):
                box = common.box_around_points(projected[i])
                if max(box[2], box[3]) < min_box_side_px:
                    count_skipped('jta', 'box smaller than min_box_side_px')
                    continue
                yield Pose3DExample(
                    image=common.VideoFrame(video, frames[i] - 1), camera=camera.copy(),
                    world_coords=coords_mm[i], joint_names=names, box=box, dataset='jta',
                    sequence=f'{subdir}/{path.stem}', person=int(person_ids[i]), camera_id='',
                    frame=int(frames[i]), split=split,
                    extra={'occluded': occluded[i]})
