"""Shared reader of the IMAR vision lab datasets (Fit3D, CHI3D, HumanSC3D): one layout, three sets.

The three datasets of vision.imar.ro (Fieraru et al.) are distributed with the same layout and
file formats, documented by the authors' `imar_vision_datasets_tools` repository
(util/dataset_util.py `read_data`, `project_3d_to_2d`; notebooks/visualize_lab_dataset.ipynb):

    root/                                   e.g. datasets/fit3d (the unzipped archive)
      train/<subject>/                      subjects 's03', ...
        joints3d_25/<action>.json           {"joints3d_25": [T, 25, 3]} metres, world frame
                                            (CHI3D: [2, T, 25, 3], one block per person)
        camera_parameters/<camera>/<action>.json
            {"extrinsics": {"R": [3, 3] world->camera rotation,
                            "T": [1, 3] optical centre in world metres},
             "intrinsics_w_distortion": {"f": [1, 2], "c": [1, 2], "k": [1, 3], "p": [1, 2]},
             "intrinsics_wo_distortion": {"f": [1, 2], "c": [1, 2]}}
        videos/<camera>/<action>.mp4        50 fps
        smplx/, gpp/, <annotation>.json     (not read)
      test/<subject>/                       videos + camera_parameters only: the 3D ground
                                            truth of the test subjects is withheld (evaluation
                                            server), so the test split yields no examples
      info.json, template.json              (not read)

Camera convention (from the tools' notebook): p_cam = R @ (p_world - T), i.e. T is the optical
centre in world coordinates (metres), as `posepile.camera.Camera` takes it (in mm).

Distortion: the tools project with H36M's lens model, which maps exactly onto OpenCV's
12-coefficient model (posepile.camera.h36m_distortion_to_opencv), so the parsed Camera reproduces
the authors' projection to rounding error.

Joints: 25 of Human3.6M's 32 mocap joints. Rows 0-16 are the common 17-joint H36M protocol
(pelvis, right hip/knee/ankle, left hip/knee/ankle, spine, neck/thorax, head, head top, left
shoulder/elbow/wrist, right shoulder/elbow/wrist); the tools' bone list attaches rows 17, 18 to the
right ankle (3), 19, 20 to the left ankle (6), 21, 22 to the left wrist (13) and 23, 24 to the right
wrist (16). We read them as H36M's distinct foot and hand points in H36M row order: right toe base,
right toe tip, left toe base, left toe tip, left thumb, left hand end, right thumb, right hand end
(the 8 non-redundant extra H36M points; the order within each pair is not documented by the
authors and rests on that row-order assumption).

Frame rates: the videos are 50 fps. The authors state the mocap runs at 200 fps and match
"j3d_fr_id = 4 * rgb_fr_id" (tools issue #1), while their own `read_data` and public loaders pair
video frame i with joints row i. We therefore infer the step per sequence: 4 when the joints file
has at least 3.5x as many rows as the video has frames, else 1 (override with
`pose_rows_per_frame`). Video frame i is paired with joints row i * step.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera, h36m_distortion_to_opencv
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'h36m_25'
# Rows of Human3.6M's 32-joint format ('h36m' in posepile/joints/skeletons.py) that the 25 rows
# of joints3d_25 hold, in file order (see the module docstring).
H36M_INDICES = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27,
                         4, 5, 9, 10, 21, 22, 29, 30])
N_JOINTS = 25
WORLD_UP = (0.0, 0.0, 1.0)
METRES_TO_MM = 1000.0
_SUBJECT_DIR = re.compile(r'^s\d+$')


def joint_names() -> tuple[str, ...]:
    """Union names of the 25 rows ('pelv_h36m', ...), the registry's 'h36m_25' subset."""
    return tuple(joints.union_names(SKELETON))


def _vector(mapping, key, path, n) -> np.ndarray:
    """A field stored as [1, n] (the release's layout) or [n]; errors name file and field."""
    value = common.get_field(mapping, key, path)
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError) as e:
        raise common.DatasetFormatError(f'{path}: field {key!r} is not numeric ({e})') from None
    if arr.shape not in ((1, n), (n,)) or not np.all(np.isfinite(arr)):
        raise common.DatasetFormatError(
            f'{path}: field {key!r} has shape {arr.shape} (or non-finite values), '
            f'expected [1, {n}]')
    return arr.reshape(n)


def load_camera(path: str | pathlib.Path) -> Camera:
    """The Camera (world mm) of one camera_parameters/<camera>/<action>.json file."""
    path = common.require_file(path, 'camera parameters JSON with "extrinsics" and '
                                     '"intrinsics_w_distortion"')
    data = common.load_json(path)
    extrinsics = common.get_field(data, 'extrinsics', path)
    intrinsics = common.get_field(data, 'intrinsics_w_distortion', path)
    R = common.get_field(extrinsics, 'R', f'{path} [extrinsics]', shape=(3, 3))
    T = _vector(extrinsics, 'T', f'{path} [extrinsics]', 3)
    where = f'{path} [intrinsics_w_distortion]'
    focal = _vector(intrinsics, 'f', where, 2)
    centre = _vector(intrinsics, 'c', where, 2)
    k = _vector(intrinsics, 'k', where, 3)
    p = _vector(intrinsics, 'p', where, 2)
    K = np.array([[focal[0], 0, centre[0]], [0, focal[1], centre[1]], [0, 0, 1]])
    try:
        return Camera(T * METRES_TO_MM, R, K, h36m_distortion_to_opencv(k, p), world_up=WORLD_UP)
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: invalid camera ({e})') from None


