"""MuCo-3DHP converter for the 3DMPPE release (Moon et al.): a COCO-style JSON + composite JPEGs.

MuCo-3DHP (Mehta et al., 3DV 2018) is not distributed as images by its authors, only as scripts
that composite MPI-INF-3DHP training frames. The copy in practical use is the one generated and
released with 3DMPPE (RootNet/PoseNet, "MuCo parsed and composited data"). Expected layout, as
that release unpacks (`root` may be the `data` folder itself or its parent `MuCo`):

    root/data/
      MuCo-3DHP.json          COCO-style annotations (below)
      augmented_set/...       composites with random background augmentation (JPEG)
      unaugmented_set/...     composites without it (JPEG)

MuCo-3DHP.json:
    'images':      {id, file_name (relative to data/, starting with the set's folder), width,
                    height, f [fx, fy] px, c [cx, cy] px}
    'annotations': {id, image_id, bbox [x, y, w, h] px, keypoints_cam [21, 3] (camera frame,
                    mm), keypoints_img [21, 2] (px), keypoints_vis [21] (0/1; optional here, not
                    read by the 3DMPPE loader itself)}
Joint order: the 21-joint 'muco_21' format (the 3DHP toolkit's 'extended' set), joined to the
'3dhp' union joints (SKELETON docs in posepile/joints/skeletons.py).

Camera: pinhole K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] per image, identity extrinsics (world
= camera frame), no distortion; keypoints_img is keypoints_cam projected through it (the
3DMPPE loaders' cam2pixel). `extra['reprojection_error_px']` (max over joints) reports how far
the annotated 2D points are from that projection, so a mismatch in a downloaded copy shows.
Box: `bbox` as given (no pixel-centre shift: how 3DMPPE derived it is not documented).

Split: all 'train' (MuCo-3DHP is a training set; MuPoTS-3D is its test set).
Tracks: every composite is an independent image, so each person in each image is its own track:
sequence = file_name, person = annotation id, camera_id = '', frame = 0 (the 100 mm rule keeps
them all).
Skipped (reported via skip_counts): persons whose bbox has no area, and persons with fewer than
`min_visible_joints` visible joints in keypoints_vis (when the file has it). The 3DMPPE loader's
own training-time choice of persons (the closest one plus those whose roots are >= 500 mm from
all others) is not applied: it is a sampling heuristic, not part of the data.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'muco_21'
DESCRIPTION = ('MuCo-3DHP as released with 3DMPPE: MuCo-3DHP.json (21 joints, camera frame, mm) '
               '+ augmented_set/unaugmented_set composite JPEGs')
ANNOTATION_FILE = 'MuCo-3DHP.json'
SUBSETS = ('augmented_set', 'unaugmented_set')
N_JOINTS = 21


def find_data_dir(root: str | pathlib.Path) -> pathlib.Path:
    """The folder holding MuCo-3DHP.json: `root` itself or `root/data` (the release's layout)."""
    root = common.require_dir(root, 'the MuCo directory of the 3DMPPE release')
    for candidate in (root, root / 'data'):
        if (candidate / ANNOTATION_FILE).is_file():
            return candidate
    raise common.DatasetFormatError(
        f'missing file {root / "data" / ANNOTATION_FILE} (expected: the COCO-style MuCo-3DHP '
        f'annotation of the 3DMPPE release, in {root}/data or {root})')


def _int_field(mapping: dict, key: str, where: str) -> int:
    value = common.get_field(mapping, key, where)
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not float(value).is_integer()):
        raise common.DatasetFormatError(f'{where}: field {key!r} is {value!r}, expected an integer')
    return int(value)


def _camera(image: dict, where: str) -> Camera:
    focal = common.get_field(image, 'f', where, (2,))
    centre = common.get_field(image, 'c', where, (2,))
    if not (np.all(np.isfinite(focal)) and np.all(focal > 0) and np.all(np.isfinite(centre))):
        raise common.DatasetFormatError(
            f'{where}: fields "f" {focal.tolist()} and "c" {centre.tolist()} must be finite '
            f'with positive focal lengths (px)')
    return Camera(intrinsic_matrix=[[focal[0], 0, centre[0]], [0, focal[1], centre[1]],
                                    [0, 0, 1]])


def load_images(data: dict, path: pathlib.Path) -> dict[int, dict[str, Any]]:
    """image id -> {'file_name', 'height', 'width', 'camera'} from the file's 'images'."""
    records: dict[int, dict[str, Any]] = {}
    for i, image in enumerate(common.get_field(data, 'images', path)):
        where = f'{path} [images {i}]'
        image_id = _int_field(image, 'id', where)
        if image_id in records:
            raise common.DatasetFormatError(f'{where}: duplicate image id {image_id}')
        records[image_id] = {
            'file_name': str(common.get_field(image, 'file_name', where)),
            'height': _int_field(image, 'height', where),
            'width': _int_field(image, 'width', where),
            'camera': _camera(image, where)}
    return records


