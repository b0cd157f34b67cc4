"""SPEC-SYN converter (Kocabas et al., "SPEC: Seeing People in the Wild with an Estimated Camera",
ICCV 2021): photorealistic renders of SMPL bodies under strongly varied cameras.

Expected layout under `root` (spec-syn.zip from https://spec.is.tue.mpg.de, unpacked as is; the
official code's `data/dataset_folders/spec-syn`):

    root/
      annotations/
        train.npz            one row per person (N rows), see below
        test.npz
      <imgname>              each row's image, at the relative path its 'imgname' gives
                             (1920x1080 renders; several rows may share one image)

Fields read from each npz (N = persons; loaded without pickles, as the official loader does):
    imgname     [N] str      image path relative to root
    center      [N, 2]       box centre, px; scale [N]: box side / 200 px (SPIN convention)
    pose        [N, 72]      SMPL axis-angle, joint 0 = global orientation in a gravity-aligned
                             frame (no yaw); body pose parent-relative
    shape       [N, 10]      SMPL betas (gender-neutral model)
    cam_rotmat  [N, 3, 3]    rotation of that frame into the OpenCV camera (pitch and roll)
    cam_int     [N, 3, 3]    intrinsics, px
    openpose_gt [N, 25, 3]   ground-truth 2D keypoints in OpenPose BODY_25 order: x, y px, conf
Other fields of the release (part, openpose, S, focal_length, cam_pitch, cam_roll, gender,
camcalib_* ...) are not read.

Joints: the SMPL forward pass (`posepile.body_models`, neutral model under `body_model_dir`) of
pose and shape gives the 24 joints in the posing frame, without translation: the npz holds no
body position. As in SPEC's own projection (R·J + t, then K), the camera-frame joints are
cam_rotmat·J + t; t is fitted (linear least squares, `camera.fit_translation`) to the 14 BODY_25
body keypoints that SPEC's SMPL wrapper takes directly from SMPL joints (neck, shoulders,
elbows, wrists, mid-hip = pelvis, hips, knees, ankles; SPIN's JOINT_MAP). A person whose fit
leaves an RMS reprojection error above `max_fit_residual_px`, or lands behind the camera, or has
fewer than 3 labelled keypoints, is skipped and counted.

World frame: the posing frame (y down, gravity-aligned), origin at the camera, mm; the camera is
R = cam_rotmat at the origin with K = cam_int (as the reference PosePile loader sets it up), so
the people of one image share one world and one camera. Box: the npz's centre/scale square,
clipped to the image.

Split: train.npz -> 'train', test.npz -> 'test' (the SPEC paper's split). Tracks: SPEC-SYN
images are independent stills: sequence = imgname without extension, person = the row's index
among the rows of its image (npz order), camera_id '', frame 0. SPEC-MTP is not read.
"""
from __future__ import annotations

import pathlib
import zipfile
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import body_models, joints
from posepile.camera import Camera, fit_translation
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'smpl'
DESCRIPTION = ('SPEC-SYN: SMPL parameters in annotations/{train,test}.npz (needs '
               '--body-model-dir), translation fitted to openpose_gt, rendered images')
SPLITS = ('train', 'test')
N_SMPL_JOINTS = 24
# BODY_25 index -> SMPL joint index, for the body joints SPIN/PARE/SPEC's SMPL wrapper copies
# from SMPL's kinematic joints (OP Neck 12, RShoulder 17, RElbow 19, RWrist 21, LShoulder 16,
# LElbow 18, LWrist 20, MidHip 0, RHip 2, RKnee 5, RAnkle 8, LHip 1, LKnee 4, LAnkle 7).
OPENPOSE_BODY = np.arange(1, 15)
OPENPOSE_BODY_TO_SMPL = np.array([12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7])
MIN_FIT_JOINTS = 3
WORLD_UP = (0.0, -1.0, 0.0)
# Persons per body-model call: bounds the [chunk, 24, 4, 4] transform arrays.
_CHUNK = 4096
# (field, shape) with None for the row count, in the order they are checked.
_FIELDS = (('center', (None, 2)), ('scale', (None,)), ('pose', (None, 72)),
           ('shape', (None, 10)), ('cam_rotmat', (None, 3, 3)), ('cam_int', (None, 3, 3)),
           ('openpose_gt', (None, 25, 3)))


