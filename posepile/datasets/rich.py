"""RICH converter (Huang et al., CVPR 2022): SMPL-X fits of people in scanned scenes, static cams.

Expected layout under `root` (the release's {train,val,test}.tar.gz images,
{train,val,test}_body.zip and scan_calibration.zip, unpacked as distributed):

    root/
      scan_calibration/<setup>/calibration/<cam:03d>.xml   OpenCV FileStorage XML per static
                                                          camera: CameraMatrix [3x4] = [R | t]
                                                          (world -> camera, t in METRES),
                                                          Intrinsics [3x3], Distortion [n]
      train/<seq>/cam_<cam:02d>/<frame:05d>_<cam:02d>.bmp  images (.bmp or .png as released;
      val/..., test/...                                   .jpeg/.jpg accepted for re-encoded copies)
      train_body/<seq>/<frame:05d>/<subject:03d>.pkl       SMPL-X fit of one subject in one frame
      val_body/..., test_body/...

<seq> is '<setup>_<subject>[_<subject>...]_<action>', e.g. 'ParkingLot1_002_stretching2'; the
setup names the calibration folder. Cameras without a calibration file (the moving ones) are
skipped.

Each fit .pkl (read only through `posepile.safe_unpickle`) is a dict of [1, n] arrays: betas (10),
global_orient (3), body_pose (63), jaw_pose, leye_pose, reye_pose (3 each), left_hand_pose and
right_hand_pose (12 PCA coefficients, or 45 axis-angle values), expression (10), transl (3),
metres. Hand poses add the model's hand mean (the smplx package's default, flat_hand_mean=False).
The converter runs the SMPL-X forward pass (`posepile.body_models`, model of the subject's gender,
from `body_model_dir`) and yields its 55 kinematic joints, world frame, millimetres.

Genders are not in the fit files; `SUBJECT_GENDERS` holds the assignment used by the reference
PosePile loader (pass `genders` to override or extend).

Split: the phase folder (train / val / test -> 'train' / 'validation' / 'test'), as released.
Tracks: sequence = '<phase>/<seq>', person = subject id, camera_id = 'cam_<cam:02d>',
frame = frame number. Not read: scene scans, contact labels, the moving cameras' images.
"""
from __future__ import annotations

import pathlib
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from posepile import body_models, joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'smplx'
DESCRIPTION = 'RICH: SMPL-X fits (needs --body-model-dir) -> 55 SMPL-X joints, static cameras'
SPLITS = {'train': 'train', 'val': 'validation', 'test': 'test'}
IMAGE_EXTENSIONS = ('.bmp', '.png', '.jpeg', '.jpg')
# Subject id -> gender, from the reference PosePile loader (the release's fits carry no gender).
SUBJECT_GENDERS = {**{s: 'male' for s in (0, 1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 20)},
                   **{s: 'female' for s in (13, 16, 18)}}
# (key, number of values) of the fit, in SMPL-X's joint order (hands handled separately).
_POSE_KEYS = (('global_orient', 3), ('body_pose', 63), ('jaw_pose', 3), ('leye_pose', 3),
              ('reye_pose', 3))


def _xml_matrix(root_element, tag: str, path) -> np.ndarray:
    node = root_element.find(tag)
    data = None if node is None else node.find('data')
    if data is None or data.text is None:
        raise common.DatasetFormatError(f'{path}: missing field {tag!r}')
    try:
        return np.array(data.text.split(), np.float64)
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: field {tag!r} is not numeric ({e})') from None


def load_camera(path: pathlib.Path) -> Camera:
    """One static camera from scan_calibration/<setup>/calibration/<cam>.xml (world mm)."""
    common.require_file(path, 'a RICH camera calibration XML')
    try:
        xml_root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as e:
        raise common.DatasetFormatError(f'{path}: not valid XML ({e})') from None
    extrinsics = _xml_matrix(xml_root, 'CameraMatrix', path)
    intrinsics = _xml_matrix(xml_root, 'Intrinsics', path)
    distortion = _xml_matrix(xml_root, 'Distortion', path)
    for tag, arr, size in (('CameraMatrix', extrinsics, 12), ('Intrinsics', intrinsics, 9)):
        if arr.size != size:
            raise common.DatasetFormatError(
                f'{path}: field {tag!r} has {arr.size} values, expected {size}')
    extrinsics = extrinsics.reshape(3, 4)
    rot, trans_mm = extrinsics[:, :3], extrinsics[:, 3] * 1000.0
    try:
        return Camera(-rot.T @ trans_mm, rot, intrinsics.reshape(3, 3), distortion,
                      world_up=-rot[1])
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: invalid camera ({e})') from None


