"""Converter for AIST++ (AIST Dance Video Database + AIST++ 3D keypoint annotations).

Expected layout under `root`: the AIST++ annotation archive extracted as distributed, with the
AIST dance videos (as the AIST++ downloader saves them) in `videos/` (or pass `video_dir`):

    <root>/
        keypoints3d/<sequence>.pkl     pickled dict: 'keypoints3d', 'keypoints3d_optim':
                                        float [T, 17, 3] in centimetres, COCO-17 order
        cameras/mapping.txt            lines '<sequence> <setting>'
        cameras/<setting>.json         [{'name': 'c01', 'size': [W, H], 'matrix': 3x3 K,
                                         'distortions': [k1, k2, p1, p2, k3],
                                         'rotation': Rodrigues vector, 'translation': cm}, ...]
        splits/pose_train.txt, pose_val.txt, pose_test.txt   one sequence name per line
        ignore_list.txt                sequences with unreliable annotations (skipped)
        videos/<video>.mp4             video name = sequence name with 'cAll' -> camera name,
                                        e.g. gBR_sBM_c01_d04_mBR0_ch01.mp4

Sequence names look like gBR_sBM_cAll_d04_mBR0_ch01 (genre, situation, camera, dancer, music,
choreography). Frame i of keypoints3d is frame i of each (60 fps) video; frames are decoded
lazily. Frames beyond the end of a video and frames with no finite keypoint are skipped.

Units and frames: world coordinates in millimetres (files: cm) in AIST++'s world frame
(x_cam = R @ x_world + t); the world's up direction is taken as the mean image-up direction of
the setting's cameras. Joints: COCO-17 ('coco17', a subset of the
'coco' union joints). By default 'keypoints3d_optim' (after bundle adjustment) is read.

Split: the official pose-estimation split files (dancers d03, d06, ... are test; pose_val holds
a few sequences of the others); sequences in none of them, and those in ignore_list.txt, are
skipped. The pickles are read with the restricted unpickler (posepile.safe_unpickle).

Not read: keypoints2d, motions (SMPL fits).
"""
from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Iterator

import numpy as np
from scipy.spatial.transform import Rotation

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'coco17'
DESCRIPTION = 'AIST++: keypoints3d(_optim) COCO-17 in cm, 9 cameras per setting, 60 fps videos'
SPLIT_FILES = {'train': 'pose_train.txt', 'validation': 'pose_val.txt', 'test': 'pose_test.txt'}
N_JOINTS = 17
CM_TO_MM = 10.0


def _read_lines(path: pathlib.Path, what: str) -> list[str]:
    path = common.require_file(path, what)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_splits(root: pathlib.Path) -> dict[str, str]:
    """sequence name -> 'train' / 'validation' / 'test' from splits/pose_*.txt."""
    split_of = {}
    for split, name in SPLIT_FILES.items():
        for seq in _read_lines(root / 'splits' / name, f'AIST++ {split} sequence names'):
            split_of[seq] = split
    return split_of


def load_mapping(root: pathlib.Path) -> dict[str, str]:
    """sequence name -> camera setting name from cameras/mapping.txt."""
    path = root / 'cameras' / 'mapping.txt'
    mapping = {}
    for i, line in enumerate(_read_lines(path, 'lines "<sequence> <setting>"')):
        parts = line.split()
        if len(parts) != 2:
            raise common.DatasetFormatError(
                f'{path}: line {i + 1} should be "<sequence> <setting>", got {line!r}')
        mapping[parts[0]] = parts[1]
    return mapping


def load_cameras(path: pathlib.Path) -> dict[str, tuple[Camera, tuple[int, int]]]:
    """One camera setting file: camera name -> (Camera in mm, (H, W) px)."""
    records = common.load_json(path)
    if not isinstance(records, list):
        raise common.DatasetFormatError(f'{path}: expected a list of camera records')
    parsed = []
    for i, rec in enumerate(records):
        where = f'{path} [{i}]'
        name = str(common.get_field(rec, 'name', where))
        K = common.get_field(rec, 'matrix', where, (3, 3))
        rvec = common.get_field(rec, 'rotation', where, (3,))
        tvec = common.get_field(rec, 'translation', where, (3,)) * CM_TO_MM
        dist = common.get_field(rec, 'distortions', where, (None,))
        width, height = common.get_field(rec, 'size', where, (2,), dtype=np.int64)
        parsed.append((where, name, K, Rotation.from_rotvec(rvec).as_matrix(), tvec, dist,
                       (int(height), int(width))))
    if not parsed:
        raise common.DatasetFormatError(f'{path}: no camera records')
    # The files do not state the world's up axis; the cameras stand upright, so their image-up
    # directions (-y of each camera, in world coordinates) average to it.
    world_up = -np.sum([R[1] for _, _, _, R, _, _, _ in parsed], axis=0)
    cameras = {}
    for where, name, K, R, tvec, dist, imshape in parsed:
        try:
            camera = Camera(optical_center=-R.T @ tvec, rot_world_to_cam=R, intrinsic_matrix=K,
                            distortion_coeffs=dist, world_up=world_up)
        except ValueError as e:
            raise common.DatasetFormatError(f'{where}: invalid camera ({e})') from None
        cameras[name] = (camera, imshape)
    return cameras


