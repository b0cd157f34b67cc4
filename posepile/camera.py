"""Camera model (OpenCV conventions) and all camera maths: projection, lens distortion, edits.

Frames and units:
    world:  the dataset's frame, millimetres.
    camera: OpenCV camera frame, millimetres; x right, y down, z forward (optical axis).
    image:  pixels; integer coordinates are pixel centres, (0, 0) is the top-left pixel's centre.
    normalised: undistorted image-plane coordinates (x/z, y/z) of the camera frame, unitless.

Lens distortion follows OpenCV's full model with 4, 5, 8, 12 or 14 coefficients
    k1 k2 p1 p2 [k3 [k4 k5 k6 [s1 s2 s3 s4 [taux tauy]]]]
(radial rational, tangential, thin prism, sensor tilt), applied in normalised coordinates before
the intrinsic matrix. Distortion is closed-form; undistortion is an iterative, vectorised Newton
solve (see `Camera.undistort_points`).
"""
from __future__ import annotations

import copy as copy_lib
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_VALID_N_DISTORTION = (4, 5, 8, 12, 14)
_UNDISTORT_MAX_ITER = 40
# Tolerance in normalised units: 1e-11 is ~1e-8 px for a 1000 px focal length, far below the
# 1e-3 px requirement, and still well above float64 round-off of the distortion polynomial.
_UNDISTORT_TOL = 1e-11
# A Newton solution whose residual is above this did not converge (outside the invertible region).
_UNDISTORT_FAIL_TOL = 1e-7
# The normalised radius range scanned for the fold-over of radial distortion (~87 degrees).
_MAX_SCANNED_RADIUS = 20.0


def _as_float_array(value: Any, shape: tuple[int, ...], field: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f'Camera: {field} must have shape {shape}, got {arr.shape}')
    if not np.all(np.isfinite(arr)):
        raise ValueError(f'Camera: {field} contains non-finite values: {arr.tolist()}')
    return arr.copy()


def _check_points(points: Any, dim: int, field: str) -> np.ndarray:
    arr = np.asarray(points)
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(f'{field} must have shape [..., {dim}], got {arr.shape}')
    return arr


def _output_dtype(points: np.ndarray) -> np.dtype:
    """float32 inputs come back as float32 (the records' precision); everything else as float64."""
    return np.dtype(np.float32) if points.dtype == np.float32 else np.dtype(np.float64)


def apply_matrix(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """[..., k] points -> [..., m] float64 `points @ matrix.T` for a small (m, k) matrix.

    Written as k broadcast multiply-adds rather than a matmul: numpy hands [N, k] @ [k, m] to
    OpenBLAS, whose threads contend with every other busy core (a 1 M x 2 x 2 product measured
    2 ms single-threaded but 140-450 ms with 2 threads on a loaded 2-core machine, and crop
    workers run one process per core).
    """
    points = np.asarray(points, np.float64)
    matrix = np.asarray(matrix, np.float64)
    out = points[..., 0:1] * matrix[:, 0]
    for i in range(1, matrix.shape[1]):
        out = out + points[..., i:i + 1] * matrix[:, i]
    return out


def rotation_x(angle: float) -> np.ndarray:
    """Right-handed rotation matrix (3, 3) about the x axis by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float64)


def rotation_y(angle: float) -> np.ndarray:
    """Right-handed rotation matrix (3, 3) about the y axis by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float64)


def rotation_z(angle: float) -> np.ndarray:
    """Right-handed rotation matrix (3, 3) about the z axis by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)


def rotation_between(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) that turns direction `source` (3,) onto direction `target` (3,).

    Rotates about source x target; for (anti)parallel inputs it is the identity (or a half turn
    about an axis perpendicular to `source`).
    """
    a = np.asarray(source, np.float64)
    b = np.asarray(target, np.float64)
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin_angle = np.linalg.norm(axis)
    cos_angle = float(np.dot(a, b))
    if sin_angle < 1e-12:
        if cos_angle > 0:
            return np.eye(3)
        # Half turn: any axis perpendicular to `a` works; pick the most stable one.
        helper = np.eye(3)[np.argmin(np.abs(a))]
        axis = np.cross(a, helper)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    axis = axis / sin_angle
    cross_mat = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    # Rodrigues' formula with sin and cos taken directly from the vectors (no arccos round-off).
    return np.eye(3) + sin_angle * cross_mat + (1 - cos_angle) * cross_mat @ cross_mat


def _tilt_matrix(tau_x: float, tau_y: float) -> np.ndarray:
    """OpenCV's sensor-tilt projection matrix (3, 3) for tilt angles tau_x, tau_y (radians)."""
    cx, sx = np.cos(tau_x), np.sin(tau_x)
    cy, sy = np.cos(tau_y), np.sin(tau_y)
    rot_x = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    rot_y = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rot_xy = rot_y @ rot_x
    proj_z = np.array([[rot_xy[2, 2], 0, -rot_xy[0, 2]],
                       [0, rot_xy[2, 2], -rot_xy[1, 2]],
                       [0, 0, 1]])
    return proj_z @ rot_xy


