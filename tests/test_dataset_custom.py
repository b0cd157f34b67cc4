"""The `custom` converter (a user's own dataset: dataset.json + skeleton.json + per-sequence
cameras, images or a video, joints3d.npy in mm, joints2d, optional boxes and masks) on a tiny
fixture, then end to end: build -> mix -> training steps -> export, each stage in a registry
that knows the new skeleton only from the files the previous stage wrote."""
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from posepile.dataset_writers.media import read_image, write_jpeg, write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile import build, joints, mix
from posepile.camera import camera_from_fov
from posepile.datasets import common, custom
from posepile.datasets.skip_counts import recording_skips

REPO = pathlib.Path(__file__).resolve().parents[1]
IMSHAPE = (120, 160)
N_FRAMES = 4
JOINT_NAMES = ['pelv', 'lhip', 'rhip', 'spin', 'lkne', 'rkne', 'thor', 'lank', 'rank', 'neck',
               'lfoo', 'rfoo', 'head', 'lsho', 'rsho', 'lelb', 'relb']
SKELETON = {
    'name': 'mylab', 'joints': JOINT_NAMES,
    'pairs': [[f'l{j}', f'r{j}'] for j in ('hip', 'kne', 'ank', 'foo', 'sho', 'elb')],
    'edges': 'pelv-spin-thor-neck-head,pelv-lhip-lkne-lank-lfoo,pelv-rhip-rkne-rank-rfoo,'
             'neck-lsho-lelb,neck-rsho-relb',
    'source': 'test fixture'}
GIVEN_BOX = [30.0, 10.0, 60.0, 100.0]


def camera_json(cam):
    return {'intrinsic_matrix': cam.intrinsic_matrix.tolist(), 'rotation': cam.R.tolist(),
            'translation': (-cam.R @ cam.t).tolist()}


def write_dataset(root):
    """Writes the fixture under `root`; returns what the converter must recover."""
    root = pathlib.Path(root)
    cams = [default_camera(IMSHAPE, distance_mm=4000, yaw_deg=yaw) for yaw in (0, 60)]
    cams[1].distortion_coeffs = np.array([-0.1, 0.02, 0.0, 0.0, 0.0])
    people = make_people_sequence(cams, IMSHAPE, n_frames=N_FRAMES, n_joints=17, seed=5,
                                  step_mm_per_frame=250.0)
    world = people[0].joints  # [F, 17, 3] mm
    joints3d = np.full((N_FRAMES, 2, 17, 3), np.nan)
    joints3d[:3, 0] = world[:3]            # person 0: frames 0-2 (absent in frame 3)
    joints3d[1, 1, :2] = world[1, :2] + 5  # person 1: two joints in frame 1 only -> skipped
    seq = root / 'walk'
    seq.mkdir(parents=True)
    np.save(seq / 'joints3d.npy', joints3d)
    # Both placements of a camera: c0 by its OpenCV translation, c1 by its optical centre.
    (seq / 'cameras.json').write_text(json.dumps({
        'c0': camera_json(cams[0]),
        'c1': {'intrinsic_matrix': cams[1].intrinsic_matrix.tolist(),
               'rotation': cams[1].R.tolist(), 'optical_center': cams[1].t.tolist(),
               'distortion_coeffs': cams[1].distortion_coeffs.tolist()}}))
    (seq / 'images' / 'c0').mkdir(parents=True)
    for f in range(N_FRAMES):
        cv2.imwrite(str(seq / 'images' / 'c0' / f'{f:06d}.png'), people[0].images[f][..., ::-1])
    write_video(seq / 'videos' / 'c1.avi', people[1].images, fourcc='MJPG')
    (seq / 'masks' / 'c0').mkdir(parents=True)
    for f in (0, 2):  # masks for some frames only
        label = people[0].masks[f].astype(np.uint8)  # person 0 -> label 1
        cv2.imwrite(str(seq / 'masks' / 'c0' / f'{f:06d}.png'), label)
    boxes = np.full((N_FRAMES, 2, 4), np.nan)
    boxes[0, 0] = GIVEN_BOX
    (seq / 'boxes').mkdir()
    np.save(seq / 'boxes' / 'c0.npy', boxes)

    photos = root / 'photos'  # 2D only, no calibration
    guess = camera_from_fov(IMSHAPE, 55.0)
    still = make_people_sequence([guess], IMSHAPE, n_frames=3, n_joints=17, seed=6)[0]
    joints2d = guess.world_to_image(still.joints)[:, None]
    joints2d[2, 0, 5] = np.nan  # an unlabelled joint
    for f in range(3):
        write_jpeg(photos / 'images' / 'phone' / f'{f + 10:04d}.jpg', still.images[f])
    (photos / 'joints2d').mkdir()
    padded = np.full((13, 1, 17, 2), np.nan)
    padded[10:] = joints2d
    np.save(photos / 'joints2d' / 'phone.npy', padded)

    (root / 'skeleton.json').write_text(json.dumps(SKELETON))
    (root / 'dataset.json').write_text(json.dumps({
        'name': 'mylab', 'skeleton': 'skeleton.json', 'world_up': [0, 0, 1],
        'splits': {'validation': ['photos']}}))
    return {'cams': cams, 'world': world, 'people': people, 'joints2d': padded, 'guess': guess}


