"""Pinhole intrinsics fitted to 2D-3D correspondences, for test sets that ship no calibration file.

MPI-INF-3DHP's test set and MuPoTS-3D distribute 3D joints in the camera frame ('annot3', mm)
together with their image positions ('annot2', px) but no machine-readable intrinsics; the
annotation itself determines them. (Candidate for posepile/camera.py, the home of camera maths.)
"""
from __future__ import annotations

import numpy as np

from posepile.datasets.common import DatasetFormatError


def fit_intrinsics(points3d_camera: np.ndarray, points2d: np.ndarray, source: str,
                   max_rms_px: float = 5.0) -> np.ndarray:
    """K [3, 3] (zero skew) minimising the squared reprojection error of an undistorted pinhole.

    Args:
        points3d_camera: [..., 3] camera-frame points (any unit; z > 0 used only).
        points2d: [..., 2] their image positions, px.
        source: the file the points come from, for the error message.
        max_rms_px: refuse a fit worse than this (the annotation is then not a pinhole
            projection of the 3D points, e.g. wrong arrays or frames).
    Each image axis is a separate linear least-squares problem:
    u = fx·(x/z) + cx, v = fy·(y/z) + cy.
    """
    p3 = np.asarray(points3d_camera, np.float64).reshape(-1, 3)
    p2 = np.asarray(points2d, np.float64).reshape(-1, 2)
    ok = np.all(np.isfinite(p3), axis=1) & np.all(np.isfinite(p2), axis=1) & (p3[:, 2] > 1e-6)
    if ok.sum() < 3:
        raise DatasetFormatError(f'{source}: fewer than 3 valid 2D-3D joint pairs to fit the '
                                 f'camera intrinsics')
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
        raise DatasetFormatError(
            f'{source}: annot2 is not a pinhole projection of annot3 (fitted intrinsics '
            f'{K[:2].round(2).tolist()}, RMS reprojection error {rms:.3g} px)')
    return K