def load_keypoints(path: pathlib.Path, use_optim: bool = True) -> np.ndarray:
    """[T, 17, 3] world mm from keypoints3d/<sequence>.pkl (restricted unpickling)."""
    data = common.load_pickled_dict(
        path, 'a pickled dict with keypoints3d / keypoints3d_optim [T, 17, 3]')
    key = 'keypoints3d_optim' if use_optim else 'keypoints3d'
    return common.get_field(data, key, path, (None, N_JOINTS, 3)) * CM_TO_MM


def video_name(sequence: str, camera: str) -> str:
    """AIST video name of one camera's view of an AIST++ sequence ('cAll' -> 'c01')."""
    parts = sequence.split('_')
    if 'cAll' not in parts:
        raise common.DatasetFormatError(f'AIST++ sequence name {sequence!r} lacks the "cAll" part')
    return '_'.join(camera if p == 'cAll' else p for p in parts)


def _dancer_id(sequence: str) -> int:
    for part in sequence.split('_'):
        if len(part) == 3 and part[0] == 'd' and part[1:].isdigit():
            return int(part[1:])
    return 0


def convert(root, video_dir: str | os.PathLike | None = None, use_optim: bool = True,
            sequences: Iterable[str] | None = None,
            cameras: Iterable[str] | None = None) -> Iterator[Pose3DExample]:
    """Yields one example per (sequence, camera, frame) of the split sequences.

    Args:
        root: the extracted AIST++ annotation directory (see module docstring).
        video_dir: where the AIST .mp4 videos are (default: root/videos).
        use_optim: read 'keypoints3d_optim' (True) or the raw triangulation 'keypoints3d'.
        sequences: sequence names to read (default: every sequence in the split files).
        cameras: camera names such as 'c01' (default: all cameras of the setting).
    """
    root = common.require_dir(root, 'the AIST++ annotation directory')
    video_dir = (common.require_dir(root / 'videos', 'the AIST dance videos (*.mp4)')
                 if video_dir is None else common.require_dir(video_dir, 'AIST videos'))
    split_of = load_splits(root)
    ignore_path = root / 'ignore_list.txt'
    ignored = set(_read_lines(ignore_path, 'ignored sequences')) if ignore_path.exists() else set()
    mapping = load_mapping(root)
    wanted = sorted(split_of) if sequences is None else list(sequences)
    names = joints.union_names(SKELETON)
    settings: dict[str, dict] = {}
    for seq in wanted:
        if seq in ignored:
            count_skipped('aist', 'sequence in ignore_list.txt (sequences)')
            continue
        if seq not in split_of:
            raise KeyError(f'{root / "splits"}: sequence {seq!r} is in no pose_*.txt split file')
        if seq not in mapping:
            raise common.DatasetFormatError(
                f'{root / "cameras" / "mapping.txt"}: no camera setting for sequence {seq}')
        setting = mapping[seq]
        if setting not in settings:
            settings[setting] = load_cameras(common.safe_path(
                root / 'cameras', f'{setting}.json', root / 'cameras' / 'mapping.txt'))
        cams = settings[setting]
        cam_names = sorted(cams) if cameras is None else list(cameras)
        coords = load_keypoints(common.safe_path(root / 'keypoints3d', f'{seq}.pkl'), use_optim)
        labelled = np.isfinite(coords).all(axis=2)
        for cam_name in cam_names:
            if cam_name not in cams:
                raise common.DatasetFormatError(
                    f'{root / "cameras" / f"{setting}.json"}: no camera named {cam_name}')
            camera, imshape = cams[cam_name]
            video = common.safe_path(video_dir, f'{video_name(seq, cam_name)}.mp4')
            n_frames = min(common.video_frame_count(video), len(coords))
            count_skipped('aist', 'frame beyond the end of the video', len(coords) - n_frames)
            for frame in range(n_frames):
                if not labelled[frame].any():
                    count_skipped('aist', 'frame without any valid joint')
                    continue
                projected = camera.world_to_image(coords[frame][labelled[frame]])
                yield Pose3DExample(
                    image=common.VideoFrame(video, frame), camera=camera.copy(),
                    world_coords=coords[frame], joint_names=names,
                    box=common.box_around_points(projected, imshape=imshape), dataset='aist',
                    sequence=seq, person=_dancer_id(seq), camera_id=cam_name, frame=frame,
                    split=split_of[seq], extra={'setting': setting})