@pytest.fixture(autouse=True)
def fresh_registry():
    joints.clear_user_skeletons()
    yield
    joints.clear_user_skeletons()


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('mylab')
    truth = write_dataset(root)
    with recording_skips() as skips:
        examples = list(custom.convert(root))
    return root, truth, examples, dict(skips)


def test_3d_examples(dataset):
    root, truth, examples, skips = dataset
    walk = [e for e in examples if e.sequence == 'walk']
    assert [(e.camera_id, e.frame, e.person) for e in walk] == \
        [('c0', 0, 0), ('c0', 1, 0), ('c0', 2, 0), ('c1', 0, 0), ('c1', 1, 0), ('c1', 2, 0)]
    assert skips == {('mylab', 'fewer than min_joints_in_image labelled joints in the image'): 2}
    for e in walk:
        assert e.dataset == 'mylab' and e.split == 'train' and not e.is_2d_only
        assert e.joint_names == tuple(f'{j}_mylab' for j in JOINT_NAMES)
        np.testing.assert_allclose(e.world_coords, truth['world'][e.frame], atol=1e-3)
        cam = truth['cams'][int(e.camera_id[1])]
        np.testing.assert_allclose(e.camera.R, cam.R, atol=1e-12)
        np.testing.assert_allclose(e.camera.t, cam.t, atol=1e-9)
        np.testing.assert_allclose(e.camera.intrinsic_matrix, cam.intrinsic_matrix)
        np.testing.assert_allclose(e.camera.world_up, [0, 0, 1])
    c0, c1 = walk[0], walk[3]
    assert isinstance(c0.image, str) and c0.image.endswith('000000.png')
    assert np.array_equal(read_image(c0.image), truth['people'][0].images[0])
    assert isinstance(c1.image, common.VideoFrame) and c1.image.index == 0
    assert np.mean(np.abs(c1.image().astype(float) - truth['people'][1].images[0])) < 12
    np.testing.assert_allclose(c1.camera.distortion_coeffs, [-0.1, 0.02, 0, 0, 0])
    np.testing.assert_allclose(c0.box, GIVEN_BOX)  # given for frame 0 of c0
    # Derived boxes: the projected joints' box grown by 10 % per side, inside the image.
    e = walk[4]
    points = truth['cams'][1].world_to_image(truth['world'][e.frame])
    lo, hi = points.min(0), points.max(0)
    expected = np.concatenate([np.maximum(lo - 0.1 * (hi - lo), -0.5),
                               np.minimum(hi + 0.1 * (hi - lo), [IMSHAPE[1] - .5, IMSHAPE[0] - .5])])
    np.testing.assert_allclose(e.box, [*expected[:2], *(expected[2:] - expected[:2])], atol=1e-4)
    # Masks where a file exists (c0 frames 0 and 2), none elsewhere.
    assert [e.mask is not None for e in walk] == [True, False, True, False, False, False]
    np.testing.assert_array_equal(walk[2].mask(), truth['people'][0].masks[2])


def test_2d_only_examples(dataset):
    root, truth, examples, _ = dataset
    photos = [e for e in examples if e.sequence == 'photos']
    assert [(e.frame, e.split) for e in photos] == [(10, 'validation'), (11, 'validation'),
                                                    (12, 'validation')]
    for e in photos:
        assert e.is_2d_only and np.all(np.isnan(e.world_coords))
        np.testing.assert_allclose(e.coords2d, truth['joints2d'][e.frame, 0], atol=1e-4,
                                   equal_nan=True)
        np.testing.assert_allclose(e.camera.intrinsic_matrix, truth['guess'].intrinsic_matrix)
        assert e.mask is None and e.image.endswith(f'{e.frame:04d}.jpg')
    assert np.isnan(photos[2].coords2d[5]).all()


