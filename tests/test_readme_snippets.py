"""The README's "Using an exported model" and "Deployment" snippets, run as written (in order, in
one namespace, like a notebook) in a folder laid out like the default run's output, with the tiny
test model in place of the default run's (skeleton names substituted: fixture_tiny_model)."""
import os

import numpy as np
import pytest
import tensorflow as tf

from fixture_tiny_model import readme_blocks

pytestmark = pytest.mark.slow


def test_readme_python_snippets_run_and_agree(deployment_workspace, exported):
    _, loaded, _ = exported
    blocks = readme_blocks('python')
    assert len(blocks) >= 5
    namespace = {}
    cwd = os.getcwd()
    os.chdir(deployment_workspace)
    try:
        for block in blocks:
            exec(compile(block, 'README.md', 'exec'), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
    # The ONNX and TFLite snippets' crop gives what the SavedModel gives for it.
    crop, k = namespace['crop'], namespace['crop_camera'].intrinsic_matrix.astype(np.float32)
    want = loaded.predict_crops(crop[None], k[None])['poses3d'].numpy()[0]
    np.testing.assert_allclose(namespace['poses3d'][0], want, atol=0.05)
    np.testing.assert_allclose(namespace['poses3d_tflite'][0], want, atol=2.0)
    # Mapping back: the crop camera's frame -> the original camera's, crop px -> image px.
    camera, crop_camera = namespace['camera'], namespace['crop_camera']
    np.testing.assert_allclose(namespace['pose_camera'],
                               namespace['poses3d'][0] @ crop_camera.R, rtol=1e-5, atol=1e-3)
    # The crop's centre pixel is the box centre (60 + 120 / 2, 20 + 200 / 2) of the snippet.
    centre = (namespace['side'] - 1) / 2
    np.testing.assert_allclose(
        namespace['reproject_image_points'](np.array([[centre, centre]]), crop_camera, camera),
        [[120, 120]], atol=1e-6)
    assert namespace['pose_image'].shape == (len(want), 2)
    assert len(namespace['names']) == 17
    assert tf.convert_to_tensor(namespace['poses']['poses3d']).shape[1:] == want.shape
    assert namespace['video']['frame_splits'].shape == (7,)
    assert namespace['plausible'].dtype == bool
