"""Converter for MADS (Martial Arts, Dancing and Sports; multi-view part, 3 cameras).

Expected layout under `root`: MADS_multiview.zip (split zip from the authors' download page,
visal.cs.cityu.edu.hk/research/mads) joined and extracted:

    <root>/multi_view_data/<group>/
        <name>_C0.avi, <name>_C1.avi, <name>_C2.avi    the three views of one sequence
        <name>_GT.mat                                   'GTpose2': per frame a [19, 3] (or
                                                        [15, 3]) array, mm, world; NaN = none
        Calib_Cam0.mat, Calib_Cam1.mat, Calib_Cam2.mat  Caltech calibration toolbox: om_ext
                                                        (Rodrigues vector), T_ext (mm), KK,
                                                        kc (k1 k2 p1 p2 k3)

MATLAB files are read as v5 (scipy.io.loadmat); v7.3 files are refused with a clear error.

Joints: the 19 'mads' joints of GTpose2 (neck, pelvis, left hip, knee, ankle, toe, right ditto,
left shoulder, elbow, wrist, hand, right ditto, head); 15-joint frames (no toes/hands) are placed
into those rows and the rest is NaN. Frames whose joints are all NaN are skipped.

Cameras: x_cam = R x_world + T_ext with R = Rodrigues(om_ext) (the toolbox's convention),
distortion kc in OpenCV order. The world's up direction is +y (as the reference loader).
Boxes: projected joints + 10 % per side. Frame i of GTpose2 is frame i of each video (decoded
lazily); frames beyond the shorter of the two are ignored.

Split: everything is 'train' (the paper trains on MADS only).
Tracks: sequence = '<group>/<name>', person = 0, camera_id = 'C0' / 'C1' / 'C2'.
Not read: the stereo part (MADS_depth), the GTpose (non-'2') fields.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

import numpy as np
import scipy.io

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'mads'
DESCRIPTION = 'MADS multi-view: GTpose2 (19/15 joints, mm), Caltech calibration, 3 avi views'
N_JOINTS = 19
# Rows of the 19-joint format that 15-joint frames fill, in their order.
ROWS_OF_15 = (0, 1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18)
_VIDEO = re.compile(r'^(.+)_C(\d)\.avi$')


def load_mat(path: pathlib.Path) -> dict:
    common.require_file(path, 'a MATLAB v5 file')
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except NotImplementedError:
        raise common.DatasetFormatError(
            f'{path}: is a MATLAB v7.3 (HDF5) file; expected v5 as distributed') from None
    except (ValueError, TypeError, OSError, IndexError, scipy.io.matlab.MatReadError) as e:
        raise common.DatasetFormatError(f'{path}: not a readable MATLAB v5 file ({e})') from e


def load_camera(path: pathlib.Path) -> Camera:
    """A Calib_Cam<i>.mat of the Caltech toolbox -> Camera (mm, world up +y)."""
    import cv2
    data = load_mat(path)
    om = common.get_field(data, 'om_ext', path, (3,))
    T = common.get_field(data, 'T_ext', path, (3,))
    K = common.get_field(data, 'KK', path, (3, 3))
    kc = common.get_field(data, 'kc', path, (None,))
    R = cv2.Rodrigues(om)[0]
    try:
        return Camera(optical_center=-R.T @ T, rot_world_to_cam=R, intrinsic_matrix=K,
                      distortion_coeffs=kc, world_up=(0, 1, 0))
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: invalid camera ({e})') from None


def load_poses(path: pathlib.Path) -> np.ndarray:
    """GTpose2 of a <name>_GT.mat -> [T, 19, 3] float64 mm (NaN where absent)."""
    raw = common.get_field(load_mat(path), 'GTpose2', path)
    # squeeze_me unwraps a one-frame cell into the bare numeric array.
    frames = [raw] if isinstance(raw, np.ndarray) and raw.dtype != object else np.atleast_1d(raw)
    result = np.full((len(frames), N_JOINTS, 3), np.nan)
    for i, frame in enumerate(frames):
        arr = np.asarray(frame, np.float64)
        if arr.size <= 1:  # an empty cell or a lone NaN marks a frame without pose
            continue
        if arr.shape == (N_JOINTS, 3):
            result[i] = arr
        elif arr.shape == (len(ROWS_OF_15), 3):
            result[i, list(ROWS_OF_15)] = arr
        else:
            raise common.DatasetFormatError(
                f'{path}: field "GTpose2" frame {i} has shape {arr.shape}, expected [19, 3] or '
                f'[15, 3]')
    return result


def convert(root) -> Iterator[Pose3DExample]:
    """Yields one example per (sequence, camera, frame with a pose)."""
    root = common.require_dir(root, 'the MADS directory (multi_view_data/...)')
    data_dir = common.require_dir(root / 'multi_view_data', 'the extracted MADS_multiview.zip')
    names = joints.union_names(SKELETON)
    for group_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        videos: dict[str, dict[int, pathlib.Path]] = {}
        for path in sorted(group_dir.iterdir()):
            if m := _VIDEO.match(path.name):
                videos.setdefault(m.group(1), {})[int(m.group(2))] = path
        cameras: dict[int, Camera] = {}
        for name, views in sorted(videos.items()):
            poses = load_poses(group_dir / f'{name}_GT.mat')
            labelled = np.isfinite(poses).all(axis=2)
            for camera_index, video in sorted(views.items()):
                if camera_index not in cameras:
                    cameras[camera_index] = load_camera(group_dir / f'Calib_Cam{camera_index}.mat')
                camera = cameras[camera_index]
                n_frames = min(common.video_frame_count(video), len(poses))
                count_skipped('mads', 'frame beyond the end of the video', len(poses) - n_frames)
                count_skipped('mads', 'frame without any valid joint',
                              np.count_nonzero(~labelled[:n_frames].any(axis=1)))
                for frame in np.flatnonzero(labelled[:n_frames].any(axis=1)):
                    projected = camera.world_to_image(poses[frame][labelled[frame]])
                    yield Pose3DExample(
                        image=common.VideoFrame(video, frame), camera=camera.copy(),
                        world_coords=poses[frame], joint_names=names,
                        box=common.box_around_points(projected), dataset='mads',
                        sequence=f'{group_dir.name}/{name}', person=0,
                        camera_id=f'C{camera_index}', frame=int(frame), split='train')
