"""The crop model as ONNX (tf2onnx) and TFLite (TF's converter), from a model or a SavedModel.

Both files hold exactly the SavedModel's `serving_default` signature (= `predict_crops`):
    inputs   images      [N, S, S, 3] uint8 RGB crops, S = the model's input_resolution (px)
             intrinsics  [N, 3, 3] float32 intrinsic matrix of each crop's (pinhole) camera
    outputs  poses3d     [N, J, 3] float32 mm, in the crop camera's frame (OpenCV axes)
             poses2d     [N, J, 2] float32 crop px (integer coordinates are pixel centres): the
                         2D heatmap head's estimate, not a projection of poses3d
The cropping (perspective crop cameras, TTA, undistortion) and detection stay on the host: those
are what `estimate_poses` / `detect_poses` add in the SavedModel. J = all model joints; the
sidecar `<file>.json` (next to the export) has their names and bones and, per skeleton, the
indices selecting it (`skeleton_indices`), plus `input_resolution`.

Conversion uses only the converters' public APIs: `tf2onnx.convert.from_function` and
`tf.lite.TFLiteConverter` (builtin ops only; float16 = weights stored in float16, computed in
float32 on CPUs, in float16 by GPU delegates). No graph is edited by hand.
"""
from __future__ import annotations

import os
import pathlib

import tensorflow as tf

from metrabs.serving.inference_module import available_skeletons
from metrabs.serving.loaded_model import skeleton_joints
from posepile.atomic_io import write_bytes_atomic, write_json_atomic

DEFAULT_ONNX_OPSET = 17
TFLITE_PRECISIONS = ('float32', 'float16')
SIGNATURE_KEY = 'serving_default'


def sidecar_path(out_path: str | os.PathLike) -> pathlib.Path:
    """Where the joint description of an ONNX / TFLite export is written: `<out_path>.json`."""
    return pathlib.Path(f'{out_path}.json')


def model_description(model) -> dict:
    """Joint names, bones, per-skeleton indices and crop side of an in-memory
    PoseEstimatorModule or a loaded SavedModel (both expose the same attributes)."""
    names, edges = skeleton_joints(model, '')
    return {
        'input_resolution': int(model.input_resolution.numpy()),
        'joint_names': names,
        'joint_edges': edges.tolist(),
        'skeleton_indices': {name: idx.tolist() for name, idx in available_skeletons(names).items()
                             if name},
        'inputs': {'images': '[N, S, S, 3] uint8', 'intrinsics': '[N, 3, 3] float32 crop px'},
        'outputs': {'poses3d': '[N, J, 3] float32 mm, crop camera frame',
                    'poses2d': '[N, J, 2] float32 crop px, 2D head'},
    }


def _input_signature(side: int) -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None, side, side, 3], tf.uint8, name='images'),
            tf.TensorSpec([None, 3, 3], tf.float32, name='intrinsics')]


def _crop_function(model):
    """predict_crops of a PoseEstimatorModule, or the serving_default signature of a loaded
    SavedModel (tf2onnx cannot sort the graph of the restored predict_crops function, whose
    network is a nested call, but converts the signature's)."""
    signatures = getattr(model, 'signatures', None)
    if signatures is None:
        return model.predict_crops
    signature = signatures[SIGNATURE_KEY]
    return tf.function(lambda images, intrinsics: signature(images=images, intrinsics=intrinsics))


def export_onnx(model, out_path: str | os.PathLike, opset: int = DEFAULT_ONNX_OPSET) -> None:
    """Writes model.predict_crops as ONNX to out_path (+ the sidecar JSON), atomically.

    model: a PoseEstimatorModule or a loaded SavedModel of one.
    """
    import tf2onnx  # only exports need it
    side = int(model.input_resolution.numpy())
    proto, _ = tf2onnx.convert.from_function(_crop_function(model),
                                             input_signature=_input_signature(side), opset=opset)
    outputs = sorted(o.name for o in proto.graph.output)
    if outputs != ['poses2d', 'poses3d']:
        raise RuntimeError(f'tf2onnx named the outputs {outputs}, expected poses2d, poses3d')
    write_bytes_atomic(out_path, proto.SerializeToString())
    write_json_atomic(sidecar_path(out_path), model_description(model))


class _CropModelOnly(tf.Module):
    """predict_crops and the variables it reads, nothing else: the TFLite converter saves its
    trackable object to a temporary SavedModel, and the whole PoseEstimatorModule (every entry
    point traced) would take minutes instead of seconds."""

    def __init__(self, module):
        super().__init__(name='crop_model')
        self.variables_read = list(module._raw_variables)
        self.predict_crops = tf.function(module._predict_crops,
                                         input_signature=_input_signature(module.proc_side))


def _tflite_converter(model, saved_model_dir: str | None) -> tf.lite.TFLiteConverter:
    if saved_model_dir is not None:
        return tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                        signature_keys=[SIGNATURE_KEY])
    crop = _CropModelOnly(model)
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [crop.predict_crops.get_concrete_function()], crop)


def export_tflite(model, out_path: str | os.PathLike, precision: str = 'float32',
                  saved_model_dir: str | None = None) -> None:
    """Writes the crop model as TFLite (builtin ops) to out_path (+ the sidecar JSON), atomically.

    model: a PoseEstimatorModule, or with saved_model_dir the loaded SavedModel of that
    directory, whose serving_default signature is then converted (TFLiteConverter.from_saved_model).
    precision: 'float32' or 'float16' (weights in float16).
    """
    if precision not in TFLITE_PRECISIONS:
        raise ValueError(f'TFLite precision must be one of {TFLITE_PRECISIONS}, got {precision!r}')
    converter = _tflite_converter(model, saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == 'float16':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    write_bytes_atomic(out_path, converter.convert())
    write_json_atomic(sidecar_path(out_path), model_description(model))

