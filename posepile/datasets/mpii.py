"""Converter for MPII Human Pose v1.0 (2D only: 16 joints per person, no 3D, no camera).

Expected layout under `root`, as distributed on human-pose.mpi-inf.mpg.de
(mpii_human_pose_v1.tar.gz and mpii_human_pose_v1_u12_2.zip, extracted in place):

    <root>/
        mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat   (or directly under <root>)
        images/<9-digit id>.jpg

The .mat file (MATLAB v5) holds the struct 'RELEASE' with
    annolist(i).image.name            image file name
    annolist(i).annorect(k)           one person: x1, y1, x2, y2 (head box), scale (person
                                      height / 200 px), objpos.x/.y (rough body centre),
                                      annopoints.point(p) with id (0..15), x, y, is_visible
    img_train(i)                      1 = training image, 0 = test image (no joints released)
    single_person{i}, act(i)          kept in `extra` (rect numbers are 1-based in the file)

Joints: the 16 MPII joints in their id order (right ankle, knee, hip, left hip, knee, ankle,
pelvis, thorax, upper neck, head top, right wrist, elbow, shoulder, left shoulder, elbow,
wrist), as the 'mpii' skeleton. Missing point ids are NaN; is_visible (1 / 0, -1 where the
file leaves it empty) is kept in `extra['is_visible']`, and invisible points are still labelled.

Coordinates: MATLAB's 1-based pixel coordinates, shifted by -1 into the 0-based pixel-centre
image frame. The box is a square of side 200 * scale px centred at objpos (MPII's own person
scale; objpos is the body centre, so the box roughly spans the person's height).

Split: every person of the img_train = 1 images with joint annotations is 'train', the
reference use of MPII (2D training data). Test images (img_train = 0) carry no public joints and
are skipped. The usual validation subset (Tompson et al.'s 2958 images) is not part of this
release; pass its image names as `validation_images` to move those images to 'validation'.

Camera: the uncalibrated-image guess of `posepile.camera.camera_from_fov`
(identity extrinsics, 8 degree field of view over the larger side, as for COCO; see
posepile.datasets.coco); image sizes are read from the JPEG headers. `world_coords` are all NaN.
Joints with y > 0.95 x the image height are dropped (NaN), as for COCO.

Tracks: sequence = image name, person = annorect index (0-based), camera_id = ''.

Not read: video_list, frame_sec/vididx (the neighbouring video frames are not distributed here).
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import scipy.io

from posepile import joints
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.camera import camera_from_fov
from posepile.datasets.coco import DEFAULT_FOV_DEG
from posepile.example import Pose3DExample

SKELETON = 'mpii'
DESCRIPTION = 'MPII Human Pose v1 (2D, 16 joints) from mpii_human_pose_v1_u12_1.mat'
N_JOINTS = 16
MAT_NAME = 'mpii_human_pose_v1_u12_1.mat'
_MAT_LOCATIONS = (f'mpii_human_pose_v1_u12_2/{MAT_NAME}', MAT_NAME)


def find_annotation_file(root: pathlib.Path) -> pathlib.Path:
    for relative in _MAT_LOCATIONS:
        if (root / relative).is_file():
            return root / relative
    raise common.DatasetFormatError(
        f'missing file {root / _MAT_LOCATIONS[0]} (expected: the MPII annotation struct RELEASE; '
        f'also looked for {root / _MAT_LOCATIONS[1]})')


def load_release(path: pathlib.Path) -> Any:
    """The RELEASE struct (scipy mat_struct, squeezed)."""
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except (ValueError, TypeError, OSError, IndexError, NotImplementedError,
            scipy.io.matlab.MatReadError) as e:
        # scipy reports truncated headers as IndexError/MatReadError, not one type.
        raise common.DatasetFormatError(f'{path}: not a readable MATLAB v5 file ({e})') from e
    if 'RELEASE' not in mat:
        raise common.DatasetFormatError(
            f'{path}: has no variable "RELEASE" '
            f'(has {sorted(k for k in mat if not k.startswith("__"))})')
    release = mat['RELEASE']
    for field in ('annolist', 'img_train'):
        if field not in getattr(release, '_fieldnames', ()):
            raise common.DatasetFormatError(f'{path}: RELEASE has no field {field!r}')
    return release


def _field(struct: Any, name: str) -> Any:
    """A struct field, or None where the field is absent or an empty MATLAB array."""
    if name not in getattr(struct, '_fieldnames', ()):
        return None
    value = getattr(struct, name)
    if isinstance(value, np.ndarray) and value.size == 0:
        return None
    return value


def _scalar(value: Any, where: str, field: str) -> float:
    try:
        return float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise common.DatasetFormatError(
            f'{where}: field {field!r} should be one number, got {value!r}') from None


def parse_points(annopoints: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """annopoints struct -> ([16, 2] 0-based pixel coordinates (NaN if absent),
    [16] is_visible in {1, 0, -1 = not stated})."""
    coords = np.full((N_JOINTS, 2), np.nan)
    visible = np.full(N_JOINTS, -1, np.int64)
    points = _field(annopoints, 'point')
    if points is None:
        return coords, visible
    for point in np.atleast_1d(points):
        joint_id = int(_scalar(_field(point, 'id'), where, 'annopoints.point.id'))
        if not 0 <= joint_id < N_JOINTS:
            raise common.DatasetFormatError(
                f'{where}: field "annopoints.point.id" is {joint_id}, expected 0..15')
        coords[joint_id] = [_scalar(_field(point, 'x'), where, 'annopoints.point.x') - 1,
                            _scalar(_field(point, 'y'), where, 'annopoints.point.y') - 1]
        flag = _field(point, 'is_visible')
        if flag is not None:
            # The release stores the flag as a number in most entries and as a string in some.
            visible[joint_id] = int(float(str(np.asarray(flag).reshape(-1)[0])))
    return coords, visible


def convert(root, splits: Iterable[str] = ('train', 'validation'),
            validation_images: Iterable[str] = (),
            fov_deg: float = DEFAULT_FOV_DEG) -> Iterator[Pose3DExample]:
    """Yields one 2D-only example per annotated person of the training images.

    Args:
        root: the MPII directory (see module docstring).
        splits: which of 'train', 'validation' to yield.
        validation_images: image names (e.g. '015601864.jpg') that form the validation split.
        fov_deg: assumed field of view of the larger image side, degrees.
    """
    root = common.require_dir(root, 'the MPII Human Pose directory')
    splits, validation_images = set(splits), set(validation_images)
    unknown = sorted(splits - {'train', 'validation'})
    if unknown:
        raise ValueError(f'MPII has no annotated split(s) {unknown}; expected train/validation')
    mat_path = find_annotation_file(root)
    release = load_release(mat_path)
    annolist = np.atleast_1d(release.annolist)
    img_train = np.atleast_1d(np.asarray(release.img_train)).reshape(-1)
    if img_train.shape != annolist.shape:
        raise common.DatasetFormatError(
            f'{mat_path}: field "RELEASE.img_train" has {img_train.size} entries, expected one '
            f'per annolist entry ({annolist.size})')
    single_person = _field(release, 'single_person')
    acts = _field(release, 'act')
    names = joints.union_names(SKELETON)
    no_world = np.full((N_JOINTS, 3), np.nan, np.float32)
    image_dir = common.require_dir(root / 'images', 'the MPII images (<id>.jpg)')
    for i, entry in enumerate(annolist):
        if not img_train[i]:
            # Test images: their joints are withheld, so whole images go (the unit here).
            count_skipped('mpii', 'test image without public joints (images)')
            continue
        where = f'{mat_path} [RELEASE.annolist({i + 1})]'
        image_struct = _field(entry, 'image')
        image_name = _field(image_struct, 'name') if image_struct is not None else None
        if not isinstance(image_name, str):
            raise common.DatasetFormatError(f'{where}: missing field "image.name"')
        split = 'validation' if image_name in validation_images else 'train'
        rects = _field(entry, 'annorect')
        if split not in splits or rects is None:
            continue
        image_path = common.safe_path(image_dir, image_name, mat_path)
        imshape = None
        for k, rect in enumerate(np.atleast_1d(rects)):
            annopoints = _field(rect, 'annopoints')
            scale, objpos = _field(rect, 'scale'), _field(rect, 'objpos')
            if annopoints is None or scale is None or objpos is None:
                count_skipped('mpii', 'person without annopoints, scale or objpos')
                continue
            rect_where = f'{where}.annorect({k + 1})'
            coords2d, visible = parse_points(annopoints, rect_where)
            if not np.isfinite(coords2d).any():
                count_skipped('mpii', 'person without any labelled joint')
                continue
            side = 200.0 * _scalar(scale, rect_where, 'scale')
            centre = np.array([_scalar(_field(objpos, 'x'), rect_where, 'objpos.x'),
                               _scalar(_field(objpos, 'y'), rect_where, 'objpos.y')]) - 1
            if imshape is None:
                imshape = common.image_shape(image_path, 'an MPII image')
            coords2d = common.drop_labels_near_bottom(coords2d, imshape[0])
            extra = {'is_visible': visible, 'image_index': i}
            if single_person is not None:
                extra['single_person'] = (k + 1) in np.atleast_1d(single_person[i]).tolist()
            if acts is not None:
                extra['activity'] = str(_field(np.atleast_1d(acts)[i], 'act_name') or '')
            yield Pose3DExample(
                image=str(image_path), camera=camera_from_fov(imshape, fov_deg),
                world_coords=no_world, joint_names=names,
                box=np.concatenate([centre - side / 2, [side, side]]), dataset='mpii',
                sequence=image_name, person=k, camera_id='', frame=0, split=split,
                coords2d=coords2d, extra=extra)
