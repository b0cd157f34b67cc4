"""Running an exported MeTRAbs SavedModel over a benchmark's test images -> Predictions.

A benchmark module that supports `python -m eval.run --model=...` defines
    def model_inputs(gt, boxes='gt' | 'detector') -> Iterable[ModelInput]
one item per test image: where its pixels are, the person boxes to estimate (None = let the
model's detector find them), the camera (intrinsics, 5 OpenCV distortion coefficients,
extrinsics) and the prediction keys; and, to run with the detector, DETECTOR (a
DetectorSettings with the released predict_<benchmark>.py thresholds). `predict` feeds each item
to the SavedModel's `estimate_poses` (given boxes) or `detect_poses` (API in
metrabs/serving/inference_module.py) and collects the rows in the eval/predictions.py layout:
poses [N, J, 3] mm in the frame given by the extrinsic matrix (the camera frame when it is the
identity, which every benchmark uses), joint_names = the model's output joint names for the
chosen skeleton, plus the box and score of every row and the settings used.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable, Iterable

import numpy as np
from tqdm import tqdm

from eval.predictions import WHOLE_IMAGE_SCORE, Predictions
from posepile.camera import Camera

N_API_DISTORTION = 5  # estimate_poses takes OpenCV's (k1, k2, p1, p2, k3)


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One test image and the people to estimate in it.

    Attributes:
        image: a file path or a zero-argument callable returning [H, W, 3] uint8 RGB.
        boxes: [P, 4] float32 person boxes x, y, w, h in image px, or None: detect the people
            with the model's detector (person ids are then the detection ranks 0, 1, ...).
        intrinsic_matrix: [3, 3] float32 px.
        distortion_coeffs: [5] float32 OpenCV (k1, k2, p1, p2, k3).
        extrinsic_matrix: [4, 4] float32 maps the frame the poses should come out in to the
            camera (p_cam = E @ [p; 1], mm); identity gives camera-frame poses.
        world_up: [3] float32 the up direction in that frame (upright crops).
        sequence, frame: the prediction keys of this image; person: [P] int64, one per box.
        where: a human-readable name of the item for error messages.
    """

    image: str | os.PathLike | Callable[[], np.ndarray]
    boxes: np.ndarray | None
    intrinsic_matrix: np.ndarray
    distortion_coeffs: np.ndarray
    extrinsic_matrix: np.ndarray
    world_up: np.ndarray
    sequence: str
    frame: int
    person: np.ndarray | None
    where: str = ''

    def __post_init__(self):
        checks = dict(intrinsic_matrix=(3, 3), distortion_coeffs=(N_API_DISTORTION,),
                      extrinsic_matrix=(4, 4), world_up=(3,))
        for field, shape in checks.items():
            value = np.asarray(getattr(self, field), np.float32)
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(f'{self.where}: {field} must be finite {list(shape)}, got '
                                 f'shape {value.shape}')
            object.__setattr__(self, field, value)
        if self.boxes is None:
            if self.person is not None:
                raise ValueError(f'{self.where}: person ids are given but the boxes are left to '
                                 f'the detector')
            return
        boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        object.__setattr__(self, 'boxes', boxes)
        person = np.asarray(self.person, np.int64).reshape(-1)
        if person.shape != (len(boxes),):
            raise ValueError(f'{self.where}: {len(boxes)} boxes but {person.size} person ids')
        object.__setattr__(self, 'person', person)


def opencv5_distortion(camera: Camera, where: str = '') -> np.ndarray:
    """[5] float32 (k1, k2, p1, p2, k3) of `camera` for the model API.

    posepile.camera stores 4, 5, 8, 12 or 14 OpenCV coefficients; 4 are padded with k3 = 0, and
    longer ones are accepted only if every coefficient after the fifth is zero (the model's crop
    warping implements the 5-coefficient model only; dropping the rational/thin-prism terms
    would silently mis-project).
    """
    coeffs = camera.distortion_coeffs
    result = np.zeros(N_API_DISTORTION, np.float32)
    if coeffs is None:
        return result
    coeffs = np.asarray(coeffs, np.float64)
    if np.any(coeffs[N_API_DISTORTION:] != 0):
        raise ValueError(
            f'{where}: field distortion_coeffs has {len(coeffs)} coefficients with nonzero terms '
            f'beyond the 5th ({coeffs[N_API_DISTORTION:].tolist()}); the model API takes only '
            f'OpenCV (k1, k2, p1, p2, k3)')
    n = min(len(coeffs), N_API_DISTORTION)
    result[:n] = coeffs[:n]
    return result