def load_fit(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The fit's parameters as flat float64 arrays, shape-checked (see module doc)."""
    fit = common.load_pickled_dict(path, 'a RICH SMPL-X fit .pkl')
    out = {}
    sizes = (*_POSE_KEYS, ('transl', 3), ('betas', None), ('expression', None),
             ('left_hand_pose', None), ('right_hand_pose', None))
    for key, size in sizes:  # each released as a [1, n] array
        value = np.reshape(common.get_field(fit, key, path, (None, None)), -1)
        out[key] = common.get_field({key: value}, key, path, (size,))
    for key in ('left_hand_pose', 'right_hand_pose'):
        if out[key].size > 45:
            raise common.DatasetFormatError(
                f'{path}: field {key!r} has {out[key].size} values, expected <= 45 (PCA) or 45')
    return out


def full_pose(model: body_models.BodyModel, fits: list[dict]) -> np.ndarray:
    """[T, 55, 3] axis-angle in SMPL-X order from T fits (hand PCA expanded, hand mean added)."""
    parts = [np.stack([f[key] for f in fits]).reshape(len(fits), -1, 3) for key, _ in _POSE_KEYS]
    for side, key in (('left', 'left_hand_pose'), ('right', 'right_hand_pose')):
        values = np.stack([f[key] for f in fits])
        if values.shape[1] == 45:
            mean = model.hand_components[side][1] if side in model.hand_components else 0.0
            parts.append((values + mean).reshape(len(fits), 15, 3))
        else:
            parts.append(body_models.hand_pca_to_pose(model, side, values))
    return np.concatenate(parts, axis=1)


def subject_joints(fits: list[dict], model: body_models.BodyModel) -> np.ndarray:
    """[T, 55, 3] world mm from T fits of one subject, one batched forward pass."""
    def stacked(key):
        width = max(f[key].size for f in fits)
        return np.stack([np.pad(f[key], (0, width - f[key].size)) for f in fits])
    out = body_models.forward(model, full_pose(model, fits), betas=stacked('betas'),
                              trans=stacked('transl'), expression=stacked('expression'),
                              return_vertices=False)
    return out.joints * 1000.0


def _images_by_frame(cam_dir: pathlib.Path, cam: int) -> dict[int, pathlib.Path]:
    found = {}
    for path in cam_dir.iterdir():
        stem, ext = path.stem, path.suffix.lower()
        if ext in IMAGE_EXTENSIONS and stem.endswith(f'_{cam:02d}') and stem[:-3].isdigit():
            found[int(stem[:-3])] = path
    return found


def convert(root, body_model_dir=None, splits: Iterable[str] = tuple(SPLITS),
            genders: Mapping[int, str] | None = None) -> Iterator[Pose3DExample]:
    """Yields one example per (sequence, subject, calibrated camera, frame with a fit).

    Args:
        root: the unpacked dataset.
        body_model_dir: holds smplx/SMPLX_{MALE,FEMALE}.npz; default: POSEPILE_BODY_MODEL_DIR.
        splits: phase folders to read ('train', 'val', 'test'); each must exist.
        genders: subject id -> 'male'/'female', overriding/extending `SUBJECT_GENDERS`.
    """
    root = pathlib.Path(root)
    body_model_dir = body_models.resolve_body_model_dir(body_model_dir, 'RICH (SMPL-X)')
    gender_of = {**SUBJECT_GENDERS, **(genders or {})}
    names = joints.union_names(SKELETON)
    for phase in splits:
        if phase not in SPLITS:
            raise ValueError(f'unknown RICH phase {phase!r}; expected one of {list(SPLITS)}')
        image_root = common.require_dir(root / phase, f'the RICH {phase} image sequences')
        body_root = common.require_dir(root / f'{phase}_body', f'the RICH {phase} SMPL-X fits')
        for seq_dir in sorted(p for p in image_root.iterdir() if p.is_dir()):
            yield from _convert_sequence(root, seq_dir, body_root / seq_dir.name, phase, names,
                                         body_model_dir, gender_of)


def _convert_sequence(root, seq_dir, fit_dir, phase, names, body_model_dir, gender_of):
    common.require_dir(fit_dir, f'the SMPL-X fits of {seq_dir.name}')
    setup = seq_dir.name.split('_')[0]
    cameras = {}
    uncalibrated_frames = []  # per moving camera, the frame numbers of its images
    for cam_dir in sorted(seq_dir.glob('cam_*')):
        cam = int(cam_dir.name[4:])
        calib = root / 'scan_calibration' / setup / 'calibration' / f'{cam:03d}.xml'
        if calib.is_file():  # the moving cameras have no calibration
            cameras[cam] = (load_camera(calib), _images_by_frame(cam_dir, cam))
        else:
            uncalibrated_frames.append(set(_images_by_frame(cam_dir, cam)))
    frame_dirs = sorted((int(d.name), d) for d in fit_dir.iterdir()
                        if d.is_dir() and d.name.isdigit())
    subjects = sorted({int(p.stem) for _, d in frame_dirs for p in d.glob('*.pkl')
                       if p.stem.isdigit()})
    for subject in subjects:
        if subject not in gender_of:
            raise common.DatasetFormatError(
                f'{fit_dir}: gender of subject {subject} unknown; pass genders={{{subject}: '
                f'"male"|"female"}}')
        model = body_models.get_body_model(body_model_dir, 'smplx', gender_of[subject])
        frames = [(i, d / f'{subject:03d}.pkl') for i, d in frame_dirs
                  if (d / f'{subject:03d}.pkl').is_file()]
        coords = subject_joints([load_fit(p) for _, p in frames], model)
        count_skipped('rich', 'camera without a calibration file (moving camera)',
                      sum(frame in images for images in uncalibrated_frames for frame, _ in frames))
        for cam, (camera, images) in cameras.items():
            imshape = None
            projected = camera.world_to_image(coords)
            for (frame, _), world, points2d in zip(frames, coords, projected):
                if frame not in images:
                    raise common.DatasetFormatError(
                        f'{seq_dir}/cam_{cam:02d}: missing image {frame:05d}_{cam:02d}'
                        f'{{{",".join(IMAGE_EXTENSIONS)}}} (there is a fit for this frame)')
                imshape = imshape or common.image_shape(images[frame])
                box = common.box_around_points(points2d, imshape=imshape)
                if not (box[2] > 0 and box[3] > 0):
                    count_skipped('rich', 'person outside the image (empty box)')
                    continue
                yield Pose3DExample(
                    image=str(images[frame]), camera=camera.copy(), world_coords=world,
                    joint_names=names, box=box, dataset='rich',
                    sequence=f'{phase}/{seq_dir.name}', person=subject,
                    camera_id=f'cam_{cam:02d}', frame=frame, split=SPLITS[phase],
                    extra={'gender': gender_of[subject]})
