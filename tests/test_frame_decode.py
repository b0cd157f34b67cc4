"""posepile.frame_decode: reduced-resolution JPEG decoding for crops. Geometry against blob
centroids at closed-form positions, crops against the full-resolution path (PSNR, where
projected points land), masks, and the formats that are decoded in full."""
import dataclasses

import cv2
import numpy as np
import pytest

from posepile import frame_decode
from posepile.camera import Camera, make_crop_camera
from posepile.cropping import CropConfig, crop_example, decode_jpeg, decode_rle, encode_rle
from posepile.example import Pose3DExample

SIDE = 1200


def dots_image(points, shape, sigma, rng, texture=True):
    """Smooth texture (or black) plus bright Gaussian blobs at sub-pixel `points` (pixel-centre
    coords)."""
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    image = np.zeros(shape, np.float32)
    if texture:
        image += 0.5 * cv2.GaussianBlur(rng.uniform(0, 120, shape).astype(np.float32), (0, 0), 4)
    for x, y in points:
        image += 255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def centroid(image, guess, radius):
    gx, gy = np.round(guess).astype(int)
    patch = image[gy - radius:gy + radius + 1, gx - radius:gx + radius + 1, 1].astype(float)
    patch -= patch.min()
    ys, xs = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return np.array([gx + (patch * xs).sum() / patch.sum(), gy + (patch * ys).sum() / patch.sum()])