def load_joints(path: str | pathlib.Path, n_persons: int) -> np.ndarray:
    """[P, T, 25, 3] float32 world mm from a joints3d_25/<action>.json file (stored in metres).

    n_persons=1 expects 'joints3d_25' of shape [T, 25, 3] (Fit3D, HumanSC3D); n_persons=2
    expects [2, T, 25, 3] (CHI3D).
    """
    path = common.require_file(path, 'a joints3d_25 JSON file')
    data = common.load_json(path)
    shape = (None, N_JOINTS, 3) if n_persons == 1 else (n_persons, None, N_JOINTS, 3)
    arr = common.get_field(data, 'joints3d_25', path, shape=shape)
    if n_persons == 1:
        arr = arr[np.newaxis]
    if arr.shape[1] == 0:
        raise common.DatasetFormatError(f'{path}: field "joints3d_25" has no frames')
    return (arr * METRES_TO_MM).astype(np.float32)


def infer_pose_step(n_pose_rows: int, n_video_frames: int) -> int:
    """Joints rows per video frame: 4 if the joints look like 200 Hz mocap under 50 fps video."""
    return 4 if n_pose_rows >= 3.5 * n_video_frames else 1


def split_of(subject: str, validation_subjects: Iterable[str]) -> str:
    return 'validation' if subject in set(validation_subjects) else 'train'


def list_subjects(root: pathlib.Path) -> list[str]:
    train = common.require_dir(root / 'train', 'the train/<subject>/ folders of the release')
    subjects = sorted(d.name for d in train.iterdir() if d.is_dir() and _SUBJECT_DIR.match(d.name))
    if not subjects:
        raise common.DatasetFormatError(f'{train}: no subject folders (expected s01, s02, ...)')
    return subjects


def convert(root, dataset: str, n_persons: int, subjects: Iterable[str] | None = None,
            validation_subjects: Iterable[str] = (), camera_ids: Iterable[str] | None = None,
            pose_rows_per_frame: int | None = None) -> Iterator[Pose3DExample]:
    """Yields one example per (subject, action, camera, person, video frame) of train/.

    Args:
        root: the unzipped dataset (layout in the module docstring).
        dataset: dataset name for the examples ('fit3d', 'chi3d', 'humansc3d').
        n_persons: people per sequence (2 for CHI3D, else 1).
        subjects: subject folders under train/ to read; default: all of them.
        validation_subjects: training subjects labelled 'validation' instead of 'train'.
        camera_ids: cameras to read; default: every folder under camera_parameters/.
        pose_rows_per_frame: joints rows per video frame; default: inferred per sequence.
    Tracks: sequence = '<subject>/<action>', person = row block of the joints file (CHI3D: 0 is
    the subject wearing markers, 1 the other), camera_id = the camera folder name, frame = video
    frame index; each track is yielded in frame order.
    """
    root = pathlib.Path(root)
    validation_subjects = tuple(validation_subjects)
    names = joint_names()
    if subjects is None:
        subjects = list_subjects(root)
    for subject in subjects:
        subject_dir = common.safe_path(root / 'train', subject)
        common.require_dir(subject_dir, f'the train folder of subject {subject}')
        joints_dir = common.require_dir(subject_dir / 'joints3d_25',
                                        f'the joints3d_25/<action>.json files of {subject}')
        camera_root = common.require_dir(subject_dir / 'camera_parameters',
                                         f'camera_parameters/<camera>/ folders of {subject}')
        cams = sorted(d.name for d in camera_root.iterdir() if d.is_dir()) \
            if camera_ids is None else list(camera_ids)
        if not cams:
            raise common.DatasetFormatError(f'{camera_root}: no camera folders')
        joint_files = sorted(joints_dir.glob('*.json'))
        if not joint_files:
            raise common.DatasetFormatError(f'{joints_dir}: no <action>.json files')
        for joint_file in joint_files:
            action = joint_file.stem
            poses = load_joints(joint_file, n_persons)
            for camera_id in cams:
                camera = load_camera(camera_root / camera_id / f'{action}.json')
                video = subject_dir / 'videos' / camera_id / f'{action}.mp4'
                n_video, imshape = common.video_info(video)
                step = pose_rows_per_frame or infer_pose_step(poses.shape[1], n_video)
                n_pose_frames = (poses.shape[1] + step - 1) // step
                n = min(n_video, n_pose_frames)
                count_skipped(dataset, 'frame beyond the end of the video (person-frames)',
                              (n_pose_frames - n) * n_persons)
                rows = np.arange(n) * step
                coords2d = camera.world_to_image(poses[:, rows].astype(np.float64))
                for person in range(n_persons):
                    for i in range(n):
                        yield Pose3DExample(
                            image=common.VideoFrame(video, i), camera=camera.copy(),
                            world_coords=poses[person, rows[i]], joint_names=names,
                            box=common.box_around_points(coords2d[person, i], imshape=imshape),
                            dataset=dataset, sequence=f'{subject}/{action}', person=person,
                            camera_id=camera_id, frame=i,
                            split=split_of(subject, validation_subjects),
                            extra={'subject': subject, 'action': action,
                                   'pose_row': int(rows[i])})