def _npz_field(data, key: str, path: pathlib.Path):
    """data[key], with a missing key, an object array (refused: no pickles) or a corrupt member
    raised as DatasetFormatError naming the file and field."""
    try:
        return data[key]
    except KeyError:
        raise common.DatasetFormatError(f'{path}: missing field {key!r}') from None
    except ValueError as e:  # "Object arrays cannot be loaded when allow_pickle=False"
        raise common.DatasetFormatError(
            f'{path}: field {key!r} cannot be read without pickles ({e})') from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise common.DatasetFormatError(f'{path}: field {key!r} is corrupt ({e})') from None


def _image_names(value, path: pathlib.Path) -> list[str]:
    names = np.asarray(value)
    if names.ndim != 1 or names.dtype.kind not in 'US':
        raise common.DatasetFormatError(
            f"{path}: field 'imgname' must be a 1-D string array, got dtype {names.dtype} "
            f"shape {names.shape}")
    if names.dtype.kind == 'S':
        return [n.decode('utf-8') for n in names]
    return names.tolist()


def load_annotations(path: str | pathlib.Path) -> dict:
    """The read fields of one SPEC-SYN npz: 'imgname' list[str] plus float64 arrays of the shapes
    in the module docstring, all with the same row count."""
    path = common.require_file(path, 'a SPEC-SYN annotation npz (annotations/train.npz, test.npz)')
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise common.DatasetFormatError(f'{path}: not a readable npz ({e})') from None
    with data:
        result = {'imgname': _image_names(_npz_field(data, 'imgname', path), path)}
        for key, shape in _FIELDS:
            result[key] = common.get_field({key: _npz_field(data, key, path)}, key, path, shape)
    n = len(result['imgname'])
    for key, _ in _FIELDS:
        if len(result[key]) != n:
            raise common.DatasetFormatError(
                f"{path}: field {key!r} has {len(result[key])} rows but 'imgname' has {n}")
        if not np.all(np.isfinite(result[key])):
            raise common.DatasetFormatError(f'{path}: field {key!r} has non-finite values')
    return result


def posed_joints(model: body_models.BodyModel, pose: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """SMPL joints [N, 24, 3], mm, posing frame, no translation (batched forward pass)."""
    out = np.empty((len(pose), N_SMPL_JOINTS, 3))
    for start in range(0, len(pose), _CHUNK):
        rows = slice(start, start + _CHUNK)
        out[rows] = body_models.forward(model, pose[rows], betas=shape[rows],
                                        return_vertices=False).joints * 1000.0
    return out


def place_in_camera(joints_mm: np.ndarray, anno: dict) -> dict:
    """Fits each person's translation to its openpose_gt body keypoints.

    Returns 'camera_coords' [N, 24, 3] mm (NaN where the fit failed), 'residual_px' [N] RMS
    reprojection error over the used keypoints, 'n_used' [N] keypoints used.
    """
    rotated = np.einsum('nab,njb->nja', anno['cam_rotmat'], joints_mm)
    keypoints = anno['openpose_gt'][:, OPENPOSE_BODY]
    used = keypoints[..., 2] > 0
    t = fit_translation(rotated[:, OPENPOSE_BODY_TO_SMPL], keypoints[..., :2], anno['cam_int'],
                        valid=used)
    camera_coords = rotated + t[:, None]
    fitted = camera_coords[:, OPENPOSE_BODY_TO_SMPL]
    with np.errstate(divide='ignore', invalid='ignore'):
        projected = np.einsum('nab,njb->nja', anno['cam_int'], fitted / fitted[..., 2:])[..., :2]
        squared = np.sum(np.square(projected - keypoints[..., :2]), axis=-1)
        residual = np.sqrt(np.sum(np.where(used, squared, 0.0), axis=-1)
                           / np.maximum(used.sum(axis=-1), 1))
    return {'camera_coords': camera_coords, 'residual_px': residual, 'n_used': used.sum(axis=-1)}


def _square_box(center, scale, imshape) -> np.ndarray:
    side = 200.0 * scale
    box = np.array([center[0] - side / 2, center[1] - side / 2, side, side])
    lo = np.maximum(box[:2], -0.5)
    hi = np.minimum(box[:2] + box[2:], np.array([imshape[1], imshape[0]]) - 0.5)
    return np.concatenate([lo, hi - lo])


def convert(root, body_model_dir=None, splits: Iterable[str] = SPLITS,
            max_fit_residual_px: float = 5.0) -> Iterator[Pose3DExample]:
    """Yields one example per annotated person; see the module docstring.

    Args:
        root: the unpacked spec-syn folder (holding annotations/).
        body_model_dir: holds smpl/SMPL_NEUTRAL.npz (see `posepile.body_models`); default: the
            POSEPILE_BODY_MODEL_DIR environment variable.
        splits: which annotation files to read ('train', 'test').
        max_fit_residual_px: persons whose fitted translation reprojects the body keypoints
            with a larger RMS error are skipped (their 2D and 3D annotations disagree).
    """
    root = pathlib.Path(root)
    body_model_dir = body_models.resolve_body_model_dir(body_model_dir, 'SPEC-SYN (SMPL)')
    names = joints.union_names(SKELETON)
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f'unknown SPEC-SYN split {split!r}; expected one of {SPLITS}')
        yield from _convert_split(root, split, names, body_model_dir, max_fit_residual_px)