def distort_normalized(points: np.ndarray, coeffs: np.ndarray | None) -> np.ndarray:
    """OpenCV lens distortion in normalised coordinates, closed form.

    Args:
        points: [..., 2] undistorted normalised coordinates (x/z, y/z).
        coeffs: None or OpenCV coefficients of length 4, 5, 8, 12 or 14.
    Returns:
        [..., 2] float64 distorted normalised coordinates (before the intrinsic matrix).
    """
    xy = np.asarray(points, np.float64)
    if coeffs is None:
        return xy.copy()
    d = np.zeros(14)
    d[:len(coeffs)] = coeffs
    k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4, tau_x, tau_y = d
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    r4 = r2 * r2
    r6 = r4 * r2
    radial = (1 + k1 * r2 + k2 * r4 + k3 * r6) / (1 + k4 * r2 + k5 * r4 + k6 * r6)
    two_xy = 2 * x * y
    xd = x * radial + p1 * two_xy + p2 * (r2 + 2 * x * x) + s1 * r2 + s2 * r4
    yd = y * radial + p1 * (r2 + 2 * y * y) + p2 * two_xy + s3 * r2 + s4 * r4
    if tau_x != 0 or tau_y != 0:
        tilt = _tilt_matrix(tau_x, tau_y)
        hom = apply_matrix(np.stack([xd, yd, np.ones_like(xd)], axis=-1), tilt)
        return hom[..., :2] / hom[..., 2:]
    return np.stack([xd, yd], axis=-1)


def undistort_normalized(points: np.ndarray, coeffs: np.ndarray | None) -> np.ndarray:
    """Inverse of `distort_normalized` by vectorised Newton iteration.

    Valid range: points whose undistorted radius lies inside the region where the radial
    distortion is monotone (`distortion_valid_radius`), which for realistic calibrations covers
    the whole image. There the result is accurate to ~1e-11 normalised units (~1e-8 px).
    Points for which the solve does not converge (outside that region, or NaN input) come back
    as NaN, never as a silently wrong value.

    Args:
        points: [..., 2] distorted normalised coordinates.
        coeffs: None or OpenCV coefficients of length 4, 5, 8, 12 or 14.
    Returns:
        [..., 2] float64 undistorted normalised coordinates.
    """
    target = np.asarray(points, np.float64)
    if coeffs is None:
        return target.copy()
    shape = target.shape
    target = target.reshape(-1, 2)
    # Start from one fixed-point step, x0 = 2 t - distort(t), a better guess than t (saves a
    # Newton iteration for typical lenses); NaN where the distortion overflows.
    with np.errstate(all='ignore'):
        estimate = 2 * target - distort_normalized(target, coeffs)
    estimate = np.where(np.isfinite(estimate), estimate, target)
    step_size = 1e-7
    n = len(target)
    for _ in range(_UNDISTORT_MAX_ITER):
        # Forward-difference Jacobian: it only sets the Newton step, the fixed point is exact.
        # One call for the points and both probes, all points every iteration: the per-call
        # overhead of numpy dominates for the few points of a box outline, and the points of
        # a map converge within an iteration of each other.
        distorted = distort_normalized(np.concatenate(
            [estimate, estimate + [step_size, 0], estimate + [0, step_size]]), coeffs)
        residual = distorted[:n] - target
        # Converged, or NaN (never converges; comes back NaN below).
        done = ~(np.max(np.abs(residual), axis=-1) >= _UNDISTORT_TOL)
        if done.all():
            break
        jac_x = (distorted[n:2 * n] - distorted[:n]) / step_size
        jac_y = (distorted[2 * n:] - distorted[:n]) / step_size
        det = jac_x[:, 0] * jac_y[:, 1] - jac_y[:, 0] * jac_x[:, 1]
        with np.errstate(divide='ignore', invalid='ignore'):
            dx = (jac_y[:, 1] * residual[:, 0] - jac_y[:, 0] * residual[:, 1]) / det
            dy = (-jac_x[:, 1] * residual[:, 0] + jac_x[:, 0] * residual[:, 1]) / det
        update = np.stack([dx, dy], axis=-1)
        update[done] = 0
        estimate -= update
    final_residual = np.max(np.abs(distort_normalized(estimate, coeffs) - target), axis=-1)
    radius_limit = distortion_valid_radius(coeffs)
    radius = np.linalg.norm(estimate, axis=-1)
    failed = ~(final_residual < _UNDISTORT_FAIL_TOL) | (radius > radius_limit)
    estimate[failed] = np.nan
    return estimate.reshape(shape)


