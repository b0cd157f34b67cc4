"""MPI-INF-3DHP training set converter: 28 joints, 14 studio cameras, videos decoded lazily.

Expected layout under `root` (as the dataset's get_dataset.sh script downloads and unpacks it):

    root/
      S1/Seq1/annot.mat                      MATLAB v5: 'annot3', 'annot2', 'univ_annot3' cells
      S1/Seq1/camera.calibration             text, one 'name <i>' block per camera
      S1/Seq1/imageSequence/video_<i>.avi    i = 0..13, 2048x2048
      S1/Seq2/ ...  S2/ ... S8/

annot.mat: 'annot3' and 'univ_annot3' are cells [14, 1] of [T, 84] (28 joints x, y, z in the
CAMERA frame of camera i, mm); 'annot2' [14, 1] of [T, 56] pixels (not read); 'cameras' the
camera indices; 'frames' [T, 1]. camera.calibration: per camera 'intrinsic' (4x4 row-major,
pixels) and 'extrinsic' (4x4 row-major world-to-camera [R | t], t in mm); 'radial 0' (no
distortion). World coordinates are computed as R^T (p_cam - t), so all cameras of a sequence
share one world frame. 'univ_annot3' (height-normalised) is not read, nor are the masks.

Cameras: the standard training set uses cameras 0, 1, 2, 4, 5, 6, 7, 8 (chest height and
tilted); the "full" variant (`full=True`, or dataset name 'mpi_inf_3dhp_full') uses all 14,
including the ceiling cameras.
Split: subjects S1..S8 all train (the test set is a separate converter, mpi_inf_3dhp_test); no
validation split unless `validation_subjects` is given.
Tracks: sequence = 'S<s>/Seq<q>', person 0, camera_id = '<i>', frame = annotation row; only
the rows that have a video frame are used.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = '3dhp'
DESCRIPTION = 'MPI-INF-3DHP training set: 28 joints (annot.mat), 8 of 14 cameras, avi videos'

SUBJECTS = tuple(f'S{i}' for i in range(1, 9))
SEQUENCES = ('Seq1', 'Seq2')
TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
ALL_CAMERAS = tuple(range(14))
N_JOINTS = 28


def parse_calibration(path: str | pathlib.Path) -> dict[int, tuple[Camera, tuple[int, int]]]:
    """camera index -> (Camera in the sequence's world frame, mm; image shape (H, W)) from a
    'Skeletool Camera Calibration File' (camera.calibration)."""
    path = common.require_file(path, 'a camera.calibration text file')
    blocks: dict[int, dict[str, list[float]]] = {}
    current = None
    for line_no, line in enumerate(path.read_text(errors='replace').splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        key, values = parts[0], parts[1:]
        if key == 'name':
            try:
                current = int(values[0])
            except (IndexError, ValueError):
                raise common.DatasetFormatError(
                    f'{path}:{line_no}: "name" must be followed by a camera index') from None
            blocks[current] = {}
        elif current is not None:
            try:
                blocks[current][key] = [float(v) for v in values]
            except ValueError:
                raise common.DatasetFormatError(
                    f'{path}:{line_no}: field {key!r} of camera {current} is not numeric') from None
    if not blocks:
        raise common.DatasetFormatError(f'{path}: no "name <i>" camera blocks')
    cameras = {}
    for index, block in blocks.items():
        where = f'{path} [camera {index}]'
        intrinsic = common.get_field(block, 'intrinsic', where, (16,)).reshape(4, 4)
        extrinsic = common.get_field(block, 'extrinsic', where, (16,)).reshape(4, 4)
        size = common.get_field(block, 'size', where, (2,))
        R, t = extrinsic[:3, :3], extrinsic[:3, 3]
        try:
            camera = Camera(-R.T @ t, R, intrinsic[:3, :3], world_up=(0, 1, 0))
        except ValueError as e:
            raise common.DatasetFormatError(f'{where}: invalid camera ({e})') from None
        cameras[index] = (camera, (int(size[1]), int(size[0])))
    return cameras


def load_annotations(path: str | pathlib.Path) -> np.ndarray:
    """'annot3' of an annot.mat as [14, T, 28, 3] float32 camera-frame mm."""
    import scipy.io
    path = common.require_file(path, "annot.mat with cell 'annot3' [14, 1] of [T, 84]")
    try:
        mat = scipy.io.loadmat(str(path), variable_names=['annot3'])
    except Exception as e:  # scipy raises assorted types on corrupt files
        raise common.DatasetFormatError(
            f'{path}: not a readable MATLAB file ({type(e).__name__}: {e})') from None
    cells = common.get_field(mat, 'annot3', path)
    cells = np.asarray(cells, dtype=object).reshape(-1)
    if len(cells) != len(ALL_CAMERAS):
        raise common.DatasetFormatError(
            f"{path}: field 'annot3' has {len(cells)} cells, expected {len(ALL_CAMERAS)}")
    arrays = [common.get_field({'annot3': c}, 'annot3', f'{path} [cell {i}]', (None, N_JOINTS * 3))
              for i, c in enumerate(cells)]
    if len({len(a) for a in arrays}) != 1:
        raise common.DatasetFormatError(f"{path}: cells of 'annot3' differ in length")
    return np.stack(arrays).reshape(len(cells), -1, N_JOINTS, 3).astype(np.float32)


def find_subjects(root: pathlib.Path) -> list[str]:
    """The subjects 'S1'..'S8' whose directory exists under `root`; error if none."""
    subjects = [s for s in SUBJECTS if (root / s).is_dir()]
    if not subjects:
        raise common.DatasetFormatError(f'{root}: no subject directories S1..S8')
    return subjects


def sequence_camera(calibration: dict[int, tuple[Camera, tuple[int, int]]], cam_index: int,
                    seq_dir: pathlib.Path) -> tuple[Camera, tuple[int, int]]:
    """calibration[cam_index] (from parse_calibration of seq_dir), or an error naming the file."""
    if cam_index not in calibration:
        raise common.DatasetFormatError(
            f'{seq_dir / "camera.calibration"}: no block "name {cam_index}"')
    return calibration[cam_index]


def convert(root, subjects: Iterable[str] | None = None, full: bool = False,
            cameras: Iterable[int] | None = None, validation_subjects: Iterable[str] = (),
            dataset_name: str | None = None) -> Iterator[Pose3DExample]:
    """Yields one example per (subject, sequence, camera, frame); see the module docstring.

    Args:
        root: the unpacked training set.
        subjects: 'S1'..'S8' to read; default: those whose directory exists (error if none).
        full: use all 14 cameras instead of the standard 8.
        cameras: explicit camera indices (overrides `full`).
        validation_subjects: subjects to label 'validation' instead of 'train'.
        dataset_name: `example.dataset` (default 'mpi_inf_3dhp', or 'mpi_inf_3dhp_full').
    """
    root = pathlib.Path(root)
    if cameras is None:
        cameras = ALL_CAMERAS if full else TRAIN_CAMERAS
    cameras = tuple(int(c) for c in cameras)
    dataset_name = dataset_name or ('mpi_inf_3dhp_full' if full else 'mpi_inf_3dhp')
    validation_subjects = set(validation_subjects)
    if subjects is None:
        subjects = find_subjects(root)
    names = joints.union_names(SKELETON)
    for subject in subjects:
        for seq in SEQUENCES:
            seq_dir = common.require_dir(root / subject / seq, f'sequence {seq} of {subject}')
            calibration = parse_calibration(seq_dir / 'camera.calibration')
            annot3 = load_annotations(seq_dir / 'annot.mat')
            for cam_index in cameras:
                camera, imshape = sequence_camera(calibration, cam_index, seq_dir)
                video = seq_dir / 'imageSequence' / f'video_{cam_index}.avi'
                n = min(common.video_frame_count(video), annot3.shape[1])
                count_skipped(dataset_name, 'frame beyond the end of the video',
                              annot3.shape[1] - n)
                if n <= 0:
                    raise common.DatasetFormatError(f'{video}: no frames (corrupt or truncated?)')
                world = camera.camera_to_world(annot3[cam_index, :n].astype(np.float64))
                coords2d = camera.world_to_image(world)
                for i in range(n):
                    yield Pose3DExample(
                        image=common.VideoFrame(video, i), camera=camera.copy(),
                        world_coords=world[i], joint_names=names,
                        box=common.box_around_points(coords2d[i], imshape=imshape),
                        dataset=dataset_name, sequence=f'{subject}/{seq}', person=0,
                        camera_id=str(cam_index), frame=i,
                        split='validation' if subject in validation_subjects else 'train',
                        extra={'subject': subject})
