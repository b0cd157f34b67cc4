"""MuCo-3DHP (3DMPPE release) converter on a tiny fixture in the real format.

Layout as released: MuCo/data/MuCo-3DHP.json (COCO-style, per-image f/c, per-person
keypoints_cam [21, 3] mm, keypoints_img [21, 2] px, keypoints_vis [21], bbox [x, y, w, h]) and the
composite JPEGs under augmented_set/ and unaugmented_set/. Real composites are 2048x2048 with up
to four people; the fixture's are 160x120 with two rendered people each (the nearer one pasted
over the farther one through its mask, as compositing does).
"""
import json
import shutil

import numpy as np
import pytest

from posepile.dataset_writers.media import read_image, write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.datasets import common, muco

IMSHAPE = (120, 160)
PELVIS_ROW = 14
# Row 14 (Pelvis) takes the rendered body's root point, so the pelvis lands on the body.
HIDDEN_OF_ROW = (np.arange(21) - PELVIS_ROW) % 21
# Person 1 stands to the right of and nearer to the camera than person 0 (world mm, z up).
OFFSETS = np.array([[0.0, 0.0, 0.0], [650.0, -900.0, 0.0]])
HIDDEN_VIS = [17, 18]  # person 0's hands are marked invisible in keypoints_vis


def render_composites(cam, n_images, seed):
    """(world joints [2, T, 21, 3] mm, composites [T, H, W, 3], visible masks [2, T, H, W])."""
    people = []
    for i, offset in enumerate(OFFSETS):
        # A person moved by `offset` looks like the original seen from a camera moved by -offset.
        moved = cam.copy()
        moved.t = cam.t - offset
        seq = make_people_sequence([moved], IMSHAPE, n_frames=n_images, n_joints=21,
                                   seed=seed * 10 + i, step_mm_per_frame=200.0)[0]
        people.append((seq.joints[:, HIDDEN_OF_ROW].astype(np.float64) + offset, seq))
    back, front = people[0][1], people[1][1]
    images = np.where(front.masks[..., None], front.images, back.images)
    masks = np.stack([back.masks & ~front.masks, front.masks])
    return np.stack([p[0] for p in people]), images, masks


def bbox_of(mask):
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]


def annotation(ann_id, image_id, cam, world, mask, vis):
    return {'id': ann_id, 'image_id': image_id, 'category_id': 1, 'iscrowd': 0,
            'bbox': bbox_of(mask), 'area': float(mask.sum()),
            'keypoints_cam': cam.world_to_camera(world).tolist(),
            'keypoints_img': cam.world_to_image(world).tolist(),
            'keypoints_vis': [int(v) for v in vis]}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('muco') / 'MuCo'
    data_dir = root / 'data'
    cam_a = default_camera(IMSHAPE, focal=170.0)
    cam_b = default_camera(IMSHAPE, yaw_deg=15.0, focal=190.0)
    cam_b.intrinsic_matrix[1, 2] -= 2.5  # an off-centre principal point
    images, annotations, truth = [], [], {}
    image_id = 0
    for cam, subset, n_images, seed in ((cam_a, 'augmented_set', 2, 1),
                                        (cam_b, 'unaugmented_set', 1, 2)):
        world, composites, masks = render_composites(cam, n_images, seed)
        for t in range(n_images):
            file_name = f'{subset}/{image_id + 1:06d}.jpg'
            write_jpeg(data_dir / file_name, composites[t])
            K = cam.intrinsic_matrix
            images.append({'id': image_id, 'file_name': file_name, 'width': IMSHAPE[1],
                           'height': IMSHAPE[0], 'f': [K[0, 0], K[1, 1]], 'c': [K[0, 2], K[1, 2]]})
            for person in (0, 1):
                vis = np.ones(21, int)
                if person == 0:
                    vis[HIDDEN_VIS] = 0
                ann_id = 100 * image_id + person
                annotations.append(annotation(ann_id, image_id, cam, world[person, t],
                                              masks[person, t], vis))
                truth[ann_id] = (cam, world[person, t], composites[t], masks[person, t],
                                 subset, vis)
            if image_id == 0:  # two persons the converter drops on purpose
                few = annotation(7, 0, cam, world[0, t], masks[0, t], np.arange(21) < 3)
                empty = annotation(8, 0, cam, world[1, t], masks[1, t], np.ones(21))
                empty['bbox'][2] = 0.0
                annotations += [few, empty]
            image_id += 1
    (data_dir / muco.ANNOTATION_FILE).write_text(json.dumps(
        {'images': images, 'annotations': annotations,
         'categories': [{'id': 1, 'name': 'person'}]}))
    return root, truth, list(muco.convert(root))


