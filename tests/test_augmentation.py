"""Tests of metrabs.data.augmentation and metrabs.data.occlusion against closed forms (numpy only)."""
import dataclasses

import numpy as np
import pytest

from metrabs.data import augmentation as aug
from metrabs.data import labels2d
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
LABEL_NAMES = tuple(n.split('_')[0] for n in JOINTS)  # the 2D label names ('head', 'lsho', ...)
NO_APPEARANCE = aug.AugmentationConfig(color=False, occlusion_prob=0, background_prob=0)


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
                box=stored_box, mask=disk, perm=JointInfo(JOINTS).mirror_perm,
                perm2d=labels2d.mirror_perm(LABEL_NAMES))


def run(scene, rng=None, config=NO_APPEARANCE, output_side=STORED_SIDE, training=True,
        geometry=None, is_2d_only=False, **hooks):
    n = len(JOINTS)
    labels = scene['stored2d'] if is_2d_only else np.full((n, 2), np.nan)
    world = np.full((n, 3), np.nan) if is_2d_only else scene['world']
    return aug.augment(scene['image'], scene['camera'], world, np.full(n, not is_2d_only),
                       labels, is_2d_only, scene['box'], scene['mask'], scene['perm'],
                       scene['perm2d'], rng, config, output_side, training=training,
                       geometry=geometry, **hooks)


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
    params = aug.GeometryParams(zoom=1 / 1.1, rotation_rad=0.2, shift=(0.05, -0.03))
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
    params = aug.GeometryParams(1 / 0.9, -0.3, (0.08, 0.02), flip=True)
    full = run(scene, aug.example_rng(0, 0, 0), geometry=params)
    only2d = run(scene, aug.example_rng(0, 0, 0), geometry=params, is_2d_only=True)
    assert not only2d['valid3d'].any() and (only2d['coords3d_cam'] == 0).all()
    assert not only2d['valid2d'].any() and not full['valid_labels2d'].any()
    assert only2d['valid_labels2d'].all()
    # The label names are the joints' base names in the same order, so (flip included) the
    # 2D-only labels are where the 3D example's projections are.
    np.testing.assert_allclose(only2d['labels2d'], full['coords2d'], atol=1e-3)


def test_test_mode_fills_the_crop_with_the_box(scene):
    out = run(scene, training=False, output_side=96)
    expected = make_crop_camera(scene['camera'], scene['box'], 96, scale=1.0)
    np.testing.assert_allclose(out['intrinsics'], expected.intrinsic_matrix, atol=1e-4)
    np.testing.assert_allclose(out['coords2d'], expected.world_to_image(scene['world']),
                               atol=1e-3)
    # The box, seen by the test camera, is centred and its larger side spans the crop (the
    # aim turns the camera a little, so the mapped box is not exactly square-cut: 1 %).
    box = box_to_crop(scene['box'], scene['camera'], out['camera'])
    assert max(box[2:]) == pytest.approx(96, rel=0.01)
    np.testing.assert_allclose(box[:2] + box[2:] / 2, [47.5, 47.5], atol=0.6)
    # A zoom of 2 shows half the box side: the person twice as large, truncated by the border.
    zoomed = run(scene, aug.example_rng(0, 0, 0), geometry=aug.GeometryParams(zoom=2.0),
                 output_side=96)
    box2 = box_to_crop(scene['box'], scene['camera'], zoomed['camera'])
    assert max(box2[2:]) == pytest.approx(192, rel=0.01)


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

    params = aug.GeometryParams(1 / 1.1, 0.25, (0.02, 0.04))
    without = run(scene, aug.example_rng(0, 0, 1), geometry=params)
    config = dataclasses.replace(NO_APPEARANCE, background_prob=1)
    with_bg = run(scene, aug.example_rng(0, 0, 1), config, geometry=params,
                  background_source=flat_background)
    alpha = with_bg['mask']
    inside, outside = alpha == 1, alpha == 0
    assert inside.any() and outside.any() and 0 <= alpha.min() and alpha.max() <= 1
    np.testing.assert_allclose(with_bg['image'][inside], without['image'][inside], atol=1e-6)
    np.testing.assert_allclose(with_bg['image'][outside],
                               np.broadcast_to(colour, (outside.sum(), 3)), atol=1e-6)
    # The soft edge blends: alpha * person + (1 - alpha) * background everywhere.
    np.testing.assert_allclose(with_bg['image'], alpha[..., None] * without['image']
                               + (1 - alpha[..., None]) * colour, atol=1e-5)
    assert np.abs(without['image'][outside] - colour).max() > 0.1
    # A per-dataset probability of 0 keeps the background even when the config says 1.
    kept = run(scene, aug.example_rng(0, 0, 1), config, geometry=params,
               background_source=flat_background, background_prob=0.0)
    np.testing.assert_allclose(kept['image'], without['image'], atol=1e-6)


