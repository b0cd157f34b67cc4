"""Perspective crops, the TFRecord schema and sharded files, checked against closed forms."""
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_lib

from posepile import shards
from posepile.camera import Camera, rotation_x, rotation_y
from posepile.cropping import CropConfig, crop_example, decode_rle
from posepile.example import Pose3DExample
from posepile.tfrecord_schema import (
    SCHEMA_VERSION, camera_from_parsed, decode_example, encode_example, make_parse_fn)

IMAGE_SHAPE = (480, 640)
CROP = 96
NAMES = ('pelv_t', 'lhip_t', 'rhip_t', 'head_t')
# The person: joints in world mm, seen by a camera turned away from them (so the crop camera
# rotates noticeably, which makes the geometry test non-trivial).
WORLD_JOINTS = np.array([[300, 100, 4000], [420, 150, 4050], [200, 80, 3950], [320, -500, 4000]],
                        np.float64)


def make_camera(distortion=None) -> Camera:
    return Camera(optical_center=(50, -30, 20),
                  rot_world_to_cam=rotation_x(0.1) @ rotation_y(-0.15),
                  intrinsic_matrix=[[520, 0, 330], [0, 515, 230], [0, 0, 1]],
                  distortion_coeffs=distortion)


def homography(old: Camera, new: Camera) -> np.ndarray:
    """Closed form for distortion-free cameras sharing the optical centre."""
    return new.intrinsic_matrix @ new.R @ old.R.T @ np.linalg.inv(old.intrinsic_matrix)


def apply_h(h, points):
    p = np.concatenate([points, np.ones((len(points), 1))], 1) @ h.T
    return p[:, :2] / p[:, 2:]


def dot_image(points2d, sigma=2.5):
    """Image with a Gaussian dot per joint, joint k in channel k % 3, on a dark background."""
    ys, xs = np.mgrid[:IMAGE_SHAPE[0], :IMAGE_SHAPE[1]]
    image = np.full((*IMAGE_SHAPE, 3), 10.0)
    for k, (x, y) in enumerate(points2d[:3]):
        image[..., k] += 240 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    return np.clip(image, 0, 255).astype(np.uint8)


def centroid(channel, near):
    """Intensity centroid of the blob within 8 px of `near` (background subtracted)."""
    x0, y0 = np.round(near).astype(int)
    ys, xs = np.mgrid[y0 - 8:y0 + 9, x0 - 8:x0 + 9]
    w = np.clip(channel[ys, xs].astype(np.float64) - 40, 0, None)
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def make_example(camera, with_mask=True, coords2d=False, **kwargs) -> Pose3DExample:
    proj = camera.world_to_image(WORLD_JOINTS)
    lo, hi = proj.min(0) - 25, proj.max(0) + 25
    mask = None
    if with_mask:
        m = np.zeros(IMAGE_SHAPE, np.uint8)
        m[int(lo[1]):int(hi[1]), int(lo[0]):int(hi[0])] = 1
        mask = mask_lib.encode(np.asfortranarray(m))
        mask = {'size': list(mask['size']), 'counts': mask['counts'].decode('ascii')}
    coords = WORLD_JOINTS.copy()
    coords[3, 1] = np.nan  # an unlabelled joint
    return Pose3DExample(
        image=dot_image(proj), camera=camera, world_coords=coords, joint_names=NAMES,
        box=np.concatenate([lo, hi - lo]), dataset='toy', sequence='s1', person=2,
        camera_id='c3', frame=17, split='validation', mask=mask,
        coords2d=proj if coords2d else None, **kwargs)


@pytest.fixture(scope='module', params=[None, (-0.12, 0.03, 0.001, -0.002, 0.0)],
                ids=['pinhole', 'distorted'])
def cropped_pair(request):
    camera = make_camera(request.param)
    example = make_example(camera)
    cropped = crop_example(example, CropConfig(crop_size=CROP, box_scale=1.25, jpeg_quality=95),
                           dataset_index=4)
    return example, cropped


def test_crop_camera_projection_matches_warped_dots(cropped_pair):
    example, cropped = cropped_pair
    parsed = decode_example(encode_example(cropped))
    crop_camera = camera_from_parsed(parsed)
    expected = crop_camera.world_to_image(WORLD_JOINTS[:3])
    for k in range(3):
        found = centroid(parsed['image'][..., k], expected[k])
        assert np.linalg.norm(found - expected[k]) < 1.0, (k, found, expected[k])
    # The world coordinates are stored in the world frame, unchanged.
    np.testing.assert_allclose(parsed['world_coords'], example.world_coords, rtol=1e-6)


def test_box_maps_into_crop_by_the_homography():
    camera = make_camera()
    example = make_example(camera, with_mask=False)
    cropped = crop_example(example, CropConfig(crop_size=CROP, box_scale=1.25))
    x, y, w, h = example.box
    corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], np.float64)
    mapped = apply_h(homography(camera, cropped.camera), corners)
    expected = np.concatenate([mapped.min(0), mapped.max(0) - mapped.min(0)])
    np.testing.assert_allclose(cropped.box, expected, atol=1e-3)
    # The box centre lands on the crop centre and the box fills about 1/1.25 of the crop.
    centre = apply_h(homography(camera, cropped.camera), np.array([[x + w / 2, y + h / 2]]))[0]
    np.testing.assert_allclose(centre, [(CROP - 1) / 2] * 2, atol=1e-4)
    assert abs(max(cropped.box[2:]) - CROP / 1.25) < 0.05 * CROP