def test_skeleton_registered_from_the_file(dataset):
    root = dataset[0]
    assert custom.skeleton_of(root) == 'mylab'
    union = joints.get_union('real')
    assert union.names[-17:] == tuple(f'{j}_mylab' for j in JOINT_NAMES)
    mirror = union.mirror_perm
    assert union.names[mirror[union.ids['lhip_mylab']]] == 'rhip_mylab'
    assert union.names[mirror[union.ids['head_mylab']]] == 'head_mylab'
    assert ('lsho_mylab', 'lelb_mylab') in set(map(tuple, union.edge_names))


@pytest.mark.parametrize('change, message', [
    ({'pairs': [['lhip', 'rhip']]}, r"joints \[.*'lkne', 'rkne'.*\] pair up by their names"),
    ({'joints': JOINT_NAMES + ['leftear'], 'pairs': SKELETON['pairs'] + [['leftear', 'rhip']]},
     'must be named left'),
    ({'joints': ['Head']}, 'not lowercase'),
    ({'edges': 'pelv-tail'}, r"joints not in \"joints\": \['tail'\]"),
    ({'tag': 'my_lab'}, 'field "tag"'),
    ({'jionts': []}, "unknown fields \\['jionts'\\]"),
])
def test_skeleton_file_errors_name_the_field(tmp_path, change, message):
    path = tmp_path / 'skeleton.json'
    path.write_text(json.dumps({**SKELETON, **change}))
    with pytest.raises(joints.user_skeletons.SkeletonFileError, match=message):
        joints.register_skeleton(path)


def test_a_name_cannot_be_taken_twice():
    joints.register_skeleton(SKELETON)
    joints.register_skeleton({**SKELETON, 'source': 'elsewhere'})  # same joints: fine
    with pytest.raises(ValueError, match="'mylab' is already registered"):
        joints.register_skeleton({**SKELETON, 'joints': JOINT_NAMES + ['nose']})
    with pytest.raises(ValueError, match="'h36m' is already registered"):
        joints.register_skeleton({**SKELETON, 'name': 'h36m'})


def test_dataset_errors_name_the_file(tmp_path):
    root = tmp_path / 'd'
    write_dataset(root)
    good = (root / 'walk' / 'joints3d.npy').read_bytes()
    np.save(root / 'walk' / 'joints3d.npy', np.zeros((4, 2, 16, 3)))
    with pytest.raises(common.DatasetFormatError, match=r'joints3d.npy: has shape \(4, 2, 16, '
                       r'3\), expected \[NxNx17x3\]'):
        list(custom.convert(root))
    (root / 'walk' / 'joints3d.npy').write_bytes(good)
    (root / 'walk' / 'cameras.json').write_text(json.dumps({'c0': {'intrinsic_matrix': 1}}))
    with pytest.raises(common.DatasetFormatError, match='pixels without a camera'):
        list(custom.convert(root))
    np.save(root / 'walk' / 'joints3d.npy', np.array([object()], dtype=object))
    with pytest.raises(common.DatasetFormatError, match='without objects'):
        list(custom.convert(root))
    (root / 'dataset.json').write_text(json.dumps({'name': 'mylab', 'skeleton': 'nope'}))
    with pytest.raises(common.DatasetFormatError, match='neither a .json skeleton file'):
        list(custom.convert(root))