def test_replace_background_closed_form():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (20, 30, 3)).astype(np.float32)
    background = occlusion.random_texture(rng, (20, 30))
    mask = rng.uniform(size=(20, 30)) < 0.5
    out = occlusion.replace_background(image, mask, background)
    np.testing.assert_array_equal(out[mask], image[mask])
    np.testing.assert_array_equal(out[~mask], background[~mask])
    alpha = np.full((20, 30), 0.25, np.float32)
    np.testing.assert_allclose(occlusion.replace_background(image, alpha, background),
                               0.25 * image + 0.75 * background, atol=1e-7)


def test_object_occlusion_pastes_scaled_cutouts_anywhere():
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 1, (128, 128, 3)).astype(np.float32)
    colour = np.array([1.0, 0.0, 0.5], np.float32)

    def square(rng):  # a 64 px square cut-out at its natural size
        return np.broadcast_to(colour, (64, 64, 3)).copy(), np.ones((64, 64), np.float32)

    # Scale 0.5 x (128 / 256) -> 16 px squares.
    out = occlusion.occlude_with_objects(image, rng, max_occluders=1, scale_range=(0.5, 0.5),
                                         occluder_source=square)
    changed = np.any(out != image, axis=-1)
    rows, cols = np.nonzero(changed)
    assert changed.sum() <= 16 * 16 and (np.ptp(rows) + 1, np.ptp(cols) + 1) <= (16, 16)
    np.testing.assert_array_equal(out[changed], np.broadcast_to(colour, (changed.sum(), 3)))
    # Counts 1..6 and centres anywhere in the crop (not just on a person box).
    centres = []
    for seed in range(40):
        out = occlusion.occlude_with_objects(image, np.random.default_rng(seed), 6, (0.1, 0.1),
                                             square)
        ys, xs = np.nonzero(np.all(out == colour, axis=-1))
        centres.append((xs.mean(), ys.mean()))
    centres = np.array(centres)
    assert centres.min() < 30 and centres.max() > 98


def test_random_erase_closed_form():
    image = np.full((64, 64, 3), 0.3, np.float32)
    for seed in range(10):
        out = occlusion.random_erase(image, np.random.default_rng(seed), (0.05, 1 / 3))
        changed = np.any(out != image, axis=-1)
        rows, cols = np.nonzero(changed)
        area = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
        assert area <= 64 * 64 / 3 + 64 and changed.sum() >= 0.8 * area  # one rectangle
        # Uniform noise on the 0..254 grid of the original code, not colour-jittered.
        levels = out[changed] * 255
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)


def test_random_occluders_have_textures_in_range_and_paste_clips_at_borders():
    rng = np.random.default_rng(1)
    for _ in range(8):
        rgb, alpha = occlusion.random_occluder(rng)
        assert rgb.shape[:2] == alpha.shape and 32 <= max(alpha.shape) <= 224
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
    rgb2, alpha2 = source(np.random.default_rng(0))
    np.testing.assert_allclose(rgb2, image[2:5, 3:7] / 255, atol=1e-7)
    assert alpha2.shape == (3, 4) and (alpha2 == 1).all()


