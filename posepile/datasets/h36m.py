"""Human3.6M converter: all 32 mocap joints, four studio cameras, videos decoded lazily.

Expected layout under `root` (the per-subject archives of vision.imar.ro unpacked in place, plus
one camera file):

    root/
      cameras.h5                                  camera parameters (see below)
      S1/MyPoseFeatures/D3_Positions/<Action>.cdf 'Pose' variable [1, T, 96], world mm, 50 Hz
      S1/Videos/<Action>.<camera_id>.mp4          camera ids 54138969 55011271 58860488 60457274
      S5/ ... S6/ S7/ S8/ S9/ S11/

Cameras: the official release keeps the calibration obfuscated inside metadata.xml (decoded only
by its MATLAB code), so this converter reads the widely used `cameras.h5` of the public
"3d-pose-baseline" code instead: groups `subject<N>/camera<1..4>/` holding
    R    [3, 3]  stored transposed (MATLAB column order): R.T maps world to camera,
    T    [3, 1]  the optical centre in world mm,
    f    [2, 1]  focal lengths (px),  c [2, 1] principal point (px),
    k    [3, 1]  radial distortion,   p [2, 1] tangential distortion,
    Name [8]     the camera id as character codes (camera1 = 54138969, ..., camera4 = 60457274).
Distortion: H36M's own projection code uses a tangential term that differs from OpenCV's by terms
of order |p|·r² (a fraction of a pixel for the released coefficients); we map it to OpenCV as
[k1, k2, p1, p2, k3] = [k[0], k[1], p[0], p[1], k[2]], which matches the radial part exactly.

Joints: the 32 rows of D3_Positions in file order (skeleton 'h36m'). Units: millimetres, world
frame of the capture studio (z up).
Split: S1, S5, S6, S7, S8 train; S9, S11 test (the standard protocol). No validation split by
default (the protocol trains on all five subjects); pass `validation_subjects` to hold some out.
Tracks: sequence = '<subject>/<action>', person 0, camera_id = the 8-digit id, frame = pose row.
Where a video has fewer frames than the pose file (or vice versa), only the common prefix is
used. Videos whose name matches no pose file (e.g. '_ALL *.mp4') are not read; neither are the
other feature folders (D2_Positions, angles, BBoxes/masks, ToF, scanner data).
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera, h36m_distortion_to_opencv
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'h36m'
DESCRIPTION = 'Human3.6M: 32 mocap joints (D3_Positions .cdf), 4 cameras (cameras.h5), mp4 videos'

CAMERA_IDS = ('54138969', '55011271', '58860488', '60457274')
TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
TEST_SUBJECTS = ('S9', 'S11')
N_JOINTS = 32
WORLD_UP = (0.0, 0.0, 1.0)
# (subject, action, camera id) of a video in the release that does not decode (widely reported;
# public loaders drop it).
KNOWN_BAD_VIDEOS = (('S11', 'Directions', '54138969'),)


def load_cameras(path: str | pathlib.Path, subject: str) -> dict[str, Camera]:
    """The four cameras of `subject` ('S1', ...) from a 3d-pose-baseline style cameras.h5,
    keyed by camera id. Errors name the file and the missing or misshapen field."""
    import h5py
    path = common.require_file(path, 'cameras.h5 with subject<N>/camera<1..4>/{R,T,f,c,k,p,Name}')
    group_name = f'subject{int(subject[1:])}'
    cameras = {}
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise common.DatasetFormatError(f'{path}: not a readable HDF5 file ({e})') from None
    with f:
        if group_name not in f:
            raise common.DatasetFormatError(f'{path}: missing group {group_name!r}')
        for i, expected_id in enumerate(CAMERA_IDS, start=1):
            where = f'{group_name}/camera{i}'
            if where not in f:
                raise common.DatasetFormatError(f'{path}: missing group {where!r}')
            g = f[where]

            def field(key, shape):
                return common.get_field(
                    {k: g[k][()] for k in g}, key, f'{path} [{where}]', shape)

            R = field('R', (3, 3)).T
            T = field('T', (None, None)).reshape(-1)
            focal = field('f', (None, None)).reshape(-1)
            centre = field('c', (None, None)).reshape(-1)
            k = field('k', (None, None)).reshape(-1)
            p = field('p', (None, None)).reshape(-1)
            for key, arr, n in (('T', T, 3), ('f', focal, 2), ('c', centre, 2), ('k', k, 3),
                                ('p', p, 2)):
                if arr.shape != (n,):
                    raise common.DatasetFormatError(
                        f'{path} [{where}]: field {key!r} has {arr.size} values, expected {n}')
            if 'Name' in g:
                name = ''.join(chr(int(c)) for c in np.asarray(g['Name'][()]).reshape(-1))
                if name != expected_id:
                    raise common.DatasetFormatError(
                        f'{path} [{where}]: field "Name" is {name!r}, expected {expected_id!r}')
            K = np.array([[focal[0], 0, centre[0]], [0, focal[1], centre[1]], [0, 0, 1]])
            try:
                cameras[expected_id] = Camera(T, R, K, h36m_distortion_to_opencv(k, p),
                                              world_up=WORLD_UP)
            except ValueError as e:
                raise common.DatasetFormatError(f'{path} [{where}]: invalid camera ({e})') from None
    return cameras


def load_poses(path: str | pathlib.Path) -> np.ndarray:
    """[T, 32, 3] float32 world mm from a D3_Positions .cdf ('Pose' variable [1, T, 96])."""
    import cdflib
    path = common.require_file(path, "a D3_Positions .cdf with variable 'Pose' [1, T, 96]")
    try:
        data = cdflib.CDF(str(path)).varget('Pose')
    except Exception as e:  # cdflib raises assorted types for corrupt files and missing vars
        raise common.DatasetFormatError(
            f"{path}: cannot read variable 'Pose' [1, T, 96] ({type(e).__name__}: {e})") from None
    data = np.asarray(data)
    if data.ndim == 2:  # cdflib drops the leading record axis of single-record variables
        data = data[np.newaxis]
    if data.ndim != 3 or data.shape[0] != 1 or data.shape[2] != N_JOINTS * 3:
        raise common.DatasetFormatError(
            f"{path}: field 'Pose' has shape {data.shape}, expected [1, T, {N_JOINTS * 3}]")
    return data[0].reshape(-1, N_JOINTS, 3).astype(np.float32)


def split_of(subject: str, validation_subjects: Iterable[str] = ()) -> str:
    if subject in TEST_SUBJECTS:
        return 'test'
    return 'validation' if subject in set(validation_subjects) else 'train'


def convert(root, subjects: Iterable[str] | None = None,
            validation_subjects: Iterable[str] = (), camera_file: str = 'cameras.h5',
            camera_ids: Iterable[str] = CAMERA_IDS,
            exclude: Iterable[tuple[str, str, str]] = KNOWN_BAD_VIDEOS,
            ) -> Iterator[Pose3DExample]:
    """Yields one example per (subject, action, camera, frame); see the module docstring.

    Args:
        root: the unpacked dataset (layout above).
        subjects: which subjects to read ('S1', ...); default: every known subject whose
            directory exists under `root` (an error if there is none).
        validation_subjects: training subjects to label 'validation' instead of 'train'.
        camera_file: the cameras.h5 path relative to `root`.
        camera_ids: which of the four cameras to read.
        exclude: (subject, action, camera id) triples not to read.
    """
    root = pathlib.Path(root)
    camera_path = common.safe_path(root, camera_file)
    names = joints.union_names(SKELETON)
    validation_subjects = tuple(validation_subjects)
    exclude = {tuple(e) for e in exclude}
    if subjects is None:
        subjects = [s for s in TRAIN_SUBJECTS + TEST_SUBJECTS if (root / s).is_dir()]
        if not subjects:
            raise common.DatasetFormatError(
                f'{root}: no subject directories {TRAIN_SUBJECTS + TEST_SUBJECTS}')
    for subject in subjects:
        if subject not in TRAIN_SUBJECTS + TEST_SUBJECTS:
            raise ValueError(f'unknown Human3.6M subject {subject!r}; expected one of '
                             f'{TRAIN_SUBJECTS + TEST_SUBJECTS}')
        pose_dir = common.require_dir(root / subject / 'MyPoseFeatures' / 'D3_Positions',
                                      f'the D3_Positions .cdf files of {subject}')
        video_dir = common.require_dir(root / subject / 'Videos', f'the videos of {subject}')
        cameras = load_cameras(camera_path, subject)
        pose_files = sorted(pose_dir.glob('*.cdf'))
        if not pose_files:
            raise common.DatasetFormatError(f'{pose_dir}: no .cdf pose files')
        for pose_file in pose_files:
            action = pose_file.stem
            poses = load_poses(pose_file)
            for camera_id in camera_ids:
                if (subject, action, camera_id) in exclude:
                    count_skipped('h36m', 'video on the exclude list', len(poses))
                    continue
                camera = cameras[camera_id]
                video = video_dir / f'{action}.{camera_id}.mp4'
                n_video, imshape = common.video_info(video)
                n = min(n_video, len(poses))
                count_skipped('h36m', 'frame beyond the end of the video', len(poses) - n)
                coords2d = camera.world_to_image(poses[:n].astype(np.float64))
                for i in range(n):
                    yield Pose3DExample(
                        image=common.VideoFrame(video, i), camera=camera.copy(),
                        world_coords=poses[i], joint_names=names,
                        box=common.box_around_points(coords2d[i], imshape=imshape),
                        dataset='h36m', sequence=f'{subject}/{action}', person=0,
                        camera_id=camera_id, frame=i,
                        split=split_of(subject, validation_subjects),
                        extra={'subject': subject, 'action': action})
