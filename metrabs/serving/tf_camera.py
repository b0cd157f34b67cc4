"""In-graph (TensorFlow) camera maths for the exported model: crop cameras, warping, back-mapping.

This is the graph-side twin of `posepile.camera` / `posepile.image_warp` (the SavedModel cannot
call numpy). It follows the same conventions, and tests/test_tta.py checks it numerically against
the numpy module (< 1e-3 px) so the two cannot drift:
    camera frame: OpenCV (x right, y down, z forward), millimetres;
    image: pixels, integer coordinates are pixel centres;
    crop camera (as `make_crop_camera`): turned so the optical axis passes through the box centre,
    rolled, square pixels, focal length such that box_scale x the box's larger angular extent spans
    the crop, principal point at ((side-1)/2, (side-1)/2), no distortion, optionally mirrored.
Rotations here are relative to the original camera: a crop camera shares the optical centre and
p_crop = rot @ p_orig_cam. Distortion: OpenCV's 5 coefficients (k1, k2, p1, p2, k3).
All functions are batched over a leading axis N and run in float32.
"""
from __future__ import annotations

import math

import tensorflow as tf

# Fixed-point undistortion iterations (OpenCV's scheme); 20 reach < 1e-6 normalised units for
# typical calibrations (|k1| < 0.5 at the image corners).
_UNDISTORT_ITERATIONS = 20
# Sampling coordinate for rays that the original camera cannot see (they fill with zeros).
_OUTSIDE = -1e5


def intrinsics_from_fov(fov_degrees, image_height, image_width) -> tf.Tensor:
    """[3, 3] pinhole intrinsics whose field of view along the larger image side is fov_degrees;
    principal point at the image centre ((W-1)/2, (H-1)/2) under the pixel-centre convention."""
    h = tf.cast(image_height, tf.float32)
    w = tf.cast(image_width, tf.float32)
    fov = tf.cast(fov_degrees, tf.float32) * (math.pi / 180.0)
    focal = tf.maximum(h, w) / 2.0 / tf.tan(fov / 2.0)
    zero, one = tf.zeros_like(focal), tf.ones_like(focal)
    return tf.stack([tf.stack([focal, zero, (w - 1) / 2]),
                     tf.stack([zero, focal, (h - 1) / 2]),
                     tf.stack([zero, zero, one])])


def distort_normalized(xy: tf.Tensor, coeffs: tf.Tensor) -> tf.Tensor:
    """OpenCV distortion in normalised coordinates. xy [N, ..., 2]; coeffs [N, 5] -> [N, ..., 2]."""
    coeffs = tf.cast(coeffs, tf.float32)
    extra_dims = len(xy.shape) - 2
    c = tf.reshape(coeffs, tf.concat([tf.shape(coeffs)[:1], [1] * extra_dims, [5]], 0))
    k1, k2, p1, p2, k3 = (c[..., i] for i in range(5))
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    two_xy = 2 * x * y
    xd = x * radial + p1 * two_xy + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + p2 * two_xy
    return tf.stack([xd, yd], axis=-1)


def undistort_normalized(xy_distorted: tf.Tensor, coeffs: tf.Tensor) -> tf.Tensor:
    """Inverse of distort_normalized by fixed-point iteration (valid inside the monotone region)."""
    coeffs = tf.cast(coeffs, tf.float32)
    extra_dims = len(xy_distorted.shape) - 2
    c = tf.reshape(coeffs, tf.concat([tf.shape(coeffs)[:1], [1] * extra_dims, [5]], 0))
    k1, k2, p1, p2, k3 = (c[..., i] for i in range(5))

    def step(i, xy):
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dx = p1 * 2 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + p2 * 2 * x * y
        return i + 1, tf.stack([(xy_distorted[..., 0] - dx) / radial,
                                (xy_distorted[..., 1] - dy) / radial], axis=-1)

    # A loop, not unrolled: the exported graph stays small (load and first-call time).
    _, xy = tf.while_loop(lambda i, _: i < _UNDISTORT_ITERATIONS, step,
                          (tf.constant(0), xy_distorted))
    return xy