def test_examples(dataset):
    root, truth, examples = dataset
    assert [(ex.sequence, ex.person) for ex in examples] == [
        ('augmented_set/000001.jpg', 0), ('augmented_set/000001.jpg', 1),
        ('augmented_set/000002.jpg', 100), ('augmented_set/000002.jpg', 101),
        ('unaugmented_set/000003.jpg', 200), ('unaugmented_set/000003.jpg', 201)]
    names = tuple(joints.union_names('muco_21'))
    assert names[:3] == ('htop_3dhp', 'neck_3dhp', 'rsho_3dhp')
    assert names[14:] == ('pelv_3dhp', 'spin_3dhp', 'head_3dhp', 'rhan_3dhp', 'lhan_3dhp',
                          'rtoe_3dhp', 'ltoe_3dhp')
    for ex in examples:
        cam, world, image, mask, subset, vis = truth[ex.person]
        assert ex.joint_names == names and ex.dataset == 'muco' and ex.split == 'train'
        assert (ex.camera_id, ex.frame, ex.extra['subset']) == ('', 0, subset)
        # World = camera frame, millimetres (the fixture's people stand 3.5-4.6 m away).
        np.testing.assert_allclose(ex.world_coords, cam.world_to_camera(world), atol=1e-3)
        assert 3000 < ex.world_coords[PELVIS_ROW, 2] < 5000
        np.testing.assert_allclose(ex.camera.R, np.eye(3))
        np.testing.assert_allclose(ex.camera.t, np.zeros(3))
        projected = ex.camera.world_to_image(ex.world_coords.astype(np.float64))
        assert np.max(np.abs(projected - cam.world_to_image(world))) < 1.0
        assert ex.extra['reprojection_error_px'] < 1e-3
        x, y = np.round(projected[PELVIS_ROW]).astype(int)
        assert mask[y, x]
        np.testing.assert_allclose(ex.box, bbox_of(mask))
        np.testing.assert_array_equal(ex.extra['visibility'], vis.astype(bool))
        assert np.mean(np.abs(read_image(ex.image).astype(float) - image)) < 10


def test_joints_merge_with_3dhp():
    assert set(joints.union_names('muco_21')) <= set(joints.union_names('3dhp'))
    union = joints.get_union('real')
    muco_rows = joints.union_indices('muco_21', 'real')
    tdhp = dict(zip(joints.get_skeleton('3dhp').names, joints.union_indices('3dhp', 'real')))
    # The 3DHP toolkit's 'extended' set: annot3 indices of the 21 rows, in order.
    extended = [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6, 17, 12, 27, 22]
    expected = [tdhp[joints.get_skeleton('3dhp').names[i]] for i in extended]
    np.testing.assert_array_equal(muco_rows, expected)
    assert union.names[muco_rows[17]] == 'rhan_3dhp'


def test_subsets_and_data_dir_root(dataset):
    root = dataset[0]
    only = list(muco.convert(root / 'data', subsets=['unaugmented_set']))
    assert [ex.person for ex in only] == [200, 201]
    with pytest.raises(ValueError, match='unknown MuCo-3DHP subset'):
        list(muco.convert(root, subsets=['test_set']))


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=muco', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['muco']
    assert info['before_dedup'] == {'train': 6}
    assert info['num_after_dedup'] == 6  # every person in every composite is its own track
    assert info['skipped'] == {
        'empty box (bbox width or height <= 0)': 1,
        'fewer visible joints (keypoints_vis) than min_visible_joints': 1}


def rewrite(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_bad_inputs(dataset, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(dataset[0], bad)
    path = bad / 'data' / muco.ANNOTATION_FILE
    original = path.read_text()

    def expect_error(edit, pattern):
        path.write_text(original)
        rewrite(path, edit)
        with pytest.raises(common.DatasetFormatError, match=pattern):
            list(muco.convert(bad))

    def short_cam(d):
        d['annotations'][2]['keypoints_cam'] = d['annotations'][2]['keypoints_cam'][:20]
    expect_error(short_cam, r"MuCo-3DHP\.json \[annotation id 7\]: field 'keypoints_cam' has "
                            r"shape \(20, 3\), expected \[21x3\]")

    def flat_img(d):
        d['annotations'][0]['keypoints_img'] = np.ravel(
            d['annotations'][0]['keypoints_img']).tolist()
    expect_error(flat_img, r"\[annotation id 0\]: field 'keypoints_img' has shape \(42,\)")

    def bad_vis(d):
        d['annotations'][1]['keypoints_vis'] = [2] * 21
    expect_error(bad_vis, r"\[annotation id 1\]: field 'keypoints_vis' has values \[2\.0\]")

    def text_id(d):
        d['annotations'][3]['id'] = 'p1'
    expect_error(text_id, r"\[annotation id p1\]: field 'id' is 'p1', expected an integer")

    def no_focal(d):
        del d['images'][1]['f']
    expect_error(no_focal, r"MuCo-3DHP\.json \[images 1\]: missing field 'f'")

    def orphan(d):
        d['annotations'][0]['image_id'] = 99
    expect_error(orphan, r'image_id\(s\) \[99\] not in "images"')

    def escape(d):
        d['images'][0]['file_name'] = '../../outside.jpg'
    expect_error(escape, 'escapes the dataset root')

    def other_folder(d):
        d['images'][2]['file_name'] = 'images/000003.jpg'
    expect_error(other_folder, r"\[image id 2\]: field \"file_name\" is 'images/000003\.jpg', "
                               r"expected a path under one of \['augmented_set'")

    path.write_text(original)
    (bad / 'data/unaugmented_set/000003.jpg').unlink()
    with pytest.raises(common.DatasetFormatError,
                       match=r'missing file .*unaugmented_set/000003\.jpg'):
        list(muco.convert(bad))
    path.write_text('{"images": [')
    with pytest.raises(common.DatasetFormatError, match=r'MuCo-3DHP\.json: not valid JSON'):
        list(muco.convert(bad))
    path.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'missing file .*data/MuCo-3DHP\.json'):
        list(muco.convert(bad))