def camera_frame_input(image, boxes, camera: Camera, sequence: str, frame: int,
                       person=None, where: str = '') -> ModelInput:
    """A ModelInput asking for camera-frame poses: identity extrinsics, the world's up direction
    rotated into the camera frame. person defaults to 0..P-1 (the box index); boxes=None leaves
    the people to the model's detector."""
    if boxes is not None:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        person = np.arange(len(boxes)) if person is None else person
    return ModelInput(
        image=image, boxes=boxes, intrinsic_matrix=camera.intrinsic_matrix,
        distortion_coeffs=opencv5_distortion(camera, where), extrinsic_matrix=np.eye(4),
        world_up=camera.R @ camera.world_up, sequence=sequence, frame=frame, person=person,
        where=where)


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
    """Arguments passed to estimate_poses / detect_poses (metrabs/serving/inference_module.py).

    skeleton: '' for all model joints, else a registered skeleton name the model supports.
    num_aug: test-time augmentations per box (averaged). internal_batch_size: crops per model
    call (speed only). antialias_factor: supersampling of the crop warp. default_fov_degrees:
    used only when the intrinsics are unknown (never here: benchmarks give them).
    The defaults are the model API's; the benchmarks' defaults are the released MeTRAbs
    prediction scripts' (RELEASED_INFERENCE).
    """

    skeleton: str = ''
    num_aug: int = 5
    internal_batch_size: int = 64
    antialias_factor: int = 1
    default_fov_degrees: float = 55.0

    def __post_init__(self):
        if self.num_aug < 1:
            raise ValueError(f'InferenceOptions: num_aug must be >= 1, got {self.num_aug}')
        if self.internal_batch_size < 1 or self.antialias_factor < 1:
            raise ValueError('InferenceOptions: internal_batch_size and antialias_factor must '
                             'be >= 1')


# isarandi/metrabs metrabs_tf/inference_scripts: pred_and_eval_model.sh runs every benchmark with
# `--num-aug=1`, and predict_{h36m,tdhp,mupots,tdpw}.py all pass antialias_factor=2.
RELEASED_INFERENCE = dict(num_aug=1, antialias_factor=2)


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    """detect_poses arguments for a benchmark run with the model's own detector.

    threshold: minimum detector score; nms_iou_threshold: box NMS; max_detections: -1 = all;
    flip_aug: also detect on the mirrored image; suppress_implausible_poses: the model's pose
    filter. fallback_whole_image: when the detector finds nobody, estimate one pose in the
    whole-image box (single-person benchmarks, where every frame must have a prediction; such
    rows get score WHOLE_IMAGE_SCORE and are counted in the report).
    """

    threshold: float = 0.2
    nms_iou_threshold: float = 0.7
    max_detections: int = -1
    flip_aug: bool = True
    suppress_implausible_poses: bool = False
    fallback_whole_image: bool = False


def _strings(variable) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(variable).tolist()]


def model_joint_names(model, skeleton: str = '') -> list[str]:
    """Union names '<joint>_<tag>' of the joints estimate_poses returns for `skeleton` ('' = all
    model joints). The model lists a skeleton's joints by plain name (per_skeleton_joint_names);
    they are given their union tag here so that formats sharing plain names stay apart."""
    if skeleton == '':
        return _strings(model.joint_names)
    available = getattr(model, 'per_skeleton_joint_names', {})
    if skeleton not in available:
        raise KeyError(f'skeleton {skeleton!r} is not predicted by this model; available: '
                       f"'' (all joints), {', '.join(sorted(available))}")
    from posepile.joints import get_skeleton, union_names
    plain = _strings(available[skeleton])
    if plain != list(get_skeleton(skeleton).names):
        raise ValueError(f'the model lists the {skeleton} joints as {plain}, the joint registry '
                         f'as {list(get_skeleton(skeleton).names)}: exported with another '
                         f'version of posepile.joints')
    return union_names(skeleton)


def load_rgb(image, where: str = '') -> np.ndarray:
    """[H, W, 3] uint8 RGB from a path or a callable (posepile.cropping.load_image)."""
    from posepile.cropping import load_image
    return load_image(image, where)


def has_detector(model) -> bool:
    """Whether an exported model carries a person detector (metrabs.export --detector); without
    one, detect_poses uses the whole image as one box."""
    return getattr(model, 'detector', None) is not None


def _common_arguments(item: ModelInput, image: np.ndarray, options: InferenceOptions) -> dict:
    import tensorflow as tf
    return dict(
        image=tf.constant(image), intrinsic_matrix=tf.constant(item.intrinsic_matrix),
        distortion_coeffs=tf.constant(item.distortion_coeffs),
        extrinsic_matrix=tf.constant(item.extrinsic_matrix),
        world_up_vector=tf.constant(item.world_up),
        default_fov_degrees=tf.constant(options.default_fov_degrees, tf.float32),
        internal_batch_size=tf.constant(options.internal_batch_size, tf.int32),
        antialias_factor=tf.constant(options.antialias_factor, tf.int32),
        num_aug=tf.constant(options.num_aug, tf.int32), average_aug=tf.constant(True),
        skeleton=tf.constant(options.skeleton))