def test_mask_is_warped_with_the_image_geometry():
    camera = make_camera()
    example = make_example(camera)
    cropped = crop_example(example, CropConfig(crop_size=CROP))
    crop_mask = decode_rle(cropped.mask).astype(bool)
    assert crop_mask.shape == (CROP, CROP)
    # Reference: crop pixel centre -> original pixel through the inverse homography, inside test.
    ys, xs = np.mgrid[:CROP, :CROP]
    source = apply_h(np.linalg.inv(homography(camera, cropped.camera)),
                     np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64))
    original = decode_rle(example.mask).astype(bool)
    inside = np.zeros(len(source), bool)
    r = np.round(source).astype(int)
    ok = (r[:, 0] >= 0) & (r[:, 0] < IMAGE_SHAPE[1]) & (r[:, 1] >= 0) & (r[:, 1] < IMAGE_SHAPE[0])
    inside[ok] = original[r[ok, 1], r[ok, 0]]
    inside = inside.reshape(CROP, CROP)
    assert inside.sum() > 1000
    # Pixels whose sample falls on the mask's edge may round either way.
    disagree = crop_mask != inside
    edge = cv2.morphologyEx(inside.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3))) > 0
    assert not np.any(disagree & ~edge)


def test_coords2d_of_2d_only_examples_go_into_crop_pixels():
    camera = make_camera()
    example = make_example(camera, with_mask=False, coords2d=True)
    cropped = crop_example(example, CropConfig(crop_size=CROP))
    expected = apply_h(homography(camera, cropped.camera), example.coords2d.astype(np.float64))
    np.testing.assert_allclose(cropped.coords2d, expected, atol=1e-3)
    parsed = decode_example(encode_example(cropped))
    assert parsed['is_2d_only']
    np.testing.assert_allclose(parsed['coords2d'], expected, atol=1e-3)


