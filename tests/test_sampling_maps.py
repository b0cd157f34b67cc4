"""posepile.sampling_maps: the interpolated sampling maps of distorted crops against OpenCV's
closed-form map (cv2.initUndistortRectifyMap) and, at the fold-over, against the fold radius
solved from the distortion polynomial; the crops they give against exact-map crops."""
import cv2
import numpy as np
import pytest

from posepile import sampling_maps
from posepile.camera import Camera, make_crop_camera
from posepile.image_warp import Reprojection, reproject_image

BOUND_PX = 0.05

CAMERAS = {
    # Human3.6M-like (mild), strong wide-angle Brown-Conrady that folds over inside the
    # image corners, a fisheye-like one folding inside the image, the 8-coefficient rational
    # model, and the 14-coefficient model with thin prism and sensor tilt.
    'h36m': Camera(intrinsic_matrix=[[1145, 0, 512], [0, 1144, 515], [0, 0, 1]],
                   distortion_coeffs=(-0.207, 0.247, -0.0009, -0.0001, -0.0031)),
    'wide': Camera(intrinsic_matrix=[[500, 0, 639.5], [0, 500, 359.5], [0, 0, 1]],
                   distortion_coeffs=(-0.35, 0.15, 0.001, -0.001, -0.03)),
    'fisheye': Camera(intrinsic_matrix=[[400, 0, 639.5], [0, 400, 479.5], [0, 0, 1]],
                      distortion_coeffs=(-0.45, 0.25, 0, 0, -0.07)),
    'rational': Camera(intrinsic_matrix=[[600, 0, 639.5], [0, 600, 479.5], [0, 0, 1]],
                       distortion_coeffs=(2.5, -0.3, 0.0005, 0.0005, 0.01, 2.9, 0.4, 0.05)),
    'tilt': Camera(intrinsic_matrix=[[800, 0, 640], [0, 790, 470], [0, 0, 1]],
                   distortion_coeffs=(-0.3, 0.1, 0.002, -0.001, -0.02, 0, 0, 0, 0.004, -0.001,
                                      0.003, 0.0005, 0.01, -0.008)),
}


def opencv_map(old, new, shape):
    """Independent reference: OpenCV's closed-form map from new (pinhole) to old (distorted)
    pixels for cameras at one optical centre."""
    rectify = new.R @ old.R.T
    return cv2.initUndistortRectifyMap(old.intrinsic_matrix, old.distortion_coeffs, rectify,
                                       new.intrinsic_matrix, (shape[1], shape[0]),
                                       cv2.CV_32FC2)[0]


def crop_cases():
    for name, cam in CAMERAS.items():
        cx, cy = cam.intrinsic_matrix[:2, 2]
        boxes = {'centre': [cx - 150, cy - 300, 300, 600], 'top-left': [5, 5, 400, 600],
                 'beyond bottom-right': [2 * cx - 450, 2 * cy - 650, 440, 640]}
        if name == 'fisheye':
            # Box centres must lie inside the invertible region (make_crop_camera): at 85 % of
            # the fold radius (1.276) towards the corners, (396, 297) and (883, 662) px.
            boxes = {'centre': [cx - 150, cy - 300, 300, 600],
                     'top-left': [246, 97, 300, 400],
                     'beyond bottom-right': [663, 342, 440, 640]}
        for where, box in boxes.items():
            yield pytest.param(cam, box, id=f'{name}-{where}')


@pytest.mark.parametrize('camera, box', list(crop_cases()))
@pytest.mark.parametrize('factor', [1, 4])
def test_interpolated_map_is_within_bound_of_opencv_and_keeps_the_invalid_region(
        camera, box, factor):
    # 160 px crops: the render at factor 4 (640 px) samples ~1 source px per px, as a 256 px
    # crop of a 350 px person does.
    crop = make_crop_camera(camera, box, 160, scale=1.25).scale_output(factor)
    shape = (160 * factor, 160 * factor)
    approx = sampling_maps.interpolated_maps(camera, crop, shape)
    exact = sampling_maps.exact_maps(camera, crop, shape)
    valid = exact[..., 0] != sampling_maps.OUTSIDE
    # Same invalid pixels as the exact map, no wrong pixel there.
    np.testing.assert_array_equal(approx[..., 0] != sampling_maps.OUTSIDE, valid)
    reference = opencv_map(camera, crop, shape)[valid]
    assert np.linalg.norm(approx[valid] - reference, axis=-1).max() < BOUND_PX
    # The exact map agrees with OpenCV far below the bound (float32 rounding).
    assert np.linalg.norm(exact[valid] - reference, axis=-1).max() < 2e-3


