"""Converter for GPA (Geometric Pose Affordance, Wang et al. 2019): 34 Vicon joints per image.

Expected layout under `root` (the released archives extracted side by side):

    <root>/
        xyz_gpa12_mdp_cntind_crop_cam_c2g.json   COCO-like: 'images' [{'file_name', ...}] and
                                                 'annotations' (same order) [{'joint_cams':
                                                 [3][34] camera-frame mm, 'f': [fx, fy],
                                                 'c': [cx, cy], 'istrains': bool}]
        Gaussian_img_jpg_new/<id>.jpg            from gaussian_fullimg.tar.gz; <id> is the
                                                 10-digit number that ends 'file_name'. The
                                                 nested form <id[:6]>/<id[6:8]>/<id>.jpg
                                                 (PosePile's browsing layout) is accepted too.
        Sequence_ids/cam_ids_750k.npy            camera id per image id (int array)

Units and frames: 'joint_cams' are camera-frame millimetres; each example's camera is the
identity-pose pinhole camera from 'f' and 'c' (no distortion), so world = camera frame
(y down, world up = -y). Joints: the 34 'gpa' joints in the annotation's column order (the
reference loader's order; the dataset's readme names them only by index).

Split: 'istrains' true -> 'train', false -> 'test' (the dataset's own split).
Tracks: sequence = camera_id = the camera id from cam_ids_750k.npy, person = 0,
frame = the image id; images are yielded in image-id order, so the 100 mm rule runs per camera
over time like the reference pipeline's per-camera pose sampling.

Not read: the human masks archive, the scene geometry (depth/mesh) files.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.example import Pose3DExample

SKELETON = 'gpa'
DESCRIPTION = 'GPA: xyz_gpa12 annotation json (34 joints, camera-frame mm), single images'
ANNOTATION_FILE = 'xyz_gpa12_mdp_cntind_crop_cam_c2g.json'
IMAGE_DIR = 'Gaussian_img_jpg_new'
CAMERA_IDS_FILE = 'Sequence_ids/cam_ids_750k.npy'
N_JOINTS = 34
_IMAGE_ID = re.compile(r'(\d{10})\.\w+$')


def _image_path(image_dir: pathlib.Path, image_id: str, ann_path: pathlib.Path) -> pathlib.Path:
    for rel in (f'{image_id}.jpg', f'{image_id[:6]}/{image_id[6:8]}/{image_id}.jpg'):
        candidate = common.safe_path(image_dir, rel, ann_path)
        if candidate.is_file():
            return candidate
    raise common.DatasetFormatError(
        f'missing file {image_dir / f"{image_id}.jpg"} (expected: the image of id {image_id} '
        f'listed in {ann_path}; also looked in {image_id[:6]}/{image_id[6:8]}/)')


def convert(root) -> Iterator[Pose3DExample]:
    """Yields one example per annotated image, in image-id order."""
    root = common.require_dir(root, 'the GPA root')
    ann_path = root / ANNOTATION_FILE
    annotation = common.load_json(ann_path)
    images = common.get_field(annotation, 'images', ann_path)
    annos = common.get_field(annotation, 'annotations', ann_path)
    if not isinstance(images, list) or not isinstance(annos, list) or len(images) != len(annos):
        raise common.DatasetFormatError(
            f'{ann_path}: fields "images" and "annotations" must be lists of equal length')
    ids_path = common.require_file(root / CAMERA_IDS_FILE, 'the camera id of every image id')
    try:
        cam_ids = np.load(ids_path, allow_pickle=False)
    except ValueError as e:
        raise common.DatasetFormatError(f'{ids_path}: not a numeric .npy array ({e})') from None
    image_dir = common.require_dir(root / IMAGE_DIR, 'the GPA images (gaussian_fullimg.tar.gz)')
    names = joints.union_names(SKELETON)

    image_ids = []
    for i, info in enumerate(images):
        file_name = str(common.get_field(info, 'file_name', f'{ann_path} images[{i}]'))
        match = _IMAGE_ID.search(file_name)
        if not match:
            raise common.DatasetFormatError(
                f'{ann_path}: images[{i}].file_name {file_name!r} does not end in a 10-digit id')
        image_ids.append(match.group(1))
    for i in sorted(range(len(images)), key=lambda k: int(image_ids[k])):
        where = f'{ann_path} annotations[{i}]'
        anno = annos[i]
        image_id = image_ids[i]
        coords = common.get_field(anno, 'joint_cams', where, (3, N_JOINTS)).T
        f = common.get_field(anno, 'f', where, (2,))
        c = common.get_field(anno, 'c', where, (2,))
        if int(image_id) >= len(cam_ids):
            raise common.DatasetFormatError(
                f'{ids_path}: holds {len(cam_ids)} camera ids, none for image id {image_id}')
        camera_id = str(int(cam_ids[int(image_id)]))
        camera = Camera(intrinsic_matrix=[[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]])
        info = images[i]
        imshape = ((int(info['height']), int(info['width']))
                   if 'height' in info and 'width' in info else None)
        yield Pose3DExample(
            image=str(_image_path(image_dir, image_id, ann_path)), camera=camera,
            world_coords=coords, joint_names=names,
            box=common.box_around_points(camera.camera_to_image(coords), imshape=imshape),
            dataset='gpa', sequence=f'cam{camera_id}', person=0, camera_id=camera_id,
            frame=int(image_id), split='train' if bool(common.get_field(anno, 'istrains', where))
            else 'test')
