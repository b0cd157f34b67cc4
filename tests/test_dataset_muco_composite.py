"""MuCo-3DHP-style composite generator on a tiny raw MPI-INF-3DHP fixture with mask videos.

The fixture is the `mpi_inf_3dhp` one (annot.mat, camera.calibration, MJPG avi videos, 160x120)
for subjects S1..S4, plus FGmasks/video_<c>.avi (red = person, green/blue = upper/lower body) and
ChairMasks/video_<c>.avi (red dark on the chair; only S2 has a chair). Subject s is filmed from
3000 + 800 (s - 1) mm, so depth order is S1 (nearest) .. S4 and the bodies overlap in the image.
Broken on purpose: S3/Seq1 FGmasks/video_0.avi lacks its last frame, and S4/Seq2's last annotation
row is lifted 30 m (no joint in the image) -> 1 + 2 skipped candidates.
"""
import json
from collections import Counter
import pickle
import shutil

import cv2
import numpy as np
import pytest
import scipy.ndimage

from posepile.dataset_writers.media import write_video
from posepile import build, joints
from posepile.dataset_writers import muco_composite as writer
from posepile.dataset_writers.muco_composite import CAMERAS, IMSHAPE, N_FRAMES
from posepile.datasets import common, muco_composite
from posepile.datasets.skip_counts import recording_skips
from posepile.shards import read_shards

# drop_hidden=False keeps all 4 persons of every composite for the pixel checks; the rule has
# its own test.
OPTIONS = dict(cameras=CAMERAS, first_frame=0, num_composites=6, seed=3, drop_hidden=False)
SKIP_BEYOND = 'candidate frame beyond the end of the image or mask video (candidate person-frames)'
SKIP_OUTSIDE = 'no joint inside the image (candidate person-frames)'
SKIP_HIDDEN = "person hidden: every joint in the image lies in a nearer person's box"


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('3dhp_muco')
    truth = writer.write(root)
    return root, truth


def convert(root, **options):
    return list(muco_composite.convert(root, **{**OPTIONS, **options}))


def by_composite(examples):
    groups = {}
    for ex in examples:
        groups.setdefault(ex.sequence, []).append(ex)
    return groups


def read_frame(path, index):
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame[..., ::-1]


def hand_composite(root, group):
    """Expected image and visible masks of a composite, from the raw files (hard edges)."""
    layers = []
    for ex in group:
        subject, seq = ex.extra['source_sequence'].split('/')
        seq_dir = root / subject / seq
        t, video = ex.extra['source_frame'], f'video_{ex.camera_id}.avi'
        x, y, w, h = common.box_around_points(ex.camera.world_to_image(ex.world_coords),
                                              margin=0.2, imshape=IMSHAPE)
        region = np.zeros(IMSHAPE, bool)
        x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
        region[y0:int(np.ceil(y + h)) + 1, x0:int(np.ceil(x + w)) + 1] = True
        layers.append(dict(
            rgb=read_frame(seq_dir / 'imageSequence' / video, t),
            body=(read_frame(seq_dir / 'FGmasks' / video, t)[..., 0] >= 128) & region,
            chair=read_frame(seq_dir / 'ChairMasks' / video, t)[..., 0] < 128,
            depth=ex.camera.world_to_camera(ex.world_coords)[4, 2],
            key=(subject, seq, int(ex.camera_id), t)))
    order = np.argsort([-layer['depth'] for layer in layers])  # far to near
    image = layers[order[0]]['rgb'].copy()
    for k in order[1:]:
        for m in (layers[k]['chair'], layers[k]['body']):
            image[m] = layers[k]['rgb'][m]
    visible, in_front = [None] * len(layers), np.zeros(IMSHAPE, bool)
    for k in order[::-1]:
        visible[k] = layers[k]['body'] & ~in_front
        in_front |= layers[k]['body'] | layers[k]['chair']
    return image, visible, layers, order


