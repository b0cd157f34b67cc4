"""3DOH50K converter (Zhang, Huang, Wang, CVPR 2020): object-occluded people, 14 LSP joints in 3D.

The registry spells the dataset 'tdoh' (Python module names cannot start with a digit).

Expected layout under `root` (trainset.zip and testset.zip unpacked as distributed):

    root/
      trainset/
        annots.json              {image_id: annotation, ...}
        images/<image_id>.jpg
        masks/<image_id>.png     person masks (train only; read unless masks=False)
      testset/
        annots.json
        images/<image_id>.jpg

Fields read from each annotation:
    lsp_joints_3d  [14, 3]  the 14 LSP joints (rank, rkne, rhip, lhip, lkne, lank, rwri, relb,
                            rsho, lsho, lelb, lwri, neck, head top) in the CAMERA frame, in the
                            dataset's own unit: 1 unit = 1000/7 mm (`UNITS_TO_MM`, the factor of
                            the reference PosePile loader; the dataset does not document it and
                            projections cannot check it, since they are scale-invariant)
    extri          [4, 4]   world -> camera rigid transform, translation in METRES
    intri          [3, 3]   pixels
    bbox           [[x1, y1], [x2, y2]] person box, pixels
Joints are mapped into the world frame (mm) through `extri`.
Not read: SMPL parameters (pose, betas, trans, scale), smpl_joints_*, lsp_joints_2d.

Split: trainset -> 'train', testset -> 'test' (as distributed; the 3DOH50K paper's split).
Tracks: the release has no sequence ids; images sharing one extrinsic matrix are one static
camera's footage, so camera_id = 'cam<k>' numbers the distinct extrinsics in first-seen order,
sequence = the split folder, frame = the image id's number (image ids follow capture order), so
the 100 mm rule runs per camera along the numbered frames.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.example import Pose3DExample

SKELETON = '3doh'
DESCRIPTION = '3DOH50K: 14 LSP joints (annots.json, camera frame, 1/7 m units), JPEG images'
SPLITS = {'trainset': 'train', 'testset': 'test'}
UNITS_TO_MM = 1000.0 / 7.0
N_JOINTS = 14


def _mask_rle(path: pathlib.Path) -> dict:
    from PIL import Image
    from pycocotools import mask as mask_lib
    try:
        with Image.open(path) as im:
            mask = np.asarray(im.convert('L')) > 127
    except OSError as e:
        raise common.DatasetFormatError(f'{path}: not a readable mask image ({e})') from None
    rle = mask_lib.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts']}


def parse_annotation(anno, where: str) -> dict:
    """Camera and world joints (mm) of one annots.json entry; `where` names it in errors."""
    cam_coords = common.get_field(anno, 'lsp_joints_3d', where, (N_JOINTS, 3)) * UNITS_TO_MM
    extrinsics = common.get_field(anno, 'extri', where, (4, 4))
    intrinsics = common.get_field(anno, 'intri', where, (3, 3))
    (x1, y1), (x2, y2) = common.get_field(anno, 'bbox', where, (2, 2))
    rot, trans_mm = extrinsics[:3, :3], extrinsics[:3, 3] * 1000.0
    try:
        camera = Camera(-rot.T @ trans_mm, rot, intrinsics, world_up=-rot[1])
    except ValueError as e:
        raise common.DatasetFormatError(f'{where}: invalid camera ({e})') from None
    return {'camera': camera, 'world': camera.camera_to_world(cam_coords),
            'box': np.array([x1, y1, x2 - x1, y2 - y1]), 'extrinsics': extrinsics}


def convert(root, splits: Iterable[str] = tuple(SPLITS), masks: bool = True
            ) -> Iterator[Pose3DExample]:
    """Yields one example per annotated image; see the module docstring.

    Args:
        root: the unpacked dataset.
        splits: folders to read ('trainset', 'testset'); each must exist.
        masks: attach trainset/masks/<id>.png where the folder exists.
    """
    root = pathlib.Path(root)
    names = joints.union_names(SKELETON)
    for folder in splits:
        if folder not in SPLITS:
            raise ValueError(f'unknown 3DOH50K folder {folder!r}; expected one of {list(SPLITS)}')
        split_dir = common.require_dir(root / folder, f'the 3DOH50K {folder}')
        annots_path = split_dir / 'annots.json'
        annotations = common.load_json(annots_path)
        if not isinstance(annotations, dict):
            raise common.DatasetFormatError(f'{annots_path}: expected an object keyed by image id')
        mask_dir = split_dir / 'masks'
        camera_ids: dict[bytes, int] = {}
        parsed = []
        for image_id, anno in annotations.items():
            if not str(image_id).isdigit():
                raise common.DatasetFormatError(
                    f'{annots_path}: image id {image_id!r} is not a number')
            info = parse_annotation(anno, f'{annots_path} [{image_id}]')
            key = np.round(info['extrinsics'], 6).tobytes()
            cam_index = camera_ids.setdefault(key, len(camera_ids))
            parsed.append((cam_index, int(image_id), str(image_id), info))
        # Per-camera tracks must come in frame order.
        for cam_index, frame, image_id, info in sorted(parsed, key=lambda p: p[:2]):
            image = common.safe_path(split_dir, f'images/{image_id}.jpg', str(annots_path))
            common.require_file(image, f'the image of annotation {image_id}')
            mask = None
            if masks and mask_dir.is_dir():
                mask = _mask_rle(common.require_file(mask_dir / f'{image_id}.png',
                                                     f'the person mask of {image_id}'))
            yield Pose3DExample(
                image=str(image), camera=info['camera'], world_coords=info['world'],
                joint_names=names, box=info['box'], dataset='tdoh', sequence=folder,
                person=0, camera_id=f'cam{cam_index}', frame=frame, split=SPLITS[folder],
                mask=mask, extra={'image_id': image_id})