def fold_radius(k1, k2, k3):
    """Smallest r > 0 where d/dr [r (1 + k1 r^2 + k2 r^4 + k3 r^6)] = 0, from the cubic in u = r^2
    7 k3 u^3 + 5 k2 u^2 + 3 k1 u + 1 = 0."""
    roots = np.roots([7 * k3, 5 * k2, 3 * k1, 1])
    real = roots[np.isreal(roots)].real
    return float(np.sqrt(real[real > 0].min()))


@pytest.mark.parametrize('name', ['wide', 'fisheye'])
def test_fold_over_rays_map_outside_and_the_rest_inside(name):
    camera = CAMERAS[name]
    cx, cy = camera.intrinsic_matrix[:2, 2]
    box = [663, 342, 440, 640] if name == 'fisheye' else [2 * cx - 500, 2 * cy - 700, 480, 680]
    crop = make_crop_camera(camera, box, 200, scale=1.6)
    approx = sampling_maps.interpolated_maps(camera, crop, (200, 200))
    k1, k2, _, _, k3 = camera.distortion_coeffs
    limit = fold_radius(k1, k2, k3)
    # Each pixel's ray in the old camera, and its normalised radius.
    ys, xs = np.mgrid[:200, :200]
    pixels = np.stack([xs, ys, np.ones_like(xs)], axis=-1).astype(np.float64)
    rays = pixels @ np.linalg.inv(crop.intrinsic_matrix).T @ (camera.R @ crop.R.T).T
    in_front = rays[..., 2] > 0
    radius = np.linalg.norm(rays[..., :2], axis=-1) / np.where(in_front, rays[..., 2], 1)
    outside = approx[..., 0] == sampling_maps.OUTSIDE
    assert 0.05 < outside.mean() < 0.95  # the crop straddles the fold
    # distortion_valid_radius scans r in steps of 1e-3.
    assert np.all(outside[(radius > limit + 2e-3) | ~in_front])
    assert not np.any(outside[in_front & (radius < limit - 2e-3)])


@pytest.mark.parametrize('factor', [2, 3, 4])
def test_output_maps_derived_from_the_render_are_within_bound(factor):
    camera = CAMERAS['wide']
    crop = make_crop_camera(camera, [5, 5, 400, 600], 128, scale=1.25)
    render, output = sampling_maps.render_and_output_maps(camera, crop, (128, 128), factor)
    assert render.shape == (128 * factor, 128 * factor, 2) and output.shape == (128, 128, 2)
    exact = sampling_maps.exact_maps(camera, crop, (128, 128))
    valid = exact[..., 0] != sampling_maps.OUTSIDE
    np.testing.assert_array_equal(output[..., 0] != sampling_maps.OUTSIDE, valid)
    reference = opencv_map(camera, crop, (128, 128))[valid]
    assert np.linalg.norm(output[valid] - reference, axis=-1).max() < BOUND_PX


def test_odd_and_tiny_shapes():
    camera = CAMERAS['h36m']
    crop = make_crop_camera(camera, [400, 300, 200, 400], 37, scale=1.1)
    for shape in [(37, 37), (5, 7), (1, 1), (61, 23)]:
        approx = sampling_maps.interpolated_maps(camera, crop, shape)
        assert approx.shape == shape + (2,)
        assert np.linalg.norm(approx - opencv_map(camera, crop, shape), axis=-1).max() < BOUND_PX


def test_crop_and_mask_match_the_exact_map_warp():
    camera = CAMERAS['h36m']
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (1030, 1024, 3), dtype=np.uint8), (0, 0), 2)
    mask = np.zeros((1030, 1024), bool)
    cv2.ellipse(mask.view(np.uint8), (200, 300), (90, 180), 10, 0, 360, 1, -1)
    crop = make_crop_camera(camera, [60, 80, 300, 450], 128, scale=1.25)
    warp = Reprojection(camera, crop, (128, 128))
    fast_image = warp(image, antialias_factor=4)
    fast_mask = warp(mask, interp='nearest')
    exact_image = reproject_image(image, camera, crop, (128, 128), antialias_factor=4,
                                  max_map_error_px=0)
    exact_mask = reproject_image(mask, camera, crop, (128, 128), interp='nearest',
                                 max_map_error_px=0)
    difference = np.abs(fast_image.astype(int) - exact_image.astype(int))
    assert difference.max() <= 1
    # Nearest sampling flips a mask pixel only where its sample lies within the map error of
    # the mask's edge: a handful on a ~250 px outline.
    assert 0 < exact_mask.sum() and np.sum(fast_mask != exact_mask) <= 3