def test_examples_tracks_and_geometry(dataset):
    root, truth = dataset
    examples = convert(root)
    assert len(examples) == 6 * 4
    names = tuple(joints.union_names('3dhp'))
    assert examples[0].joint_names == names and names[4] == 'pelv_3dhp'
    assert {ex.split for ex in examples} == {'train'}
    assert {ex.dataset for ex in examples} == {'muco_composite'}
    groups = by_composite(examples)
    assert sorted(groups) == [f'{i:06d}' for i in range(6)]
    for i, (composite_id, group) in enumerate(sorted(groups.items())):
        assert [ex.person for ex in group] == [0, 1, 2, 3]
        assert {ex.camera_id for ex in group} == {str(CAMERAS[i % 2])}
        assert len({ex.extra['subject'] for ex in group}) == 4  # different subjects
        assert len({id(ex.image) for ex in group}) == 1
        assert {ex.frame for ex in group} == {0}
    for ex in examples:
        subject, seq = ex.extra['source_sequence'].split('/')
        t = truth[subject, seq, int(ex.camera_id)]
        world = t['world'][ex.extra['source_frame']]
        np.testing.assert_allclose(ex.world_coords, world, atol=0.05)  # mm, world frame
        projected = ex.camera.world_to_image(ex.world_coords)
        assert np.max(np.abs(projected - t['camera'].world_to_image(world))) < 1.0
        x, y = np.round(projected[4]).astype(int)  # the pelvis is on that person's body
        assert (t['body'] | t['chair'])[ex.extra['source_frame'], y, x]
        bx, by, bw, bh = ex.box  # around the joints, clipped to the image
        in_image = np.clip(projected, -0.5, [IMSHAPE[1] - 0.5, IMSHAPE[0] - 0.5])
        assert np.all((in_image >= [bx - 1e-3, by - 1e-3]) &
                      (in_image <= [bx + bw + 1e-3, by + bh + 1e-3]))
        assert ex.extra['depth_mm'] == pytest.approx(
            t['camera'].world_to_camera(world)[4, 2], abs=0.05)
    # S4/Seq2's lifted last row and S3/Seq1's missing mask frame (camera 0) never appear.
    sources = {(ex.extra['source_sequence'], ex.camera_id, ex.extra['source_frame'])
               for ex in convert(root, num_composites=60)}
    assert not {s for s in sources if s[0] == 'S4/Seq2' and s[2] == 2}
    assert ('S3/Seq1', '0', 2) not in sources and ('S3/Seq1', '5', 2) in sources


def test_composite_pixels_and_visible_masks(dataset):
    root, truth = dataset
    examples = convert(root, feather_sigma_px=0.0)
    overlap_pixels = chair_pixels = shrunk_pixels = 0
    for group in by_composite(examples).values():
        image = group[0].image()
        expected, visible, layers, order = hand_composite(root, group)
        assert image.shape == (*IMSHAPE, 3) and image.dtype == np.uint8
        # Where a nearer person covers a farther one, the pixel is the nearer person's.
        for near_rank, k in enumerate(order[::-1]):
            for j in order[::-1][near_rank + 1:]:
                overlap = visible[k] & layers[j]['body']
                overlap_pixels += overlap.sum()
                np.testing.assert_array_equal(image[overlap], layers[k]['rgb'][overlap])
        # A pasted person's chair covers the farther ones, unless someone nearer is on top.
        for rank in range(1, len(order)):
            k, farther, nearer = order[rank], order[:rank], order[rank + 1:]
            on_top = np.any([layers[j]['body'] | layers[j]['chair'] for j in nearer]
                            + [np.zeros(IMSHAPE, bool)], axis=0)
            shown = layers[k]['chair'] & np.any([layers[j]['body'] for j in farther], axis=0)
            shown &= ~on_top
            chair_pixels += shown.sum()
            np.testing.assert_array_equal(image[shown], layers[k]['rgb'][shown])
        # Outside every pasted layer the farthest person's frame shows through.
        pasted = np.any([layers[k]['body'] | layers[k]['chair'] for k in order[1:]], axis=0)
        np.testing.assert_array_equal(image[~pasted], layers[order[0]]['rgb'][~pasted])
        np.testing.assert_array_equal(image, expected)
        for ex, want, layer in zip(group, visible, layers):
            mask = ex.mask()
            assert mask.dtype == bool and mask.shape == IMSHAPE
            np.testing.assert_array_equal(mask, want)
            # Occluded persons' masks shrink by what nearer persons and chairs cover.
            assert not np.any(mask & ~layer['body'])
            shrunk_pixels += (layer['body'] & ~mask).sum()
            if ex.person == order[-1]:
                np.testing.assert_array_equal(mask, layer['body'])  # the nearest: whole
            # The red channel is the person: the decoded mask matches the rendered body.
            subject, seq, cam, t = layer['key']
            body_truth = truth[subject, seq, cam]['body'][t]
            iou = (layer['body'] & body_truth).sum() / (layer['body'] | body_truth).sum()
            assert iou > 0.9
    assert overlap_pixels > 5000 and chair_pixels > 20 and shrunk_pixels >= overlap_pixels