@pytest.mark.parametrize('factor', [2, 4, 8])
def test_reduced_pixel_centres_follow_scale_output(tmp_path, factor):
    points = np.array([[300.3, 400.7], [611.1, 599.9], [877.8, 223.4]])
    path = tmp_path / 'dots.jpg'
    cv2.imwrite(str(path), dots_image(points, (SIDE, SIDE), 8.0, None, texture=False),
                [cv2.IMWRITE_JPEG_QUALITY, 100])
    reduced = frame_decode.read_jpeg_reduced(path, factor)
    assert reduced.shape == (SIDE // factor, SIDE // factor, 3)
    for point in points:
        expected = (point + 0.5) / factor - 0.5  # closed form of the DCT scaling
        assert np.abs(centroid(reduced, expected, max(3, 24 // factor)) - expected).max() < 0.05
    # reduced_camera describes exactly that image.
    camera = Camera(intrinsic_matrix=[[1000, 0, 599.5], [0, 1000, 599.5], [0, 0, 1]],
                    distortion_coeffs=[-0.2, 0.05, 0, 0])
    world = np.array([[100.0, -50, 3000], [-400, 300, 2500]])
    np.testing.assert_allclose(frame_decode.reduced_camera(camera, factor).world_to_image(world),
                               (camera.world_to_image(world) + 0.5) / factor - 0.5, atol=1e-9)


def test_reduction_keeps_two_source_px_per_crop_px():
    camera = Camera(intrinsic_matrix=[[1000, 0, 500], [0, 1000, 500], [0, 0, 1]])
    for box_height, expected in [(300, 1), (420, 1), (420 * 2.1, 2), (1700, 4), (3300, 8)]:
        crop = make_crop_camera(camera, [500 - box_height / 4, 500 - box_height / 2,
                                         box_height / 2, box_height], 256, scale=1.25)
        assert frame_decode.reduction_for(camera, crop) == expected, box_height


def example_with_dots(tmp_path, rng, distortion, fmt='.jpg'):
    """A 1200 px frame of a distorted camera with blobs at the projections of five 3D points,
    a person box around them and an elliptic mask."""
    camera = Camera(intrinsic_matrix=[[1100, 0, 599.5], [0, 1100, 599.5], [0, 0, 1]],
                    distortion_coeffs=distortion)
    world = np.array([[0, -600, 4000], [150, -200, 4000], [-150, 0, 4100], [80, 300, 3900],
                      [-60, 650, 4000]], np.float64)
    points = camera.world_to_image(world)
    path = tmp_path / f'frame{fmt}'
    cv2.imwrite(str(path), dots_image(points, (SIDE, SIDE), 5.0, rng),
                [cv2.IMWRITE_JPEG_QUALITY, 95])
    lo, hi = points.min(0) - 60, points.max(0) + 60
    mask = np.zeros((SIDE, SIDE), np.uint8)
    centre = tuple(int(v) for v in (lo + hi) / 2)
    cv2.ellipse(mask, centre, (int((hi - lo)[0] / 2), int((hi - lo)[1] / 2)), 0, 0, 360, 1, -1)
    return Pose3DExample(image=str(path), camera=camera, world_coords=world,
                         joint_names=['j0', 'j1', 'j2', 'j3', 'j4'],
                         box=np.concatenate([lo, hi - lo]), dataset='test',
                         mask=encode_rle(mask)), world


@pytest.mark.parametrize('distortion', [None, [-0.25, 0.08, 0.001, -0.001, -0.01]])
def test_reduced_decode_crop_matches_the_full_decode(tmp_path, distortion):
    example, world = example_with_dots(tmp_path, np.random.default_rng(1), distortion)
    # The margin these fixtures were made for (the stored-crop default is 2 box sides since
    # issue 13; at 2 the 5 px blobs span too few crop px to centre to 0.15 px).
    config = CropConfig(crop_size=128, jpeg_quality=100, box_scale=1.25)
    crop_camera = make_crop_camera(example.camera, example.box, 128, scale=config.box_scale)
    # 1100 / 243 = 4.5 frame px per crop px: decoded at 1/2.
    assert frame_decode.reduction_for(example.camera, crop_camera) == 2
    full = crop_example(example, dataclasses.replace(config, reduced_decode=False))
    reduced = crop_example(example, config)
    a, b = (decode_jpeg(c.image_jpeg).astype(float) for c in (full, reduced))
    psnr = 10 * np.log10(255 ** 2 / np.mean((a - b) ** 2))
    assert psnr > 40
    # The blobs land where the crop camera projects the 3D points, in both.
    expected = reduced.camera.world_to_image(world)
    for image in (a, b):
        found = np.array([centroid(image, p, 4) for p in expected])
        assert np.abs(found - expected).max() < 0.15
    assert reduced.camera.allclose(full.camera)
    np.testing.assert_allclose(reduced.box, full.box)
    # Masks come from the full-resolution mask either way.
    mask_full, mask_reduced = decode_rle(full.mask), decode_rle(reduced.mask)
    assert mask_full.sum() > 1000 and np.sum(mask_full != mask_reduced) <= 4


def test_png_frames_and_arrays_are_decoded_in_full(tmp_path):
    example, _ = example_with_dots(tmp_path, np.random.default_rng(2), None, fmt='.png')
    assert frame_decode.read_jpeg_reduced(example.image, 2) is None
    config = CropConfig(crop_size=128, jpeg_quality=100)
    png = crop_example(example, config)
    full = crop_example(example, dataclasses.replace(config, reduced_decode=False))
    assert png.image_jpeg == full.image_jpeg


def test_bad_files_and_mask_sizes_are_named(tmp_path):
    example, _ = example_with_dots(tmp_path, np.random.default_rng(3), None)
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'\xff\xd8\xff\xe0' + b'\x00' * 64)
    with pytest.raises(ValueError, match='broken.jpg'):
        frame_decode.read_jpeg_reduced(broken, 2, 'where')
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        frame_decode.read_jpeg_reduced(tmp_path / 'missing.jpg', 2, 'where')
    small_mask = encode_rle(np.ones((SIDE // 2, SIDE), np.uint8))
    with pytest.raises(ValueError, match=r'mask size \[600, 1200\].*decoded at 1/2'):
        crop_example(Pose3DExample(**{**vars(example), 'mask': small_mask}),
                     CropConfig(crop_size=128))