def pixels_to_normalized(points2d: tf.Tensor, intrinsics: tf.Tensor) -> tf.Tensor:
    """[N, ..., 2] px -> [N, ..., 2] normalised (before undistortion); intrinsics [N, 3, 3]."""
    extra_dims = len(points2d.shape) - 2
    k = tf.reshape(intrinsics, tf.concat([tf.shape(intrinsics)[:1], [1] * extra_dims, [3, 3]], 0))
    y = (points2d[..., 1] - k[..., 1, 2]) / k[..., 1, 1]
    x = (points2d[..., 0] - k[..., 0, 2] - k[..., 0, 1] * y) / k[..., 0, 0]
    return tf.stack([x, y], axis=-1)


def normalized_to_pixels(normalized: tf.Tensor, intrinsics: tf.Tensor) -> tf.Tensor:
    """[N, ..., 2] normalised -> [N, ..., 2] px; intrinsics [N, 3, 3]."""
    extra_dims = len(normalized.shape) - 2
    k = tf.reshape(intrinsics, tf.concat([tf.shape(intrinsics)[:1], [1] * extra_dims, [3, 3]], 0))
    x, y = normalized[..., 0], normalized[..., 1]
    return tf.stack([k[..., 0, 0] * x + k[..., 0, 1] * y + k[..., 0, 2],
                     k[..., 1, 1] * y + k[..., 1, 2]], axis=-1)


def camera_to_image(points3d: tf.Tensor, intrinsics: tf.Tensor, coeffs: tf.Tensor) -> tf.Tensor:
    """[N, ..., 3] camera mm -> [N, ..., 2] image px with lens distortion."""
    normalized = points3d[..., :2] / points3d[..., 2:]
    return normalized_to_pixels(distort_normalized(normalized, coeffs), intrinsics)


def rotation_z(angle: tf.Tensor) -> tf.Tensor:
    """[N] radians -> [N, 3, 3] right-handed rotation about z."""
    c, s = tf.cos(angle), tf.sin(angle)
    zero, one = tf.zeros_like(c), tf.ones_like(c)
    return tf.stack([tf.stack([c, -s, zero], -1), tf.stack([s, c, zero], -1),
                     tf.stack([zero, zero, one], -1)], -2)


def rotation_from_z_to(direction: tf.Tensor) -> tf.Tensor:
    """[N, 3] directions (z > 0) -> [N, 3, 3] smallest rotation turning (0, 0, 1) onto each.

    R = I + [v]x + [v]x^2 / (1 + c) with v = z x d, c = z . d (d normalised): exact, and stable
    for every direction in front of the camera (c > -1).
    """
    d = direction / tf.norm(direction, axis=-1, keepdims=True)
    vx, vy, c = -d[:, 1], d[:, 0], d[:, 2]
    zero = tf.zeros_like(c)
    cross = tf.stack([tf.stack([zero, zero, vy], -1), tf.stack([zero, zero, -vx], -1),
                      tf.stack([-vy, vx, zero], -1)], -2)
    return (tf.eye(3, batch_shape=tf.shape(d)[:1]) + cross
            + tf.matmul(cross, cross) / (1 + c)[:, None, None])


