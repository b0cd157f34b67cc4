"""Converter for JRDB-Pose (2D only: 17 keypoints per person, tracked through the JRDB videos).

Expected layout under `root`: the JRDB 2022 training set as distributed on jrdb.erc.monash.edu
(`train_dataset_with_activity`, images + labels + calibration, extracted in place):

    <root>/
        calibration/cameras.yaml                              the camera rig (see below)
        images/image_0/<sequence>/<frame:06d>.jpg ...         the five upper cameras 0 2 4 6 8
        images/image_stitched/<sequence>/<frame:06d>.jpg      the 360-degree cylindrical panorama
        labels/labels_2d_pose_coco/<sequence>_image0.json     per sequence and camera
        labels/labels_2d_pose_stitched_coco/<sequence>.json   per sequence, panorama

Each label file is COCO-style: 'images' ({id, file_name = 'image_0/<sequence>/000123.jpg'
relative to images/, width, height}), 'annotations' ({id, image_id, track_id, category_id,
keypoints [51] = 17 x (x, y, v), num_keypoints, is_crowd, and in some releases bbox}) and
'categories' (the person category names the 17 keypoints: head, right eye, left eye, right
shoulder, center shoulder, left shoulder, right elbow, left elbow, center hip, right wrist,
right hip, left hip, left wrist, right knee, left knee, right foot, left foot; checked).
v: 2 visible, 1 occluded, 0 invisible (positions are given for all 17; the invisible ones are
guesses and are dropped like the reference does; option `keep_invisible`). Sources: the JRDB
toolkit (github.com/JRDB-dataset/jrdb_toolkit: pose_eval/, an example stitched label file,
calibration/cameras.yaml) and the reference loader (PosePile posepile/ds/jrdb/main.py).

views='individual' (default, the reference's choice): the five camera images with their
calibration. cameras.yaml lists sensor_0..sensor_9 (K, D = OpenCV k1 k2 p1 p2 k3, R, T as
whitespace-separated strings); image_<2k> is sensor_k, as in the reference (sensors 0-4 are the
five cameras around the upper ring, 72 degrees apart; 5-9 the lower ring). World frame: the
rig's, optical centre -R^T T, up = -y. The reference found the individual-camera labels two
frames off their images (its correct_frame_index: image = label frame + 2); `frame_offset`
(default 2 for individual views, 0 for the panorama) applies that.
views='stitched': the panorama is a cylinder, not a pinhole image; each person's crop uses a
pinhole camera tangent to the cylinder at the person (focal length W / 2pi px, the panorama's
pixels per radian, principal point at the box centre column and the image's middle row), which is
exact at the centre and errs by under 1 % within +-10 degrees of it. Both views label the same
people: use one.

Box: the annotation's bbox if present, else the labelled keypoints' box grown to 1.15 x (the
reference's, before it swapped in detector boxes, which are not distributed). Camera of the
2D-only examples: as above; world coordinates are NaN.

Skipped (counted): crowd annotations; persons with fewer than `min_limb_joints` = 7 labelled
limb joints (the reference 2D mix's rule); frames of a track whose keypoints moved less than
`motion_fraction` = 10 % of the box's larger side since its last kept frame with no joint newly
labelled (the reference's rule, in place of the 100 mm rule that 2D tracks cannot use); labelled
frames whose image is missing.

Tracks: sequence = the JRDB sequence, person = track_id, camera_id = image_<k> or
'image_stitched', frame = the image's frame index. Split: 'train' ('validation' for the
sequences named in `validation_sequences`); the JRDB test set has no public pose labels.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets._video2d import (DEFAULT_MIN_LIMB_JOINTS, MotionFilter2D,
                                        annotations_in_track_order, limb_joint_mask,
                                        video_images)
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'jrdb'
DESCRIPTION = ('JRDB-Pose 2D keypoints (17, tracked) from labels_2d_pose_coco (calibrated '
               'cameras) or labels_2d_pose_stitched_coco (panorama)')
N_KEYPOINTS = 17
VIEWS = ('individual', 'stitched')
# The person category's keypoint names as the released label files give them, and as the
# toolkit's evaluation code names them (either is accepted; the order is the same).
KEYPOINT_NAMES = (
    ('head', 'right eye', 'left eye', 'right shoulder', 'center shoulder', 'left shoulder',
     'right elbow', 'left elbow', 'center hip', 'right wrist', 'right hip', 'left hip',
     'left wrist', 'right knee', 'left knee', 'right foot', 'left foot'),
    ('head', 'right eye', 'left eye', 'right shoulder', 'neck', 'left shoulder', 'right elbow',
     'left elbow', 'tailbone', 'right hand', 'right hip', 'left hip', 'left hand', 'right knee',
     'left knee', 'right foot', 'left foot'))
_LABEL_DIRS = {'individual': 'labels_2d_pose_coco', 'stitched': 'labels_2d_pose_stitched_coco'}
_CAMERA_OF_FILE = re.compile(r'^(?P<sequence>.+)_image(?P<camera>\d)$')
# The reference's box growth around the keypoints (1.15 x: 7.5 % per side).
BOX_MARGIN = 0.075


def load_cameras(path: pathlib.Path) -> dict[str, Camera]:
    """{'image_0': Camera, 'image_2': ...} of the individual views from cameras.yaml."""
    import yaml  # deferred: only this converter reads YAML
    try:
        with open(common.require_file(path, 'the JRDB camera calibration (calibration/'
                                            'cameras.yaml)'), encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as error:
        raise common.DatasetFormatError(f'{path}: not valid YAML ({error})') from None
    sensors = data.get('cameras') if isinstance(data, dict) else None
    if not isinstance(sensors, dict):
        raise common.DatasetFormatError(f'{path}: missing field "cameras"')

    def matrix(sensor, key, shape):
        where = f'{path} [cameras.{sensor}.{key}]'
        text = common.get_field(sensors.get(sensor, {}), key, f'{path} [cameras.{sensor}]')
        try:
            values = np.array([float(v) for v in str(text).split()])
        except ValueError:
            raise common.DatasetFormatError(f'{where}: not a list of numbers') from None
        if values.size != int(np.prod(shape)):
            raise common.DatasetFormatError(f'{where}: {values.size} numbers, expected '
                                            f'{int(np.prod(shape))}')
        return values.reshape(shape)

    cameras = {}
    for k in range(5):
        sensor = f'sensor_{k}'
        if sensor not in sensors:
            raise common.DatasetFormatError(f'{path}: missing camera "cameras.{sensor}"')
        R, T = matrix(sensor, 'R', (3, 3)), matrix(sensor, 'T', (3,))
        try:
            cameras[f'image_{2 * k}'] = Camera(-R.T @ T, R, matrix(sensor, 'K', (3, 3)),
                                               matrix(sensor, 'D', (5,)), world_up=(0, -1, 0))
        except ValueError as error:
            raise common.DatasetFormatError(f'{path} [cameras.{sensor}]: invalid camera '
                                            f'({error})') from None
    return cameras


def panorama_camera(box: np.ndarray, imshape: tuple[int, int]) -> Camera:
    """The pinhole camera tangent to the panorama's cylinder at the box centre (docstring)."""
    height, width = imshape
    focal = width / (2 * np.pi)
    centre_x = box[0] + box[2] / 2
    return Camera(intrinsic_matrix=[[focal, 0, centre_x], [0, focal, (height - 1) / 2],
                                    [0, 0, 1]], world_up=(0, -1, 0))


