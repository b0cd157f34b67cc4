"""Camera maths and image warping against OpenCV and closed forms (posepile/camera.py,
posepile/image_warp.py)."""
import json

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile import camera
from posepile.camera import Camera, make_crop_camera, reproject_image_points
from posepile.image_warp import reproject_image

# Realistic calibrations for each OpenCV coefficient count (monotone over the whole image).
DISTORTIONS = {
    5: [-0.28, 0.09, 0.0012, -0.0008, -0.015],
    8: [-0.2, 0.05, 0.001, -0.002, 0.01, 0.1, -0.02, 0.005],
    12: [-0.2, 0.05, 0.001, -0.002, 0.01, 0.1, -0.02, 0.005, 0.002, -0.001, 0.001, 0.0005],
    14: [-0.2, 0.05, 0.001, -0.002, 0.01, 0.1, -0.02, 0.005, 0.002, -0.001, 0.001, 0.0005,
         0.01, -0.02],
}
K_HD = np.array([[1000.0, 0.0, 640.0], [0.0, 1005.0, 360.0], [0.0, 0.0, 1.0]])
R_WORLD = cv2.Rodrigues(np.array([0.3, -0.5, 0.2]))[0]
T_WORLD = np.array([150.0, -1600.0, -4000.0])


def make_camera(n_coeffs=None, K=K_HD):
    dist = None if n_coeffs is None else DISTORTIONS[n_coeffs]
    return Camera(T_WORLD, R_WORLD, K, dist)


