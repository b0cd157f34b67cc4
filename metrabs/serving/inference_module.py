"""The exported tf.Module: crop model + perspective cropping + TTA + filtering, with signatures.

Mirrors the published MeTRAbs model API (isarandi/metrabs docs/API.md):
    predict_crops(images [N, S, S, 3] uint8, intrinsics [N, 3, 3] float32)
        -> {'poses3d' [N, J, 3] crop-camera mm, 'poses2d' [N, J, 2] crop px}  (all model joints)
    serve({'images', 'intrinsics'}) -> the same (one dict argument: Keras 3's TFSMLayer)
    estimate_poses(image [H, W(, C)] uint8, boxes [P, 4 or 5] float32 xywh (score) px,
        intrinsic_matrix [3, 3],
        distortion_coeffs [5], extrinsic_matrix [4, 4], world_up_vector [3],
        default_fov_degrees, internal_batch_size, antialias_factor, num_aug, average_aug,
        skeleton, suppress_implausible_poses)
        -> {'poses3d' [P, J, 3] (or [P, A, J, 3]) world mm, 'poses2d' ... image px,
            'is_plausible' [P] bool}: poses stay 1:1 with the boxes; with
            suppress_implausible_poses the flag is the plausibility test detect_poses filters
            with (pose_filtering.is_plausible), without it all True
    estimate_poses_batched(images [B, H, W, 3], boxes ragged [B, None, 4], intrinsic_matrix
        [B or 1, 3, 3], distortion_coeffs [B or 1, 5], extrinsic_matrix [B or 1, 4, 4], ...)
        -> ragged {'poses3d' [B, None, J, 3], 'poses2d' [B, None, J, 2], 'is_plausible'}
    detect_poses(image, ..., detector_threshold, detector_nms_iou_threshold, max_detections,
        detector_flip_aug, suppress_implausible_poses) -> {'boxes' [P, 5], 'poses3d', 'poses2d',
        'is_plausible' [P] bool}
    detect_poses_batched(images, ...) -> ragged versions.
Images of one call may be [H, W] (grey), [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] (RGBA, alpha
ignored), uint8; another layout or an empty image fails naming the expected form. (A numpy
float image is cast to uint8 by TensorFlow before any of this sees it: 0..1 floats become 0 and
1. metrabs.serving.loaded_model.load_model checks and converts images, boxes and skeleton names
in Python first.) Boxes may carry a 5th column (the detector score detect_poses returns); it is
ignored.
Unknown intrinsics (the default, all -1) come from default_fov_degrees along the larger image
side. The extrinsic matrix maps world to camera (p_cam = E @ [p_world; 1], mm); poses3d are in the
world frame. skeleton='' gives all model joints; unknown names fail naming the known ones.
Detector contract (optional SavedModel): detector(image [H, W, 3] uint8, threshold float32,
nms_iou_threshold float32, max_detections int32) -> [N, 5] float32 (x, y, w, h, score); TF2 Object
Detection API / TF-Hub detectors are adapted to it (metrabs.serving.detectors). Without one,
detect_poses treats the whole image as one person box with score 1 (documented fallback) and
never drops it as implausible: the plausibility filter removes a detector's false detections,
and without a detector the caller has said there is a person (its 'is_plausible' flag still
says what the test finds). Zero boxes or detections give empty results ([0, 5], [0, J, 3]) in
every entry point.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from metrabs.model.acae_matrices import AcaeMatrices
from metrabs.serving import pose_filtering, tf_camera, tta
from posepile import joints as joint_registry
from posepile.joints import JointInfo

UNKNOWN_INTRINSIC_MATRIX = ((-1.0, -1.0, -1.0), (-1.0, -1.0, -1.0), (-1.0, -1.0, -1.0))
DEFAULT_EXTRINSIC_MATRIX = ((1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0),
                            (0.0, 0.0, 0.0, 1.0))
DEFAULT_DISTORTION = (0.0, 0.0, 0.0, 0.0, 0.0)
DEFAULT_WORLD_UP = (0.0, -1.0, 0.0)
DEFAULT_BOX_SCALE = 1.0  # the box fills the crop, as in training (AugmentationConfig.box_scale)
MAX_ANTIALIAS_FACTOR = 4
IMAGE_FORM = ('image must be [H, W] (grey), [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] (RGBA) uint8 '
              'with H, W >= 1')

_f32, _i32, _str, _bool = tf.float32, tf.int32, tf.string, tf.bool


def available_skeletons(model_joint_names: Sequence[str]) -> dict[str, np.ndarray]:
    """{registered skeleton name: indices [J_s] into the model's joints} for every skeleton whose
    union joints the model predicts, plus '' for all model joints."""
    ids = {n: i for i, n in enumerate(model_joint_names)}
    result = {'': np.arange(len(model_joint_names))}
    for name in joint_registry.skeleton_names('all'):
        names = joint_registry.union_names(name)
        if all(n in ids for n in names):
            result[name] = np.array([ids[n] for n in names], np.int64)
    return result


def rgb_image(image: tf.Tensor) -> tf.Tensor:
    """[H, W], [H, W, 1], [H, W, 3] or [H, W, 4] uint8 -> [H, W, 3] uint8: grey replicated into
    the three channels, alpha dropped. Another rank or channel count, or an empty image, fails
    with IMAGE_FORM and the shape it got."""
    shape = tf.shape(image)
    rank = tf.size(shape)
    # The checks run before anything reshapes: their message, not a shape error, is what fails.
    padded = tf.concat([shape, [3, 3, 3]], 0)[:3]  # [H, W, C] of a rank-2 or -3 image
    valid = (tf.logical_or(tf.equal(rank, 2), tf.equal(rank, 3))
             & tf.reduce_all(padded[:2] >= 1) & tf.reduce_any(tf.equal(padded[2], [1, 3, 4])))
    with tf.control_dependencies([tf.debugging.Assert(valid, [IMAGE_FORM, 'got shape', shape])]):
        image = tf.identity(image)
    image = tf.cond(tf.equal(rank, 2), lambda: image[..., tf.newaxis], lambda: image)
    image = tf.cond(tf.equal(tf.shape(image)[2], 1), lambda: tf.tile(image, [1, 1, 3]),
                    lambda: image[:, :, :3])
    return tf.ensure_shape(image, [None, None, 3])


def box_corners_only(boxes: tf.Tensor) -> tf.Tensor:
    """[P, 4] x, y, w, h of boxes [P, 4] or [P, 5] (a 5th column, the score, is ignored)."""
    columns = tf.shape(boxes)[1]
    check = tf.debugging.Assert(
        tf.logical_or(tf.equal(columns, 4), tf.equal(columns, 5)),
        ['boxes must be [P, 4] (x, y, w, h px) or [P, 5] (with a score); got shape',
         tf.shape(boxes)])
    with tf.control_dependencies([check]):
        return tf.ensure_shape(boxes[:, :4], [None, 4])


def acae_projection(model_joint_names: Sequence[str], acae_arrays: Mapping[str, np.ndarray],
                    source: str = 'ACAE weights') -> np.ndarray:
    """[J, J] matrix replacing the ACAE's joints by W_dec @ W_enc of them (identity elsewhere).

    Raises ValueError naming `source` if the ACAE knows joints the model does not predict.
    """
    try:
        acae = AcaeMatrices.from_arrays(acae_arrays, model_joint_names, source)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    sel = acae.joint_indices
    matrix = np.eye(len(model_joint_names))
    matrix[np.ix_(sel, sel)] = acae.w_dec.astype(np.float64) @ acae.w_enc.astype(np.float64)
    return matrix.astype(np.float32)


class PoseEstimatorModule(tf.Module):
    """Everything the SavedModel exposes (see module docstring).

    Args:
        crop_model: a built MetrabsModel (call(images, intrinsics) -> dict, see
            metrabs.model.metrabs_model).
        bone_stats: optional {'<joint_a>-<joint_b>' (model joint names): mean length mm}.
        acae_arrays: optional ACAE weights (acae.export.load_weights) over model joint names.
        detector: optional loaded detector SavedModel (contract in the module docstring).
        filter_config: plausibility / NMS thresholds.
        box_scale: crop margin, as in training.
    """

    def __init__(self, crop_model, bone_stats: Mapping[str, float] | None = None,
                 acae_arrays: Mapping[str, np.ndarray] | None = None, detector=None,
                 filter_config: pose_filtering.FilterConfig = pose_filtering.FilterConfig(),
                 box_scale: float = DEFAULT_BOX_SCALE):
        super().__init__(name='metrabs')
        # The Keras model is kept out of the SavedModel object graph (Keras 3 would try to trace
        # its own serving signature with the wrong arguments); its raw tf.Variables (behind the
        # keras.Variable wrappers) are tracked instead, which is also what the C++ loader of
        # saved_model_cli / TF Serving needs to find them.
        self.__dict__['crop_model'] = crop_model
        self._raw_variables = [v.value for v in crop_model.weights]
        cfg = crop_model.config
        self.proc_side = int(cfg.proc_side)
        self.box_scale = float(box_scale)
        self.filter_config = filter_config
        self.detector = detector
        names = list(crop_model.joint_names)
        # Bones among the model's joints come from the registry's union bones.
        union = joint_registry.get_union('all')
        present = set(names)
        self.joint_info = JointInfo(
            names, [(a, b) for a, b in union.edge_names if a in present and b in present])
        self._mirror_perm = tf.constant(self.joint_info.mirror_perm, tf.int32)
        self._edges = tf.constant(self.joint_info.edges, tf.int32)
        self._symmetric_pairs = tf.constant(
            pose_filtering.mirror_edge_pairs(self.joint_info.edges, self.joint_info.mirror_perm),
            tf.int32)
        mean_bones = np.full(len(self.joint_info.edges), np.nan, np.float32)
        edge_ids = {frozenset(e): i for i, e in enumerate(self.joint_info.edge_names)}
        for key, value in (bone_stats or {}).items():
            a, _, b = key.partition('-')
            if frozenset((a, b)) not in edge_ids:
                raise KeyError(f'bone_stats: {key!r} is not a bone of the model\'s joints')
            mean_bones[edge_ids[frozenset((a, b))]] = value
        self._mean_bone_mm = tf.constant(mean_bones)
        self._acae = (None if acae_arrays is None
                      else tf.constant(acae_projection(names, acae_arrays)))

        skeletons = available_skeletons(names)
        skeleton_list = list(skeletons)
        self._skeleton_names_t = tf.constant(skeleton_list)
        # A variable, so that a loaded SavedModel lists them too ('' = all model joints).
        self.skeleton_names = tf.Variable(skeleton_list, dtype=tf.string, trainable=False,
                                          name='skeleton_names')
        j_max = max(len(v) for v in skeletons.values())
        table = np.zeros((len(skeletons), j_max), np.int32)
        counts = np.zeros(len(skeletons), np.int32)
        for i, idx in enumerate(skeletons.values()):
            table[i, :len(idx)] = idx
            counts[i] = len(idx)
        self._skeleton_table = tf.constant(table)
        self._skeleton_counts = tf.constant(counts)
        side = self.proc_side
        # Built per instance: the crop side in the signature is the model's.
        self.predict_crops = tf.function(self._predict_crops, input_signature=[
            tf.TensorSpec([None, side, side, 3], tf.uint8, name='images'),
            tf.TensorSpec([None, 3, 3], _f32, name='intrinsics')])
        # The same with one dict argument: the endpoint Keras 3 can wrap
        # (keras.layers.TFSMLayer(path, call_endpoint='serve') passes its input positionally).
        self.serve = tf.function(
            lambda inputs: self._predict_crops(inputs['images'], inputs['intrinsics']),
            input_signature=[{'images': tf.TensorSpec([None, side, side, 3], tf.uint8),
                              'intrinsics': tf.TensorSpec([None, 3, 3], _f32)}])
        # The network, traced once and called by every entry point: the SavedModel then holds
        # one copy of its graph instead of one per signature (load time grows with the total
        # graph size; see bench/README.md, load and first call).
        self._crop_network = tf.function(self._crop_predictions, input_signature=[
            tf.TensorSpec([None, side, side, 3], _f32), tf.TensorSpec([None, 3, 3], _f32)])
        # Likewise the cropping + TTA pipeline that every image entry point runs.
        self._estimate_flat = tf.function(self._estimate_flat_body, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8), tf.TensorSpec([None, 4], _f32),
            tf.TensorSpec([None], _i32), tf.TensorSpec([None, 3, 3], _f32),
            tf.TensorSpec([None, 5], _f32), tf.TensorSpec([None, 4, 4], _f32),
            tf.TensorSpec([3], _f32), tf.TensorSpec([], _f32), tf.TensorSpec([], _i32),
            tf.TensorSpec([], _i32), tf.TensorSpec([], _i32)])
        self.input_resolution = tf.Variable(side, dtype=tf.int32, trainable=False,
                                            name='input_resolution')
        self._unknown_skeleton_message = (
            'unknown skeleton name; available: ' + ', '.join(repr(s) for s in skeletons))

        self.joint_names = tf.Variable(names, dtype=tf.string, trainable=False, name='joint_names')
        self.joint_edges = tf.Variable(self.joint_info.edges.astype(np.int32), trainable=False,
                                       name='joint_edges')
        self.per_skeleton_joint_names = {}
        self.per_skeleton_joint_edges = {}
        for name in skeleton_list[1:]:
            info = joint_registry.get_skeleton(name)
            self.per_skeleton_joint_names[name] = tf.Variable(
                list(info.names), dtype=tf.string, trainable=False)
            self.per_skeleton_joint_edges[name] = tf.Variable(
                info.edges.astype(np.int32).reshape(-1, 2), trainable=False)
        # The reference's attribute name for the same thing.
        self.per_skeleton_edges = self.per_skeleton_joint_edges

    # ------------------------------------------------------------------ crop model
    def _crop_predictions(self, crops01, intrinsics):
        """crops [N, S, S, 3] float in [0, 1], crop intrinsics [N, 3, 3] ->
        (poses3d [N, J, 3] crop camera mm (ACAE-projected if given), poses2d [N, J, 2] crop px)."""
        out = self.crop_model(crops01, intrinsics, training=False)
        poses3d = out['coords3d_abs_mm']
        if self._acae is not None:
            poses3d = tf.einsum('kj,njc->nkc', self._acae, poses3d)
        return poses3d, out['coords2d_px']

    def _predict_crops(self, images, intrinsics):
        """images [N, S, S, 3] uint8 crops (S = proc_side), intrinsics [N, 3, 3] of the crop
        cameras -> {'poses3d': [N, J, 3] crop-camera mm, 'poses2d': [N, J, 2] crop px}."""
        tf.debugging.assert_equal(tf.shape(images)[0], tf.shape(intrinsics)[0],
                                  message='predict_crops: images and intrinsics differ in N')
        poses3d, poses2d = self._crop_network(tf.cast(images, _f32) / 255.0, intrinsics)
        return {'poses3d': poses3d, 'poses2d': poses2d}

    def _predict_in_chunks(self, crops01, intrinsics, batch_size):
        n = tf.shape(crops01)[0]
        # Never pad beyond the crops there are: padding 1 crop to a chunk of 64 costs 64x.
        size = tf.where(batch_size > 0, tf.minimum(batch_size, tf.maximum(n, 1)), tf.maximum(n, 1))
        # At least one (padded) chunk, so that zero boxes still give [0, J, 3].
        n_chunks = tf.maximum((n + size - 1) // size, 1)
        pad = n_chunks * size - n
        crops = tf.pad(crops01, [[0, pad], [0, 0], [0, 0], [0, 0]])
        intr = tf.concat([intrinsics, tf.eye(3, batch_shape=[pad])], 0)
        side = self.proc_side
        crops = tf.reshape(crops, tf.stack([n_chunks, size, side, side, 3]))
        intr = tf.reshape(intr, tf.stack([n_chunks, size, 3, 3]))
        n_joints = len(self.joint_info.names)
        poses3d = tf.map_fn(lambda x: self._crop_network(x[0], x[1])[0], (crops, intr),
                            fn_output_signature=tf.TensorSpec([None, n_joints, 3], _f32))
        return tf.reshape(poses3d, [-1, n_joints, 3])[:n]

    # ------------------------------------------------------------------ pose estimation core
    def _skeleton_indices(self, skeleton):
        match = tf.equal(self._skeleton_names_t, skeleton)
        tf.debugging.Assert(tf.reduce_any(match), [self._unknown_skeleton_message, 'got:',
                                                   skeleton])
        sid = tf.argmax(tf.cast(match, tf.int32), output_type=tf.int32)
        return self._skeleton_table[sid, :self._skeleton_counts[sid]]

    def _estimate_flat_body(self, images, boxes, image_ids, intrinsic_matrix, distortion_coeffs,
                            extrinsic_matrix, world_up_vector, default_fov_degrees,
                            internal_batch_size, antialias_factor, num_aug):
        """Core on flat boxes (traced once as self._estimate_flat). images [B, H, W, 3] uint8,
        boxes [P, 4] xywh px, image_ids [P] int32 into images, camera parameters [1 or B, ...].
        Returns world poses3d [P, A, J, 3] mm, image poses2d [P, A, J, 2] px, camera-frame poses
        [P, A, J, 3] mm (all model joints)."""
        shape = tf.shape(images)
        n_images = shape[0]
        boxes = tf.ensure_shape(tf.cast(boxes, _f32), [None, 4])
        tf.debugging.assert_positive(boxes[:, 2:], message='boxes: width and height must be > 0')
        tf.debugging.assert_greater_equal(tf.cast(antialias_factor, _i32), 1,
                                          message='antialias_factor must be >= 1')
        tf.debugging.assert_less_equal(tf.cast(antialias_factor, _i32), MAX_ANTIALIAS_FACTOR,
                                       message=f'antialias_factor must be <= '
                                               f'{MAX_ANTIALIAS_FACTOR}')
        tf.debugging.assert_greater_equal(num_aug, 1, message='num_aug must be >= 1')

        def per_image(value, inner_shape):
            value = tf.cast(value, _f32)
            tf.debugging.assert_equal(
                tf.logical_or(tf.shape(value)[0] == 1, tf.shape(value)[0] == n_images), True,
                message=f'camera parameters must have batch size 1 or the number of images '
                        f'(inner shape {inner_shape})')
            return tf.broadcast_to(value, tf.concat([[n_images], inner_shape], 0))

        intr = per_image(intrinsic_matrix, [3, 3])
        fov_k = tf_camera.intrinsics_from_fov(default_fov_degrees, shape[1], shape[2])
        intr = tf.where((intr[:, 0, 0] <= 0)[:, None, None], fov_k[None], intr)
        dist = per_image(distortion_coeffs, [5])
        extr = per_image(extrinsic_matrix, [4, 4])
        up_world = tf.cast(world_up_vector, _f32)

        roll_aug, flip_aug, brightness_aug = tta.augmentation_params(num_aug)
        n_aug = tf.shape(roll_aug)[0]
        n_boxes = tf.shape(boxes)[0]
        # Crops are laid out [P, A] -> flat P*A: per-box values repeat, per-augmentation tile.
        def rep(x):
            return tf.repeat(x, n_aug, axis=0)

        def tile(x):
            return tf.tile(x, [n_boxes])
        crop_image_ids = rep(tf.cast(image_ids, _i32))
        crop_orig_k = tf.gather(intr, crop_image_ids)
        crop_dist = tf.gather(dist, crop_image_ids)
        crop_extr = tf.gather(extr, crop_image_ids)
        crop_boxes = rep(boxes)
        up_cam = tf.linalg.matvec(crop_extr[:, :3, :3], up_world)
        turned = tf_camera.turn_towards_boxes(crop_orig_k, crop_dist, crop_boxes)
        roll = tf_camera.upright_roll(turned, up_cam) + tile(roll_aug)
        flip = tile(flip_aug)
        rot, crop_k = tf_camera.crop_cameras(crop_orig_k, crop_dist, crop_boxes, self.proc_side,
                                             self.box_scale, roll, flip)
        crops = tf_camera.warp_crops(images, crop_image_ids, crop_orig_k, crop_dist, rot, crop_k,
                                     self.proc_side, antialias_factor) / 255.0
        crops = tta.adjust_brightness(crops, tile(brightness_aug))
        poses_crop = self._predict_in_chunks(crops, crop_k, tf.cast(internal_batch_size, _i32))
        poses_crop = tta.unmirror_labels(poses_crop, flip, self._mirror_perm)
        poses_cam = tta.crop_to_camera(poses_crop, rot)
        poses2d = tf_camera.camera_to_image(poses_cam, crop_orig_k, crop_dist)
        rot_e, t_e = crop_extr[:, :3, :3], crop_extr[:, :3, 3]
        # Inverse (not transpose) of the extrinsic rotation: user matrices are rarely exactly
        # orthonormal.
        poses_world = tf.einsum('njc,nrc->njr', poses_cam - t_e[:, None], tf.linalg.inv(rot_e))
        unflat = lambda x: tf.reshape(  # noqa: E731
            x, tf.concat([[n_boxes, n_aug], tf.shape(x)[1:]], 0))
        return unflat(poses_world), unflat(poses2d), unflat(poses_cam)

    def _plausibility(self, poses_cam, test):
        """[P] bool: pose_filtering.is_plausible of the augmentation mean of poses_cam
        [P, A, J, 3] (camera mm) if `test`, else all True."""
        def tested():
            return pose_filtering.is_plausible(
                tta.average(poses_cam), self._edges, self._symmetric_pairs, self._mean_bone_mm,
                tta.spread_mm(poses_cam), self.filter_config)
        return tf.cond(test, tested, lambda: tf.ones(tf.shape(poses_cam)[:1], tf.bool))

    def _finish(self, poses3d, poses2d, skeleton, average_aug):
        indices = self._skeleton_indices(skeleton)
        poses3d = tf.gather(poses3d, indices, axis=2)
        poses2d = tf.gather(poses2d, indices, axis=2)
        return tf.cond(average_aug,
                       lambda: (tta.average(poses3d), tta.average(poses2d)),
                       lambda: (poses3d, poses2d))

    _SUPPRESS = tf.TensorSpec([], _bool, name='suppress_implausible_poses')
    _COMMON = [
        tf.TensorSpec([], _f32, name='default_fov_degrees'),
        tf.TensorSpec([], _i32, name='internal_batch_size'),
        tf.TensorSpec([], _i32, name='antialias_factor'),
        tf.TensorSpec([], _i32, name='num_aug'),
        tf.TensorSpec([], _bool, name='average_aug'),
        tf.TensorSpec([], _str, name='skeleton')]

    @tf.function(input_signature=[
        tf.TensorSpec(None, tf.uint8, name='image'),
        tf.TensorSpec([None, None], _f32, name='boxes'),
        tf.TensorSpec([3, 3], _f32, name='intrinsic_matrix'),
        tf.TensorSpec([5], _f32, name='distortion_coeffs'),
        tf.TensorSpec([4, 4], _f32, name='extrinsic_matrix'),
        tf.TensorSpec([3], _f32, name='world_up_vector')] + _COMMON + [_SUPPRESS])
    def estimate_poses(self, image, boxes, intrinsic_matrix=UNKNOWN_INTRINSIC_MATRIX,
                       distortion_coeffs=DEFAULT_DISTORTION,
                       extrinsic_matrix=DEFAULT_EXTRINSIC_MATRIX,
                       world_up_vector=DEFAULT_WORLD_UP, default_fov_degrees=55.0,
                       internal_batch_size=64, antialias_factor=1, num_aug=5, average_aug=True,
                       skeleton='', suppress_implausible_poses=False):
        """One image, user boxes -> {'poses3d' world mm, 'poses2d' image px, 'is_plausible'
        [P] bool} (module doc). Poses stay 1:1 with the boxes."""
        image = rgb_image(image)
        boxes = box_corners_only(boxes)
        poses3d, poses2d, poses_cam = self._estimate_flat(
            image[None], boxes, tf.zeros_like(boxes[:, 0], _i32), intrinsic_matrix[None],
            distortion_coeffs[None], extrinsic_matrix[None], world_up_vector,
            default_fov_degrees, internal_batch_size, antialias_factor, num_aug)
        plausible = self._plausibility(poses_cam, suppress_implausible_poses)
        poses3d, poses2d = self._finish(poses3d, poses2d, skeleton, average_aug)
        return {'poses3d': poses3d, 'poses2d': poses2d, 'is_plausible': plausible}

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name='images'),
        tf.RaggedTensorSpec([None, None, 4], _f32, ragged_rank=1),
        tf.TensorSpec([None, 3, 3], _f32, name='intrinsic_matrix'),
        tf.TensorSpec([None, 5], _f32, name='distortion_coeffs'),
        tf.TensorSpec([None, 4, 4], _f32, name='extrinsic_matrix'),
        tf.TensorSpec([3], _f32, name='world_up_vector')] + _COMMON + [_SUPPRESS])
    def estimate_poses_batched(self, images, boxes, intrinsic_matrix=(UNKNOWN_INTRINSIC_MATRIX,),
                               distortion_coeffs=(DEFAULT_DISTORTION,),
                               extrinsic_matrix=(DEFAULT_EXTRINSIC_MATRIX,),
                               world_up_vector=DEFAULT_WORLD_UP, default_fov_degrees=55.0,
                               internal_batch_size=64, antialias_factor=1, num_aug=5,
                               average_aug=True, skeleton='', suppress_implausible_poses=False):
        """Images [B, H, W, 3], ragged boxes [B, None, 4] -> ragged poses and 'is_plausible'
        [B, None] (module doc)."""
        poses3d, poses2d, poses_cam = self._estimate_flat(
            images, boxes.values, tf.cast(boxes.value_rowids(), _i32), intrinsic_matrix,
            distortion_coeffs, extrinsic_matrix, world_up_vector, default_fov_degrees,
            internal_batch_size, antialias_factor, num_aug)
        plausible = self._plausibility(poses_cam, suppress_implausible_poses)
        poses3d, poses2d = self._finish(poses3d, poses2d, skeleton, average_aug)
        splits = boxes.row_splits
        return {'poses3d': tf.RaggedTensor.from_row_splits(poses3d, splits),
                'poses2d': tf.RaggedTensor.from_row_splits(poses2d, splits),
                'is_plausible': tf.RaggedTensor.from_row_splits(plausible, splits)}

    # ------------------------------------------------------------------ detection
    def _detect_boxes(self, image, threshold, nms_iou_threshold, max_detections, flip_aug):
        """[N, 5] xywh + score px. Whole image as one box (score 1) without a detector."""
        shape = tf.cast(tf.shape(image), _f32)
        if self.detector is None:
            return tf.stack([[0.0, 0.0, shape[1], shape[0], 1.0]])
        boxes = self.detector(image, threshold, nms_iou_threshold, max_detections)

        def with_flip():
            flipped = self.detector(image[:, ::-1], threshold, nms_iou_threshold, max_detections)
            # x of the mirrored box under the pixel-centre convention: W - x - w.
            unflipped = tf.concat([shape[1] - flipped[:, :1] - flipped[:, 2:3], flipped[:, 1:]],
                                  axis=1)
            both = tf.concat([boxes, unflipped], 0)
            corners = tf.concat([both[:, 1:2], both[:, :1], both[:, 1:2] + both[:, 3:4],
                                 both[:, :1] + both[:, 2:3]], 1)
            keep = tf.image.non_max_suppression(corners, both[:, 4], tf.shape(both)[0],
                                                nms_iou_threshold)
            return tf.gather(both, keep)

        boxes = tf.cond(flip_aug, with_flip, lambda: boxes)
        boxes = tf.gather(boxes, tf.argsort(boxes[:, 4], direction='DESCENDING'))
        return tf.cond(max_detections >= 0, lambda: boxes[:max_detections], lambda: boxes)

    def _detect_one(self, image, intrinsic_matrix, distortion_coeffs, extrinsic_matrix,
                    world_up_vector, default_fov_degrees, internal_batch_size, antialias_factor,
                    num_aug, average_aug, skeleton, detector_threshold,
                    detector_nms_iou_threshold, max_detections, detector_flip_aug,
                    suppress_implausible_poses):
        boxes = self._detect_boxes(image, detector_threshold, detector_nms_iou_threshold,
                                   max_detections, detector_flip_aug)
        poses3d, poses2d, poses_cam = self._estimate_flat(
            image[None], boxes[:, :4], tf.zeros_like(boxes[:, 0], _i32), intrinsic_matrix[None],
            distortion_coeffs[None], extrinsic_matrix[None], world_up_vector,
            default_fov_degrees, internal_batch_size, antialias_factor, num_aug)

        plausible = self._plausibility(poses_cam, tf.constant(True))

        def filtered():
            kept = tf.cast(tf.where(plausible)[:, 0], _i32)
            order = pose_filtering.pose_nms(
                tf.gather(tta.average(poses2d), kept), tf.gather(boxes, kept),
                tf.gather(boxes[:, 4], kept), self.filter_config)
            return tf.gather(kept, order)

        if self.detector is None:
            # The whole image is the caller's one person: nothing to filter (module doc).
            suppress_implausible_poses = tf.constant(False)
        keep = tf.cond(suppress_implausible_poses, filtered,
                       lambda: tf.range(tf.shape(boxes)[0]))
        poses3d, poses2d = self._finish(tf.gather(poses3d, keep), tf.gather(poses2d, keep),
                                        skeleton, average_aug)
        return tf.gather(boxes, keep), poses3d, poses2d, tf.gather(plausible, keep)

    _DETECT = [
        tf.TensorSpec([], _f32, name='detector_threshold'),
        tf.TensorSpec([], _f32, name='detector_nms_iou_threshold'),
        tf.TensorSpec([], _i32, name='max_detections'),
        tf.TensorSpec([], _bool, name='detector_flip_aug'), _SUPPRESS]

    @tf.function(input_signature=[
        tf.TensorSpec(None, tf.uint8, name='image'),
        tf.TensorSpec([3, 3], _f32, name='intrinsic_matrix'),
        tf.TensorSpec([5], _f32, name='distortion_coeffs'),
        tf.TensorSpec([4, 4], _f32, name='extrinsic_matrix'),
        tf.TensorSpec([3], _f32, name='world_up_vector')] + _COMMON + _DETECT)
    def detect_poses(self, image, intrinsic_matrix=UNKNOWN_INTRINSIC_MATRIX,
                     distortion_coeffs=DEFAULT_DISTORTION,
                     extrinsic_matrix=DEFAULT_EXTRINSIC_MATRIX, world_up_vector=DEFAULT_WORLD_UP,
                     default_fov_degrees=55.0, internal_batch_size=64, antialias_factor=1,
                     num_aug=5, average_aug=True, skeleton='', detector_threshold=0.3,
                     detector_nms_iou_threshold=0.7, max_detections=-1, detector_flip_aug=False,
                     suppress_implausible_poses=True):
        """One image -> {'boxes' [P, 5], 'poses3d', 'poses2d', 'is_plausible'} (module doc)."""
        boxes, poses3d, poses2d, plausible = self._detect_one(
            rgb_image(image), intrinsic_matrix, distortion_coeffs, extrinsic_matrix, world_up_vector,
            default_fov_degrees, internal_batch_size, antialias_factor, num_aug, average_aug,
            skeleton, detector_threshold, detector_nms_iou_threshold, max_detections,
            detector_flip_aug, suppress_implausible_poses)
        return {'boxes': boxes, 'poses3d': poses3d, 'poses2d': poses2d,
                'is_plausible': plausible}

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name='images'),
        tf.TensorSpec([None, 3, 3], _f32, name='intrinsic_matrix'),
        tf.TensorSpec([None, 5], _f32, name='distortion_coeffs'),
        tf.TensorSpec([None, 4, 4], _f32, name='extrinsic_matrix'),
        tf.TensorSpec([3], _f32, name='world_up_vector')] + _COMMON + _DETECT)
    def detect_poses_batched(self, images, intrinsic_matrix=(UNKNOWN_INTRINSIC_MATRIX,),
                             distortion_coeffs=(DEFAULT_DISTORTION,),
                             extrinsic_matrix=(DEFAULT_EXTRINSIC_MATRIX,),
                             world_up_vector=DEFAULT_WORLD_UP, default_fov_degrees=55.0,
                             internal_batch_size=64, antialias_factor=1, num_aug=5,
                             average_aug=True, skeleton='', detector_threshold=0.3,
                             detector_nms_iou_threshold=0.7, max_detections=-1,
                             detector_flip_aug=False, suppress_implausible_poses=True):
        """Images [B, H, W, 3] -> ragged {'boxes', 'poses3d', 'poses2d', 'is_plausible'}; one
        image at a time. Only average_aug=True is supported here."""
        tf.debugging.Assert(average_aug, ['detect_poses_batched supports only average_aug=True'])
        n = tf.shape(images)[0]
        bcast = lambda x, s: tf.broadcast_to(x, tf.concat([[n], s], 0))  # noqa: E731
        args = (images, bcast(intrinsic_matrix, [3, 3]), bcast(distortion_coeffs, [5]),
                bcast(extrinsic_matrix, [4, 4]))
        def one(x):
            return self._detect_one(
                x[0], x[1], x[2], x[3], world_up_vector, default_fov_degrees,
                internal_batch_size, antialias_factor, num_aug, tf.constant(True), skeleton,
                detector_threshold, detector_nms_iou_threshold, max_detections,
                detector_flip_aug, suppress_implausible_poses)

        boxes, poses3d, poses2d, plausible = tf.map_fn(
            one, args, fn_output_signature=(
                tf.RaggedTensorSpec([None, 5], _f32, ragged_rank=0),
                tf.RaggedTensorSpec([None, None, 3], _f32, ragged_rank=0),
                tf.RaggedTensorSpec([None, None, 2], _f32, ragged_rank=0),
                tf.RaggedTensorSpec([None], tf.bool, ragged_rank=0)))
        return {'boxes': boxes, 'poses3d': poses3d, 'poses2d': poses2d,
                'is_plausible': plausible}

    # ------------------------------------------------------------------ serving signatures
    def serving_signatures(self) -> dict:
        """Signatures for the C++ loader (saved_model_cli run, TF Serving): every input explicit.
        'serving_default' = predict_crops; 'estimate_poses' averages the augmentations."""
        estimate = tf.function(
            lambda image, boxes, intrinsic_matrix, distortion_coeffs, extrinsic_matrix,
            world_up_vector, default_fov_degrees, internal_batch_size, antialias_factor,
            num_aug, skeleton, suppress_implausible_poses: self.estimate_poses(
                image, boxes, intrinsic_matrix, distortion_coeffs, extrinsic_matrix,
                world_up_vector, default_fov_degrees, internal_batch_size, antialias_factor,
                num_aug, tf.constant(True), skeleton, suppress_implausible_poses),
            input_signature=[
                tf.TensorSpec([None, None, 3], tf.uint8, name='image'),
                tf.TensorSpec([None, 4], _f32, name='boxes'),
                tf.TensorSpec([3, 3], _f32, name='intrinsic_matrix'),
                tf.TensorSpec([5], _f32, name='distortion_coeffs'),
                tf.TensorSpec([4, 4], _f32, name='extrinsic_matrix'),
                tf.TensorSpec([3], _f32, name='world_up_vector')]
            + [s for s in self._COMMON if s.name != 'average_aug'] + [self._SUPPRESS])
        # tf.functions, not concrete functions: traced inside tf.saved_model.save, so each graph
        # is traced once (a trace made outside the save context is traced again inside it and
        # the SavedModel would hold both copies).
        return {'serving_default': self.predict_crops, 'estimate_poses': estimate}