def _check_keypoint_names(data: dict, path: pathlib.Path) -> None:
    categories = common.get_field(data, 'categories', path)
    person = [c for c in categories if isinstance(c, dict) and c.get('id') == 1] or categories
    names = tuple(str(n).lower() for n in common.get_field(
        person[0] if person else {}, 'keypoints', f'{path} [categories]'))
    if names not in KEYPOINT_NAMES:
        raise common.DatasetFormatError(
            f'{path}: person keypoints are {list(names)}, expected {list(KEYPOINT_NAMES[0])}')


def convert(root, views: str = 'individual', frame_offset: int | None = None,
            keep_invisible: bool = False, min_limb_joints: int = DEFAULT_MIN_LIMB_JOINTS,
            motion_fraction: float = 0.1, validation_sequences: Iterable[str] = (),
            sequences: Iterable[str] | None = None) -> Iterator[Pose3DExample]:
    """Yields one 2D-only example per kept person-frame; see the module docstring.

    Args:
        root: the JRDB training set directory.
        views: 'individual' (calibrated cameras) or 'stitched' (the panorama).
        frame_offset: image frame = label frame + this (default 2 individual, 0 stitched).
        keep_invisible: also keep keypoints with v = 0 (their positions are guesses).
        min_limb_joints: persons with fewer labelled limb joints are skipped.
        motion_fraction: the 2D motion rule's threshold, a fraction of the box's larger side.
        validation_sequences: sequences labelled 'validation' instead of 'train'.
        sequences: read only these sequences (default: all label files).
    """
    root = common.require_dir(root, 'the JRDB training set directory')
    if views not in VIEWS:
        raise ValueError(f'JRDB views must be one of {VIEWS}, got {views!r}')
    if frame_offset is None:
        frame_offset = 2 if views == 'individual' else 0
    label_dir = common.require_dir(root / 'labels' / _LABEL_DIRS[views],
                                   f'the JRDB-Pose {views} label files')
    cameras = load_cameras(root / 'calibration' / 'cameras.yaml') if views == 'individual' \
        else None
    paths = sorted(label_dir.glob('*.json'))
    if not paths:
        raise common.DatasetFormatError(f'{label_dir}: no label files (*.json)')
    wanted = None if sequences is None else set(sequences)
    validation = set(validation_sequences)
    names = joints.union_names(SKELETON)
    limbs = limb_joint_mask(joints.get_skeleton(SKELETON).names)
    no_world = np.full((N_KEYPOINTS, 3), np.nan, np.float32)
    for path in paths:
        if views == 'individual':
            match = _CAMERA_OF_FILE.match(path.stem)
            if not match:
                raise common.DatasetFormatError(f'{path}: individual-view label files are '
                                                f'named <sequence>_image<k>.json')
            sequence, camera_id = match['sequence'], f'image_{match["camera"]}'
            if camera_id not in cameras:
                raise common.DatasetFormatError(f'{path}: camera {camera_id} is not one of the '
                                                f'individual views {sorted(cameras)}')
        else:
            sequence, camera_id = path.stem, 'image_stitched'
        if wanted is not None and sequence not in wanted:
            continue
        split = 'validation' if sequence in validation else 'train'
        yield from _convert_file(root, path, sequence, camera_id, split, cameras, frame_offset,
                                 keep_invisible, min_limb_joints, motion_fraction, names, limbs,
                                 no_world)


