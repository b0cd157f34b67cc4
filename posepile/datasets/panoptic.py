"""Converter for the CMU Panoptic Studio dataset (HD cameras, 'coco19' 3D body keypoints).

Expected layout under `root` (one directory per sequence, as the panoptic-toolbox download
scripts produce it; images may be extracted JPEGs or the original videos):

    <root>/<sequence>/                          e.g. 171204_pose1
        calibration_<sequence>.json             {'cameras': [{'name': '00_03', 'type': 'hd',
                                                  'resolution': [1920, 1080], 'K': 3x3,
                                                  'distCoef': [k1, k2, p1, p2, k3], 'R': 3x3,
                                                  't': 3x1 (cm)}, ...]}
        hdPose3d_stage1_coco19/body3DScene_<8-digit hd frame>.json
                                                {'bodies': [{'id': int,
                                                  'joints19': 19*4 floats x, y, z (cm), conf}]}
        hdImgs/<cam>/<cam>_<8-digit hd frame>.jpg    (preferred when present), or
        hdVideos/hd_<cam>.mp4                        (frame i of the video = hd frame i)

Units and frames: the files are in centimetres; world coordinates are returned in millimetres
in the studio's world frame (y points down, so world up is -y). The calibration maps
x_cam = R @ x_world + t, so the optical centre is -R^T t.

Joints: 'joints19' in the order of the 'coco' skeleton (Neck, Nose, BodyCenter, lShoulder, ...);
joints whose confidence is below 0.1 (or negative, the toolbox's "not reconstructed") are NaN.

Split: the multi-person 3D literature (VoxelPose and followers) evaluates on 160906_pizza1,
160422_haggling1, 160906_ian5 and 160906_band4; these sequences get split 'test', all others
'train'. Tracks: sequence = the sequence name, person = the body 'id', camera_id = the camera
name ('00_03').

Not read: VGA cameras and their 'vgaPose3d_*' files, Kinect data, face/hand keypoints, the
'stage1' variants of other skeletons. Frames beyond the end of a video are skipped (the pose
files sometimes outlast the videos by a few frames); a missing JPEG is an error.
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

SKELETON = 'coco'
DESCRIPTION = 'CMU Panoptic Studio: HD cameras, hdPose3d_stage1_coco19 (19 joints, cm)'
TEST_SEQUENCES = ('160906_pizza1', '160422_haggling1', '160906_ian5', '160906_band4')
CONFIDENCE_THRESHOLD = 0.1
N_JOINTS = 19
CM_TO_MM = 10.0
_POSE_DIR = 'hdPose3d_stage1_coco19'
_POSE_FILE = re.compile(r'^body3DScene_(\d{8})\.json$')


def load_calibration(path: pathlib.Path, camera_type: str = 'hd'
                     ) -> dict[str, tuple[Camera, tuple[int, int]]]:
    """Cameras of one type from a calibration_<seq>.json: name -> (Camera in mm, (H, W) px)."""
    calib = common.load_json(path)
    records = common.get_field(calib, 'cameras', path)
    if not isinstance(records, list):
        raise common.DatasetFormatError(f'{path}: field "cameras" must be a list')
    cameras = {}
    for i, rec in enumerate(records):
        where = f'{path} cameras[{i}]'
        if common.get_field(rec, 'type', where) != camera_type:
            continue
        name = str(common.get_field(rec, 'name', where))
        K = common.get_field(rec, 'K', where, (3, 3))
        R = common.get_field(rec, 'R', where, (3, 3))
        t = common.get_field(rec, 't', where, (3, 1))[:, 0] * CM_TO_MM
        dist = common.get_field(rec, 'distCoef', where, (None,))
        width, height = common.get_field(rec, 'resolution', where, (2,), dtype=np.int64)
        try:
            camera = Camera(optical_center=-R.T @ t, rot_world_to_cam=R, intrinsic_matrix=K,
                            distortion_coeffs=dist, world_up=(0, -1, 0))
        except ValueError as e:
            raise common.DatasetFormatError(f'{where}: invalid camera ({e})') from None
        cameras[name] = (camera, (int(height), int(width)))
    if not cameras:
        raise common.DatasetFormatError(f'{path}: no cameras of type {camera_type!r}')
    return cameras


def load_bodies(path: pathlib.Path) -> list[tuple[int, np.ndarray]]:
    """[(body id, [19, 3] world mm with NaN for unlabelled joints)] of one body3DScene file."""
    scene = common.load_json(path)
    bodies = common.get_field(scene, 'bodies', path)
    result = []
    for i, body in enumerate(bodies):
        where = f'{path} bodies[{i}]'
        person = int(common.get_field(body, 'id', where))
        values = common.get_field(body, 'joints19', where, (N_JOINTS * 4,)).reshape(N_JOINTS, 4)
        coords = values[:, :3] * CM_TO_MM
        coords[values[:, 3] < CONFIDENCE_THRESHOLD] = np.nan
        result.append((person, coords))
    return result


class _FrameSource:
    """Where one camera's hd frame i comes from: a JPEG in hdImgs or frame i of the video."""

    def __init__(self, seq_dir: pathlib.Path, cam_name: str):
        self.image_dir = seq_dir / 'hdImgs' / cam_name
        self.cam_name = cam_name
        if self.image_dir.is_dir():
            self.video = None
            self.n_frames = None
        else:
            self.video = common.require_file(
                seq_dir / 'hdVideos' / f'hd_{cam_name}.mp4',
                f'the HD video of camera {cam_name} (or extracted frames in {self.image_dir})')
            self.n_frames = common.video_frame_count(self.video)

    def beyond_end(self, frame: int) -> bool:
        """True if the video ended before `frame` (extracted JPEGs have no end: a missing one is
        an error in `get`)."""
        return self.video is not None and frame >= self.n_frames

    def get(self, frame: int):
        """The image for Pose3DExample.image (`frame` not beyond the end)."""
        if self.video is None:
            path = self.image_dir / f'{self.cam_name}_{frame:08d}.jpg'
            return str(common.require_file(path, f'hd frame {frame} of camera {self.cam_name}'))
        return common.VideoFrame(self.video, frame)