def test_feathered_edges_keep_interiors(dataset):
    root, _ = dataset
    group = by_composite(convert(root, num_composites=2))['000001']  # default sigma 2 px
    image = group[0].image()
    _, visible, layers, order = hand_composite(root, group)
    nearest = layers[order[-1]]
    # OpenCV's kernel for sigma 2 spans 17 x 17 px: beyond it nothing is blended.
    support = np.ones((17, 17), bool)
    core = scipy.ndimage.binary_erosion(nearest['body'], structure=support)
    assert core.sum() > 20
    np.testing.assert_array_equal(image[core], nearest['rgb'][core])
    pasted = np.any([layers[k]['body'] | layers[k]['chair'] for k in order[1:]], axis=0)
    far = ~scipy.ndimage.binary_dilation(pasted, structure=support)
    assert far.sum() > 1000
    np.testing.assert_array_equal(image[far], layers[order[0]]['rgb'][far])
    edge = scipy.ndimage.binary_dilation(nearest['body']) & ~nearest['body']
    assert np.any(image[edge] != nearest['rgb'][edge])  # blended, not cut
    np.testing.assert_array_equal(group[3].mask(), visible[3])  # masks stay hard


def test_seeded_and_picklable(dataset):
    root, _ = dataset

    def draw(**options):
        return [(ex.sequence, ex.person, ex.camera_id, ex.extra['source_sequence'],
                 ex.extra['source_frame']) for ex in convert(root, **options)]

    assert draw() == draw()
    assert draw() != draw(seed=4)
    a, b = convert(root)[5], pickle.loads(pickle.dumps(convert(root)[5]))
    np.testing.assert_array_equal(a.image(), b.image())
    np.testing.assert_array_equal(a.mask(), b.mask())
    pairs = by_composite(convert(root, persons_per_image=2, num_composites=5))
    assert all(len({ex.extra['subject'] for ex in g}) == 2 for g in pairs.values())
    assert muco_composite.PAPER_CAMERAS == tuple(range(11))


def test_hidden_persons_are_dropped_and_counted(dataset):
    root, _ = dataset
    everyone = convert(root, feather_sigma_px=0.0)
    with recording_skips() as skips:
        kept = convert(root, feather_sigma_px=0.0, drop_hidden=True)
    # Reference, one person at a time: hidden = every in-image joint inside the box of someone
    # nearer (by pelvis depth).
    expected_hidden = set()
    for group in by_composite(everyone).values():
        for ex in group:
            points = ex.camera.world_to_image(ex.world_coords)
            in_image = [0 <= x < IMSHAPE[1] and 0 <= y < IMSHAPE[0] for x, y in points]
            nearer_boxes = [o.box for o in group if o.extra['depth_mm'] < ex.extra['depth_mm']]
            covered = [any(bx <= x <= bx + bw and by <= y <= by + bh
                           for bx, by, bw, bh in nearer_boxes) for x, y in points]
            if all(c or not i for c, i in zip(covered, in_image)):
                expected_hidden.add((ex.sequence, ex.person))
    assert expected_hidden  # the fixture's subjects stand behind each other
    assert {(ex.sequence, ex.person) for ex in kept} == (
        {(ex.sequence, ex.person) for ex in everyone} - expected_hidden)
    assert skips == Counter({('muco_composite', SKIP_HIDDEN): len(expected_hidden),
                             ('muco_composite', SKIP_BEYOND): 1,
                             ('muco_composite', SKIP_OUTSIDE): 2})
    # Every person with no visible pixel is among the dropped ones.
    invisible = {(ex.sequence, ex.person) for ex in everyone if not ex.mask().any()}
    assert invisible and invisible <= expected_hidden


