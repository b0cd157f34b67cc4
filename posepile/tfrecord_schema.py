"""The TFRecord feature schema of posepile crops (one tf.train.Example per CroppedExample).

SCHEMA_VERSION = 1. Features (J = number of joints the example stores; names are union names):

| key                     | type  | length   | meaning                                            |
|-------------------------|-------|----------|----------------------------------------------------|
| schema_version          | int64 | 1        | SCHEMA_VERSION at write time                       |
| image/jpeg              | bytes | 1        | JPEG of the RGB crop                               |
| image/side              | int64 | 1        | crop side, px (the crop is square)                 |
| camera/intrinsic_matrix | float | 9        | crop camera K, row-major, px                       |
| camera/rot_world_to_cam | float | 9        | R, row-major: p_cam = R (p_world - t)              |
| camera/optical_center   | float | 3        | t, world frame, mm                                 |
| camera/world_up         | float | 3        | world up direction, world frame, unit              |
| joints/names            | bytes | J        | union joint names of the rows below                |
| joints/world_coords     | float | J*3      | world frame, mm, [J, 3] row-major; NaN: unlabelled |
| joints/valid            | int64 | J        | 1 where all 3 coordinates are labelled             |
| joints/coords2d         | float | J*2 or 0 | crop px [J, 2], 2D-only examples (NaN: unlabelled) |
| box                     | float | 4        | person box [x, y, w, h], crop px                   |
| mask/counts             | bytes | 1 or 0   | COCO compressed RLE counts, person mask in crop px |
| mask/size               | int64 | 2 or 0   | [H, W] of the mask                                 |
| meta/dataset            | bytes | 1        | dataset name                                       |
| meta/dataset_index      | int64 | 1        | position of the dataset in the build               |
| meta/sequence           | bytes | 1        | sequence id                                        |
| meta/person             | int64 | 1        | person id                                          |
| meta/camera_id          | bytes | 1        | camera id                                          |
| meta/frame              | int64 | 1        | frame index in the sequence                        |
| meta/split              | bytes | 1        | 'train', 'validation' or 'test'                    |

The crop camera has no distortion (make_crop_camera drops it), so none is stored.
A change to this table must bump SCHEMA_VERSION; readers reject other versions.

Parsed form (both `make_parse_fn` in tf.data and `decode_example` in numpy) is a dict:
    image [S, S, 3] uint8 (or image_jpeg bytes), intrinsic_matrix [3, 3], rot_world_to_cam [3, 3],
    optical_center [3], world_up [3], joint_names [J] str, world_coords [J, 3] float32 (NaN),
    joint_valid [J] bool, is_2d_only bool, coords2d [J, 2] float32 (all NaN unless 2D-only),
    box [4] float32, has_mask bool, mask_counts bytes, mask_size [2] int64 (zeros without mask),
    image_side int64 (feature image/side, px), dataset, dataset_index, sequence, person,
    camera_id, frame, split, schema_version.
With `union_names` given, joint_names stays the example's and world_coords / joint_valid /
coords2d are densified into the union's order: [J_union, 3] / [J_union] / [J_union, 2].
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from posepile.camera import Camera
from posepile.cropping import CroppedExample, decode_jpeg

SCHEMA_VERSION = 1

_INT_SCALARS = ('schema_version', 'image/side', 'meta/dataset_index', 'meta/person',
                'meta/frame')
_BYTES_SCALARS = ('image/jpeg', 'meta/dataset', 'meta/sequence', 'meta/camera_id', 'meta/split')
_FLOAT_FIXED = {'camera/intrinsic_matrix': 9, 'camera/rot_world_to_cam': 9,
                'camera/optical_center': 3, 'camera/world_up': 3, 'box': 4}
_FLOAT_VAR = ('joints/world_coords', 'joints/coords2d')
_INT_VAR = ('joints/valid', 'mask/size')
_BYTES_VAR = ('joints/names', 'mask/counts')


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(
        value=np.asarray(values, np.float32).reshape(-1)))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(
        value=np.asarray(values, np.int64).reshape(-1)))


def _bytes(values: Sequence[bytes | str]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[v.encode('utf-8') if isinstance(v, str) else bytes(v) for v in values]))


def encode_example(cropped: CroppedExample) -> bytes:
    """CroppedExample -> serialized tf.train.Example (see the table in the module docstring)."""
    where = f'{cropped.dataset} {cropped.sequence!r} frame {cropped.frame}'
    coords = np.asarray(cropped.world_coords, np.float32)
    n_joints = len(cropped.joint_names)
    if coords.shape != (n_joints, 3):
        raise ValueError(f'{where}: world_coords must be [{n_joints}, 3], got {coords.shape}')
    camera = cropped.camera
    if camera.distortion_coeffs is not None:
        raise ValueError(f'{where}: the crop camera must be distortion-free to be stored')
    features = {
        'schema_version': _ints([SCHEMA_VERSION]),
        'image/jpeg': _bytes([cropped.image_jpeg]),
        'image/side': _ints([cropped.crop_size]),
        'camera/intrinsic_matrix': _floats(camera.intrinsic_matrix),
        'camera/rot_world_to_cam': _floats(camera.R),
        'camera/optical_center': _floats(camera.t),
        'camera/world_up': _floats(camera.world_up),
        'joints/names': _bytes(cropped.joint_names),
        'joints/world_coords': _floats(coords),
        'joints/valid': _ints(np.all(np.isfinite(coords), axis=1)),
        'joints/coords2d': _floats([] if cropped.coords2d is None else cropped.coords2d),
        'box': _floats(cropped.box),
        'mask/counts': _bytes([] if cropped.mask is None else [cropped.mask['counts']]),
        'mask/size': _ints([] if cropped.mask is None else cropped.mask['size']),
        'meta/dataset': _bytes([cropped.dataset]),
        'meta/dataset_index': _ints([cropped.dataset_index]),
        'meta/sequence': _bytes([cropped.sequence]),
        'meta/person': _ints([cropped.person]),
        'meta/camera_id': _bytes([cropped.camera_id]),
        'meta/frame': _ints([cropped.frame]),
        'meta/split': _bytes([cropped.split]),
    }
    if cropped.coords2d is not None and np.shape(cropped.coords2d) != (n_joints, 2):
        raise ValueError(f'{where}: coords2d must be [{n_joints}, 2], got '
                         f'{np.shape(cropped.coords2d)}')
    # Deterministic: protobuf map order may otherwise differ between processes, and shard
    # checksums must not depend on which process wrote them.
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(
        deterministic=True)


# ------------------------------------------------------------------------------------- tf.data
def _feature_spec() -> dict[str, Any]:
    spec = {key: tf.io.FixedLenFeature([], tf.int64) for key in _INT_SCALARS}
    spec.update({key: tf.io.FixedLenFeature([], tf.string) for key in _BYTES_SCALARS})
    spec.update({key: tf.io.FixedLenFeature([n], tf.float32) for key, n in _FLOAT_FIXED.items()})
    spec.update({key: tf.io.RaggedFeature(tf.float32) for key in _FLOAT_VAR})
    spec.update({key: tf.io.RaggedFeature(tf.int64) for key in _INT_VAR})
    spec.update({key: tf.io.RaggedFeature(tf.string) for key in _BYTES_VAR})
    return spec


def make_parse_fn(union_names: Sequence[str] | None = None, decode_image: bool = True):
    """A function serialized tf.train.Example (scalar tf.string) -> dict of tensors.

    For `tf.data.Dataset.map`. Keys as in the module docstring (`image_jpeg` instead of `image`
    if not `decode_image`). With `union_names`, coordinates are scattered into the union order;
    an example joint missing from `union_names` fails the map with an InvalidArgumentError.
    """
    spec = _feature_spec()
    union_table = None
    if union_names is not None:
        union_names = list(union_names)
        union_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(union_names, tf.string), tf.range(len(union_names), dtype=tf.int64)),
            default_value=-1)

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        f = tf.io.parse_single_example(serialized, spec)
        tf.debugging.assert_equal(
            f['schema_version'], tf.constant(SCHEMA_VERSION, tf.int64),
            message=f'TFRecord schema_version differs from this reader\'s {SCHEMA_VERSION}')
        names = f['joints/names']
        n_joints = tf.shape(names)[0]
        coords = tf.reshape(f['joints/world_coords'], [n_joints, 3])
        valid = tf.cast(f['joints/valid'], tf.bool)
        is_2d_only = tf.size(f['joints/coords2d']) > 0
        coords2d = tf.cond(
            is_2d_only, lambda: tf.reshape(f['joints/coords2d'], [n_joints, 2]),
            lambda: tf.fill([n_joints, 2], tf.constant(np.nan, tf.float32)))
        has_mask = tf.size(f['mask/counts']) > 0
        out = {
            'intrinsic_matrix': tf.reshape(f['camera/intrinsic_matrix'], [3, 3]),
            'rot_world_to_cam': tf.reshape(f['camera/rot_world_to_cam'], [3, 3]),
            'optical_center': f['camera/optical_center'],
            'world_up': f['camera/world_up'],
            'joint_names': names,
            'world_coords': coords,
            'joint_valid': valid,
            'is_2d_only': is_2d_only,
            'coords2d': coords2d,
            'box': f['box'],
            'has_mask': has_mask,
            'mask_counts': tf.cond(has_mask, lambda: f['mask/counts'][0], lambda: tf.constant(b'')),
            'mask_size': tf.cond(has_mask, lambda: tf.reshape(f['mask/size'], [2]),
                                 lambda: tf.zeros([2], tf.int64)),
            'image_side': f['image/side'],
            'dataset': f['meta/dataset'],
            'dataset_index': f['meta/dataset_index'],
            'sequence': f['meta/sequence'],
            'person': f['meta/person'],
            'camera_id': f['meta/camera_id'],
            'frame': f['meta/frame'],
            'split': f['meta/split'],
            'schema_version': f['schema_version'],
        }
        side = tf.cast(f['image/side'], tf.int32)
        if decode_image:
            image = tf.io.decode_jpeg(f['image/jpeg'], channels=3, dct_method='INTEGER_ACCURATE')
            out['image'] = tf.ensure_shape(tf.reshape(image, [side, side, 3]), [None, None, 3])
        else:
            out['image_jpeg'] = f['image/jpeg']
        if union_table is not None:
            out.update(_densify_tf(union_table, len(union_names), names, coords, valid, coords2d))
        return out

    return parse


def _densify_tf(table, n_union: int, names, coords, valid, coords2d) -> dict[str, tf.Tensor]:
    index = table.lookup(names)
    with tf.control_dependencies([tf.debugging.assert_non_negative(
            index, message='an example joint name is not in the given union_names')]):
        index = tf.identity(index)[:, tf.newaxis]
    nan = tf.constant(np.nan, tf.float32)
    return {
        'world_coords': tf.tensor_scatter_nd_update(tf.fill([n_union, 3], nan), index, coords),
        'joint_valid': tf.tensor_scatter_nd_update(tf.zeros([n_union], tf.bool), index, valid),
        'coords2d': tf.tensor_scatter_nd_update(tf.fill([n_union, 2], nan), index, coords2d),
    }


# --------------------------------------------------------------------------------- pure Python
def decode_example(serialized: bytes, union_names: Sequence[str] | None = None,
                   decode_image: bool = True, source: str = 'record') -> dict[str, Any]:
    """Serialized tf.train.Example -> dict of numpy values, same keys and numbers as
    `make_parse_fn` (strings come back as str, except mask_counts and image_jpeg as bytes).

    Raises:
        KeyError / ValueError naming `source` and the field if a feature is missing or malformed.
    """
    proto = tf.train.Example.FromString(serialized)
    feature = proto.features.feature

    def get(key: str, kind: str, length: int | None = None) -> list:
        if key not in feature:
            raise KeyError(f'{source}: feature {key!r} is missing')
        values = list(getattr(feature[key], kind).value)
        if length is not None and len(values) != length:
            raise ValueError(f'{source}: feature {key!r} has {len(values)} values, '
                             f'expected {length}')
        return values

    version = get('schema_version', 'int64_list', 1)[0]
    if version != SCHEMA_VERSION:
        raise ValueError(f'{source}: schema_version {version}, this reader reads {SCHEMA_VERSION}')
    names = [n.decode('utf-8') for n in get('joints/names', 'bytes_list')]
    n_joints = len(names)
    coords = np.array(get('joints/world_coords', 'float_list', 3 * n_joints),
                      np.float32).reshape(n_joints, 3)
    valid = np.array(get('joints/valid', 'int64_list', n_joints), np.int64).astype(bool)
    raw2d = get('joints/coords2d', 'float_list')
    if len(raw2d) not in (0, 2 * n_joints):
        raise ValueError(f'{source}: feature joints/coords2d has {len(raw2d)} values, expected '
                         f'0 or {2 * n_joints}')
    coords2d = (np.array(raw2d, np.float32).reshape(n_joints, 2) if raw2d
                else np.full((n_joints, 2), np.nan, np.float32))
    counts = get('mask/counts', 'bytes_list')
    size = get('mask/size', 'int64_list', 2 if counts else 0)

    def text(key: str) -> str:
        return get(key, 'bytes_list', 1)[0].decode('utf-8')

    def integer(key: str) -> int:
        return int(get(key, 'int64_list', 1)[0])

    jpeg = get('image/jpeg', 'bytes_list', 1)[0]
    out = {
        'intrinsic_matrix': np.array(get('camera/intrinsic_matrix', 'float_list', 9),
                                     np.float32).reshape(3, 3),
        'rot_world_to_cam': np.array(get('camera/rot_world_to_cam', 'float_list', 9),
                                     np.float32).reshape(3, 3),
        'optical_center': np.array(get('camera/optical_center', 'float_list', 3), np.float32),
        'world_up': np.array(get('camera/world_up', 'float_list', 3), np.float32),
        'joint_names': names,
        'world_coords': coords,
        'joint_valid': valid,
        'is_2d_only': bool(raw2d),
        'coords2d': coords2d,
        'box': np.array(get('box', 'float_list', 4), np.float32),
        'has_mask': bool(counts),
        'mask_counts': counts[0] if counts else b'',
        'mask_size': np.array(size if counts else [0, 0], np.int64),
        'image_side': integer('image/side'),
        'dataset': text('meta/dataset'),
        'dataset_index': integer('meta/dataset_index'),
        'sequence': text('meta/sequence'),
        'person': integer('meta/person'),
        'camera_id': text('meta/camera_id'),
        'frame': integer('meta/frame'),
        'split': text('meta/split'),
        'schema_version': int(version),
    }
    if decode_image:
        out['image'] = decode_jpeg(jpeg, f'{source}: feature image/jpeg')
    else:
        out['image_jpeg'] = jpeg
    if union_names is not None:
        out.update(densify(names, coords, valid, coords2d, union_names, source))
    return out


def densify(names: Sequence[str], coords: np.ndarray, valid: np.ndarray, coords2d: np.ndarray,
            union_names: Sequence[str], source: str = 'record') -> dict[str, np.ndarray]:
    """Scatters an example's [J, 3] / [J] / [J, 2] rows into the order of `union_names`."""
    position = {n: i for i, n in enumerate(union_names)}
    missing = [n for n in names if n not in position]
    if missing:
        raise KeyError(f'{source}: joints not in the given union_names: {missing}')
    index = np.array([position[n] for n in names], np.int64)
    n_union = len(position)
    dense = np.full((n_union, 3), np.nan, np.float32)
    dense[index] = coords
    dense_valid = np.zeros(n_union, bool)
    dense_valid[index] = valid
    dense2d = np.full((n_union, 2), np.nan, np.float32)
    dense2d[index] = coords2d
    return {'world_coords': dense, 'joint_valid': dense_valid, 'coords2d': dense2d}


def camera_from_parsed(parsed: dict[str, Any]) -> Camera:
    """The crop camera from a `decode_example` dict (float32-rounded parameters)."""
    return Camera(parsed['optical_center'], parsed['rot_world_to_cam'],
                  parsed['intrinsic_matrix'], None, parsed['world_up'])