def parse_annotation(ann: dict, where: str) -> dict[str, Any]:
    """One person: {'id', 'image_id', 'coords' [21, 3] camera mm, 'coords2d' [21, 2] px,
    'bbox' [4] px, 'visible' [21] bool or None}."""
    coords = common.get_field(ann, 'keypoints_cam', where, (N_JOINTS, 3))
    coords2d = common.get_field(ann, 'keypoints_img', where, (N_JOINTS, 2))
    bbox = common.get_field(ann, 'bbox', where, (4,))
    for name, value in (('keypoints_cam', coords), ('keypoints_img', coords2d), ('bbox', bbox)):
        if not np.all(np.isfinite(value)):
            raise common.DatasetFormatError(f'{where}: field {name!r} has non-finite values')
    visible = None
    if 'keypoints_vis' in ann:
        try:
            vis = np.asarray(ann['keypoints_vis'], np.float64)
        except (TypeError, ValueError):
            raise common.DatasetFormatError(
                f"{where}: field 'keypoints_vis' is not numeric") from None
        # Loaders of this file index it per joint ([21]); a [21, 1] column is accepted too.
        if vis.shape not in ((N_JOINTS,), (N_JOINTS, 1)):
            raise common.DatasetFormatError(
                f"{where}: field 'keypoints_vis' has shape {vis.shape}, expected [21]")
        vis = vis.reshape(N_JOINTS)
        if not np.all((vis == 0) | (vis == 1)):
            raise common.DatasetFormatError(
                f"{where}: field 'keypoints_vis' has values {sorted(set(vis.tolist()))}, "
                f"expected 0 or 1")
        visible = vis.astype(bool)
    return {'id': _int_field(ann, 'id', where), 'image_id': _int_field(ann, 'image_id', where),
            'coords': coords, 'coords2d': coords2d, 'bbox': bbox, 'visible': visible}


def _annotations_by_image(data: dict, path: pathlib.Path) -> dict[int, list[tuple[dict, str]]]:
    """image id -> its raw annotation dicts (with their error-message location), in file order.

    Parsing waits until the image's turn: the file is large, and holding every person parsed
    next to the loaded JSON would double the memory.
    """
    grouped: dict[int, list[tuple[dict, str]]] = {}
    for i, ann in enumerate(common.get_field(data, 'annotations', path)):
        if not isinstance(ann, dict):
            raise common.DatasetFormatError(
                f'{path} [annotations {i}]: expected an object, got {type(ann).__name__}')
        where = f'{path} [annotation id {ann.get("id", f"? (entry {i})")}]'
        image_id = _int_field(ann, 'image_id', where)
        grouped.setdefault(image_id, []).append((ann, where))
    return grouped


def convert(root, subsets: Iterable[str] = SUBSETS,
            min_visible_joints: int = 6) -> Iterator[Pose3DExample]:
    """Yields one example per annotated person, images in the file's order.

    Args:
        root: the release's `data` folder (holding MuCo-3DHP.json) or its parent.
        subsets: top-level image folders to read ('augmented_set', 'unaugmented_set'); an
            image is in the subset named by the first component of its file_name.
        min_visible_joints: persons with fewer joints marked visible in keypoints_vis are
            skipped (as in the SPIN-family MuCo loaders); no effect where keypoints_vis is absent.
    """
    subsets = tuple(subsets)
    unknown = sorted(set(subsets) - set(SUBSETS))
    if unknown:
        raise ValueError(f'unknown MuCo-3DHP subset(s) {unknown}; expected some of {list(SUBSETS)}')
    data_dir = find_data_dir(root)
    path = data_dir / ANNOTATION_FILE
    data = common.load_json(path)
    if not isinstance(data, dict):
        raise common.DatasetFormatError(f'{path}: expected a JSON object with "images" and '
                                        f'"annotations", got {type(data).__name__}')
    images = load_images(data, path)
    people = _annotations_by_image(data, path)
    orphans = sorted(set(people) - set(images))
    if orphans:
        raise common.DatasetFormatError(
            f'{path}: annotations refer to image_id(s) {orphans[:5]} not in "images"')
    names = joints.union_names(SKELETON)
    for image_id, image in images.items():
        file_name = image['file_name']
        image_path = common.safe_path(data_dir, file_name, path)
        subset = pathlib.PurePosixPath(file_name.replace('\\', '/')).parts[0]
        if subset not in SUBSETS:
            # Refused rather than skipped: a copy laid out differently would otherwise convert
            # to nothing without a word.
            raise common.DatasetFormatError(
                f'{path} [image id {image_id}]: field "file_name" is {file_name!r}, expected a '
                f'path under one of {list(SUBSETS)}')
        if subset not in subsets or image_id not in people:
            continue
        common.require_file(image_path, f'the composite JPEG of image id {image_id}')
        camera = image['camera']
        for ann, where in people[image_id]:
            person = parse_annotation(ann, where)
            bbox = person['bbox']
            if bbox[2] <= 0 or bbox[3] <= 0:
                count_skipped('muco', 'empty box (bbox width or height <= 0)')
                continue
            visible = person['visible']
            if visible is not None and np.count_nonzero(visible) < min_visible_joints:
                count_skipped('muco', 'fewer visible joints (keypoints_vis) than '
                                      'min_visible_joints')
                continue
            coords = person['coords']
            error = np.max(np.linalg.norm(camera.camera_to_image(coords) - person['coords2d'],
                                          axis=-1))
            extra = {'image_id': image_id, 'annotation_id': person['id'], 'subset': subset,
                     'keypoints_img': person['coords2d'].astype(np.float32),
                     'reprojection_error_px': float(error)}
            if visible is not None:
                extra['visibility'] = visible
            yield Pose3DExample(
                image=str(image_path), camera=camera.copy(), world_coords=coords,
                joint_names=names, box=bbox, dataset='muco', sequence=file_name,
                person=person['id'], camera_id='', frame=0, split='train', extra=extra)