def test_bad_inputs(dataset, tmp_path):
    root, _ = dataset
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    fg = bad / 'S1/Seq1/FGmasks/video_0.avi'
    fg.rename(fg.with_suffix('.bak'))
    with pytest.raises(common.DatasetFormatError,
                       match=r'missing file .*S1/Seq1/FGmasks/video_0\.avi \(expected: the '
                             r'foreground-mask video'):
        convert(bad)
    fg.with_suffix('.bak').rename(fg)

    chair = bad / 'S2/Seq2/ChairMasks/video_5.avi'
    chair.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*ChairMasks/video_5\.avi'):
        convert(bad)
    assert len(convert(bad, chairs=False)) == 24
    shutil.copy(root / 'S2/Seq2/ChairMasks/video_5.avi', chair)

    write_video(fg, np.zeros((N_FRAMES, 60, 80, 3), np.uint8), fourcc='MJPG')
    with pytest.raises(common.DatasetFormatError,
                       match=r'FGmasks/video_0\.avi: frames are 80x60 but .*imageSequence/'
                             r'video_0\.avi has 160x120'):
        convert(bad)
    fg.write_bytes(b'not a video' * 50)
    with pytest.raises(common.DatasetFormatError, match=r'FGmasks/video_0\.avi: cannot be opened'):
        convert(bad)

    with pytest.raises(ValueError, match=r'camera 0 has candidate frames of 0 subjects'):
        convert(root, first_frame=180)  # the authors' default skips the fixture's 3 frames
    with pytest.raises(ValueError, match=r'persons_per_image=5 needs that many'):
        convert(root, persons_per_image=5)
    with pytest.raises(ValueError, match=r'cameras must be indices in 0\.\.13'):
        convert(root, cameras=[14])


def test_build_cli(dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / 'out'
    args = ['--dataset=muco_composite', f'--root={root}', f'--out={out}', '--crop-size=32',
            '--num-shards=2', '--workers=2', '--converter-option=cameras=[0, 5]',
            '--converter-option=first_frame=0', '--converter-option=num_composites=3',
            '--converter-option=drop_hidden=false']
    assert build.main(args) == 0
    manifest = json.loads((out / 'manifest.json').read_text())
    info = manifest['datasets']['muco_composite']
    # One example per track (composite, slot, camera): the 100 mm rule drops none of them.
    assert info['num_before_dedup'] == 12 and info['num_after_dedup'] == 12
    assert info['skipped'] == {SKIP_BEYOND: 1, SKIP_OUTSIDE: 2}
    from posepile.tfrecord_schema import decode_example
    records = [decode_example(r, decode_image=False)
               for r in read_shards([out / shard['file'] for shard in manifest['shards']])]
    assert len(records) == 12 and all(r['has_mask'] for r in records)
    # SHARD_BY = 'sequence': a composite's persons share one shard (its image is decoded once).
    shards_of = {}
    for shard in manifest['shards']:
        for record in read_shards([out / shard['file']]):
            shards_of.setdefault(decode_example(record, decode_image=False)['sequence'],
                                 set()).add(shard['file'])
    assert len(shards_of) == 3 and all(len(files) == 1 for files in shards_of.values())
    assert build.main([*args[:3], '--converter-option=persons=2']) == 2
