"""Tests of metrabs.data.augmentation and metrabs.data.occlusion against closed forms (numpy only)."""
import dataclasses

import numpy as np
import pytest

from metrabs.data import augmentation as aug
from metrabs.data import occlusion
from posepile.camera import Camera, make_crop_camera
from posepile.cropping import box_to_crop
from posepile.joints import JointInfo

JOINTS = ('head_h36m', 'lsho_h36m', 'rsho_h36m', 'lwri_h36m', 'rwri_h36m', 'lhip_h36m',
          'rhip_h36m', 'lank_h36m', 'rank_h36m')
# Person-relative offsets (mm, world frame, y down); about 1.6 m tall, joints >= ~200 mm apart so
# their dots stay separate in a 128 px crop.
OFFSETS = np.array([[0, -750, 0], [180, -500, 30], [-180, -500, -30], [350, -50, 100],
                    [-330, -80, -120], [110, 0, 20], [-110, 0, -20], [120, 800, 60],
                    [-120, 790, -50]], np.float64)
STORED_SIDE = 128
DOT_SIGMA = 1.3
NO_APPEARANCE = aug.AugmentationConfig(
    brightness=0, contrast=0, saturation=0, hue_deg=0, occlusion_prob=0, background_prob=0)


def render_dots(points2d, side, sigma=DOT_SIGMA):
    """float [side, side]: max over Gaussian dots at `points2d` [N, 2] (pixel-centre convention)."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float64)
    d2 = (xs[None] - points2d[:, 0, None, None]) ** 2 + (ys[None] - points2d[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma ** 2)).max(axis=0)


def centroid(image, guess, radius=4):
    """Intensity-weighted centroid (x, y) in a (2r+1)^2 window around `guess`."""
    x0, y0 = int(round(guess[0])), int(round(guess[1]))
    window = image[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1].astype(np.float64)
    ys, xs = np.mgrid[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1]
    return np.array([(xs * window).sum(), (ys * window).sum()]) / window.sum()


@pytest.fixture(scope='module')
def scene():
    """A stored 128 px crop (perspective crop of an HD camera) with one dot per joint."""
    original = Camera(optical_center=[300, -1100, -4200],
                      intrinsic_matrix=[[1000, 0, 960], [0, 1000, 540], [0, 0, 1]])
    person = np.array([150.0, -900.0, 0.0])
    original.turn_towards(target_world_point=person + [250, 100, 0])
    world = person + OFFSETS
    points = original.world_to_image(world)
    lo, hi = points.min(0), points.max(0)
    box = np.concatenate([lo - 0.1 * (hi - lo), 1.2 * (hi - lo)])
    stored_camera = make_crop_camera(original, box, STORED_SIDE, scale=1.25)
    stored_box = box_to_crop(box, original, stored_camera)
    stored2d = stored_camera.world_to_image(world)
    dots = render_dots(stored2d, STORED_SIDE)
    image = np.repeat(np.round(dots * 255).astype(np.uint8)[..., None], 3, axis=-1)
    disk = render_dots(stored2d.mean(0, keepdims=True), STORED_SIDE, sigma=25) > 0.3
    return dict(camera=stored_camera, world=world, stored2d=stored2d, image=image,
                box=stored_box, mask=disk, perm=JointInfo(JOINTS).mirror_perm)


def run(scene, rng=None, config=NO_APPEARANCE, output_side=STORED_SIDE, training=True,
        geometry=None, is_2d_only=False, **hooks):
    n = len(JOINTS)
    coords2d = scene['stored2d'] if is_2d_only else np.full((n, 2), np.nan)
    world = np.full((n, 3), np.nan) if is_2d_only else scene['world']
    return aug.augment(scene['image'], scene['camera'], world, np.full(n, not is_2d_only),
                       coords2d, is_2d_only, scene['box'], scene['mask'], scene['perm'], rng,
                       config, output_side, training=training, geometry=geometry, **hooks)


@pytest.mark.parametrize('seed', range(6))
def test_projection_of_coords3d_gives_coords2d_and_dots_follow(scene, seed):
    out = run(scene, aug.example_rng(7, 1, seed), output_side=96)
    K = out['intrinsics'].astype(np.float64)
    cam3d = out['coords3d_cam'].astype(np.float64)
    assert out['valid3d'].all() and out['valid2d'].all()
    # Closed-form pinhole projection with the returned K (no library camera maths).
    projected = (cam3d @ K.T)[:, :2] / cam3d[:, 2:]
    np.testing.assert_allclose(out['coords2d'], projected, atol=1e-3)
    # The augmented crop camera is a rotation of the stored one about the same centre:
    # camera-frame distances to the optical centre are preserved.
    stored_cam3d = scene['camera'].world_to_camera(scene['world'])
    # (Sorted, since a flip permutes the rows.)
    np.testing.assert_allclose(np.sort(np.linalg.norm(cam3d, axis=1)),
                               np.sort(np.linalg.norm(stored_cam3d, axis=1)), rtol=1e-5)
    # Dots drawn at the stored 2D positions land at the augmented coords2d.
    gray = out['image'][..., 0]
    inside = np.all((out['coords2d'] > 6) & (out['coords2d'] < 96 - 7), axis=1)
    assert inside.sum() >= 4
    for joint in np.flatnonzero(inside):
        found = centroid(gray, out['coords2d'][joint])
        # 0.25 px (measured: < 0.04 px) also catches half-pixel convention slips.
        assert np.linalg.norm(found - out['coords2d'][joint]) < 0.25, JOINTS[joint]


def test_flip_swaps_labels_and_mirrors_x(scene):
    params = aug.GeometryParams(scale=1.1, rotation_rad=0.2, shift=(0.05, -0.03))
    plain = run(scene, aug.example_rng(0, 0, 0), geometry=params)
    flipped = run(scene, aug.example_rng(0, 0, 0),
                  geometry=dataclasses.replace(params, flip=True))
    perm = scene['perm']
    lsho, rsho = JOINTS.index('lsho_h36m'), JOINTS.index('rsho_h36m')
    assert perm[lsho] == rsho and perm[rsho] == lsho
    cx = plain['intrinsics'][0, 2]
    np.testing.assert_allclose(flipped['intrinsics'], plain['intrinsics'], atol=1e-4)
    # The flipped label 'lsho' holds the mirrored position of the physical right shoulder.
    np.testing.assert_allclose(flipped['coords2d'][lsho, 0], 2 * cx - plain['coords2d'][rsho, 0],
                               atol=1e-3)
    np.testing.assert_allclose(flipped['coords2d'][lsho, 1], plain['coords2d'][rsho, 1], atol=1e-3)
    np.testing.assert_allclose(flipped['coords2d'][:, 0], 2 * cx - plain['coords2d'][perm, 0],
                               atol=1e-3)
    np.testing.assert_allclose(flipped['coords3d_cam'],
                               plain['coords3d_cam'][perm] * [-1, 1, 1], atol=1e-2)
    # The image is the mirror image (up to interpolation rounding).
    diff = np.abs(flipped['image'] - plain['image'][:, ::-1])
    assert diff.max() <= 2 / 255 + 1e-6


def test_2d_only_labels_follow_the_same_geometry(scene):
    params = aug.GeometryParams(0.9, -0.3, (0.08, 0.02), flip=True)
    full = run(scene, aug.example_rng(0, 0, 0), geometry=params)
    only2d = run(scene, aug.example_rng(0, 0, 0), geometry=params, is_2d_only=True)
    assert not only2d['valid3d'].any() and (only2d['coords3d_cam'] == 0).all()
    assert only2d['valid2d'].all()
    np.testing.assert_allclose(only2d['coords2d'], full['coords2d'], atol=1e-3)


def test_test_mode_is_the_fixed_crop(scene):
    same = run(scene, training=False)
    np.testing.assert_allclose(same['image'], scene['image'] / 255.0, atol=1e-7)
    np.testing.assert_allclose(same['intrinsics'], scene['camera'].intrinsic_matrix, atol=1e-4)
    np.testing.assert_allclose(same['coords2d'], scene['stored2d'], atol=1e-3)
    half = run(scene, training=False, output_side=64)
    # Resizing by 1/2 under the pixel-centre convention: u -> (u + 0.5) / 2 - 0.5.
    np.testing.assert_allclose(half['coords2d'], (scene['stored2d'] + 0.5) / 2 - 0.5, atol=1e-3)
    assert half['image'].shape == (64, 64, 3)


def test_same_seed_same_result_other_position_differs(scene):
    config = aug.AugmentationConfig()
    a = run(scene, aug.example_rng(3, 11, 42), config)
    b = run(scene, aug.example_rng(3, 11, 42), config)
    c = run(scene, aug.example_rng(3, 11, 43), config)
    for key in ('image', 'intrinsics', 'coords2d', 'coords3d_cam'):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a['intrinsics'], c['intrinsics'])


def test_full_augmentation_stays_in_unit_range(scene):
    config = aug.AugmentationConfig(occlusion_prob=1, background_prob=1, brightness=0.5,
                                    contrast=1, saturation=1, hue_deg=180)
    for position in range(4):
        out = run(scene, aug.example_rng(0, 0, position), config)
        assert out['image'].dtype == np.float32
        assert out['image'].min() >= 0 and out['image'].max() <= 1


def test_background_replacement_changes_only_pixels_outside_the_mask(scene):
    colour = np.array([0.2, 0.9, 0.4], np.float32)

    def flat_background(rng, shape):
        return np.broadcast_to(colour, (*shape, 3)).astype(np.float32)

    params = aug.GeometryParams(1.1, 0.25, (0.02, 0.04))
    without = run(scene, aug.example_rng(0, 0, 1), geometry=params)
    config = aug.AugmentationConfig(brightness=0, contrast=0, saturation=0, hue_deg=0,
                                    occlusion_prob=0, background_prob=1)
    with_bg = run(scene, aug.example_rng(0, 0, 1), config, geometry=params,
                  background_source=flat_background)
    mask = with_bg['mask']
    assert 0 < mask.sum() < mask.size
    # (Colour jitter with zero ranges still round-trips through float32 maths: 1e-6.)
    np.testing.assert_allclose(with_bg['image'][mask], without['image'][mask], atol=1e-6)
    np.testing.assert_allclose(with_bg['image'][~mask],
                               np.broadcast_to(colour, ((~mask).sum(), 3)), atol=1e-6)
    assert np.abs(without['image'][~mask] - colour).max() > 0.1


def test_replace_background_closed_form():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (20, 30, 3)).astype(np.float32)
    background = occlusion.random_texture(rng, (20, 30))
    mask = rng.uniform(size=(20, 30)) < 0.5
    out = occlusion.replace_background(image, mask, background)
    np.testing.assert_array_equal(out[mask], image[mask])
    np.testing.assert_array_equal(out[~mask], background[~mask])


def test_occlusion_changes_only_covered_pixels():
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 1, (64, 64, 3)).astype(np.float32)
    box = (16, 8, 30, 40)
    colour = np.array([1.0, 0.0, 0.5], np.float32)

    def square(rng, max_side):
        side = max(2, max_side)
        return np.broadcast_to(colour, (side, side, 3)).copy(), np.ones((side, side), np.float32)

    out, covered = occlusion.occlude(image, rng, box, max_occluders=2, occluder_source=square)
    assert covered.any() and not covered.all()
    np.testing.assert_array_equal(out[~covered], image[~covered])
    np.testing.assert_array_equal(out[covered], np.broadcast_to(colour, (covered.sum(), 3)))


def test_random_occluders_have_textures_in_range_and_paste_clips_at_borders():
    rng = np.random.default_rng(1)
    for _ in range(5):
        rgb, alpha = occlusion.random_occluder(rng, 40)
        assert rgb.shape[:2] == alpha.shape and max(alpha.shape) <= 40
        assert 0 <= rgb.min() and rgb.max() <= 1 and set(np.unique(alpha)) <= {0.0, 1.0}
        assert alpha.mean() > 0.1
    image = np.zeros((10, 10, 3), np.float32)
    out, covered = occlusion.paste(image, np.ones((6, 6, 3), np.float32),
                                   np.ones((6, 6), np.float32), (-3, 7))
    expected = np.zeros((10, 10), bool)
    expected[7:10, 0:3] = True
    np.testing.assert_array_equal(covered, expected)
    np.testing.assert_array_equal(out[..., 0], expected.astype(np.float32))


def test_cutouts_from_instance_mask_and_cutout_source():
    image = np.arange(8 * 10 * 3, dtype=np.uint8).reshape(8, 10, 3)
    labels = np.zeros((8, 10), np.int32)
    labels[2:5, 3:7] = 1
    labels[6:8, 0:2] = 2
    labels[0, 9] = 255
    cutouts = occlusion.cutouts_from_instance_mask(image, labels, min_pixels=5)
    assert len(cutouts) == 1
    rgb, alpha = cutouts[0]
    np.testing.assert_array_equal(rgb, image[2:5, 3:7])
    assert alpha.all()
    source = occlusion.CutoutOccluderSource(cutouts)
    rgb2, alpha2 = source(np.random.default_rng(0), 20)
    assert 10 <= max(alpha2.shape) <= 20 and rgb2.shape[:2] == alpha2.shape


def test_adjust_colors_closed_forms():
    rng = np.random.default_rng(2)
    image = rng.uniform(0.3, 0.7, (8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(aug.adjust_colors(image), image, atol=1e-6)
    luma = image @ np.array([0.299, 0.587, 0.114], np.float32)
    gray = aug.adjust_colors(image, saturation=0.0)
    np.testing.assert_allclose(gray, np.repeat(luma[..., None], 3, -1), atol=1e-5)
    # Hue rotation keeps luma and is undone by the opposite rotation.
    turned = aug.adjust_colors(image, saturation=0.5, hue_rad=0.4)
    np.testing.assert_allclose(turned @ np.array([0.299, 0.587, 0.114]), luma, atol=1e-5)
    np.testing.assert_allclose(aug.adjust_colors(aug.adjust_colors(image, hue_rad=0.3),
                                                 hue_rad=-0.3), image, atol=1e-5)
    np.testing.assert_allclose(aug.adjust_colors(image, brightness=0.1), image + 0.1, atol=1e-6)
    mean = luma.mean()
    np.testing.assert_allclose(aug.adjust_colors(image, contrast=0.5),
                               (image - mean) * 0.5 + mean, atol=1e-6)
    extreme = aug.adjust_colors(rng.uniform(0, 1, (8, 8, 3)), 0.9, 2.0, 2.0, 2.0)
    assert extreme.min() >= 0 and extreme.max() <= 1


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match='flip_prob'):
        aug.AugmentationConfig(flip_prob=1.5)
    with pytest.raises(ValueError, match='scale_range'):
        aug.AugmentationConfig(scale_range=(1.2, 0.8))


def test_image_background_source_takes_windows_of_the_photo(tmp_path):
    import cv2
    photo = np.zeros((40, 60, 3), np.uint8)
    photo[..., 0] = np.arange(60, dtype=np.uint8)[None] * 4  # red ramps along x
    path = tmp_path / 'photo.png'
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    source = occlusion.ImageBackgroundSource([path])
    background = source(np.random.default_rng(0), (16, 24))
    assert background.shape == (16, 24, 3) and background.dtype == np.float32
    assert (background[..., 1:] == 0).all()
    # A window of an x ramp is still increasing in x and within the photo's range.
    assert (np.diff(background[..., 0], axis=1) >= 0).all()
    assert background[..., 0].max() <= 236 / 255 + 1e-6
    with pytest.raises(ValueError, match='cannot read'):
        occlusion.ImageBackgroundSource([tmp_path / 'missing.png'])(np.random.default_rng(0),
                                                                     (4, 4))
