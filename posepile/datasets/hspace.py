"""Converter for HSPACE (synthetic GHUM humans in rendered scenes; Google's TFRecord release).

Expected layout under `root`, as the release is downloaded (github.com/
google-research/google-research/tree/master/hspace → cloud bucket):

    <root>/2021_01/train/*.tfrecord

Each record is a tf.train.Example of one rendered frame with the features
    'image/rgb'                      bytes: the encoded frame (PNG/JPEG)
    'character_masks'                bytes: encoded 8/16-bit PNG of per-pixel character labels
    'camera_intrinsics'              4 floats: fx, fy, cx, cy (px)
    'number_of_rigged_characters'    int64
    'RIGGED_<i>/joints_3d'           floats: 63 x 3 GHUM joints of person i, metres, camera frame
    'RIGGED_<i>/mask_id'             int64: that person's label in 'character_masks'
(feature names as used by the reference loader of the paper's authors).

Joints: the 63 GHUM joints in record order ('ghum' skeleton). Metres -> mm. The world frame is
the camera frame (identity extrinsics, no distortion); world up is -y, as in the reference.

Mask and box: the person's pixels are labels mask_id and mask_id - 1 (the reference loader's
rule, never label 0 = background); the mask is stored as RLE and the box is its extent.
Persons whose box's shorter side is below `min_box_side_px` = 32 px are skipped (the reference: 100 px on full-size frames), and
so are persons with an empty mask.

Records are indexed by byte offset without TensorFlow (TFRecord framing: uint64 length, 4-byte
length CRC, payload, 4-byte payload CRC; CRCs are not verified); each frame is decoded lazily by
a picklable `TFRecordImage`.

Split: the release's train directory only, all 'train' (the paper trains on HSPACE only).
Tracks: sequence = '<tfrecord file stem>', person = i, camera_id = '', frame = record index.
"""
from __future__ import annotations

import pathlib
import struct
from collections.abc import Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.cropping import encode_rle
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'ghum'
DESCRIPTION = 'HSPACE 2021_01 train TFRecords: 63 GHUM joints per person, camera frame'
N_JOINTS = 63
_HEADER = struct.Struct('<QI')


def iterate_records(path: pathlib.Path) -> Iterator[tuple[int, bytes]]:
    """(byte offset, payload) of every record of a TFRecord file, in order."""
    size = path.stat().st_size
    with open(path, 'rb') as f:
        offset = 0
        while offset < size:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise common.DatasetFormatError(
                    f'{path}: truncated record header at byte {offset} (corrupt TFRecord?)')
            length, _ = _HEADER.unpack(header)
            payload = f.read(length)
            if len(payload) < length or len(f.read(4)) < 4:
                raise common.DatasetFormatError(
                    f'{path}: record at byte {offset} is truncated (needs {length} bytes)')
            yield offset, payload
            offset += _HEADER.size + length + 4


def read_record(path: str, offset: int) -> bytes:
    with open(path, 'rb') as f:
        f.seek(offset)
        length, _ = _HEADER.unpack(f.read(_HEADER.size))
        return f.read(length)


def parse_example(payload: bytes, where: str):
    """tf.train.Example of one record (TensorFlow's protobuf class)."""
    from tensorflow.core.example import example_pb2
    from google.protobuf.message import DecodeError
    example = example_pb2.Example()
    try:
        example.ParseFromString(payload)
    except DecodeError as e:
        raise common.DatasetFormatError(f'{where}: not a tf.train.Example ({e})') from None
    return example


def _feature(example, key: str, kind: str, where: str, count: int | None = None):
    features = example.features.feature
    if key not in features:
        raise common.DatasetFormatError(f'{where}: missing feature {key!r}')
    values = getattr(features[key], kind).value
    if count is not None and len(values) != count:
        raise common.DatasetFormatError(
            f'{where}: feature {key!r} has {len(values)} values, expected {count}')
    return values


def _decode_image(data: bytes, where: str, flags: int) -> np.ndarray:
    import cv2
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise common.DatasetFormatError(f'{where}: cannot decode the encoded image')
    return image


class TFRecordImage:
    """Picklable lazy reference to the 'image/rgb' of one record; calling returns RGB uint8."""

    def __init__(self, path: str | pathlib.Path, offset: int):
        self.path, self.offset = str(path), int(offset)

    def __repr__(self) -> str:
        return f'TFRecordImage({self.path!r}, {self.offset})'

    def __call__(self) -> np.ndarray:
        import cv2
        where = f'{self.path} [record at byte {self.offset}]'
        example = parse_example(read_record(self.path, self.offset), where)
        data = _feature(example, 'image/rgb', 'bytes_list', where, 1)[0]
        return np.ascontiguousarray(_decode_image(data, where, cv2.IMREAD_COLOR)[..., ::-1])


def convert(root, min_box_side_px: float = 32.0) -> Iterator[Pose3DExample]:
    """Yields one example per (record, rigged person) with a usable mask."""
    import cv2
    root = common.require_dir(root, 'the HSPACE download directory')
    train_dir = common.require_dir(root / '2021_01' / 'train', 'the HSPACE train TFRecords')
    names = joints.union_names(SKELETON)
    paths = sorted(train_dir.glob('*.tfrecord'))
    if not paths:
        raise common.DatasetFormatError(f'{train_dir}: no *.tfrecord files')
    for path in paths:
        for index, (offset, payload) in enumerate(iterate_records(path)):
            where = f'{path} [record {index}]'
            example = parse_example(payload, where)
            fx, fy, cx, cy = _feature(example, 'camera_intrinsics', 'float_list', where, 4)
            camera = Camera(intrinsic_matrix=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
            n_people = _feature(example, 'number_of_rigged_characters', 'int64_list', where, 1)[0]
            labels = None
            for person in range(n_people):
                coords = np.asarray(_feature(
                    example, f'RIGGED_{person}/joints_3d', 'float_list', where, N_JOINTS * 3),
                    np.float64).reshape(N_JOINTS, 3) * 1000.0
                if labels is None:
                    data = _feature(example, 'character_masks', 'bytes_list', where, 1)[0]
                    labels = _decode_image(data, f'{where} character_masks',
                                           cv2.IMREAD_UNCHANGED)
                label = _feature(example, f'RIGGED_{person}/mask_id', 'int64_list', where, 1)[0]
                # Label 0 is background even when mask_id - 1 == 0.
                mask = ((labels == label) | (labels == label - 1)) & (labels > 0)
                if not mask.any():
                    count_skipped('hspace', 'empty person mask')
                    continue
                ys, xs = np.nonzero(mask)
                box = np.array([xs.min() - 0.5, ys.min() - 0.5, xs.max() - xs.min() + 1,
                                ys.max() - ys.min() + 1], np.float32)
                if min(box[2:]) < min_box_side_px:
                    count_skipped('hspace', 'box smaller than min_box_side_px')
                    continue
                yield Pose3DExample(
                    image=TFRecordImage(path, offset), camera=camera.copy(),
                    world_coords=coords, joint_names=names, box=box, dataset='hspace',
                    sequence=path.stem, person=person, camera_id='', frame=index,
                    split='train', mask=encode_rle(mask))
