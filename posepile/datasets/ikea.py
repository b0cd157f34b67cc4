"""Converter for IKEA-ASM (furniture assembly; 3 Kinect views; 3D body keypoints per frame).

Expected layout under `root` (the IKEA-ASM release, ikeaasm.github.io, extracted: the RGB
videos, the 3D pose annotations and the calibration):

    <root>/
        Calibration/camera_parameters.pkl         {calibration id: {camera: {'K': [3, 3],
                                                   'R': [3, 3], ...}}} (a plain pickle)
        <furniture>/<scan>/<camera>/images/scan_video.avi        camera in dev1, dev2, dev3
        <furniture>/<scan>/<camera>/pose3d/<frame:06d>.json      'pose_keypoints_3d': 17 x
                                                   (x, y, z, confidence), cm, camera frame;
                                                   all-zero keypoints = missing

<scan> is '<id>_<colour>_<surface>_<calibration id>_...' (e.g.
0001_black_table_02_01_2019_08_16_14_00): its fourth '_' field selects the calibration. The
'special_test' scans have no calibration entry and are skipped (as in the reference loader).

Joints: the 17 COCO-order keypoints, skeleton 'ikea' (own tag). cm -> mm.

Frames: the world frame is each calibration's camera-aligned frame: x_world = R^T x_cam (the
pose is in the camera frame and the calibration gives only K and R, so the optical centre is the
origin). World up is -y of that frame, as in the reference loader. Pose file <frame>.json labels
video frame <frame> (decoded lazily). No distortion.

Skipped: frames with fewer than `min_joints_in_view` = 4 keypoints in front of the camera and
inside the image (the reference's rule). Boxes: projected keypoints + 10 % per side.

Split: everything is 'train' (the paper uses IKEA-ASM for training only).
Tracks: sequence = '<furniture>/<scan>', person = 0, camera_id = camera directory name.

Not read: depth, action labels, 2D pose files, object segmentation.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'ikea'
DESCRIPTION = 'IKEA-ASM: pose3d json (17 COCO keypoints, cm, camera frame), scan_video.avi'
N_JOINTS = 17
_POSE_FILE = re.compile(r'^(\d+)\.json$')


def load_calibration(root: pathlib.Path) -> dict[str, dict[str, Camera]]:
    """{calibration id: {camera name: Camera}} from Calibration/camera_parameters.pkl."""
    path = root / 'Calibration' / 'camera_parameters.pkl'
    data = common.load_pickled_dict(path, 'the IKEA-ASM camera parameters pickle (a dict of '
                                          'calibrations)')
    result = {}
    for calib_id, cams in data.items():
        result[str(calib_id)] = {}
        for cam_name, params in dict(cams).items():
            where = f'{path} [{calib_id}][{cam_name}]'
            K = common.get_field(params, 'K', where, (3, 3))
            R = common.get_field(params, 'R', where, (3, 3))
            try:
                result[str(calib_id)][str(cam_name)] = Camera(
                    rot_world_to_cam=R, intrinsic_matrix=K, world_up=(0, -1, 0))
            except ValueError as e:
                raise common.DatasetFormatError(f'{where}: invalid camera ({e})') from None
    return result


def load_pose(path: pathlib.Path) -> np.ndarray:
    """[17, 3] camera-frame mm (NaN where the keypoint is all zeros)."""
    values = common.get_field(common.load_json(path), 'pose_keypoints_3d', path,
                              (N_JOINTS * 4,))
    coords = values.reshape(N_JOINTS, 4)[:, :3] * 10.0
    coords[np.all(coords == 0, axis=1)] = np.nan
    return coords


def _video_size(path: pathlib.Path) -> tuple[int, int]:
    import cv2
    common.require_file(path, 'an IKEA-ASM scan video')
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise common.DatasetFormatError(f'{path}: cannot be opened as a video')
        return (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
    finally:
        capture.release()


def convert(root, min_joints_in_view: int = 4) -> Iterator[Pose3DExample]:
    """Yields one example per (scan, camera, annotated frame), each track in frame order."""
    root = common.require_dir(root, 'the IKEA-ASM directory')
    calibrations = load_calibration(root)
    names = joints.union_names(SKELETON)
    pose_dirs = sorted(p for p in root.glob('*/*/*/pose3d') if p.is_dir())
    for pose_dir in pose_dirs:
        camera_dir = pose_dir.parent
        scan_dir, furniture_dir = camera_dir.parent, camera_dir.parent.parent
        if scan_dir.name == 'special_test':
            count_skipped('ikea', 'special_test scan (no calibration)',
                          sum(1 for p in pose_dir.iterdir() if _POSE_FILE.match(p.name)))
            continue
        fields = scan_dir.name.split('_')
        if len(fields) < 4:
            raise common.DatasetFormatError(
                f'{scan_dir}: scan name should be "<id>_<colour>_<surface>_<calibration id>_..."')
        calib_id = fields[3]
        if calib_id not in calibrations or camera_dir.name not in calibrations[calib_id]:
            raise common.DatasetFormatError(
                f'{root / "Calibration/camera_parameters.pkl"}: no camera '
                f'[{calib_id!r}][{camera_dir.name!r}] for {camera_dir}')
        camera = calibrations[calib_id][camera_dir.name]
        video = camera_dir / 'images' / 'scan_video.avi'
        height, width = _video_size(video)
        n_video_frames = common.video_frame_count(video)
        frames = sorted((int(m.group(1)), p) for p in pose_dir.iterdir()
                        if (m := _POSE_FILE.match(p.name)))
        for frame, pose_path in frames:
            if frame >= n_video_frames:
                raise common.DatasetFormatError(
                    f'{pose_path}: labels frame {frame} but {video} has {n_video_frames} frames')
            cam_coords = load_pose(pose_path)
            world = camera.camera_to_world(cam_coords)
            labelled = np.isfinite(cam_coords[:, 0])
            in_front = labelled & (np.nan_to_num(cam_coords[:, 2]) > 0)
            projected = np.full((N_JOINTS, 2), np.nan)
            projected[in_front] = camera.world_to_image(world[in_front])
            inside = in_front & common.inside_image(projected, (height, width))
            if np.count_nonzero(inside) < min_joints_in_view:
                count_skipped('ikea', 'fewer keypoints inside the image than min_joints_in_view')
                continue
            yield Pose3DExample(
                image=common.VideoFrame(video, frame), camera=camera.copy(), world_coords=world,
                joint_names=names, box=common.box_around_points(projected[in_front]),
                dataset='ikea', sequence=f'{furniture_dir.name}/{scan_dir.name}', person=0,
                camera_id=camera_dir.name, frame=frame, split='train')