def _estimate(model, item, image, boxes, options):
    import tensorflow as tf
    out = model.estimate_poses(boxes=tf.constant(boxes, tf.float32),
                               **_common_arguments(item, image, options))
    return out['poses3d'].numpy(), out['poses2d'].numpy()


def _detect(model, item, image, options, detector):
    """(boxes [P, 5], poses3d, poses2d) from detect_poses; the whole-image fallback if asked."""
    import tensorflow as tf
    out = model.detect_poses(
        detector_threshold=tf.constant(detector.threshold, tf.float32),
        detector_nms_iou_threshold=tf.constant(detector.nms_iou_threshold, tf.float32),
        max_detections=tf.constant(detector.max_detections, tf.int32),
        detector_flip_aug=tf.constant(detector.flip_aug),
        suppress_implausible_poses=tf.constant(detector.suppress_implausible_poses),
        **_common_arguments(item, image, options))
    boxes = out['boxes'].numpy()
    if len(boxes) or not detector.fallback_whole_image:
        return boxes, out['poses3d'].numpy(), out['poses2d'].numpy()
    whole = np.array([[0.0, 0.0, image.shape[1], image.shape[0]]], np.float32)
    poses3d, poses2d = _estimate(model, item, image, whole, options)
    return np.concatenate([whole, [[WHOLE_IMAGE_SCORE]]], axis=1), poses3d, poses2d


def predict(model, inputs: Iterable[ModelInput], options: InferenceOptions = InferenceOptions(),
            total: int | None = None, source: str = '<model>',
            detector: DetectorSettings | None = None) -> Predictions:
    """Runs the model on every input; returns the rows in input order.

    Items with boxes go through `estimate_poses`; items with boxes=None through `detect_poses`
    with `detector`'s settings (required then), one row per detection, person = its rank.
    Args:
        model: a loaded SavedModel (tf.saved_model.load) or the PoseEstimatorModule itself.
        total: number of inputs, for the progress bar only.
    Returns: Predictions with poses [N, J, 3] float64 mm (frame per ModelInput.extrinsic_matrix),
        poses2d [N, J, 2] image px, sequence/frame/person per row, boxes [N, 5] (score NaN for
        given boxes), box_source and the settings used (`inference`).
    """
    names = model_joint_names(model, options.skeleton)
    columns = {k: [] for k in ('poses', 'poses2d', 'boxes', 'sequence', 'frame', 'person')}
    sources = set()
    for item in tqdm(inputs, total=total, desc='model predictions', unit='img'):
        if item.boxes is not None and not len(item.boxes):
            continue
        image = load_rgb(item.image, item.where)
        if item.boxes is None:
            if detector is None:
                raise ValueError(f'{item.where}: no boxes given and no detector settings')
            boxes, p3, p2 = _detect(model, item, image, options, detector)
            person = np.arange(len(boxes))
            sources.add('detector')
        else:
            p3, p2 = _estimate(model, item, image, item.boxes, options)
            boxes = np.concatenate([item.boxes, np.full((len(item.boxes), 1), np.nan)], axis=1)
            person = item.person
            sources.add('gt')
        if p3.shape != (len(boxes), len(names), 3):
            raise ValueError(f'{item.where}: the model returned poses3d {p3.shape}, expected '
                             f'{(len(boxes), len(names), 3)}')
        for key, value in zip(columns, (p3, p2, boxes, [item.sequence] * len(boxes),
                                        [item.frame] * len(boxes), person)):
            columns[key].append(np.asarray(value))
    if not columns['poses'] or not sum(map(len, columns['poses'])):
        raise ValueError(f'{source}: the model gave no pose on any of the benchmark\'s images')
    if len(sources) != 1:
        raise ValueError(f'{source}: the inputs mix given boxes and detection')
    arrays = {k: np.concatenate(v) for k, v in columns.items()}
    settings = dataclasses.asdict(options)
    if 'detector' in sources:
        settings['detector'] = dataclasses.asdict(detector)
    return Predictions(
        poses=arrays['poses'].astype(np.float64), joint_names=tuple(names),
        sequence=arrays['sequence'].astype(str), frame=arrays['frame'].astype(np.int64),
        person=arrays['person'].astype(np.int64), poses2d=arrays['poses2d'].astype(np.float64),
        boxes=arrays['boxes'].astype(np.float64), box_source=sources.pop(), inference=settings,
        source=source)


def predictions_path_for(report_path: str | os.PathLike) -> pathlib.Path:
    """Where `eval.run --model` saves the predictions: next to the report, 'X.json' ->
    'X.predictions.npz'."""
    report_path = pathlib.Path(report_path)
    return report_path.with_name(report_path.stem + '.predictions.npz')
