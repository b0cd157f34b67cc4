"""Person detectors an exported model can embed (`metrabs.export --detector=DIR`).

Two kinds of detector SavedModel are accepted (load_detector tells them apart):
1. This project's contract (what PoseEstimatorModule calls):
       detector(image [H, W, 3] uint8, threshold float32, nms_iou_threshold float32,
                max_detections int32) -> [N, 5] float32 (x, y, w, h px, score).
2. The TF2 Object Detection API / TF-Hub object detection signature, which every model of the
   TF2 Detection Model Zoo and the TF-Hub detection models (SSD MobileNet, EfficientDet,
   CenterNet, Faster R-CNN, ...) export: one uint8 input [1, H, W, 3] (any name, e.g.
   'input_tensor'), outputs 'detection_boxes' [1, N, 4] normalised [ymin, xmin, ymax, xmax]
   (0 and 1 are the image's edges), 'detection_scores' [1, N], 'detection_classes' [1, N] (label
   ids; person = 1 in the COCO label map those models use) and optionally 'num_detections' [1].
   ObjectDetectionApiDetector adapts it to the contract: keeps the person class (configurable),
   thresholds, applies non-maximum suppression at nms_iou_threshold and the max_detections cap
   (< 0: no cap), and converts boxes to pixels (x = xmin * W, ..., so the whole image is
   [0, 0, W, H], as in detect_poses' no-detector fallback).
Zero detections are a [0, 5] result, never an error.
"""
from __future__ import annotations

import tensorflow as tf

COCO_PERSON_CLASS = 1
OD_OUTPUTS = ('detection_boxes', 'detection_scores', 'detection_classes')

_CONTRACT = [tf.TensorSpec([None, None, 3], tf.uint8, name='image'),
             tf.TensorSpec([], tf.float32, name='threshold'),
             tf.TensorSpec([], tf.float32, name='nms_iou_threshold'),
             tf.TensorSpec([], tf.int32, name='max_detections')]


def _od_signature(loaded, signature: str):
    """The loaded model's detection signature function and its one input's name, or None."""
    signatures = getattr(loaded, 'signatures', {})
    if signature not in signatures:
        return None
    fn = signatures[signature]
    if not all(key in fn.structured_outputs for key in OD_OUTPUTS):
        return None
    inputs = fn.structured_input_signature[1]
    return fn, inputs


class ObjectDetectionApiDetector(tf.Module):
    """A TF2 Object Detection API / TF-Hub detection SavedModel behind the project's contract.

    Args:
        loaded: the loaded detector SavedModel (kept as an attribute: it is saved inside the pose
            model's SavedModel, variables and all).
        person_class: label id of people in the detector's label map (COCO: 1).
        signature: the signature to call.
        source: name for error messages (the detector's directory).
    """

    def __init__(self, loaded, person_class: int = COCO_PERSON_CLASS,
                 signature: str = 'serving_default', source: str = 'detector'):
        super().__init__(name='person_detector')
        found = _od_signature(loaded, signature)
        if found is None:
            raise ValueError(f'{source}: no signature {signature!r} with outputs {OD_OUTPUTS}')
        fn, inputs = found
        if len(inputs) != 1:
            raise ValueError(f'{source}: signature {signature!r} must take one image input, '
                             f'takes {sorted(inputs)}')
        (input_name, spec), = inputs.items()
        if spec.dtype != tf.uint8 or spec.shape.rank != 4:
            raise ValueError(f'{source}: signature {signature!r} input {input_name!r} is '
                             f'{spec.dtype.name} {spec.shape}; expected uint8 [1, H, W, 3]')
        self.loaded = loaded
        self.person_class = tf.constant(float(person_class))
        # Not tracked as an attribute (a signature is no trackable object); it is reached through
        # self.loaded when saving.
        self.__dict__['_signature_fn'] = fn
        self._input_name = input_name

    @tf.function(input_signature=_CONTRACT)
    def __call__(self, image, threshold, nms_iou_threshold, max_detections):
        out = self._signature_fn(**{self._input_name: image[None]})
        boxes = tf.cast(out['detection_boxes'][0], tf.float32)
        scores = tf.cast(out['detection_scores'][0], tf.float32)
        classes = tf.cast(out['detection_classes'][0], tf.float32)
        if 'num_detections' in out:  # the outputs may be padded beyond it
            n = tf.cast(tf.reshape(out['num_detections'], [-1])[0], tf.int32)
            boxes, scores, classes = boxes[:n], scores[:n], classes[:n]
        keep = tf.equal(tf.round(classes), self.person_class) & (scores >= threshold)
        boxes, scores = tf.boolean_mask(boxes, keep), tf.boolean_mask(scores, keep)
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        corners = boxes * tf.concat([size, size], 0)  # [ymin, xmin, ymax, xmax] px
        cap = tf.where(max_detections >= 0, max_detections, tf.shape(scores)[0])
        selected = tf.image.non_max_suppression(corners, scores, cap, nms_iou_threshold)
        corners, scores = tf.gather(corners, selected), tf.gather(scores, selected)
        return tf.stack([corners[:, 1], corners[:, 0], corners[:, 3] - corners[:, 1],
                         corners[:, 2] - corners[:, 0], scores], axis=1)


def load_detector(path: str, person_class: int = COCO_PERSON_CLASS,
                  signature: str = 'serving_default'):
    """The detector SavedModel at `path` as a callable obeying the contract (module doc).

    A model with the Object Detection API signature is wrapped in ObjectDetectionApiDetector;
    one with a contract-shaped __call__ is returned as loaded. Anything else fails naming path.
    """
    loaded = tf.saved_model.load(path)
    if _od_signature(loaded, signature) is not None:
        return ObjectDetectionApiDetector(loaded, person_class, signature, source=path)
    call = getattr(loaded, '__call__', None)
    concrete = getattr(call, 'concrete_functions', None) if call is not None else None
    if concrete:
        args = concrete[0].structured_input_signature[0]
        if len(args) == 4 and args[0].dtype == tf.uint8:
            return loaded
    raise ValueError(
        f'{path}: not a detector this model can use: expected either a signature {signature!r} '
        f'with outputs {", ".join(OD_OUTPUTS)} (TF2 Object Detection API / TF-Hub) or '
        f'__call__(image uint8 [H, W, 3], threshold, nms_iou_threshold, max_detections) -> '
        f'[N, 5] boxes')
