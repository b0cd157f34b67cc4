"""A loaded pose SavedModel, read and called from Python: its skeletons and joints, and
`load_model`, which checks every call's inputs before TensorFlow sees them.

The SavedModel alone (tf.saved_model.load, all a deployment needs) takes uint8 images in the
layouts of posepile.image_input and [P, 4 | 5] boxes; what it cannot do is see a numpy float
image, which TensorFlow casts to uint8 first (0..1 floats become 0 and 1), and its in-graph
errors come as multi-line graph-execution errors. load_model(path) returns the same model with
detect_poses / estimate_poses taking any image posepile.image_input takes (floats by its rule),
refusing what it cannot take, an unknown skeleton (with the known ones, and the skeletons of a
dataset named instead), malformed camera arrays and boxes that miss the image, each in one line
naming the argument and the expected form. Everything else passes through to the SavedModel.
"""
from __future__ import annotations

import numpy as np

from posepile.image_input import as_rgb_uint8

# A person needs more pixels than this to be there at all (the model scales its crop to 256 px).
MIN_IMAGE_SIDE = 8
CAMERA_ARGUMENTS = {'intrinsic_matrix': (3, 3), 'distortion_coeffs': (5,),
                    'extrinsic_matrix': (4, 4), 'world_up_vector': (3,)}


def _decoded(strings) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(strings).tolist()]


def model_skeletons(model) -> list[str]:
    """The skeleton names a model takes, '' (all model joints) first."""
    names = getattr(model, 'skeleton_names', None)
    if names is not None and hasattr(names, 'numpy'):
        return _decoded(names.numpy())
    return [''] + sorted(model.per_skeleton_joint_names)


def _dataset_hint(name: str) -> str:
    """', which is a dataset: its skeleton(s) ...' when `name` is a dataset's, else ''."""
    from posepile import datasets
    from posepile.synthetic.world import DATASETS
    skeletons = [s for spec in DATASETS if spec.name == name for s in spec.formats]
    if not skeletons and name in datasets.available():
        skeleton = getattr(datasets.get_converter(name), 'SKELETON', None)
        skeletons = [skeleton] if skeleton else []
    return (f' ({name!r} is a dataset; its skeleton{"s" if len(skeletons) > 1 else ""}: '
            f'{", ".join(skeletons)})' if skeletons else '')


def check_skeleton(model, skeleton: str) -> str:
    """`skeleton` if the model has it; KeyError listing the ones it has otherwise."""
    known = model_skeletons(model)
    if skeleton not in known:
        raise KeyError(f'unknown skeleton {skeleton!r}{_dataset_hint(skeleton)}; this model has: '
                       f"'' (all {len(model.joint_names.numpy())} joints), "
                       f'{", ".join(k for k in known if k)}')
    return skeleton


def skeleton_joints(model, skeleton: str) -> tuple[list[str], np.ndarray]:
    """(joint names [J], bones [E, 2] int) of `skeleton` ('' = all model joints); an unknown name
    fails naming the ones the model has."""
    if skeleton == '':
        names, edges = model.joint_names, model.joint_edges
    else:
        check_skeleton(model, skeleton)
        names = model.per_skeleton_joint_names[skeleton]
        edges = model.per_skeleton_joint_edges[skeleton]
    return _decoded(names.numpy()), np.asarray(edges.numpy(), np.int64).reshape(-1, 2)


def check_boxes(boxes, image_shape) -> np.ndarray:
    """[P, 4] float32 x, y, w, h px from boxes [P, 4] or [P, 5] (detect_poses' score column is
    dropped); refuses other shapes, non-finite values, w or h <= 0, and boxes that do not
    overlap the image (a pose there would be made up)."""
    array = np.asarray(boxes, np.float64)
    if array.ndim == 1 and array.shape[0] in (4, 5):
        array = array[np.newaxis]
    if array.ndim != 2 or array.shape[1] not in (4, 5):
        raise ValueError(f'boxes: got shape {list(array.shape)}; expected [P, 4] (x, y, w, h '
                         f'px) or [P, 5] (with a score, as detect_poses returns)')
    array = array[:, :4]
    if not np.all(np.isfinite(array)):
        raise ValueError('boxes: NaN or inf values')
    height, width = image_shape[:2]
    for i, (x, y, w, h) in enumerate(array):
        if w <= 0 or h <= 0:
            raise ValueError(f'boxes[{i}] = {[x, y, w, h]}: width and height must be > 0')
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise ValueError(f'boxes[{i}] = {[x, y, w, h]} (x, y, w, h px) does not overlap '
                             f'the {width}x{height} image')
    return array.astype(np.float32)


def _checked_camera_arguments(kwargs: dict) -> dict:
    out = dict(kwargs)
    for name, shape in CAMERA_ARGUMENTS.items():
        if name in out:
            value = np.asarray(out[name], np.float64)
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(f'{name}: got shape {list(value.shape)}; expected finite '
                                 f'{list(shape)}')
            out[name] = value.astype(np.float32)
    return out


class CheckedPoseModel:
    """A loaded pose SavedModel whose detect_poses / estimate_poses check their inputs first
    (module docstring); other attributes are the SavedModel's.

    skeleton_names: list[str], '' (all model joints) first.
    """

    def __init__(self, model, source: str = '<model>'):
        self._model = model
        self.source = source
        self.skeleton_names = model_skeletons(model)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def _arguments(self, kwargs):
        kwargs = _checked_camera_arguments(kwargs)
        check_skeleton(self._model, kwargs.get('skeleton', ''))
        return kwargs

    def detect_poses(self, image, **kwargs):
        """SavedModel.detect_poses with `image` per posepile.image_input; same results."""
        return self._model.detect_poses(as_rgb_uint8(image, 'image', MIN_IMAGE_SIDE),
                                        **self._arguments(kwargs))

    def estimate_poses(self, image, boxes, **kwargs):
        """SavedModel.estimate_poses with `image` per posepile.image_input and `boxes`
        [P, 4] or [P, 5] that overlap it."""
        image = as_rgb_uint8(image, 'image', MIN_IMAGE_SIDE)
        return self._model.estimate_poses(image, check_boxes(boxes, image.shape),
                                          **self._arguments(kwargs))


def load_model(path, fast_first_call: bool = False) -> CheckedPoseModel:
    """tf.saved_model.load(path) as a CheckedPoseModel; a path that is not a SavedModel
    directory is refused naming it.

    fast_first_call: switch TF's graph optimiser (grappler) off before loading. The first call of
    an entry point is mostly grappler optimising its inlined graph: measured on 2 CPU cores for
    EfficientNetV2-S 256 px, 4.3 s -> 1.8 s CPU for the first estimate_poses, steady state
    within the noise (89 vs 93 ms CPU per call; bench/README.md "Load and first call"). No single
    grappler pass accounts for it, so the whole optimiser goes. The setting is process-wide (TF
    has no per-function switch): every graph this process runs afterwards is unoptimised,
    training included, which is why it is not the default.
    """
    import os

    import tensorflow as tf
    path = os.fspath(path)
    if not tf.saved_model.contains_saved_model(path):
        raise FileNotFoundError(f'{path}: not a SavedModel directory (metrabs.export writes one)')
    if fast_first_call:
        tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
    return CheckedPoseModel(tf.saved_model.load(path), path)
