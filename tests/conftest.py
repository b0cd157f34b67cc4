"""Shared test set-up: quiet TensorFlow's C++ logging before anything imports it; session-wide
fixtures of the tiny exported model (tracing and exporting are the slow part, so every test
module that needs an export shares these; helpers in fixture_tiny_model.py)."""
import os

import numpy as np
import pytest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


@pytest.fixture(scope='session')
def tiny_logdir(tmp_path_factory):
    """(logdir, in-memory model): the tiny model's checkpoint + config.json + joint_names.json."""
    import fixture_tiny_model as tiny
    root = tmp_path_factory.mktemp('tiny_logdir')
    return root, tiny.write_checkpoint(root)


@pytest.fixture(scope='session')
def exported(tiny_logdir, tmp_path_factory):
    """(in-memory model, loaded SavedModel, export dir), exported by the CLI in another process."""
    import tensorflow as tf

    import fixture_tiny_model as tiny
    root, model = tiny_logdir
    out = tmp_path_factory.mktemp('export') / 'model'
    tiny.run_module('metrabs.export', f'--checkpoint={root}', f'--out={out}')
    return model, tf.saved_model.load(str(out)), out


@pytest.fixture(scope='session')
def od_detector_dir(tmp_path_factory):
    """A SavedModel with the TF2 Object Detection API signature (coloured rectangles)."""
    import fixture_tiny_model as tiny
    path = tmp_path_factory.mktemp('od_detector') / 'detector'
    tiny.save_od_detector(path)
    return path


@pytest.fixture(scope='session')
def exported_with_detector(tiny_logdir, od_detector_dir, tmp_path_factory):
    """(loaded SavedModel, export dir): the tiny model with the Object Detection API detector
    embedded by `metrabs.export --detector`."""
    import tensorflow as tf

    import fixture_tiny_model as tiny
    root, _ = tiny_logdir
    out = tmp_path_factory.mktemp('export_detector') / 'model'
    tiny.run_module('metrabs.export', f'--checkpoint={root}', f'--out={out}',
                    f'--detector={od_detector_dir}')
    return tf.saved_model.load(str(out)), out


@pytest.fixture(scope='session')
def deployment_workspace(exported, tmp_path_factory):
    """A folder laid out like the default run's (out/models/separate_heads = the tiny export,
    photo.jpg, video.mp4) in which the README's deployment shell commands have run: they write
    the ONNX and TFLite (float32, float16) crop models next to the SavedModel."""
    import shlex

    import imageio.v3 as iio

    import fixture_tiny_model as tiny
    _, _, out = exported
    root = tmp_path_factory.mktemp('workspace')
    (root / 'out' / 'models').mkdir(parents=True)
    (root / 'out' / 'models' / 'separate_heads').symlink_to(out, target_is_directory=True)
    photo = tiny.smooth_image()
    iio.imwrite(root / 'photo.jpg', photo)
    tiny.write_clip(root / 'video.mp4', [np.roll(photo, 4 * t, axis=1) for t in range(6)])
    for block in tiny.readme_blocks('bash'):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith('#'):
                args = shlex.split(line)
                assert args[:2] == ['.venv/bin/python', '-m'], line
                tiny.run_module(*args[2:], cwd=root)
    return root


@pytest.fixture(scope='session')
def synthetic_world(tmp_path_factory):
    """A tiny synthetic world (60 people, seed 3), read-only, shared by the benchmark tests."""
    from posepile.synthetic.writer import write_world
    root = tmp_path_factory.mktemp('synthetic_world')
    write_world(root, num=60, seed=3, progress=False)
    return root