def _convert_split(root, split, names, body_model_dir, max_fit_residual_px):
    anno_path = root / 'annotations' / f'{split}.npz'
    anno = load_annotations(anno_path)
    model = body_models.get_body_model(body_model_dir, 'smpl', 'neutral')
    fit = place_in_camera(posed_joints(model, anno['pose'], anno['shape']), anno)
    persons_in_image: dict[str, int] = {}
    imshapes: dict[str, tuple[int, int]] = {}
    for i, imgname in enumerate(anno['imgname']):
        person = persons_in_image.get(imgname, 0)
        persons_in_image[imgname] = person + 1
        image = common.safe_path(root, imgname, str(anno_path))
        if imgname not in imshapes:
            imshapes[imgname] = common.image_shape(
                image, f'the image of row {i} of {anno_path.name} (imgname {imgname!r})')
        camera_coords = fit['camera_coords'][i]
        if fit['n_used'][i] < MIN_FIT_JOINTS:
            count_skipped('spec', f'fewer than {MIN_FIT_JOINTS} labelled openpose_gt body '
                                  f'keypoints to fit the translation')
            continue
        if not np.all(camera_coords[:, 2] > 0):
            count_skipped('spec', 'fitted body not in front of the camera')
            continue
        if not fit['residual_px'][i] <= max_fit_residual_px:
            count_skipped('spec', 'translation fit residual above max_fit_residual_px')
            continue
        box = _square_box(anno['center'][i], anno['scale'][i], imshapes[imgname])
        if not (box[2] > 0 and box[3] > 0):
            count_skipped('spec', 'box outside the image')
            continue
        try:
            camera = Camera(rot_world_to_cam=anno['cam_rotmat'][i],
                            intrinsic_matrix=anno['cam_int'][i], world_up=WORLD_UP)
        except ValueError as e:
            raise common.DatasetFormatError(
                f'{anno_path}: row {i}: invalid cam_rotmat/cam_int ({e})') from None
        yield Pose3DExample(
            image=str(image), camera=camera, world_coords=camera.camera_to_world(camera_coords),
            joint_names=names, box=box, dataset='spec',
            sequence=str(pathlib.PurePosixPath(imgname).with_suffix('')), person=person,
            camera_id='', frame=0, split=split,
            extra={'imgname': imgname, 'row': i,
                   'fit_residual_px': float(fit['residual_px'][i])})
