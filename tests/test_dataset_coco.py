"""COCO keypoints converter on a tiny fixture in the real format (person_keypoints JSON + JPEGs).

Real COCO images are ~640x480; the fixture's are 160x120 (COCO has no calibration to scale).
"""
import json
import shutil

import numpy as np
import pytest
from pycocotools import mask as mask_lib

from posepile.dataset_writers.media import read_image
from posepile import build, joints
from posepile.dataset_writers import coco as writer
from posepile.dataset_writers.coco import IMSHAPE
from posepile.cropping import decode_rle
from posepile.datasets import coco, common


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    truth, visibility = writer.write(root)
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
    # The outer edges of the larger side (x = -0.5 and W - 0.5) are 8 degrees apart (the
    # released code's camera for uncalibrated 2D data).
    rays = ex.camera.image_to_camera(np.array([[-0.5, (height - 1) / 2],
                                               [width - 0.5, (height - 1) / 2]]))
    cos = rays[0] @ rays[1] / np.linalg.norm(rays[0]) / np.linalg.norm(rays[1])
    assert np.rad2deg(np.arccos(cos)) == pytest.approx(8.0, abs=1e-7)
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
