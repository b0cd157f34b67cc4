"""HSPACE converter on a tiny fixture in the real format (TFRecords of tf.train.Example written
by TensorFlow's own writer, with the release's feature names). Real frames are larger; the
fixture's are 160x120 with intrinsics to match."""
import json
import pickle
import shutil

import numpy as np
import pytest
import tensorflow as tf

from posepile import build, joints
from posepile.dataset_writers import hspace as writer
from posepile.dataset_writers.hspace import IMSHAPE, example_bytes
from posepile.cropping import decode_rle
from posepile.datasets import common, hspace


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('hspace')
    cam, people = writer.write(root)
    return root, cam, people, list(hspace.convert(root))


def test_examples(dataset):
    root, cam, people, examples = dataset
    assert [(ex.frame, ex.person) for ex in examples] == [(0, 0), (1, 0), (2, 0)]
    for ex in examples:
        truth_cam = cam.world_to_camera(people.joints[ex.frame])
        assert ex.joint_names == tuple(joints.union_names('ghum'))
        assert ex.joint_names[:2] == ('pelv_ghum', 'spin1_ghum')
        assert ex.sequence == 'scene_0003' and ex.split == 'train'
        np.testing.assert_allclose(ex.world_coords, truth_cam, atol=0.01)
        projected = ex.camera.world_to_image(ex.world_coords)
        assert np.max(np.abs(projected - cam.world_to_image(people.joints[ex.frame]))) < 1.0
        np.testing.assert_array_equal(decode_rle(ex.mask).astype(bool), people.masks[ex.frame])
        np.testing.assert_array_equal(ex.image(), people.images[ex.frame])  # png: lossless
        # The lazy image survives pickling (build workers may receive it).
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(ex.image))(),
                                      people.images[ex.frame])


def test_build_cli(dataset, tmp_path):
    out = tmp_path / 'out'
    assert build.main(['--dataset=hspace', f'--root={dataset[0]}', f'--out={out}',
                       '--crop-size=32', '--num-shards=1']) == 0
    info = json.loads((out / 'manifest.json').read_text())['datasets']['hspace']
    assert info['before_dedup'] == {'train': 3}
    assert info['num_after_dedup'] == 3  # 150 mm/frame walk: all kept
    # Per frame, the tiny and the invisible character.
    assert info['skipped'] == {'box smaller than min_box_side_px': 3, 'empty person mask': 3}


def test_bad_inputs(dataset, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(dataset[0], bad)
    path = bad / '2021_01/train/scene_0003.tfrecord'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 10])
    with pytest.raises(common.DatasetFormatError, match=r'scene_0003\.tfrecord: record at byte '
                                                        r'\d+ is truncated'):
        list(hspace.convert(bad))
    cam = dataset[1]
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(example_bytes(np.zeros((*IMSHAPE, 3), np.uint8), np.zeros(IMSHAPE, np.uint8),
                                   cam.intrinsic_matrix, [np.zeros((62, 3))], [1]))
    with pytest.raises(common.DatasetFormatError,
                       match=r"scene_0003\.tfrecord \[record 0\]: feature 'RIGGED_0/joints_3d' "
                             r"has 186 values, expected 189"):
        list(hspace.convert(bad))
    path.write_bytes(b'\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00garba\x00\x00\x00\x00')
    with pytest.raises(common.DatasetFormatError, match=r'\[record 0\]: not a tf\.train\.Example'):
        list(hspace.convert(bad))
    path.unlink()
    with pytest.raises(common.DatasetFormatError, match=r'train: no \*\.tfrecord files'):
        list(hspace.convert(bad))
