"""COCO keypoints converter on a tiny fixture in the real format (person_keypoints JSON + JPEGs).

Real COCO images are ~640x480; the fixture's are 160x120 (COCO has no calibration to scale).
"""
import json
import shutil

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_lib

from posepile.dataset_writers.media import read_image, write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import build, joints
from posepile.cropping import decode_rle
from posepile.datasets import coco, common

IMSHAPE = (120, 160)


def polygon_of(mask):
    """COCO polygon (corner-origin continuous coords) tracing the mask's outer boundary."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    largest = max(contours, key=cv2.contourArea)[:, 0].astype(float) + 0.5
    return [largest.reshape(-1).tolist()]


def keypoints_of(points2d, visibility):
    kp = np.concatenate([np.round(points2d), np.asarray(visibility)[:, None]], axis=1)
    kp[np.asarray(visibility) == 0] = 0
    return kp.reshape(-1).tolist()


def category():
    return [{'id': 1, 'name': 'person', 'supercategory': 'person',
             'keypoints': list(coco.COCO_KEYPOINT_NAMES), 'skeleton': [[16, 14], [14, 12]]}]


def write_dataset(root):
    """Writes the fixture under `root`; returns (truth per kept annotation id, visibility)."""
    cam = default_camera(IMSHAPE, distance_mm=3500)
    people = make_people_sequence([cam], IMSHAPE, n_frames=3, n_joints=17, seed=3)[0]
    truth = {}
    visibility = np.full(17, 2)
    visibility[[3, 4]] = [0, 1]  # an unlabelled and an occluded-but-labelled keypoint
    for split, subdir, frames in (('train', 'train2017', [0, 1]), ('validation', 'val2017', [2])):
        images, annotations = [], []
        for frame in frames:
            image_id = 1000 + frame
            name = f'{image_id:012d}.jpg'
            write_jpeg(root / subdir / name, people.images[frame])
            images.append({'id': image_id, 'file_name': name, 'height': IMSHAPE[0],
                           'width': IMSHAPE[1], 'license': 1, 'coco_url': ''})
            points = cam.world_to_image(people.joints[frame])
            ys, xs = np.nonzero(people.masks[frame])
            bbox = [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]
            ann = {'id': 10 * frame + 1, 'image_id': image_id, 'category_id': 1, 'iscrowd': 0,
                   'segmentation': polygon_of(people.masks[frame]), 'area': float(len(xs)),
                   'bbox': bbox, 'num_keypoints': 16,
                   'keypoints': keypoints_of(points, visibility)}
            crowd = {**ann, 'id': 10 * frame + 2, 'iscrowd': 1,
                     'segmentation': {'size': list(IMSHAPE), 'counts': [0, 5, 19195]}}
            tiny = {**ann, 'id': 10 * frame + 3, 'bbox': [5.0, 5.0, 20.0, 30.0]}
            few = {**ann, 'id': 10 * frame + 4,
                   'keypoints': keypoints_of(points, [2] * 5 + [0] * 12)}
            annotations += [ann, crowd, tiny, few]
            truth[10 * frame + 1] = (points, people.images[frame], people.masks[frame], bbox)
        (root / 'annotations').mkdir(exist_ok=True)
        (root / 'annotations' / f'person_keypoints_{subdir}.json').write_text(json.dumps(
            {'info': {}, 'licenses': [], 'images': images, 'annotations': annotations,
             'categories': category()}))
    return truth, visibility


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    truth, visibility = write_dataset(root)
    return root, truth, visibility, list(coco.convert(root))


def test_examples(dataset):
    root, truth, visibility, examples = dataset
    # Crowd, tiny (20x30 px box) and 5-keypoint annotations are skipped.
    assert [(ex.split, ex.person) for ex in examples] == \
        [('train', 1), ('train', 11), ('validation', 21)]
    for ex in examples:
        points, image, mask, bbox = truth[ex.person]
        assert ex.joint_names == tuple(joints.union_names('coco2d'))
        assert ex.joint_names[:3] == ('nose_coco', 'leye_coco', 'reye_coco')
        assert ex.is_2d_only and np.all(np.isnan(ex.world_coords))
        assert np.all(np.isnan(ex.coords2d[3]))
        labelled = visibility > 0
        np.testing.assert_allclose(ex.coords2d[labelled], np.round(points[labelled]))
        assert np.max(np.abs(ex.coords2d[labelled] - points[labelled])) <= 0.71
        np.testing.assert_array_equal(ex.extra['visibility'], visibility)
        np.testing.assert_allclose(ex.box, np.array(bbox) - [0.5, 0.5, 0, 0])
        assert np.mean(np.abs(read_image(ex.image).astype(float) - image)) < 10
        decoded = decode_rle(ex.mask).astype(bool)
        iou = np.sum(decoded & mask) / np.sum(decoded | mask)
        assert iou > 0.85
        x, y = np.round(ex.coords2d[0]).astype(int)
        assert mask[y, x]


def test_default_camera(dataset):
    ex = dataset[3][0]
    height, width = IMSHAPE
    # The outer edges of the larger side (x = -0.5 and W - 0.5) are 55 degrees apart.
    rays = ex.camera.image_to_camera(np.array([[-0.5, (height - 1) / 2],
                                               [width - 0.5, (height - 1) / 2]]))
    cos = rays[0] @ rays[1] / np.linalg.norm(rays[0]) / np.linalg.norm(rays[1])
    assert np.rad2deg(np.arccos(cos)) == pytest.approx(55.0, abs=1e-9)
    np.testing.assert_allclose(ex.camera.R, np.eye(3))
    np.testing.assert_allclose(ex.camera.t, np.zeros(3))
    np.testing.assert_allclose(ex.camera.world_to_image(np.array([[0.0, 0, 1000]])),
                               [[(width - 1) / 2, (height - 1) / 2]])


def test_annotation_mask_forms():
    square = np.zeros((10, 12), np.uint8)
    square[2:6, 3:8] = 1
    rle = mask_lib.encode(np.asfortranarray(square))
    compressed = {'size': [10, 12], 'counts': rle['counts'].decode('ascii')}
    # Uncompressed RLE: column-major run lengths starting with zeros.
    flat = square.reshape(-1, order='F')
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    uncompressed = {'size': [10, 12], 'counts': counts}
    polygon = [[3.0, 2.0, 8.0, 2.0, 8.0, 6.0, 3.0, 6.0]]
    for segmentation in (compressed, uncompressed, polygon):
        decoded = decode_rle(coco.annotation_mask(segmentation, 10, 12, 'x'))
        assert decoded.shape == (10, 12)
        assert np.sum(decoded != square) <= 9  # polygon rasterisation may differ at the border
    np.testing.assert_array_equal(decode_rle(coco.annotation_mask(compressed, 10, 12, 'x')),
                                  square)
    with pytest.raises(common.DatasetFormatError, match='f.json.*segmentation'):
        coco.annotation_mask([[1.0, 2.0, 3.0]], 10, 12, 'f.json')
    with pytest.raises(common.DatasetFormatError, match='differs from the image size'):
        coco.annotation_mask(compressed, 11, 12, 'f.json')


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=coco', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['coco']
    assert info['before_dedup'] == {'train': 2, 'validation': 1}
    assert info['num_after_dedup'] == 3  # every 2D person is its own track
    # Each of the 3 images has one crowd, one tiny and one 5-keypoint annotation.
    assert info['skipped'] == {'box smaller than min_box_side_px': 3,
                               'crowd annotation (iscrowd = 1)': 3,
                               'fewer labelled keypoints than min_keypoints': 3}
    assert info['num_skipped'] == 9


def test_bad_inputs(dataset, tmp_path):
    root = dataset[0]
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    path = bad / 'annotations/person_keypoints_val2017.json'
    data = json.loads(path.read_text())
    data['annotations'][0]['keypoints'] = data['annotations'][0]['keypoints'][:50]
    path.write_text(json.dumps(data))
    with pytest.raises(common.DatasetFormatError,
                       match=r"val2017\.json \[annotation id 21\]: field 'keypoints' has shape "
                             r"\(50,\), expected \[51\]"):
        list(coco.convert(bad, splits=['validation']))
    data['categories'][0]['keypoints'] = data['categories'][0]['keypoints'][::-1]
    path.write_text(json.dumps(data))
    with pytest.raises(common.DatasetFormatError, match='val2017.json: person keypoints are'):
        list(coco.convert(bad, splits=['validation']))
    path.write_text('{"images": [')
    with pytest.raises(common.DatasetFormatError, match='val2017.json: not valid JSON'):
        list(coco.convert(bad, splits=['validation']))
    path.unlink()
    with pytest.raises(common.DatasetFormatError,
                       match='missing file .*person_keypoints_val2017.json'):
        list(coco.convert(bad, splits=['validation']))
    with pytest.raises(ValueError, match="no annotated split"):
        list(coco.convert(bad, splits=['test']))
