"""SURREAL converter (Varol et al., CVPR 2017): synthetic SMPL bodies rendered into 320x240 clips.

Expected layout under `root` (the SURREAL download, 'cmu' part, unpacked as distributed):

    root/
      cmu/
        train/ val/ test/
          run0/ run1/ run2/                    rendering runs (different clip overlaps)
            <seq>/                             e.g. 01_01 (CMU mocap subject_trial)
              <seq>_c0001.mp4                  the rendered clip, 320x240 RGB
              <seq>_c0001_info.mat             annotations of that clip (MATLAB v5)
              <seq>_c0001_segm.mat             body-part segmentation per frame
              <seq>_c0001_depth.mat, <seq>_c0001_gtflow.mat   (not read)

Fields read from <seq>_c<N>_info.mat (T = frames of the clip):
    joints3D  [3, 24, T]  SMPL's 24 joints (the rig's bone heads) in SMPL order, world frame,
                          METRES (converted to mm here)
    camLoc    3 values    the camera's location in the world, metres (the Blender
                          `cam_ob.location`)
    joints2D  [2, 24, T]  not needed: only cross-checked by the tests
    gender, pose, shape, zrot, ...  not read (joints3D already include the body's rotation)
<seq>_c<N>_segm.mat holds `segm_1` .. `segm_T`, each [240, 320] uint8 part labels (0 = background);
the union of the parts is the person mask (read unless `masks=False`).

Camera (fixed for all of SURREAL, per the official `getIntrinsicBlender`/`getExtrinsicBlender`):
Blender lens 60 mm on a 32 mm wide sensor at 320 px -> f = 600 px; principal point at the image
centre, (160, 120) in Blender's pixel-corner convention, i.e. (159.5, 119.5) in this project's
pixel-centre convention. Rotation world -> OpenCV camera is the constant
[[0, 0, -1], [0, 1, 0], [-1, 0, 0]] (Blender camera matrix_world rotation, transposed, then Blender
-> computer-vision axes flip); optical centre = camLoc. No distortion. The world's up axis is -y
(image up), which the camera encodes.

Split: the folder (train / val / test -> 'train' / 'validation' / 'test'), as distributed.
Tracks: sequence = '<split>/<run>/<seq>', camera_id = 'c<N>' (each clip has its own camera and
background), person 0, frame = frame within the clip. Frames whose joints all project outside the
image are skipped. Video frames are decoded lazily (`common.VideoFrame`).
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np
import scipy.io

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'smpl'
DESCRIPTION = 'SURREAL: SMPL 24 joints (cmu/*/run*/<seq>/*_info.mat, metres), 320x240 mp4 clips'
SPLITS = {'train': 'train', 'val': 'validation', 'test': 'test'}
IMSHAPE = (240, 320)
N_JOINTS = 24
FOCAL_PX = 60.0 * 320 / 32.0  # lens mm * image width px / sensor width mm
INTRINSICS = np.array([[FOCAL_PX, 0, 159.5], [0, FOCAL_PX, 119.5], [0, 0, 1]])
ROT_WORLD_TO_CAM = np.array([[0.0, 0, -1], [0, 1, 0], [-1, 0, 0]])
_INFO_NAME = re.compile(r'^(?P<seq>.+)_c(?P<clip>\d+)_info\.mat$')


def make_camera(cam_loc_m) -> Camera:
    """The SURREAL camera at `cam_loc_m` (3 values, metres, world)."""
    return Camera(optical_center=np.asarray(cam_loc_m, np.float64).reshape(3) * 1000.0,
                  rot_world_to_cam=ROT_WORLD_TO_CAM, intrinsic_matrix=INTRINSICS,
                  world_up=-ROT_WORLD_TO_CAM[1])


def _load_mat(path: pathlib.Path, what: str) -> dict:
    common.require_file(path, what)
    try:
        return scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises several types for truncated/non-MAT files
        raise common.DatasetFormatError(
            f'{path}: not a readable MATLAB v5 file ({type(e).__name__}: {e}); expected {what}'
        ) from None


def load_info(path: str | pathlib.Path) -> dict:
    """'joints' [T, 24, 3] world mm and 'cam_loc' [3] mm from a <seq>_c<N>_info.mat."""
    path = pathlib.Path(path)
    info = _load_mat(path, 'a SURREAL _info.mat with joints3D and camLoc')
    coords = common.get_field(info, 'joints3D', path)
    if np.ndim(coords) == 2:  # MATLAB drops a trailing singleton axis of one-frame clips
        coords = np.asarray(coords)[..., None]
    coords = common.get_field({'joints3D': coords}, 'joints3D', path, (3, N_JOINTS, None))
    cam_loc = common.get_field(info, 'camLoc', path, (None, None))
    if cam_loc.size != 3:
        raise common.DatasetFormatError(
            f"{path}: field 'camLoc' has shape {cam_loc.shape}, expected 3 values")
    return {'joints': coords.transpose(2, 1, 0) * 1000.0,
            'cam_loc': cam_loc.reshape(3) * 1000.0}


def load_masks(path: pathlib.Path, n_frames: int) -> np.ndarray:
    """[T, 240, 320] bool person masks from a <seq>_c<N>_segm.mat."""
    segm = _load_mat(path, f'a SURREAL _segm.mat with segm_1..segm_{n_frames}')
    return np.stack([common.get_field(segm, f'segm_{i + 1}', path, IMSHAPE, dtype=np.uint8) > 0
                     for i in range(n_frames)])


def _encode_mask(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_lib
    rle = mask_lib.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts']}


def convert(root, splits: Iterable[str] = tuple(SPLITS), masks: bool = True,
            strict_frame_count: bool = True) -> Iterator[Pose3DExample]:
    """Yields one example per (clip, frame); see the module docstring.

    Args:
        root: the SURREAL download (containing cmu/).
        splits: folder names to read ('train', 'val', 'test'); each must exist.
        masks: read the _segm.mat files to attach person masks.
        strict_frame_count: a video with fewer frames than its _info.mat annotates is an error;
            if False, only the frames the video has are used.
    """
    root = pathlib.Path(root)
    names = joints.union_names(SKELETON)
    for folder_name in splits:
        if folder_name not in SPLITS:
            raise ValueError(f'unknown SURREAL split folder {folder_name!r}; expected one of '
                             f'{list(SPLITS)}')
        split_dir = common.require_dir(root / 'cmu' / folder_name,
                                       f'the SURREAL {folder_name} runs (run0, run1, run2)')
        info_files = sorted(split_dir.glob('run*/*/*_info.mat'))
        for info_path in info_files:
            match = _INFO_NAME.match(info_path.name)
            if match is None:
                raise common.DatasetFormatError(
                    f'{info_path}: expected a name like <seq>_c0001_info.mat')
            yield from _convert_clip(info_path, match, folder_name, names, masks,
                                     strict_frame_count)


def _convert_clip(info_path: pathlib.Path, match: re.Match, folder_name: str, names,
                  masks: bool, strict_frame_count: bool) -> Iterator[Pose3DExample]:
    info = load_info(info_path)
    n_frames = len(info['joints'])
    stem = info_path.name[:-len('_info.mat')]
    video = info_path.with_name(f'{stem}.mp4')
    n_video = common.video_frame_count(video)
    if n_video < n_frames:
        if strict_frame_count:
            raise common.DatasetFormatError(
                f'{video}: video has {n_video} frames but {info_path.name} annotates '
                f'{n_frames} (strict_frame_count=False uses the first {n_video})')
        count_skipped('surreal', 'frame beyond the end of the video', n_frames - n_video)
        n_frames = n_video
    person_masks = (load_masks(info_path.with_name(f'{stem}_segm.mat'), n_frames) if masks
                    else None)
    camera = make_camera(info['cam_loc'] / 1000.0)
    projected = camera.world_to_image(info['joints'])  # [T, 24, 2]
    run, seq = info_path.parent.parent.name, info_path.parent.name
    for i in range(n_frames):
        box = common.box_around_points(projected[i], imshape=IMSHAPE)
        if not (box[2] > 0 and box[3] > 0):
            count_skipped('surreal', 'person outside the image (empty box)')
            continue
        yield Pose3DExample(
            image=common.VideoFrame(video, i), camera=camera.copy(), world_coords=info['joints'][i],
            joint_names=names, box=box, dataset='surreal',
            sequence=f'{folder_name}/{run}/{seq}', person=0,
            camera_id=f'c{int(match["clip"]):04d}', frame=i, split=SPLITS[folder_name],
            mask=None if person_masks is None else _encode_mask(person_masks[i]))