def _write_voc(root, n_images=2):
    """A Pascal VOC tree: per image one usable object (index 2, 40 x 30 px), a person (1) and a
    truncated object (3); the second image is not segmented."""
    import cv2
    from PIL import Image
    for sub in ('Annotations', 'JPEGImages', 'SegmentationObject'):
        (root / sub).mkdir(parents=True)
    objects = [('person', 0, 0, (10, 10, 30, 60)), ('chair', 0, 0, (50, 20, 90, 50)),
               ('dog', 0, 1, (100, 60, 140, 90))]
    for i in range(n_images):
        name = f'2008_{i:06d}'
        xml = ''.join(
            f'<object><name>{n}</name><difficult>{d}</difficult><truncated>{t}</truncated>'
            f'<bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{e}</ymax></bndbox>'
            f'</object>' for n, d, t, (a, b, c, e) in objects)
        (root / 'Annotations' / f'{name}.xml').write_text(
            f'<annotation><filename>{name}.jpg</filename><segmented>{int(i == 0)}</segmented>'
            f'{xml}</annotation>')
        image = np.full((100, 160, 3), 40 * (i + 1), np.uint8)
        image[20:50, 50:90] = (200, 30, 30)
        cv2.imwrite(str(root / 'JPEGImages' / f'{name}.jpg'), image[..., ::-1])
        labels = np.zeros((100, 160), np.uint8)
        for index, (_, _, _, (a, b, c, e)) in enumerate(objects, start=1):
            labels[b:e, a:c] = index
        png = Image.fromarray(labels, mode='P')
        png.putpalette([v for k in range(256) for v in (k, 255 - k, k // 2)])
        png.save(root / 'SegmentationObject' / f'{name}.png')


def test_voc_occluders_layout_filter_soft_edges_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    root = tmp_path / 'VOC2012'
    _write_voc(root)
    source = occlusion.load_voc_occluders(root)
    # Only the chair of the segmented image: no person, no truncated object, no unsegmented image.
    assert len(source) == 1
    rgb, alpha = source(np.random.default_rng(0))
    assert alpha.shape == (15, 20)  # half of 30 x 40
    np.testing.assert_allclose(rgb[5:10, 5:15], np.broadcast_to([200 / 255, 30 / 255, 30 / 255],
                                                                (5, 10, 3)), atol=0.05)
    # Interior 1, the 8 px rim 0.75 before halving (so ~0.75 at the border after it).
    assert alpha[7, 10] == pytest.approx(1.0) and alpha[0, 10] == pytest.approx(0.75, abs=0.01)
    cached = list((tmp_path / 'cache' / 'posepile-metrabs').glob('voc_occluders_*.npz'))
    assert len(cached) == 1
    occlusion.load_voc_occluders.cache_clear()
    again = occlusion.load_voc_occluders(root)
    np.testing.assert_array_equal(again(np.random.default_rng(0))[1], alpha)
    (root / 'SegmentationObject').rename(tmp_path / 'elsewhere')
    occlusion.load_voc_occluders.cache_clear()
    with pytest.raises(FileNotFoundError, match='SegmentationObject'):
        occlusion.load_voc_occluders(root)


def test_soften_mask_by_hand():
    mask = np.zeros((20, 20), bool)
    mask[2:18, 2:18] = True
    alpha = occlusion.soften_mask(mask, edge_px=4)
    assert alpha[10, 10] == 1 and alpha[0, 0] == 0
    assert alpha[2, 10] == 0.75 and alpha[3, 10] == 0.75 and alpha[4, 10] == 1


def test_colour_steps_closed_forms():
    image = np.array([[[1.0, 0.0, 0.0], [0.2, 0.4, 0.6]]], np.float32)
    np.testing.assert_allclose(aug.adjust_brightness(image, 0.1), image + 0.1, atol=1e-7)
    np.testing.assert_allclose(aug.adjust_contrast(image, 1.5), (image - 0.5) * 1.5 + 0.5,
                               atol=1e-7)
    # HSV: a 120 degree hue shift turns pure red into pure green.
    np.testing.assert_allclose(aug.adjust_hue(image, 120)[0, 0], [0, 1, 0], atol=1e-5)
    # Zero saturation leaves the value (the largest channel) in every channel.
    np.testing.assert_allclose(aug.adjust_saturation(image, 0.0)[0, 1], [0.6, 0.6, 0.6],
                               atol=1e-5)
    # Saturation x 1.5 of (0.2, 0.4, 0.6): S = 2/3 -> 1 (capped), V = 0.6, so min = 0.
    np.testing.assert_allclose(aug.adjust_saturation(image, 1.5)[0, 1], [0, 0.3, 0.6],
                               atol=1e-5)


def test_colour_jitter_random_order_and_ranges():
    rng = np.random.default_rng(2)
    image = rng.uniform(0.3, 0.7, (8, 8, 3)).astype(np.float32)
    only_brightness = aug.AugmentationConfig(contrast=0, saturation=0, hue_deg=0)
    out = aug.color_jitter(image, np.random.default_rng(0), only_brightness)
    offset = out - image
    assert np.ptp(offset) < 1e-5 and abs(offset.mean()) <= 0.125
    outputs = {aug.color_jitter(image, np.random.default_rng(s), aug.AugmentationConfig()
                                ).tobytes() for s in range(5)}
    assert len(outputs) == 5
    extreme = aug.color_jitter(rng.uniform(0, 1, (8, 8, 3)), np.random.default_rng(1),
                               aug.AugmentationConfig(brightness=1.0))
    assert extreme.min() >= 0 and extreme.max() <= 1


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match='flip_prob'):
        aug.AugmentationConfig(flip_prob=1.5)
    with pytest.raises(ValueError, match='zoom_range'):
        aug.AugmentationConfig(zoom_range=(1.2, 0.8))
    with pytest.raises(ValueError, match='erase_area_range'):
        aug.AugmentationConfig(erase_area_range=(0.0, 1.0))


def test_image_background_source_covers_the_crop_zoomed_and_centred(tmp_path):
    import cv2
    photo = np.zeros((40, 60, 3), np.uint8)
    photo[..., 0] = np.arange(60, dtype=np.uint8)[None] * 4  # red ramps along x
    cv2.imwrite(str(tmp_path / 'photo.png'), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    (tmp_path / 'list.txt').write_text('# INRIA-like list\nphoto.png\n')
    assert occlusion.image_paths_in(tmp_path / 'list.txt') == [str(tmp_path / 'photo.png')]
    assert occlusion.image_paths_in(tmp_path) == [str(tmp_path / 'photo.png')]
    source = occlusion.ImageBackgroundSource([tmp_path / 'photo.png'], zoom_range=(1.0, 1.0))
    background = source(np.random.default_rng(0), (16, 24))
    assert background.shape == (16, 24, 3) and background.dtype == np.float32
    assert (background[..., 1:] == 0).all()
    # Scale to cover: max(16 / 40, 24 / 60) = 0.4, so one output pixel spans 2.5 photo pixels:
    # the ramp rises by 4 * 2.5 / 255 per output pixel.
    np.testing.assert_allclose(np.diff(background[8, 2:-2, 0]), 10 / 255, atol=1e-4)
    # Centred up to the random shift (at most 0.1 x 16 px = 1.6 output px).
    centre_value = np.interp(11.5, np.arange(24), background[8, :, 0]) * 255
    assert abs(centre_value / 4 - 29.5) <= 1.6 * 2.5 + 1e-3
    with pytest.raises(ValueError, match='cannot read'):
        occlusion.ImageBackgroundSource([tmp_path / 'missing.png'])(np.random.default_rng(0),
                                                                     (4, 4))
    with pytest.raises(FileNotFoundError, match='neither a directory'):
        occlusion.image_paths_in(tmp_path / 'nowhere')