def distortion_valid_radius(coeffs: np.ndarray | None) -> float:
    """Largest undistorted normalised radius up to which the radial distortion is monotone.

    Beyond it, polynomial distortion folds back (rays far outside the field of view would project
    into the image), so projections there are meaningless. Tangential and prism terms are small
    and ignored here. Returns inf when no fold occurs within a normalised radius of 20 (~87 deg).
    """
    if coeffs is None:
        return np.inf
    # Every projection of a distorted camera asks for this; the scan costs ~3 ms, so it is
    # computed once per distinct set of coefficients.
    return _valid_radius_of(tuple(np.asarray(coeffs, np.float64).ravel().tolist()))


@functools.lru_cache(maxsize=1024)
def _valid_radius_of(coeffs: tuple[float, ...]) -> float:
    d = np.zeros(14)
    d[:len(coeffs)] = coeffs
    k1, k2, _, _, k3, k4, k5, k6 = d[:8]
    r = np.linspace(0, _MAX_SCANNED_RADIUS, 20001)
    r2 = r * r
    with np.errstate(divide='ignore', invalid='ignore'):
        radial = (1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3) / (1 + k4 * r2 + k5 * r2 ** 2
                                                               + k6 * r2 ** 3)
    distorted_radius = r * radial
    increasing = np.diff(distorted_radius) > 0
    increasing &= np.isfinite(distorted_radius[1:])
    bad = np.flatnonzero(~increasing)
    if bad.size == 0:
        return np.inf
    return float(r[bad[0]])