def world_points_in_view(n=200, seed=0, x_range=0.6, y_range=0.35):
    """World points (mm) that the test camera sees inside its image; built in the camera frame
    with the closed form p_world = R^T p_cam + t, independent of the code under test."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(2000, 6000, n)
    x = rng.uniform(-x_range, x_range, n) * z
    y = rng.uniform(-y_range, y_range, n) * z
    cam = np.stack([x, y, z], axis=1)
    return cam @ R_WORLD + T_WORLD, cam


def opencv_project(world, R, t, K, dist):
    rvec = cv2.Rodrigues(R)[0]
    tvec = -R @ t
    d = np.zeros(5) if dist is None else np.asarray(dist, np.float64)
    return cv2.projectPoints(world.reshape(-1, 1, 3), rvec, tvec, K, d)[0].reshape(-1, 2)


# ------------------------------------------------------------------ projection and its inverse
@pytest.mark.parametrize('n_coeffs', [None, 5, 8, 12, 14])
def test_world_to_image_matches_opencv(n_coeffs):
    world, _ = world_points_in_view()
    cam = make_camera(n_coeffs)
    expected = opencv_project(world, R_WORLD, T_WORLD, K_HD, cam.distortion_coeffs)
    np.testing.assert_allclose(cam.world_to_image(world), expected, atol=1e-6)


def test_world_camera_round_trip_and_closed_form():
    world, cam_pts = world_points_in_view()
    cam = make_camera(5)
    np.testing.assert_allclose(cam.world_to_camera(world), cam_pts, atol=1e-9)
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(world)), world, atol=1e-9)
    # Batched shapes pass through.
    assert cam.world_to_camera(world.reshape(10, 20, 3)).shape == (10, 20, 3)
    assert cam.world_to_image(world.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize('n_coeffs', [5, 8, 12, 14])
def test_undistort_points_matches_converged_opencv(n_coeffs):
    world, _ = world_points_in_view(seed=1)
    cam = make_camera(n_coeffs)
    distorted = opencv_project(world, R_WORLD, T_WORLD, K_HD, cam.distortion_coeffs)
    pinhole = opencv_project(world, R_WORLD, T_WORLD, K_HD, None)
    ours = cam.undistort_points(distorted)
    np.testing.assert_allclose(ours, pinhole, atol=1e-6)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 500, 1e-14)
    reference = cv2.undistortPoints(distorted.reshape(-1, 1, 2), K_HD, cam.distortion_coeffs,
                                    P=K_HD, criteria=criteria).reshape(-1, 2)
    np.testing.assert_allclose(ours, reference, atol=1e-3)
    np.testing.assert_allclose(cam.distort_points(pinhole), distorted, atol=1e-6)


def test_image_to_camera_recovers_depth_and_point():
    world, cam_pts = world_points_in_view(seed=2)
    cam = make_camera(14)
    image = opencv_project(world, R_WORLD, T_WORLD, K_HD, cam.distortion_coeffs)
    np.testing.assert_allclose(cam.image_to_camera(image, cam_pts[:, 2]), cam_pts, atol=1e-3)
    np.testing.assert_allclose(cam.image_to_world(image, cam_pts[:, 2]), world, atol=1e-3)


def test_undistortion_beyond_fold_over_is_nan():
    # k1 < 0 alone folds back at normalised radius 1/sqrt(3 |k1|) = 1: r_d peaks at 2/3 there.
    cam = Camera(intrinsic_matrix=K_HD, distortion_coeffs=[-1 / 3, 0, 0, 0])
    inside = K_HD[:2, 2] + [0.5 * 1000, 0]          # r_d = 0.5 < 2/3, has an inverse
    beyond = K_HD[:2, 2] + [0.8 * 1000, 0]          # r_d = 0.8 > 2/3, no inverse exists
    out = cam.undistort_points(np.array([inside, beyond]))
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))
    # Closed form of the inverse for the inside point: r (1 - r^2/3) = 0.5 on the rising branch.
    roots = np.roots([-1 / 3, 0, 1, -0.5])
    r_u = min(r.real for r in roots if abs(r.imag) < 1e-12 and 0 < r.real < 1)
    np.testing.assert_allclose(out[0], K_HD[:2, 2] + [r_u * 1000, 0], atol=1e-6)


# ------------------------------------------------------------------ in-place edits
def test_turn_towards_puts_target_on_principal_point():
    world, _ = world_points_in_view(n=3, seed=3)
    for n_coeffs in (None, 14):
        cam = make_camera(n_coeffs)
        target_px = opencv_project(world[:1], R_WORLD, T_WORLD, K_HD, cam.distortion_coeffs)[0]
        by_image = cam.copy().turn_towards(target_image_point=target_px)
        by_world = cam.copy().turn_towards(target_world_point=world[0])
        for turned in (by_image, by_world):
            np.testing.assert_allclose(turned.world_to_image(world[0]), K_HD[:2, 2], atol=1e-6)
            np.testing.assert_allclose(turned.t, cam.t)
            np.testing.assert_allclose(turned.R @ turned.R.T, np.eye(3), atol=1e-12)
            assert np.linalg.det(turned.R) == pytest.approx(1.0)
    with pytest.raises(ValueError, match='exactly one'):
        cam.turn_towards()


def test_rotate_closed_forms():
    K = np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])
    cam = Camera(intrinsic_matrix=K)
    # Identity pose, so these world points are also the original camera-frame points.
    pts = np.array([[100.0, -50, 2000], [-300, 200, 3000], [0, 0, 1000]])
    before = cam.world_to_image(pts) - K[:2, 2]
    a = 0.3
    rolled = cam.copy().rotate(roll=a).world_to_image(pts) - K[:2, 2]
    # Documented: content turns by -roll about the principal point.
    rot = np.array([[np.cos(-a), -np.sin(-a)], [np.sin(-a), np.cos(-a)]])
    np.testing.assert_allclose(rolled, before @ rot.T, atol=1e-9)
    # yaw > 0 pans right: the point on the old axis moves left by f tan(yaw); pitch up: down.
    on_axis = np.array([0.0, 0, 1000])
    np.testing.assert_allclose(cam.copy().rotate(yaw=a).world_to_image(on_axis),
                               [320 - 800 * np.tan(a), 240], atol=1e-9)
    np.testing.assert_allclose(cam.copy().rotate(pitch=a).world_to_image(on_axis),
                               [320, 240 + 800 * np.tan(a)], atol=1e-9)


def test_zoom_shift_scale_output():
    world, _ = world_points_in_view(seed=4)
    cam = make_camera(8)
    before = cam.world_to_image(world)
    center = K_HD[:2, 2]
    np.testing.assert_allclose(cam.copy().zoom(1.7).world_to_image(world),
                               center + 1.7 * (before - center), atol=1e-9)
    np.testing.assert_allclose(cam.copy().shift_image([3.5, -2]).world_to_image(world),
                               before + [3.5, -2], atol=1e-9)
    # Pixel-centre convention: resizing by f maps u to f (u + 0.5) - 0.5.
    np.testing.assert_allclose(cam.copy().scale_output(0.25).world_to_image(world),
                               0.25 * (before + 0.5) - 0.5, atol=1e-9)
    centred = cam.copy().center_principal_point((480, 641, 3))
    np.testing.assert_allclose(centred.intrinsic_matrix[:2, 2], [320, 239.5])


def test_horizontal_flip_mirrors_projection_about_principal_column():
    world, _ = world_points_in_view(seed=5)
    K_skew = K_HD.copy()
    K_skew[0, 1] = 2.5
    for n_coeffs in (None, 5, 14):
        cam = make_camera(n_coeffs, K=K_skew)
        before = cam.world_to_image(world)
        flipped = cam.copy().horizontal_flip()
        after = flipped.world_to_image(world)
        np.testing.assert_allclose(after[:, 0], 2 * K_skew[0, 2] - before[:, 0], atol=1e-6)
        np.testing.assert_allclose(after[:, 1], before[:, 1], atol=1e-6)
        np.testing.assert_allclose(flipped.world_to_camera(world),
                                   cam.world_to_camera(world) * [-1, 1, 1], atol=1e-9)
        assert np.linalg.det(flipped.R) == pytest.approx(-1.0)
        # Flipped undistortion is still the inverse of flipped distortion.
        np.testing.assert_allclose(flipped.distort_points(flipped.undistort_points(after)),
                                   after, atol=1e-6)


# ------------------------------------------------------------------ crops
def test_crop_of_centred_box_is_a_pure_zoom():
    cam = Camera(intrinsic_matrix=[[1000.0, 0, 640], [0, 1000, 360], [0, 0, 1]])
    box = [590.0, 310, 100, 100]  # centred on the principal point
    crop = make_crop_camera(cam, box, 256)
    corners = np.array([[590.0, 310], [690, 410]])
    # The box corners land exactly on the crop's outer pixel edges (-0.5 and 255.5).
    np.testing.assert_allclose(reproject_image_points(corners, cam, crop),
                               [[-0.5, -0.5], [255.5, 255.5]], atol=1e-9)
    np.testing.assert_allclose(crop.intrinsic_matrix[0, 0], 2560)


@pytest.mark.parametrize('rotation, flip, scale', [(0.0, False, 1.2), (0.4, True, 1.5)])
def test_crop_box_centre_at_crop_centre_and_corners_inside(rotation, flip, scale):
    world, _ = world_points_in_view(n=1, seed=6)
    cam = make_camera(14)
    centre_px = opencv_project(world, R_WORLD, T_WORLD, K_HD, cam.distortion_coeffs)[0]
    w, h = 120.0, 260.0
    box = [centre_px[0] - w / 2, centre_px[1] - h / 2, w, h]
    crop = make_crop_camera(cam, box, 224, scale=scale, rotation_rad=rotation, flip=flip)
    assert crop.distortion_coeffs is None
    np.testing.assert_allclose(crop.world_to_image(world[0]), [111.5, 111.5], atol=1e-6)
    corners = np.array([[box[0], box[1]], [box[0] + w, box[1]], [box[0], box[1] + h],
                        [box[0] + w, box[1] + h]])
    mapped = reproject_image_points(corners, cam, crop)
    assert np.all(mapped > -0.5) and np.all(mapped < 223.5)
    # The long side spans about output_side / scale (only perspective/distortion change it).
    extent = np.linalg.norm(mapped[2] - mapped[0])
    assert extent == pytest.approx(224 / scale, rel=0.05)


# ------------------------------------------------------------------ image warping
def smooth_image(shape, seed):
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3) * 4 - 382, 0, 255).astype(np.uint8)


def test_pinhole_reprojection_equals_closed_form_homography():
    K1 = np.array([[300.0, 0, 160], [0, 310, 120], [0, 0, 1]])
    old = Camera(T_WORLD, R_WORLD, K1)
    new = Camera(T_WORLD, cv2.Rodrigues(np.array([0.05, 0.1, -0.2]))[0] @ R_WORLD,
                 [[350.0, 0, 100], [0, 350, 90], [0, 0, 1]])
    image = smooth_image((240, 320, 3), seed=0)
    H = new.intrinsic_matrix @ new.R @ old.R.T @ np.linalg.inv(K1)
    expected = cv2.warpPerspective(image, H, (200, 180), flags=cv2.INTER_LINEAR)
    ours = reproject_image(image, old, new, (180, 200))
    assert ours.shape == (180, 200, 3) and ours.dtype == np.uint8
    assert np.max(np.abs(ours.astype(int) - expected.astype(int))) <= 1


def render_dots(points2d, shape, sigma):
    """Float image of Gaussian blobs centred at sub-pixel positions (pixel-centre convention)."""
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    image = np.zeros(shape, np.float32)
    for x, y in points2d:
        image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)).astype(np.float32)
    return image


def centroids(image, guesses, radius):
    ys, xs = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    out = []
    for gx, gy in np.round(guesses).astype(int):
        patch = image[gy - radius:gy + radius + 1, gx - radius:gx + radius + 1].astype(np.float64)
        out.append([gx + np.sum(patch * xs) / patch.sum(), gy + np.sum(patch * ys) / patch.sum()])
    return np.array(out)


@pytest.fixture(scope='module')
def dot_scene():
    """A distorted 480x640 camera, a grid of 3D points, and an image of dots at their projections
    (positions from cv2.projectPoints, so independent of the code under test)."""
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    dist = [-0.25, 0.06, 0.001, -0.001, -0.005]
    cam = Camera(T_WORLD, R_WORLD, K, dist)
    gx, gy = np.meshgrid(np.linspace(-0.45, 0.45, 9), np.linspace(-0.35, 0.35, 7))
    z = 3000.0
    cam_pts = np.stack([gx.ravel() * z, gy.ravel() * z, np.full(gx.size, z)], axis=1)
    world = cam_pts @ R_WORLD + T_WORLD
    dots = opencv_project(world, R_WORLD, T_WORLD, K, dist)
    image = render_dots(dots, (480, 640), sigma=1.5)
    return cam, world, image


@pytest.mark.parametrize('new_distortion, antialias',
                         [(None, 1), (None, 3), ([0.1, -0.05, 0, 0], 1)])
def test_distorted_reprojection_moves_dots_to_new_projections(dot_scene, new_distortion,
                                                              antialias):
    cam, world, image = dot_scene
    new = make_crop_camera(cam, [120, 80, 400, 320], 300, scale=1.1, rotation_rad=0.2)
    if new_distortion is not None:
        new.distortion_coeffs = np.array(new_distortion, np.float64)
    warped = reproject_image(image, cam, new, (300, 300), antialias_factor=antialias)
    assert warped.dtype == np.float32
    expected = new.world_to_image(world)
    radius = 5
    inside = np.all((expected > radius + 1) & (expected < 300 - radius - 2), axis=1)
    assert inside.sum() >= 20
    found = centroids(warped, expected[inside], radius)
    # Measured ~0.02 px; a half-pixel convention slip (e.g. in antialiasing) would give >= 0.3.
    assert np.max(np.linalg.norm(found - expected[inside], axis=1)) < 0.1


def test_flipped_crop_image_is_mirrored_crop(dot_scene):
    cam, _, _ = dot_scene
    image = smooth_image((480, 640), seed=1)
    box = [200, 100, 150, 220]
    plain_cam = make_crop_camera(cam, box, 128, rotation_rad=0.3)
    flipped_cam = make_crop_camera(cam, box, 128, rotation_rad=0.3, flip=True)
    plain = reproject_image(image, cam, plain_cam, (128, 128))
    flipped = reproject_image(image, cam, flipped_cam, (128, 128))
    diff = np.abs(flipped.astype(int) - np.fliplr(plain).astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.1


def test_antialiasing_removes_moire():
    # A 1-px checkerboard shrunk 4x: area averaging gives flat grey; point sampling hits one
    # parity only and turns it black or white.
    checker = ((np.indices((400, 400)).sum(axis=0) % 2) * 255).astype(np.uint8)
    old = Camera(intrinsic_matrix=[[400.0, 0, 199.5], [0, 400, 199.5], [0, 0, 1]])
    new = Camera(intrinsic_matrix=[[100.0, 0, 49.5], [0, 100, 49.5], [0, 0, 1]])
    aliased = reproject_image(checker, old, new, (100, 100), interp='nearest')
    smooth = reproject_image(checker, old, new, (100, 100), antialias_factor=4)
    assert abs(aliased.mean() - 127.5) > 100
    assert np.abs(smooth[5:-5, 5:-5].astype(float) - 127.5).max() < 10


def test_rays_behind_the_old_camera_stay_empty():
    # Looking backwards, a plain homography would show the old image mirrored; nothing of it is
    # visible in truth.
    old = Camera(intrinsic_matrix=[[100.0, 0, 99.5], [0, 100, 99.5], [0, 0, 1]])
    backwards = old.copy().rotate(yaw=np.pi)
    image = np.full((200, 200), 200, np.uint8)
    assert np.all(reproject_image(image, old, backwards, (200, 200)) == 0)
    # Turning 60 degrees right: the left part of the new view still sees the old image.
    side = old.copy().rotate(yaw=np.pi / 3)
    warped = reproject_image(image, old, side, (200, 200))
    # Column where the old image's right edge (normalised x = 1, 45 degrees) appears.
    edge_angle = np.arctan(100.0 / 100) - np.pi / 3
    edge_col = 99.5 + 100 * np.tan(edge_angle)
    assert np.all(warped[:, :int(edge_col) - 1][50:150] == 200)
    assert np.all(warped[:, int(edge_col) + 2:] == 0)


def test_mask_warp_and_errors(dot_scene):
    cam, _, _ = dot_scene
    mask = np.zeros((480, 640), bool)
    mask[200:300, 250:400] = True
    same = reproject_image(mask, cam, cam, (480, 640), interp='nearest')
    assert same.dtype == bool and np.array_equal(same, mask)
    moved = cam.copy()
    moved.t = moved.t + [10, 0, 0]
    with pytest.raises(ValueError, match='optical centre'):
        reproject_image(mask, cam, moved, (10, 10))
    with pytest.raises(ValueError, match='border_mode'):
        reproject_image(mask, cam, cam, (10, 10), border_mode='mirror')


# ------------------------------------------------------------------ serialisation, validation
def test_dict_round_trip_through_json():
    cam = make_camera(14).horizontal_flip()
    restored = Camera.from_dict(json.loads(json.dumps(cam.to_dict())))
    assert restored.allclose(cam, atol=0)
    world, _ = world_points_in_view(n=5)
    np.testing.assert_array_equal(restored.world_to_image(world), cam.world_to_image(world))
    with pytest.raises(KeyError, match='intrinsic_matrix'):
        Camera.from_dict({'optical_center': [0, 0, 0], 'rot_world_to_cam': np.eye(3).tolist()})


@pytest.mark.parametrize('kwargs, field', [
    (dict(optical_center=[1, 2]), 'optical_center'),
    (dict(rot_world_to_cam=np.eye(4)), 'rot_world_to_cam'),
    (dict(rot_world_to_cam=2 * np.eye(3)), 'rot_world_to_cam'),
    (dict(intrinsic_matrix=np.ones((3, 3))), 'intrinsic_matrix'),
    (dict(distortion_coeffs=[0.1, 0.2, 0.3]), 'distortion_coeffs'),
    (dict(world_up=[0, 0]), 'world_up'),
])
def test_bad_parameters_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Camera(**kwargs)


def test_bad_point_shapes_raise():
    with pytest.raises(ValueError, match='points3d'):
        Camera().world_to_image(np.zeros((4, 2)))
    with pytest.raises(ValueError, match='points2d'):
        Camera().image_to_camera(np.zeros((4, 3)))


def test_camera_from_fov_closed_form():
    cam = camera.camera_from_fov((480, 640), fov_deg=60.0)
    # The larger side (640 px) spans 60 degrees: its edges (pixel -0.5 and 639.5) lie at +-30 deg.
    f = cam.intrinsic_matrix[0, 0]
    assert f == pytest.approx(320 / np.tan(np.deg2rad(30)))
    np.testing.assert_allclose(cam.intrinsic_matrix[:2, 2], [319.5, 239.5])
    edge = cam.camera_to_image(np.array([np.tan(np.deg2rad(30)), 0.0, 1.0]))
    assert edge[0] == pytest.approx(639.5)
    with pytest.raises(ValueError, match='fov_deg'):
        camera.camera_from_fov((10, 10), fov_deg=180)


def test_fit_intrinsics_recovers_k_and_refuses_non_projections():
    rng = np.random.default_rng(5)
    K = np.array([[1500.0, 0, 1020.5], [0, 1490.0, 1010.0], [0, 0, 1]])
    points = rng.uniform([-800, -900, 2500], [800, 900, 6000], (200, 3))
    projected = camera.Camera(intrinsic_matrix=K).camera_to_image(points)
    np.testing.assert_allclose(camera.fit_intrinsics(points, projected, 'toy'), K, atol=1e-6)
    points[::7] = np.nan  # unlabelled joints are ignored
    np.testing.assert_allclose(camera.fit_intrinsics(points, projected, 'toy'), K, atol=1e-6)
    with pytest.raises(ValueError, match='annot.mat: the 2D points are not a pinhole projection'):
        camera.fit_intrinsics(points, rng.permutation(projected), 'annot.mat')
    with pytest.raises(ValueError, match='fewer than 3'):
        camera.fit_intrinsics(points[:2], projected[:2], 'x')


def test_camera_pose_from_projection_recovers_a_known_pose():
    rng = np.random.default_rng(5)
    K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
    R = Rotation.from_rotvec([0.3, -0.8, 0.2]).as_matrix()
    truth = camera.Camera(optical_center=[1500.0, -4000.0, 1200.0], rot_world_to_cam=R,
                          intrinsic_matrix=K, world_up=(0, 0, 1))
    # A person-sized cloud in front of the camera, 4 m along its optical axis.
    world = truth.t + 4000 * R[2] + rng.normal(0, 400, (17, 3))
    fitted = camera.camera_pose_from_projection(world, truth.world_to_image(world), K)
    np.testing.assert_allclose(fitted.R, R, atol=1e-6)
    np.testing.assert_allclose(fitted.t, truth.t, atol=1e-3)  # mm
    assert np.abs(fitted.world_to_image(world) - truth.world_to_image(world)).max() < 1e-4