def _convert_file(root, path, sequence, camera_id, split, cameras, frame_offset, keep_invisible,
                  min_limb_joints, motion_fraction, names, limbs, no_world):
    data = common.load_json(path)
    _check_keypoint_names(data, path)
    images = video_images(data, path)
    motion = MotionFilter2D()
    shapes: dict[str, tuple[int, int]] = {}
    dataset = 'jrdb'
    for track, where, ann in annotations_in_track_order(data, path, images):
        file_name, label_frame, _ = images[int(ann['image_id'])]
        frame = label_frame + frame_offset
        if ann.get('is_crowd', ann.get('iscrowd', 0)):
            count_skipped(dataset, 'crowd annotation')
            continue
        keypoints = common.get_field(ann, 'keypoints', where, (N_KEYPOINTS * 3,))
        keypoints = keypoints.reshape(N_KEYPOINTS, 3)
        visibility = keypoints[:, 2].astype(np.int64)
        if np.any((visibility < 0) | (visibility > 2)):
            raise common.DatasetFormatError(f'{where}: field "keypoints" has visibility flags '
                                            f'{sorted(set(visibility.tolist()))}, expected 0-2')
        labelled = visibility >= (0 if keep_invisible else 1)
        if np.count_nonzero(labelled & limbs) < min_limb_joints:
            count_skipped(dataset, 'fewer labelled limb joints than min_limb_joints')
            continue
        coords2d = np.where(labelled[:, None], keypoints[:, :2], np.nan)
        image_dir = str(pathlib.PurePath(file_name).parent)
        image_path = common.safe_path(root / 'images', f'{image_dir}/{frame:06d}.jpg', path)
        if not image_path.is_file():
            count_skipped(dataset, 'labelled frame without an image')
            continue
        if image_dir not in shapes:
            shapes[image_dir] = common.image_shape(image_path, 'a JRDB image')
        imshape = shapes[image_dir]
        if 'bbox' in ann:
            box = common.get_field(ann, 'bbox', where, (4,)) - [0.5, 0.5, 0, 0]
        else:
            box = common.box_around_points(coords2d, BOX_MARGIN, imshape)
        if not motion.keep(track, coords2d, motion_fraction * max(box[2:])):
            count_skipped(dataset, 'moved less than motion_fraction of its box since the last '
                                   'kept frame of its track (2D motion rule)')
            continue
        camera = cameras[camera_id] if cameras is not None else panorama_camera(box, imshape)
        yield Pose3DExample(
            image=str(image_path), camera=camera, world_coords=no_world, joint_names=names,
            box=box, dataset=dataset, sequence=sequence, person=track, camera_id=camera_id,
            frame=frame, split=split, coords2d=coords2d.astype(np.float32),
            extra={'visibility': visibility, 'annotation_id': ann.get('id')})