class Camera:
    """A pinhole camera with optional OpenCV lens distortion.

    Attributes:
        t: (3,) optical centre in world coordinates, mm.
        R: (3, 3) world-to-camera rotation: p_cam = R @ (p_world - t). Orthonormal; det is -1
            after `horizontal_flip` (a mirrored camera).
        intrinsic_matrix: (3, 3) [[fx, skew, cx], [0, fy, cy], [0, 0, 1]] in pixels.
        distortion_coeffs: None or float64 (n,) with n in 4, 5, 8, 12, 14 (OpenCV order).
            All-zero coefficients are stored as None.
        world_up: (3,) the world's up direction in world coordinates (kept for consumers that
            orient cameras; unit length).
    """

    def __init__(self, optical_center=None, rot_world_to_cam=None, intrinsic_matrix=None,
                 distortion_coeffs=None, world_up=(0, -1, 0)):
        self.t = (np.zeros(3) if optical_center is None
                  else _as_float_array(optical_center, (3,), 'optical_center'))
        self.R = (np.eye(3) if rot_world_to_cam is None
                  else _as_float_array(rot_world_to_cam, (3, 3), 'rot_world_to_cam'))
        self.intrinsic_matrix = (np.eye(3) if intrinsic_matrix is None
                                 else _as_float_array(intrinsic_matrix, (3, 3), 'intrinsic_matrix'))
        self.distortion_coeffs = self._check_distortion(distortion_coeffs)
        up = _as_float_array(world_up, (3,), 'world_up')
        norm = np.linalg.norm(up)
        if norm == 0:
            raise ValueError('Camera: world_up must be non-zero')
        self.world_up = up / norm

        deviation = np.max(np.abs(self.R @ self.R.T - np.eye(3)))
        if deviation > 1e-2:
            raise ValueError(
                f'Camera: rot_world_to_cam is not orthonormal (max |R R^T - I| = {deviation:.3g})')
        K = self.intrinsic_matrix
        if not np.allclose([K[1, 0], *K[2]], [0, 0, 0, 1], atol=1e-9):
            raise ValueError(
                f'Camera: intrinsic_matrix must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]], got '
                f'{K.tolist()}')
        if K[0, 0] == 0 or K[1, 1] == 0:
            raise ValueError(f'Camera: intrinsic_matrix has a zero focal length: {K.tolist()}')

    @staticmethod
    def _check_distortion(coeffs) -> np.ndarray | None:
        if coeffs is None:
            return None
        arr = np.asarray(coeffs, np.float64)
        if arr.ndim == 2 and 1 in arr.shape:
            # OpenCV calibration returns (1, n) or (n, 1).
            arr = arr.reshape(-1)
        if arr.ndim != 1 or arr.shape[0] not in _VALID_N_DISTORTION:
            raise ValueError(
                f'Camera: distortion_coeffs must have length 4, 5, 8, 12 or 14, got shape '
                f'{arr.shape}')
        if not np.all(np.isfinite(arr)):
            raise ValueError(f'Camera: distortion_coeffs contains non-finite values {arr}')
        if np.all(arr == 0):
            return None
        return arr.copy()

    # ---------------------------------------------------------------- point maps
    def world_to_camera(self, points3d) -> np.ndarray:
        """[..., 3] world mm -> [..., 3] camera mm."""
        p = _check_points(points3d, 3, 'world_to_camera: points3d')
        out = apply_matrix(p.astype(np.float64) - self.t, self.R)
        return out.astype(_output_dtype(p), copy=False)

    def camera_to_world(self, points3d) -> np.ndarray:
        """[..., 3] camera mm -> [..., 3] world mm."""
        p = _check_points(points3d, 3, 'camera_to_world: points3d')
        # R is orthonormal (or a reflection), so its inverse is its transpose.
        out = apply_matrix(p, self.R.T) + self.t
        return out.astype(_output_dtype(p), copy=False)

    def camera_to_image(self, points3d) -> np.ndarray:
        """[..., 3] camera mm -> [..., 2] image px, with lens distortion.

        Points behind the camera (z <= 0) are projected through the centre as well (their
        values are mathematically defined but not visible); check z yourself where it matters.
        """
        p = _check_points(points3d, 3, 'camera_to_image: points3d')
        p64 = p.astype(np.float64)
        with np.errstate(divide='ignore', invalid='ignore'):
            normalized = p64[..., :2] / p64[..., 2:]
        out = self._normalized_to_pixels(distort_normalized(normalized, self.distortion_coeffs))
        return out.astype(_output_dtype(p), copy=False)

    def world_to_image(self, points3d) -> np.ndarray:
        """[..., 3] world mm -> [..., 2] image px, with lens distortion."""
        p = _check_points(points3d, 3, 'world_to_image: points3d')
        out = self.camera_to_image(self.world_to_camera(p.astype(np.float64)))
        return out.astype(_output_dtype(p), copy=False)

    def image_to_camera(self, points2d, depth=1.0) -> np.ndarray:
        """[..., 2] image px -> [..., 3] camera mm at camera-frame z = `depth` (mm, broadcastable
        to [...]). Undistorts first; NaN where undistortion is not valid (see `undistort_points`).
        """
        p = _check_points(points2d, 2, 'image_to_camera: points2d')
        normalized = undistort_normalized(
            self._pixels_to_normalized(p.astype(np.float64)), self.distortion_coeffs)
        depth = np.asarray(depth, np.float64)[..., np.newaxis]
        hom = np.concatenate([normalized, np.ones_like(normalized[..., :1])], axis=-1)
        return (hom * depth).astype(_output_dtype(p), copy=False)

    def image_to_world(self, points2d, depth=1.0) -> np.ndarray:
        """[..., 2] image px -> [..., 3] world mm at camera-frame z = `depth` mm."""
        return self.camera_to_world(self.image_to_camera(points2d, depth))

    def distort_points(self, points2d) -> np.ndarray:
        """[..., 2] px in the undistorted pinhole image (same intrinsics) -> [..., 2] px in this
        camera's distorted image. Closed form."""
        p = _check_points(points2d, 2, 'distort_points: points2d')
        normalized = self._pixels_to_normalized(p.astype(np.float64))
        out = self._normalized_to_pixels(distort_normalized(normalized, self.distortion_coeffs))
        return out.astype(_output_dtype(p), copy=False)

    def undistort_points(self, points2d) -> np.ndarray:
        """[..., 2] px in this camera's distorted image -> [..., 2] px in the undistorted pinhole
        image with the same intrinsic matrix.

        Iterative (Newton, vectorised over all points), accurate to ~1e-8 px inside the region
        where the radial distortion is monotone (see `distortion_valid_radius`); points outside
        it, where no unique inverse exists, come back as NaN.
        """
        p = _check_points(points2d, 2, 'undistort_points: points2d')
        normalized = self._pixels_to_normalized(p.astype(np.float64))
        out = self._normalized_to_pixels(undistort_normalized(normalized, self.distortion_coeffs))
        return out.astype(_output_dtype(p), copy=False)

    def is_valid_direction(self, points3d_camera) -> np.ndarray:
        """[..., 3] camera-frame points -> [...] bool: in front of the camera and inside the
        region where the lens distortion is invertible (so `camera_to_image` is meaningful)."""
        p = _check_points(points3d_camera, 3, 'is_valid_direction: points3d_camera')
        p = p.astype(np.float64)
        in_front = p[..., 2] > 0
        limit = distortion_valid_radius(self.distortion_coeffs)
        if np.isinf(limit):
            return in_front
        with np.errstate(divide='ignore', invalid='ignore'):
            radius = np.linalg.norm(p[..., :2], axis=-1) / p[..., 2]
        return in_front & (radius < limit)

    def _normalized_to_pixels(self, normalized: np.ndarray) -> np.ndarray:
        K = self.intrinsic_matrix
        return apply_matrix(normalized, K[:2, :2]) + K[:2, 2]

    def _pixels_to_normalized(self, pixels: np.ndarray) -> np.ndarray:
        K = self.intrinsic_matrix
        # Inverse of the upper-triangular [[fx, s], [0, fy]] in closed form (np.linalg.inv
        # costs more than the rest of a small projection).
        fx, skew, fy = K[0, 0], K[0, 1], K[1, 1]
        inverse = np.array([[1 / fx, -skew / (fx * fy)], [0.0, 1 / fy]])
        return apply_matrix(pixels - K[:2, 2], inverse)

    # ---------------------------------------------------------------- in-place edits
    @property
    def has_distortion(self) -> bool:
        return self.distortion_coeffs is not None

    def zoom(self, factor: float) -> Camera:
        """Scales the focal lengths (and skew) by `factor` about the principal point."""
        self.intrinsic_matrix[:2, :2] *= factor
        return self

    def scale_output(self, factor: float) -> Camera:
        """Describes the image resized by `factor` (e.g. cv2.resize to factor x the size).

        Under the pixel-centre convention the image's outer edge (-0.5) stays fixed, so a pixel
        coordinate u becomes factor * (u + 0.5) - 0.5; the focal lengths scale by `factor`.
        """
        self.intrinsic_matrix[:2] *= factor
        self.intrinsic_matrix[:2, 2] += 0.5 * (factor - 1)
        return self

    def shift_image(self, offset2d) -> Camera:
        """Moves the image content by `offset2d` (2,) px: every projection shifts by it."""
        offset = _as_float_array(offset2d, (2,), 'offset2d')
        self.intrinsic_matrix[:2, 2] += offset
        return self

    def rotate(self, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> Camera:
        """Rotates the camera body about its own axes, yaw, then pitch, then roll (radians).

        yaw > 0 turns the optical axis towards the image's +x (pans right), pitch > 0 towards the
        image's -y (tilts up), roll > 0 turns the camera's x axis towards its y axis, so the
        image content rotates by -roll about the principal point (counter-clockwise on screen for
        square pixels, since image y points down). The optical centre stays put.
        """
        body = rotation_y(yaw) @ rotation_x(pitch) @ rotation_z(roll)
        self.R = body.T @ self.R
        return self

    def turn_towards(self, target_image_point=None, target_world_point=None) -> Camera:
        """Rotates the camera (smallest rotation) so its optical axis passes through the target.

        Args (exactly one):
            target_image_point: (2,) px in the current (possibly distorted) image.
            target_world_point: (3,) world mm.
        Afterwards the target projects onto the principal point.
        """
        if (target_image_point is None) == (target_world_point is None):
            raise ValueError('turn_towards: give exactly one of target_image_point and '
                             'target_world_point')
        if target_image_point is not None:
            point = _as_float_array(target_image_point, (2,), 'target_image_point')
            direction = self.image_to_camera(point)
            if not np.all(np.isfinite(direction)):
                raise ValueError(f'turn_towards: target_image_point {point.tolist()} is outside '
                                 f'the region where the lens distortion can be inverted')
        else:
            point = _as_float_array(target_world_point, (3,), 'target_world_point')
            direction = self.world_to_camera(point)
        body = rotation_between(np.array([0.0, 0.0, 1.0]), direction)
        self.R = body.T @ self.R
        return self

    def horizontal_flip(self) -> Camera:
        """Mirrors the camera left-right about the principal point's column.

        Afterwards, for every world point, the new image x equals 2 * cx - (old image x) and the
        image y is unchanged (exact also with skew and any distortion): the image this camera
        sees is the old image mirrored about x = cx. The camera frame is mirrored (x negated), so
        R becomes a reflection (det -1) and camera-frame coordinates are the mirrored ones, as a
        flip augmentation needs (swap left/right joint labels separately).
        """
        mirror = np.diag([-1.0, 1.0, 1.0])
        self.R = mirror @ self.R
        # u' = 2cx - (fx x + s y + cx) with x' = -x  =>  the skew changes sign.
        self.intrinsic_matrix[0, 1] *= -1
        if self.distortion_coeffs is not None:
            d = np.zeros(14)
            n = len(self.distortion_coeffs)
            d[:n] = self.distortion_coeffs
            # Terms even in x that add to x_distorted must change sign: p2, s1, s2; the tilt
            # about the y axis changes sign (a mirror in x conjugates Ry(a) to Ry(-a)).
            d[[3, 8, 9, 13]] *= -1
            self.distortion_coeffs = d[:n]
        return self

    def center_principal_point(self, imshape) -> Camera:
        """Moves the principal point to the image centre ((W-1)/2, (H-1)/2); imshape is (H, W,...).
        """
        if len(imshape) < 2:
            raise ValueError(f'center_principal_point: imshape must be (H, W[, C]), got {imshape}')
        height, width = imshape[:2]
        self.intrinsic_matrix[:2, 2] = [(width - 1) / 2, (height - 1) / 2]
        return self

    def undistort(self) -> Camera:
        """Drops the lens distortion (describes the undistorted pinhole image)."""
        self.distortion_coeffs = None
        return self

    def copy(self) -> Camera:
        # Field by field: copy.deepcopy takes ~0.1 ms, more than a crop camera's maths.
        new = object.__new__(type(self))
        new.__dict__ = {key: value.copy() if isinstance(value, np.ndarray)
                        else copy_lib.deepcopy(value) for key, value in self.__dict__.items()}
        return new

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (lists of floats; distortion_coeffs may be None)."""
        return {
            'optical_center': self.t.tolist(),
            'rot_world_to_cam': self.R.tolist(),
            'intrinsic_matrix': self.intrinsic_matrix.tolist(),
            'distortion_coeffs': (None if self.distortion_coeffs is None
                                  else self.distortion_coeffs.tolist()),
            'world_up': self.world_up.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Camera:
        """Inverse of `to_dict`; raises KeyError naming a missing field."""
        required = ('optical_center', 'rot_world_to_cam', 'intrinsic_matrix')
        missing = [k for k in required if k not in d]
        if missing:
            raise KeyError(f'Camera.from_dict: missing fields {missing}')
        unknown = set(d) - set(required) - {'distortion_coeffs', 'world_up'}
        if unknown:
            raise KeyError(f'Camera.from_dict: unknown fields {sorted(unknown)}')
        return cls(d['optical_center'], d['rot_world_to_cam'], d['intrinsic_matrix'],
                   d.get('distortion_coeffs'), d.get('world_up', (0, -1, 0)))

    def allclose(self, other: Camera, atol: float = 1e-6) -> bool:
        """Whether all parameters agree within `atol` (absent distortion equals all zeros)."""
        def coeffs(cam):
            return np.zeros(14) if cam.distortion_coeffs is None else np.pad(
                cam.distortion_coeffs, (0, 14 - len(cam.distortion_coeffs)))
        return (np.allclose(self.t, other.t, atol=atol) and np.allclose(self.R, other.R, atol=atol)
                and np.allclose(self.intrinsic_matrix, other.intrinsic_matrix, atol=atol)
                and np.allclose(coeffs(self), coeffs(other), atol=atol)
                and np.allclose(self.world_up, other.world_up, atol=atol))

    def __repr__(self) -> str:
        K = self.intrinsic_matrix
        return (f'Camera(t={np.round(self.t, 2).tolist()}, f=({K[0, 0]:.1f}, {K[1, 1]:.1f}), '
                f'c=({K[0, 2]:.1f}, {K[1, 2]:.1f}), distortion={self.distortion_coeffs})')


def camera_from_fov(imshape: tuple[int, int], fov_deg: float = 55.0) -> Camera:
    """A pinhole guess for an image of unknown calibration, shape (H, W) in pixels.

    Identity extrinsics (world = camera frame), principal point at the image centre
    ((W - 1) / 2, (H - 1) / 2 in pixel-centre coordinates), square pixels, and focal length
    f = (max(H, W) / 2) / tan(fov_deg / 2) so that the larger side spans `fov_deg` degrees.
    """
    height, width = (int(v) for v in imshape)
    if height <= 0 or width <= 0:
        raise ValueError(f'image shape must be positive, got {imshape}')
    if not 0 < fov_deg < 180:
        raise ValueError(f'fov_deg must be in (0, 180), got {fov_deg}')
    focal = (max(height, width) / 2) / np.tan(np.deg2rad(fov_deg) / 2)
    return Camera(intrinsic_matrix=[[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2],
                                    [0, 0, 1]])


def fit_intrinsics(points3d_camera: np.ndarray, points2d: np.ndarray, where: str = '',
                   max_rms_px: float = 5.0) -> np.ndarray:
    """K [3, 3] (zero skew) minimising the squared reprojection error of an undistorted pinhole.

    For datasets that give camera-frame 3D joints and their image positions but no intrinsics
    (MPI-INF-3DHP test, MuPoTS-3D): the annotation itself determines them. Each image axis is a
    separate linear least-squares problem, u = fx·(x/z) + cx, v = fy·(y/z) + cy.

    Args:
        points3d_camera: [..., 3] camera-frame points (any unit; only z > 0 used).
        points2d: [..., 2] their image positions, px.
        where: names the source in errors.
        max_rms_px: refuse a fit worse than this (the 2D points are then not a pinhole
            projection of the 3D ones, e.g. wrong arrays or frames).
    Raises:
        ValueError: fewer than 3 usable pairs, a bad fit, or a non-positive focal length.
    """
    p3 = np.asarray(points3d_camera, np.float64).reshape(-1, 3)
    p2 = np.asarray(points2d, np.float64).reshape(-1, 2)
    ok = np.all(np.isfinite(p3), axis=1) & np.all(np.isfinite(p2), axis=1) & (p3[:, 2] > 1e-6)
    if ok.sum() < 3:
        raise ValueError(f'{where}: fewer than 3 valid 2D-3D point pairs to fit the intrinsics')
    normalized = p3[ok, :2] / p3[ok, 2:]
    p2 = p2[ok]
    K = np.eye(3)
    residuals = []
    for axis in (0, 1):
        design = np.stack([normalized[:, axis], np.ones(len(p2))], axis=1)
        (focal, centre), *_ = np.linalg.lstsq(design, p2[:, axis], rcond=None)
        K[axis, axis], K[axis, 2] = focal, centre
        residuals.append(design @ [focal, centre] - p2[:, axis])
    rms = float(np.sqrt(np.mean(np.square(residuals)) * 2))
    if not rms <= max_rms_px or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f'{where}: the 2D points are not a pinhole projection of the 3D points '
                         f'(fitted intrinsics {K[:2].round(2).tolist()}, RMS reprojection error '
                         f'{rms:.3g} px)')
    return K


def camera_from_projection(points3d_camera: np.ndarray, points2d: np.ndarray, where: str = '',
                           max_rms_px: float = 5.0) -> Camera:
    """The pinhole Camera (world frame = camera frame, y down) whose `fit_intrinsics` make
    points2d the projection of points3d_camera; ValueError as in `fit_intrinsics`."""
    K = fit_intrinsics(points3d_camera, points2d, where, max_rms_px)
    return Camera(intrinsic_matrix=K, world_up=(0, -1, 0))


def camera_pose_from_projection(points3d_world: np.ndarray, points2d: np.ndarray,
                                intrinsic_matrix: np.ndarray, world_up=(0, 0, 1)) -> Camera:
    """The Camera with known intrinsics whose pose best projects points3d_world onto points2d.

    For datasets that ship 2D and 3D joints but no extrinsics (e.g. 3DPeople): OpenCV's
    iterative PnP (reprojection-error minimisation, undistorted pinhole). The points are centred
    first so the solver's initial guess does not depend on where the world origin lies.

    Args:
        points3d_world: [J, 3] world points (mm); J >= 4, not all collinear.
        points2d: [J, 2] their image positions, px.
        intrinsic_matrix: [3, 3].
        world_up: the returned camera's world_up.
    Returns:
        the Camera; callers check the pixel residual (the fit is least squares, not exact).
    Raises:
        ValueError if the solver fails.
    """
    import cv2
    p3 = np.asarray(points3d_world, np.float64)
    p2 = np.asarray(points2d, np.float64)
    K = np.asarray(intrinsic_matrix, np.float64)
    centre = p3.mean(0)
    ok, rvec, tvec = cv2.solvePnP(np.ascontiguousarray(p3 - centre), np.ascontiguousarray(p2),
                                  K, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError('cannot solve the camera pose from the 2D-3D point pairs')
    R = cv2.Rodrigues(rvec)[0]
    return Camera(optical_center=centre - R.T @ tvec.reshape(3), rot_world_to_cam=R,
                  intrinsic_matrix=K, world_up=world_up)


def fit_translation(points3d_rotated: np.ndarray, points2d: np.ndarray,
                    intrinsic_matrix: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """The camera-frame offset t [..., 3] that makes `points3d_rotated + t` project onto
    `points2d` through an undistorted pinhole, batched over the leading axes.

    For annotations that give a body's orientation in the camera frame and its 2D keypoints but
    no position (e.g. SPEC-SYN's SMPL parameters). With the rotation known, each point gives two
    equations linear in t, (q_x + t_x) - x·(q_z + t_z) = 0 and likewise for y, with (x, y) the
    normalised image coordinates (K⁻¹ applied, so skew is handled); their least-squares solution
    is exact for exact projections. It minimises this algebraic error, not pixels: callers check
    the pixel residual.

    Args:
        points3d_rotated: [..., J, 3] points in camera orientation (any unit; t comes in it).
        points2d: [..., J, 2] their image positions, px.
        intrinsic_matrix: [3, 3] or [..., 3, 3].
        valid: [..., J] bool, the pairs to use (default: all finite ones).
    Returns:
        [..., 3] float64; NaN where fewer than 2 valid pairs or the system is degenerate.
    """
    q = np.asarray(points3d_rotated, np.float64)
    p2 = np.asarray(points2d, np.float64)
    K = np.asarray(intrinsic_matrix, np.float64)
    ok = np.all(np.isfinite(q), axis=-1) & np.all(np.isfinite(p2), axis=-1)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    weight = ok.astype(np.float64)
    q = np.where(ok[..., None], q, 0.0)
    homogeneous = np.concatenate([np.where(ok[..., None], p2, 0.0), np.ones_like(p2[..., :1])],
                                 axis=-1)
    rays = np.einsum('...ab,...jb->...ja', np.linalg.inv(K), homogeneous)
    normalized = rays[..., :2] / rays[..., 2:]  # [..., J, 2]
    # Rows [1, 0, -x] and [0, 1, -y] of the design matrix; right-hand sides x q_z - q_x etc.
    design = np.zeros(normalized.shape[:-1] + (2, 3))
    design[..., 0, 0] = design[..., 1, 1] = 1.0
    design[..., :, 2] = -normalized
    rhs = normalized * q[..., 2:] - q[..., :2]
    normal = np.einsum('...jka,...jkb,...j->...ab', design, design, weight)
    moment = np.einsum('...jka,...jk,...j->...a', design, rhs, weight)
    # Two points already fix t (4 equations, 3 unknowns); below that, or for coincident rays,
    # the normal matrix is singular.
    degenerate = (ok.sum(axis=-1) < 2) | ~(np.linalg.cond(normal) < 1e12)
    normal[degenerate] = np.eye(3)
    t = np.linalg.solve(normal, moment[..., None])[..., 0]
    t[degenerate] = np.nan
    return t


def h36m_distortion_to_opencv(k, p) -> np.ndarray:
    """OpenCV coefficients [12] (k1 k2 p1 p2 k3 k4 k5 k6 s1 s2 s3 s4) equal to the lens model of
    Human3.6M and the IMAR datasets (Fit3D, CHI3D, HumanSC3D), radial `k` [3], tangential `p` [2].

    That model, on normalised x, y with r2 = x² + y²:
        radial = 1 + k1 r2 + k2 r2² + k3 r2³,  tan = p[1]·x + p[0]·y,
        x_d = x (radial + tan) + p[1] r2,      y_d = y (radial + tan) + p[0] r2.
    OpenCV's tangential terms give x·radial + p[0]xy + p[1](r2 + 2x²)/2 with p1 = p[0]/2,
    p2 = p[1]/2; the missing p[1]r2/2 (and p[0]r2/2 in y) is exactly thin prism s1 = p[1]/2,
    s3 = p[0]/2. So the mapping is exact, not an approximation.
    """
    k = np.asarray(k, np.float64).reshape(3)
    p = np.asarray(p, np.float64).reshape(2)
    return np.array([k[0], k[1], p[0] / 2, p[1] / 2, k[2], 0, 0, 0, p[1] / 2, 0, p[0] / 2, 0])


def make_crop_camera(camera: Camera, box_xywh: Sequence[float], output_side: int,
                     scale: float = 1.0, rotation_rad: float = 0.0, flip: bool = False) -> Camera:
    """The camera of a perspective crop around a box (DESIGN.md "Crops").

    Copies `camera`, turns it (smallest rotation) so the optical axis passes through the box
    centre (x + w/2, y + h/2) of the original, possibly distorted image, drops the distortion,
    rolls it by `rotation_rad` (`Camera.rotate(roll=...)`: content turns by -rotation_rad), sets
    square pixels without skew and a focal length such that `scale` times the box's larger side
    (measured as an angle through the original focal lengths) spans `output_side` px, puts the
    principal point at the crop centre ((side-1)/2, (side-1)/2), and mirrors it if `flip`
    (the crop image is then exactly np.fliplr of the unflipped crop).

    Args:
        camera: the original camera (world mm, image px).
        box_xywh: (4,) box [x, y, w, h] in the original image, px.
        output_side: crop side in px.
        scale: > 1 leaves margin around the box (zooms out), < 1 zooms in.
    Returns:
        a new Camera (the input is not modified).
    """
    box = np.asarray(box_xywh, np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise ValueError(f'make_crop_camera: box_xywh must be 4 finite numbers, got {box_xywh}')
    if box[2] <= 0 or box[3] <= 0:
        raise ValueError(f'make_crop_camera: box_xywh has non-positive size: {box.tolist()}')
    if output_side <= 0 or scale <= 0:
        raise ValueError(f'make_crop_camera: output_side ({output_side}) and scale ({scale}) '
                         f'must be positive')
    crop_cam = camera.copy()
    crop_cam.turn_towards(target_image_point=box[:2] + box[2:] / 2)
    crop_cam.undistort()
    crop_cam.rotate(roll=rotation_rad)
    K = camera.intrinsic_matrix
    angular_extent = max(box[2] / abs(K[0, 0]), box[3] / abs(K[1, 1]))
    focal = output_side / (scale * angular_extent)
    center = (output_side - 1) / 2
    crop_cam.intrinsic_matrix = np.array([[focal, 0, center], [0, focal, center], [0, 0, 1]])
    if flip:
        crop_cam.horizontal_flip()
    return crop_cam


def reproject_image_points(points2d, old_camera: Camera, new_camera: Camera) -> np.ndarray:
    """[..., 2] px in old_camera's image -> [..., 2] px in new_camera's image.

    Assumes both cameras share the optical centre (only rotation, intrinsics and distortion
    differ), so the map does not depend on depth. NaN where the old undistortion is invalid.
    """
    p = _check_points(points2d, 2, 'reproject_image_points: points2d')
    rays_old = old_camera.image_to_camera(p.astype(np.float64))
    rays_new = apply_matrix(rays_old, new_camera.R @ old_camera.R.T)
    return new_camera.camera_to_image(rays_new).astype(_output_dtype(p), copy=False)


def homography_between(old_camera: Camera, new_camera: Camera) -> np.ndarray:
    """(3, 3) homography from old-image px to new-image px for distortion-free cameras
    with a shared optical centre: K_new R_new R_old^T K_old^-1."""
    return (new_camera.intrinsic_matrix @ new_camera.R @ old_camera.R.T
            @ np.linalg.inv(old_camera.intrinsic_matrix))