def _pose_files(seq_dir: pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    pose_dir = common.require_dir(seq_dir / _POSE_DIR, 'body3DScene_<frame>.json files')
    found = []
    for p in pose_dir.iterdir():
        match = _POSE_FILE.match(p.name)
        if match:
            found.append((int(match.group(1)), p))
    return sorted(found)


def _sequence_dirs(root: pathlib.Path, sequences: Iterable[str] | None) -> list[pathlib.Path]:
    if sequences is not None:
        return [common.require_dir(common.safe_path(root, s), f'Panoptic sequence {s}')
                for s in sequences]
    found = sorted(d for d in root.iterdir()
                   if d.is_dir() and (d / f'calibration_{d.name}.json').is_file())
    if not found:
        raise common.DatasetFormatError(
            f'{root}: no sequence directories with calibration_<sequence>.json found')
    return found


def convert(root, sequences: Iterable[str] | None = None,
            cameras: Iterable[str] | None = None) -> Iterator[Pose3DExample]:
    """Yields one example per (frame, HD camera, body) with at least one labelled joint whose
    projection falls inside the image.

    Args:
        root: the directory holding the sequence directories.
        sequences: sequence names to read (default: every directory with a calibration file).
        cameras: HD camera names such as '00_03' (default: all HD cameras of the calibration).
    """
    root = common.require_dir(root, 'the CMU Panoptic root with one directory per sequence')
    names = joints.union_names(SKELETON)
    for seq_dir in _sequence_dirs(root, sequences):
        seq = seq_dir.name
        calibration = load_calibration(seq_dir / f'calibration_{seq}.json')
        cam_names = sorted(calibration) if cameras is None else list(cameras)
        missing = [c for c in cam_names if c not in calibration]
        if missing:
            raise common.DatasetFormatError(
                f'{seq_dir / f"calibration_{seq}.json"}: no HD cameras named {missing}')
        pose_files = _pose_files(seq_dir)
        sources = {c: _FrameSource(seq_dir, c) for c in cam_names}
        split = 'test' if seq in TEST_SEQUENCES else 'train'
        for frame, pose_path in pose_files:
            bodies = load_bodies(pose_path)
            for cam_name in cam_names:
                camera, imshape = calibration[cam_name]
                if sources[cam_name].beyond_end(frame):
                    count_skipped('panoptic', 'frame beyond the end of the video (person-frames)',
                                  len(bodies))
                    continue
                for person, coords in bodies:
                    box = _visible_box(camera, coords, imshape)
                    if box is None:
                        count_skipped('panoptic', 'no labelled joint in front of the camera and '
                                                  'inside the image')
                        continue
                    image = sources[cam_name].get(frame)
                    yield Pose3DExample(
                        image=image, camera=camera.copy(), world_coords=coords,
                        joint_names=names, box=box, dataset='panoptic', sequence=seq,
                        person=person, camera_id=cam_name, frame=frame, split=split,
                        extra={'pose_file': str(pose_path)})


def _visible_box(camera: Camera, coords: np.ndarray, imshape: tuple[int, int]) -> np.ndarray | None:
    """Box around the projected labelled joints; None if none is in front and inside the image."""
    labelled = np.all(np.isfinite(coords), axis=1)
    if not labelled.any():
        return None
    points = coords[labelled]
    in_front = camera.world_to_camera(points)[:, 2] > 0
    if not in_front.any():
        return None
    projected = camera.world_to_image(points[in_front])
    h, w = imshape
    inside = np.all((projected >= -0.5) & (projected <= [w - 0.5, h - 0.5]), axis=1)
    if not inside.any():
        return None
    return common.box_around_points(projected, imshape=imshape)
