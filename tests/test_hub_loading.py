"""TF-Hub-style loading of the export with tensorflow_hub itself (hub.load, hub.KerasLayer in
tf-keras) and Keras 3 (TFSMLayer on the 'serve' endpoint); what does not work is asserted too."""
import numpy as np
import pytest
import tensorflow as tf

from fixture_tiny_model import SIDE

pytestmark = pytest.mark.slow


def _crops(n=2):
    rng = np.random.default_rng(4)
    crops = rng.integers(0, 256, (n, SIDE, SIDE, 3)).astype(np.uint8)
    intr = np.tile(np.array([[90.0, 0, 31.5], [0, 90, 31.5], [0, 0, 1]], np.float32), (n, 1, 1))
    return crops, intr


def test_hub_load_gives_the_same_model(exported):
    import tensorflow_hub as hub
    _, loaded, out = exported
    model = hub.load(str(out))
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3)).astype(np.uint8)
    boxes = np.array([[20, 10, 50, 70]], np.float32)
    got = model.estimate_poses(image, boxes, num_aug=1)['poses3d'].numpy()
    np.testing.assert_array_equal(got, loaded.estimate_poses(image, boxes,
                                                             num_aug=1)['poses3d'].numpy())


def test_hub_keras_layer_in_tf_keras_but_not_in_keras3(exported):
    import keras
    import tensorflow_hub as hub
    import tf_keras
    _, loaded, out = exported
    crops, intr = _crops()
    want = loaded.predict_crops(crops, intr)
    inputs = {'images': tf_keras.Input([SIDE, SIDE, 3], dtype='uint8', name='images'),
              'intrinsics': tf_keras.Input([3, 3], name='intrinsics')}
    layer = hub.KerasLayer(str(out), signature='serving_default',
                           signature_outputs_as_dict=True)
    model = tf_keras.Model(inputs, layer(inputs))
    got = model({'images': crops, 'intrinsics': intr})
    for key in ('poses3d', 'poses2d'):
        np.testing.assert_allclose(got[key].numpy(), want[key].numpy(), rtol=1e-5, atol=1e-4)
    keras3_inputs = {'images': keras.Input([SIDE, SIDE, 3], dtype='uint8'),
                     'intrinsics': keras.Input([3, 3])}
    with pytest.raises(TypeError, match='KerasTensor'):
        hub.KerasLayer(str(out), signature='serving_default',
                       signature_outputs_as_dict=True)(keras3_inputs)


def test_keras3_tfsm_layer_on_the_serve_endpoint(exported):
    import keras
    _, loaded, out = exported
    crops, intr = _crops(3)
    inputs = {'images': keras.Input([SIDE, SIDE, 3], dtype='uint8', name='images'),
              'intrinsics': keras.Input([3, 3], name='intrinsics')}
    model = keras.Model(inputs, keras.layers.TFSMLayer(str(out), call_endpoint='serve')(inputs))
    got = model({'images': crops, 'intrinsics': intr})
    want = loaded.predict_crops(crops, intr)
    for key in ('poses3d', 'poses2d'):
        np.testing.assert_allclose(tf.convert_to_tensor(got[key]).numpy(), want[key].numpy(),
                                   rtol=1e-5, atol=1e-4)