def test_build_mix_train_export_see_the_new_joints(dataset, tmp_path):
    """Each stage starts from an empty user registry: the skeleton must travel in the build
    manifest, the mix's InputConfig, the training logdir and the export's assets."""
    from metrabs.data import input_pipeline
    from metrabs.model.config import ModelConfig
    from metrabs.training.config import TrainConfig
    from metrabs.training.loop import train

    root = dataset[0]
    out = tmp_path / 'tfrecords'
    assert build.main(['--dataset=custom', f'--root={root}', f'--out={out / "mylab"}',
                       '--crop-size=32', '--num-shards=2']) == 0
    manifest = json.loads((out / 'mylab' / 'manifest.json').read_text())
    assert manifest['skeleton'] == 'mylab'
    assert [d['name'] for d in manifest['skeleton_definitions']] == ['mylab']
    # 6 3D examples, the walk moves 250 mm per frame so dedup keeps all; 3 2D-only ones.
    info = manifest['datasets']['mylab']
    assert info['before_dedup'] == {'train': 6, 'validation': 3}
    assert info['num_after_dedup'] == 9 and info['num_skipped'] == 2

    joints.clear_user_skeletons()
    names = [f'{j}_mylab' for j in JOINT_NAMES] + joints.union_names('h36m_17')
    mix_file = tmp_path / 'mix.json'
    mix_file.write_text(json.dumps({
        'union': 'real', 'tfrecord_root': str(out), 'batch_size_3d': 4, 'batch_size_2d': 0,
        'proc_side': 32, 'datasets': [{'name': 'mylab', 'kind': '3d', 'examples_per_batch': 4}]}))
    everything, _ = mix.make_input_config(mix.load_mix(mix_file))
    assert set(names[:17]) <= set(everything['joint_names'])  # the default: the whole union
    mix_file.write_text(json.dumps({**json.loads(mix_file.read_text()), 'joint_names': names}))
    config, table = mix.make_input_config(mix.load_mix(mix_file))
    assert table[0]['examples'] == 6 and [s['name'] for s in config['skeletons']] == ['mylab']

    joints.clear_user_skeletons()
    input_config = input_pipeline.InputConfig.from_dict(json.loads(json.dumps(config)))
    batch = next(iter(input_pipeline.make_training_dataset(input_config)))
    assert batch['valid3d'].numpy()[:, :17].any() and not batch['valid3d'].numpy()[:, 17:].any()
    train_config = TrainConfig(
        model=ModelConfig(backbone='tiny', proc_side=32, ghost_bn_group_size=0),
        training_steps=2, global_batch_size=4, checkpoint_every=2, log_every=1,
        image_summary_every=0, bn_inference_steps=0, deterministic=False,
        require_backbone_weights=False)
    logdir = tmp_path / 'run'
    result = train(train_config, input_pipeline.make_dataset_fn(input_config), str(logdir),
                   list(input_config.joint_names), show_progress=False,
                   label_names_2d=input_config.label_names_2d)
    assert result.step == 2 and np.isfinite(result.last_losses['loss'])
    assert [d['name'] for d in json.loads((logdir / 'skeletons.json').read_text())] == ['mylab']

    export_dir = tmp_path / 'export'
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(REPO))
    env.pop('POSEPILE_SKELETONS', None)
    done = subprocess.run([sys.executable, '-m', 'metrabs.export', f'--checkpoint={logdir}',
                           f'--out={export_dir}'], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [d['name'] for d in json.loads(
        (export_dir / 'assets' / 'skeletons.json').read_text())] == ['mylab']
    loaded = tf.saved_model.load(str(export_dir))
    got = [n.decode() for n in loaded.per_skeleton_joint_names['mylab'].numpy()]
    assert got == JOINT_NAMES


def test_environment_variable_registers_in_every_process(tmp_path):
    (tmp_path / 'skeletons').mkdir()
    (tmp_path / 'skeletons' / 'mylab.json').write_text(json.dumps(SKELETON))
    other = {**SKELETON, 'name': 'other', 'joints': ['head', 'neck'], 'pairs': [],
             'edges': 'head-neck'}
    (tmp_path / 'other.json').write_text(json.dumps(other))
    env = dict(os.environ, PYTHONPATH=str(REPO),
               POSEPILE_SKELETONS=f'{tmp_path / "skeletons"}{os.pathsep}{tmp_path / "other.json"}')
    done = subprocess.run(
        [sys.executable, '-c', 'from posepile import joints; u = joints.get_union("real"); '
         'print(len(u), joints.union_names("other"), u.names[-19:-2] == tuple('
         'joints.union_names("mylab")))'], env=env, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split('[')[1].startswith("'head_other', 'neck_other']")
    assert done.stdout.strip().endswith('True')
    env['POSEPILE_SKELETONS'] = str(tmp_path / 'missing.json')
    done = subprocess.run([sys.executable, '-c', 'from posepile import joints; '
                           'joints.get_union("real")'], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and 'POSEPILE_SKELETONS names' in done.stderr