def turn_towards_boxes(intrinsics: tf.Tensor, coeffs: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Rotation [N, 3, 3] (p_new = rot @ p_orig) aiming the optical axis at each box centre.

    intrinsics [N, 3, 3], coeffs [N, 5], boxes [N, 4] xywh px in the (distorted) original image.
    """
    centers = boxes[:, :2] + boxes[:, 2:] / 2
    normalized = undistort_normalized(
        pixels_to_normalized(centers[:, None], intrinsics), coeffs)[:, 0]
    direction = tf.concat([normalized, tf.ones_like(normalized[:, :1])], axis=-1)
    return tf.linalg.matrix_transpose(rotation_from_z_to(direction))


def upright_roll(rot_turned: tf.Tensor, up_in_camera: tf.Tensor) -> tf.Tensor:
    """Roll angle [N] that makes `up_in_camera` [N, 3] point to the image's -y in the crop.

    With this roll (Camera.rotate(roll=...)), the up direction has no x component in the crop
    camera frame and a negative y component: people standing upright in the world appear upright.
    """
    up = tf.linalg.matvec(rot_turned, up_in_camera)
    return tf.atan2(up[:, 0], -up[:, 1])


def crop_cameras(intrinsics: tf.Tensor, coeffs: tf.Tensor, boxes: tf.Tensor, side: int,
                 box_scale: float | tf.Tensor, roll: tf.Tensor, flip: tf.Tensor
                 ) -> tuple[tf.Tensor, tf.Tensor]:
    """Perspective crop cameras, as `posepile.camera.make_crop_camera` builds them.

    Args:
        intrinsics: [N, 3, 3] original intrinsics; coeffs: [N, 5] original distortion.
        boxes: [N, 4] xywh px in the original image.
        side: crop side, px. box_scale: box's larger side x box_scale spans the crop.
        roll: [N] radians (image content turns by -roll). flip: [N] bool, mirror.
    Returns:
        rot [N, 3, 3] with p_crop = rot @ p_orig_cam (det -1 where flipped) and the crop
        intrinsics [N, 3, 3].
    """
    intrinsics = tf.cast(intrinsics, tf.float32)
    boxes = tf.cast(boxes, tf.float32)
    rot = turn_towards_boxes(intrinsics, coeffs, boxes)
    rot = tf.matmul(rotation_z(tf.cast(roll, tf.float32)), rot, transpose_a=True)
    mirror = tf.where(tf.cast(flip, tf.bool), -1.0, 1.0)
    ones = tf.ones_like(mirror)
    rot = tf.linalg.diag(tf.stack([mirror, ones, ones], -1)) @ rot
    extent = tf.maximum(boxes[:, 2] / tf.abs(intrinsics[:, 0, 0]),
                        boxes[:, 3] / tf.abs(intrinsics[:, 1, 1]))
    focal = float(side) / (tf.cast(box_scale, tf.float32) * extent)
    center = tf.fill(tf.shape(focal), (side - 1) / 2)
    zero = tf.zeros_like(focal)
    crop_k = tf.stack([tf.stack([focal, zero, center], -1), tf.stack([zero, focal, center], -1),
                       tf.stack([zero, zero, ones], -1)], -2)
    return rot, crop_k


def scale_output(intrinsics: tf.Tensor, factor) -> tf.Tensor:
    """Intrinsics [N, 3, 3] of the image resized by `factor` (scalar, may be a tensor;
    Camera.scale_output)."""
    f = tf.cast(factor, tf.float32)
    scale = tf.stack([f, f, 1.0])[:, None]  # the first two rows scale, the last stays
    shift = 0.5 * (f - 1) * tf.constant([[0, 0, 1], [0, 0, 1], [0, 0, 0]], tf.float32)
    return intrinsics * scale + shift


def _source_coords(orig_k, coeffs, rot, crop_k, side):
    """Per crop pixel, the original-image px to sample: [N, side, side, 2] (undistorted rays
    rotated into the original camera and projected with its distortion)."""
    grid = tf.cast(tf.range(side), tf.float32)
    xs, ys = tf.meshgrid(grid, grid)
    pixels = tf.broadcast_to(tf.stack([xs, ys], -1)[None], tf.stack([tf.shape(rot)[0], side,
                                                                     side, 2]))
    normalized = pixels_to_normalized(pixels, crop_k)
    rays = tf.concat([normalized, tf.ones_like(normalized[..., :1])], axis=-1)
    rays_orig = tf.einsum('nhwc,ncr->nhwr', rays, rot)  # rot^T @ ray
    in_front = rays_orig[..., 2] > 1e-6
    safe = tf.where(in_front[..., None], rays_orig, tf.ones_like(rays_orig))
    coords = camera_to_image(safe, orig_k, coeffs)
    return tf.where(in_front[..., None], coords, _OUTSIDE)


def bilinear_sample(images: tf.Tensor, image_ids: tf.Tensor, coords: tf.Tensor) -> tf.Tensor:
    """Bilinear sampling with zero fill outside (cv2.remap, BORDER_CONSTANT 0).

    images [B, H, W, C] (any numeric dtype), image_ids [N] int32, coords [N, h, w, 2] px (x, y)
    -> [N, h, w, C] float32.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    x, y = coords[..., 0], coords[..., 1]
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    x0 = tf.cast(tf.clip_by_value(x0, -2.0, tf.cast(width, tf.float32) + 1), tf.int32)
    y0 = tf.cast(tf.clip_by_value(y0, -2.0, tf.cast(height, tf.float32) + 1), tf.int32)
    ids = tf.broadcast_to(tf.cast(image_ids, tf.int32)[:, None, None], tf.shape(x0))
    result = 0.0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                           (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        valid = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        index = tf.stack([ids, tf.clip_by_value(yi, 0, height - 1),
                          tf.clip_by_value(xi, 0, width - 1)], -1)
        values = tf.cast(tf.gather_nd(images, index), tf.float32)
        result += values * (weight * tf.cast(valid, tf.float32))[..., None]
    return result


def _homography_warp(images, image_ids, orig_k, rot, crop_k, side):
    """Distortion-free warp with ImageProjectiveTransformV3, one crop at a time (map_fn), so the
    source image is not copied per crop."""
    # Output px -> source px: K_orig R^T K_crop^-1.
    inverse = orig_k @ tf.linalg.matrix_transpose(rot) @ tf.linalg.inv(crop_k)
    inverse = inverse / inverse[:, 2:, 2:]
    transforms = tf.reshape(inverse, [-1, 9])[:, :8]

    channels = images.shape[-1]

    def warp_one(args):
        transform, image_id = args
        image = tf.cast(tf.gather(images, image_id)[None], tf.float32)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=image, transforms=transform[None], output_shape=tf.stack([side, side]),
            fill_value=0.0, interpolation='BILINEAR', fill_mode='CONSTANT')[0]

    def warp_all():
        return tf.map_fn(warp_one, (transforms, tf.cast(image_ids, tf.int32)),
                         fn_output_signature=tf.TensorSpec([None, None, channels], tf.float32))

    # map_fn cannot stack zero results of a dynamic element shape (side may be a tensor).
    return tf.cond(tf.shape(transforms)[0] > 0, warp_all,
                   lambda: tf.zeros(tf.stack([0, side, side, channels])))


def warp_crops(images: tf.Tensor, image_ids: tf.Tensor, orig_k: tf.Tensor, coeffs: tf.Tensor,
               rot: tf.Tensor, crop_k: tf.Tensor, side: int, antialias_factor=1) -> tf.Tensor:
    """Renders each crop camera's view of its source image.

    Args:
        images: [B, H, W, 3] source images (uint8 or float).
        image_ids: [N] index into images of each crop.
        orig_k [N, 3, 3], coeffs [N, 5]: the original camera of each crop.
        rot [N, 3, 3], crop_k [N, 3, 3]: the crop cameras (crop_cameras).
        side: crop side, px. antialias_factor: int scalar >= 1, supersampling factor (the crop is
            rendered at factor x side and area-averaged down, like reproject_image).
    Returns:
        [N, side, side, 3] float32 on the input's value scale (0..255 for uint8).
    """
    orig_k = tf.cast(orig_k, tf.float32)
    coeffs = tf.cast(coeffs, tf.float32)
    factor = tf.maximum(tf.cast(antialias_factor, tf.int32), 1)

    # One graph for every factor (a dynamic render side), not one branch per factor: the
    # exported graph stays small (load and first-call time).
    render_side = side * factor
    render_k = scale_output(crop_k, factor)

    def with_distortion():
        coords = _source_coords(orig_k, coeffs, rot, render_k, render_side)
        return bilinear_sample(images, image_ids, coords)

    def without_distortion():
        return _homography_warp(images, image_ids, orig_k, rot, render_k, render_side)

    has_distortion = tf.reduce_any(tf.not_equal(coeffs, 0.0))
    rendered = tf.cond(has_distortion, with_distortion, without_distortion)
    # Area average of factor x factor blocks (avg_pool2d needs a static window).
    channels = images.shape[-1]
    blocks = tf.reshape(rendered, tf.stack([-1, side, factor, side, factor, channels]))
    return tf.ensure_shape(tf.reduce_mean(blocks, axis=[2, 4]), [None, side, side, channels])