def test_image_sources_path_bytes_callable_agree(tmp_path, cropped_pair):
    example, _ = cropped_pair
    png = tmp_path / 'frame.png'
    cv2.imwrite(str(png), cv2.cvtColor(example.image, cv2.COLOR_RGB2BGR))
    crops = []
    for source in (example.image, str(png), png.read_bytes(), lambda: example.image):
        ex = make_example(example.camera, with_mask=False)
        ex.image = source
        crops.append(decode_example(encode_example(crop_example(ex, CropConfig(crop_size=CROP))))
                     ['image'])
    for c in crops[1:]:
        np.testing.assert_array_equal(c, crops[0])
    bad = make_example(example.camera, with_mask=False)
    bad.image = str(tmp_path / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        crop_example(bad)


# ---------------------------------------------------------------------------------- schema
def test_schema_round_trip_python_and_tf_data(cropped_pair):
    _, cropped = cropped_pair
    record = encode_example(cropped)
    py = decode_example(record)
    tf_parsed = next(iter(tf.data.Dataset.from_tensors(record).map(make_parse_fn())))

    assert py['schema_version'] == SCHEMA_VERSION
    assert py['joint_names'] == list(NAMES)
    np.testing.assert_array_equal(py['joint_valid'], [True, True, True, False])
    np.testing.assert_allclose(py['intrinsic_matrix'], cropped.camera.intrinsic_matrix, rtol=1e-6)
    np.testing.assert_allclose(py['rot_world_to_cam'], cropped.camera.R, atol=1e-7)
    np.testing.assert_allclose(py['optical_center'], cropped.camera.t, rtol=1e-6)
    np.testing.assert_allclose(py['box'], cropped.box, rtol=1e-6)
    assert (py['dataset'], py['dataset_index'], py['sequence'], py['person'], py['camera_id'],
            py['frame'], py['split']) == ('toy', 4, 's1', 2, 'c3', 17, 'validation')
    assert py['has_mask'] and py['mask_counts'] == cropped.mask['counts']
    assert not py['is_2d_only'] and np.isnan(py['coords2d']).all()

    for key, value in py.items():
        got = tf_parsed[key].numpy()
        if isinstance(value, str):
            assert got.decode() == value, key
        elif key == 'joint_names':
            assert [n.decode() for n in got] == value
        else:
            np.testing.assert_array_equal(got, value, err_msg=key)


def test_densify_into_a_union_in_python_and_tf():
    camera = make_camera()
    cropped = crop_example(make_example(camera, with_mask=False), CropConfig(crop_size=CROP))
    record = encode_example(cropped)
    union = ['x_u', 'head_t', 'pelv_t', 'y_u', 'rhip_t', 'lhip_t']
    expected = np.full((6, 3), np.nan, np.float32)
    expected[[2, 5, 4, 1]] = cropped.world_coords
    py = decode_example(record, union_names=union, decode_image=False)
    tf_parsed = next(iter(tf.data.Dataset.from_tensors(record).map(
        make_parse_fn(union, decode_image=False))))
    for parsed in (py, {k: v.numpy() for k, v in tf_parsed.items()}):
        np.testing.assert_array_equal(parsed['world_coords'], expected)
        np.testing.assert_array_equal(parsed['joint_valid'], [0, 0, 1, 0, 1, 1])
        assert parsed['coords2d'].shape == (6, 2)
    assert py['image_jpeg'] == cropped.image_jpeg
    with pytest.raises(KeyError, match='head_t'):
        decode_example(record, union_names=['pelv_t', 'lhip_t', 'rhip_t'])
    with pytest.raises(tf.errors.InvalidArgumentError, match='not in the given union'):
        next(iter(tf.data.Dataset.from_tensors(record).map(make_parse_fn(['pelv_t']))))


def test_decoder_names_missing_field():
    record = tf.train.Example(features=tf.train.Features(feature={
        'schema_version': tf.train.Feature(int64_list=tf.train.Int64List(value=[SCHEMA_VERSION]))
    })).SerializeToString()
    with pytest.raises(KeyError, match='shard-7.*joints/names'):
        decode_example(record, source='shard-7')


# ---------------------------------------------------------------------------------- shards
def test_crc32c_check_value():
    # The standard CRC-32C check value (RFC 3720, appendix B.4).
    assert shards.crc32c(b'123456789') == 0xE3069283


def fake_records(n):
    return [f'record {i} '.encode() * (i % 7 + 1) for i in range(n)]


def test_shards_are_atomic_resumable_and_checked(tmp_path):
    records = fake_records(40)
    keys = [f'key{i}' for i in range(40)]
    assignment = shards.assign_shards(keys, 3)
    np.testing.assert_array_equal(assignment, shards.assign_shards(keys, 3))
    assert set(assignment.tolist()) == {0, 1, 2}

    writer = shards.ShardWriter(tmp_path, 3)
    infos = [writer.write_shard(s, (r for r, a in zip(records, assignment) if a == s))
             for s in writer.missing_shards()]
    assert not list(tmp_path.glob('*.tmp'))
    assert sorted(shards.read_shards(writer.paths)) == sorted(records)
    assert [i.num_records for i in infos] == np.bincount(assignment).tolist()
    assert [shards.check_shard_framing(p) for p in writer.paths] == [i.num_records for i in infos]

    # Interrupted rerun: shard 1 never got renamed, its '.tmp' is half written.
    os.remove(writer.paths[1])
    tmp = writer.paths[1].with_name(writer.paths[1].name + '.tmp')
    tmp.write_bytes(writer.paths[0].read_bytes()[:30])
    writer = shards.ShardWriter(tmp_path, 3)
    assert writer.missing_shards() == [1]
    info = writer.write_shard(1, (r for r, a in zip(records, assignment) if a == 1))
    assert info.sha256 == infos[1].sha256 and not tmp.exists()
    assert sorted(shards.read_shards(writer.paths)) == sorted(records)

    # An exception while writing leaves only the '.tmp' behind.
    def failing():
        yield records[0]
        raise RuntimeError('crop failed')
    os.remove(writer.paths[2])
    with pytest.raises(RuntimeError):
        writer.write_shard(2, failing())
    assert not writer.paths[2].exists() and writer.missing_shards() == [2]


def test_corrupt_or_truncated_shard_names_the_file(tmp_path):
    writer = shards.ShardWriter(tmp_path, 2)
    for s in range(2):
        writer.write_shard(s, fake_records(10))
    good, bad = (str(p) for p in writer.paths)
    data = bytearray(open(bad, 'rb').read())

    open(bad, 'wb').write(data[:-5])  # truncated inside the last record
    for read in (lambda: list(shards.read_shards([good, bad])),
                 lambda: shards.make_dataset([good, bad]),
                 lambda: shards.check_shard_framing(bad)):
        with pytest.raises(shards.CorruptShardError, match=os.path.basename(bad)):
            read()

    flipped = data.copy()
    flipped[20] ^= 0x40  # inside the first record's data: only the data CRC sees it
    open(bad, 'wb').write(flipped)
    with pytest.raises(shards.CorruptShardError, match=os.path.basename(bad)):
        shards.verify_shards([good, bad])

    flipped = data.copy()
    flipped[2] ^= 0x01  # inside the first length field
    open(bad, 'wb').write(flipped)
    with pytest.raises(shards.CorruptShardError, match=f'{os.path.basename(bad)}.*header'):
        shards.check_shard_framing(bad)


def test_make_dataset_parses_shards(tmp_path, cropped_pair):
    _, cropped = cropped_pair
    writer = shards.ShardWriter(tmp_path, 1)
    writer.write_shard(0, [encode_example(cropped)] * 3)
    dataset = shards.make_dataset(writer.paths, make_parse_fn(decode_image=False))
    frames = [int(x['frame']) for x in dataset]
    assert frames == [17, 17, 17]
