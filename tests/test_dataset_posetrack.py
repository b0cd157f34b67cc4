"""PoseTrack 2018 converter on a tiny fixture in the release format: one COCO-like JSON per
video under posetrack_data/annotations/{train,val}/, 17 keypoint slots with the ears zeroed,
bbox and bbox_head, ignore_regions_x/_y, images under images/ (and posetrack_data/images/)."""
import json

import numpy as np
import pytest

from posepile.dataset_writers.media import read_image
from posepile import build, joints
from posepile.dataset_writers import posetrack as writer
from posepile.dataset_writers.posetrack import IMSHAPE, SLOTS, TRAIN_VIDEO, VAL_VIDEO
from posepile.datasets import common, posetrack
from posepile.datasets.skip_counts import recording_skips


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('posetrack')
    train, val, labelled, ignore = writer.write(root)
    with recording_skips() as skips:
        examples = list(posetrack.convert(root))
    return root, train, val, labelled, ignore, examples, dict(skips)


def test_examples(dataset):
    root, train, val, labelled, ignore, examples, skips = dataset
    assert [(e.sequence, e.frame, e.split) for e in examples] == [
        (TRAIN_VIDEO, 0, 'train'), (TRAIN_VIDEO, 2, 'train'), (VAL_VIDEO, 8, 'validation')]
    assert skips == {('posetrack', 'annotation without bbox'): 4,
                     ('posetrack', 'moved less than the 2D motion threshold since the last kept '
                                   'frame of its track'): 1}
    keep = [i for i in range(17) if i not in (3, 4)]  # the skeleton's slots
    for e in examples:
        points, image, bbox = (train if e.split == 'train' else val)[e.frame]
        assert e.is_2d_only and e.joint_names == tuple(joints.union_names('posetrack'))
        expected = np.where(labelled[keep, None] > 0, points[keep], np.nan)
        np.testing.assert_allclose(e.coords2d, expected, equal_nan=True)
        np.testing.assert_allclose(e.box, np.array(bbox) - [0.5, 0.5, 0, 0])
        assert np.mean(np.abs(read_image(e.image).astype(float) - image)) < 10
        np.testing.assert_allclose(e.camera.intrinsic_matrix[0, 2], (IMSHAPE[1] - 1) / 2)
    assert '/posetrack_data/images/val/' in examples[2].image
    assert '/posetrack_data/' not in examples[0].image
    regions = examples[0].extra['ignore_regions']
    np.testing.assert_allclose(regions[0], np.stack(
        [ignore[0][0], ignore[1][0]], axis=-1))
    assert examples[1].extra['ignore_regions'] == []


def test_joint_names_follow_the_file(dataset):
    names = joints.get_skeleton('posetrack').names
    assert len(names) == len(posetrack.FILE_NAMES) == 15
    assert names[:3] == ('nose', 'neck', 'htop')
    union = joints.get_union('real')
    assert union.names[union.mirror_perm[union.ids['lwri_posetrack']]] == 'rwri_posetrack'


def test_options(dataset, tmp_path):
    root = dataset[0]
    as_train = list(posetrack.convert(root, splits=['validation'], val_split='train'))
    assert [(e.sequence, e.split) for e in as_train] == [(VAL_VIDEO, 'train')]
    every = list(posetrack.convert(root, splits=['train'], motion_head_fraction=0.0))
    assert [e.frame for e in every] == [0, 1, 2]  # a zero threshold keeps every frame
    with pytest.raises(ValueError, match='no annotated split'):
        list(posetrack.convert(root, splits=['test']))


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=posetrack', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['posetrack']
    assert info['before_dedup'] == {'train': 2, 'validation': 1}
    assert info['num_after_dedup'] == 3 and info['num_skipped'] == 5


def test_bad_inputs(tmp_path):
    root = tmp_path / 'bad'
    writer.write(root)
    path = root / 'posetrack_data' / 'annotations' / 'train' / f'{TRAIN_VIDEO}.json'
    data = json.loads(path.read_text())
    data['images'][0]['ignore_regions_y'] = [[1.0, 2.0]]
    path.write_text(json.dumps(data))
    with pytest.raises(common.DatasetFormatError, match=r'ignore region 0 has 4 x and 2 y'):
        list(posetrack.convert(root))
    data['categories'][0]['keypoints'] = SLOTS[:5]
    path.write_text(json.dumps(data))
    with pytest.raises(common.DatasetFormatError, match='lack'):
        list(posetrack.convert(root))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(common.DatasetFormatError, match='annotation archive'):
        list(posetrack.convert(tmp_path / 'empty'))
