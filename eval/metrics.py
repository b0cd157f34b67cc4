"""3D pose metrics: MPJPE (root-aligned / absolute), PA-MPJPE, N-MPJPE, 3DPCK, AUC, breakdowns.

All functions are batched over poses and vectorised; inputs are [N, J, 3] arrays in millimetres,
both in the same frame (camera frame for every benchmark here). Ground-truth joints that are not
labelled are NaN: they are excluded from every mean and counted (see `count_missing`). A NaN in a
prediction where the ground truth is labelled is an error, because silently dropping it would
reward a model for not answering.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The benchmarks' AUC: mean 3DPCK over the thresholds 0, 5, ..., 150 mm (31 thresholds).
# A joint counts as correct when its error is strictly below the threshold, as in the official
# 3DHP/MuPoTS evaluations (so the 0 mm threshold never passes and a perfect AUC is 30/31).
AUC_THRESHOLDS_MM = np.arange(0.0, 151.0, 5.0)
PCK_THRESHOLD_MM = 150.0
ALIGNMENTS = ('root', 'none', 'procrustes', 'scale', 'mean')


def valid_mask(gt: np.ndarray) -> np.ndarray:
    """[N, J] bool: True where the ground-truth joint is labelled (all three coordinates finite)."""
    return np.all(np.isfinite(gt), axis=-1)


def count_missing(gt: np.ndarray) -> int:
    """Number of (pose, joint) entries with no ground truth."""
    return int(np.count_nonzero(~valid_mask(gt)))


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f'predictions {pred.shape} and ground truth {gt.shape} must both be '
                         f'[N, J, 3] of the same shape')
    bad = valid_mask(gt) & ~np.all(np.isfinite(pred), axis=-1)
    if np.any(bad):
        pose_index, joint_index = np.argwhere(bad)[0]
        raise ValueError(f'{np.count_nonzero(bad)} predicted joints are NaN/inf where the ground '
                         f'truth is labelled (first: pose {pose_index}, joint {joint_index})')
    return pred, gt


def root_align(poses: np.ndarray, root_index: int) -> np.ndarray:
    """Subtracts the root joint: [N, J, 3] -> [N, J, 3] root-relative (root becomes 0 or NaN)."""
    poses = np.asarray(poses, np.float64)
    return poses - poses[:, root_index:root_index + 1]


def joint_mean(poses: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[N, 1, 3]: each pose's mean over its `valid` [N, J] joints (0 where none is valid)."""
    poses = np.asarray(poses, np.float64)
    w = np.asarray(valid, bool)[..., np.newaxis]
    count = np.maximum(np.sum(w, axis=1, keepdims=True), 1)
    return np.sum(np.where(w, poses, 0.0), axis=1, keepdims=True) / count


def mean_align(poses: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Subtracts from each pose its mean over its `valid` joints: [N, J, 3] -> [N, J, 3].

    The alignment for skeletons without a common root joint (a marker set, COCO's 17 points):
    prediction and truth both subtract their own mean over the same (labelled) joints.
    A pose with no valid joint is returned unchanged (its errors are NaN anyway).
    """
    return np.asarray(poses, np.float64) - joint_mean(poses, valid)


def procrustes_align(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None
                     ) -> np.ndarray:
    """Similarity-transforms each predicted pose onto its ground truth (least squares).

    Finds scale s, rotation R (det +1: reflections are excluded, Umeyama's guard) and translation
    t minimising sum over valid joints of |s R p_j + t - g_j|^2, per pose.
    Args:
        pred, gt: [N, J, 3] mm. valid: [N, J] bool, joints that take part in the fit (default:
            labelled ground truth).
    Returns: [N, J, 3] aligned prediction (all joints transformed, including invalid ones).
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if valid is None:
        valid = valid_mask(gt)
    w = valid.astype(np.float64)[..., np.newaxis]  # [N, J, 1]
    n_valid = np.maximum(np.sum(w, axis=1, keepdims=True), 1.0)
    # Zero-out invalid entries so NaNs cannot leak into the sums.
    pred_w = np.where(w > 0, pred, 0.0)
    gt_w = np.where(w > 0, gt, 0.0)
    mean_pred = np.sum(pred_w * w, axis=1, keepdims=True) / n_valid
    mean_gt = np.sum(gt_w * w, axis=1, keepdims=True) / n_valid
    pred_c = (pred_w - mean_pred) * w
    gt_c = (gt_w - mean_gt) * w
    # cov[n] = sum_j gt_c[n, j] pred_c[n, j]^T; R = U diag(1, 1, d) V^T maps pred onto gt.
    cov = np.einsum('nji,njk->nik', gt_c, pred_c)
    u, sing, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    signs = np.stack([np.ones_like(d), np.ones_like(d), d], axis=-1)  # [N, 3]
    rot = (u * signs[:, np.newaxis, :]) @ vt
    pred_var = np.sum(pred_c ** 2, axis=(1, 2))
    scale = np.sum(sing * signs, axis=-1) / np.maximum(pred_var, 1e-12)
    centered = pred - mean_pred
    return scale[:, np.newaxis, np.newaxis] * np.einsum('nik,njk->nji', rot, centered) + mean_gt


def scale_align(pred: np.ndarray, gt: np.ndarray, root_index: int,
                valid: np.ndarray | None = None) -> np.ndarray:
    """N-MPJPE's alignment: root-aligns both, then scales the prediction by the least-squares
    factor s = <p, g> / <p, p> over valid joints (Rhodin et al. 2018). Returns [N, J, 3]
    root-relative scaled prediction."""
    pred_r = root_align(pred, root_index)
    gt_r = root_align(gt, root_index)
    if valid is None:
        valid = valid_mask(gt_r)
    w = valid[..., np.newaxis]
    p = np.where(w, pred_r, 0.0)
    g = np.where(w, gt_r, 0.0)
    scale = np.sum(p * g, axis=(1, 2)) / np.maximum(np.sum(p * p, axis=(1, 2)), 1e-12)
    return scale[:, np.newaxis, np.newaxis] * pred_r


def joint_errors(pred: np.ndarray, gt: np.ndarray, alignment: str = 'root',
                 root_index: int = 0) -> np.ndarray:
    """Per-joint Euclidean errors [N, J] in mm; NaN where the ground truth is missing.

    alignment: 'root' (subtract each pose's root joint; MPJPE), 'none' (absolute MPJPE, camera
    frame), 'procrustes' (PA-MPJPE), 'scale' (N-MPJPE: root + least-squares scale), 'mean'
    (subtract each pose's mean over its labelled joints, from prediction and truth alike).
    With 'root'/'scale', a pose whose ground-truth root is missing has all errors NaN.
    """
    pred, gt = _check_shapes(pred, gt)
    if alignment == 'root':
        pred_a, gt_a = root_align(pred, root_index), root_align(gt, root_index)
    elif alignment == 'none':
        pred_a, gt_a = pred, gt
    elif alignment == 'procrustes':
        pred_a, gt_a = procrustes_align(pred, gt), gt
    elif alignment == 'scale':
        pred_a, gt_a = scale_align(pred, gt, root_index), root_align(gt, root_index)
    elif alignment == 'mean':
        valid = valid_mask(gt)
        pred_a, gt_a = mean_align(pred, valid), mean_align(gt, valid)
    else:
        raise ValueError(f'unknown alignment {alignment!r}; choose from {ALIGNMENTS}')
    errors = np.linalg.norm(pred_a - gt_a, axis=-1)
    return np.where(valid_mask(gt_a), errors, np.nan)


def nan_mean(values: np.ndarray, axis=None) -> np.ndarray | float:
    """Mean ignoring NaNs; NaN (not a warning) where nothing is valid."""
    values = np.asarray(values, np.float64)
    valid = np.isfinite(values)
    total = np.sum(np.where(valid, values, 0.0), axis=axis)
    count = np.sum(valid, axis=axis)
    with np.errstate(invalid='ignore', divide='ignore'):
        result = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(result) if np.ndim(result) == 0 else result


def pck_hits(errors: np.ndarray, threshold_mm: float = PCK_THRESHOLD_MM,
             inclusive: bool = False) -> np.ndarray:
    """1.0 where error < threshold (<= if inclusive), 0.0 where not, NaN where missing.

    Strict `<` is the 3DHP/MuPoTS convention (mpii_compute_3d_pck.m); 3DPW's official
    evaluate.py counts `<=` (compute_pck)."""
    errors = np.asarray(errors, np.float64)
    with np.errstate(invalid='ignore'):
        hit = errors <= threshold_mm if inclusive else errors < threshold_mm
    return np.where(np.isfinite(errors), hit.astype(np.float64), np.nan)


def auc_scores(errors: np.ndarray, thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM
               ) -> np.ndarray:
    """Per-entry fraction of thresholds passed (mean of pck_hits over thresholds); NaN if missing.

    Averaging this over joints gives the benchmarks' AUC (area under the PCK curve, normalised).
    """
    errors = np.asarray(errors, np.float64)
    thresholds = np.asarray(thresholds_mm, np.float64)
    with np.errstate(invalid='ignore'):
        passed = errors[..., np.newaxis] < thresholds
    return np.where(np.isfinite(errors), np.mean(passed, axis=-1), np.nan)


def pck(errors: np.ndarray, threshold_mm: float = PCK_THRESHOLD_MM,
        inclusive: bool = False) -> float:
    """3DPCK in percent over all labelled entries of `errors` (any shape)."""
    return 100.0 * nan_mean(pck_hits(errors, threshold_mm, inclusive))


def auc(errors: np.ndarray, thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM) -> float:
    """AUC in percent: mean over thresholds (default 0..150 mm step 5) of 3DPCK."""
    return 100.0 * nan_mean(auc_scores(errors, thresholds_mm))


def auc_trapezoid(errors: np.ndarray, max_threshold_mm: float = 199.0) -> float:
    """AUC in percent of the PCK curve (`<=`) at the thresholds 0, 1, ..., max_threshold_mm,
    integrated with the trapezoid rule over the thresholds rescaled to [0, 1].

    This is 3DPW's official AUC (evaluate.py: PCK at np.arange(0, 200) integrated by
    scipy.integrate.quad of np.interp, which is exactly this trapezoid sum), times 100; the
    official script prints it as a fraction. Missing entries (NaN) are excluded.
    """
    errors = np.asarray(errors, np.float64)
    valid = np.sort(errors[np.isfinite(errors)])
    if not len(valid):
        return float('nan')
    thresholds = np.arange(0.0, max_threshold_mm + 0.5)
    curve = np.searchsorted(valid, thresholds, side='right') / len(valid)  # PCK(t), errors <= t
    return 100.0 * float(np.sum(curve[1:] + curve[:-1]) / (2 * (len(thresholds) - 1)))


def auc_binned(errors: np.ndarray, max_threshold_mm: float = 199.0, n_bins: int = 50) -> float:
    """AUC in percent as MeTRAbs's 3DPW evaluation approximates it: each error scores
    max(0, 1 - (floor(n_bins * e / max) + 0.5) / n_bins), the midpoint rule over n_bins bins of
    the PCK curve on [0, max] (released posepile/ds/tdpw/eval.py and eval_3dpw.py)."""
    errors = np.asarray(errors, np.float64)
    with np.errstate(invalid='ignore'):
        score = np.maximum(0.0, 1.0 - (np.floor(errors / max_threshold_mm * n_bins) + 0.5) / n_bins)
    return 100.0 * nan_mean(np.where(np.isfinite(errors), score, np.nan))


def auc_linear(errors: np.ndarray, threshold_mm: float) -> float:
    """AUC in percent of the continuous PCK curve on [0, threshold_mm]: the mean of
    max(0, 1 - e / threshold) (MeTRAbs's WACV'23 metric set, `get_auc_real`)."""
    errors = np.asarray(errors, np.float64)
    with np.errstate(invalid='ignore'):
        score = np.maximum(0.0, 1.0 - errors / threshold_mm)
    return 100.0 * nan_mean(np.where(np.isfinite(errors), score, np.nan))


def per_joint(errors: np.ndarray) -> np.ndarray:
    """[J] mean error per joint over poses (NaN-aware)."""
    return nan_mean(errors, axis=0)


def group_means(per_pose_values: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Mean of `per_pose_values` [N, ...] within each label of `groups` [N] (NaN-aware).

    Means are over all labelled entries of a group (joint-weighted), as the per-action tables do.
    Returns {label: mean} in sorted label order.
    """
    per_pose_values = np.asarray(per_pose_values, np.float64)
    groups = np.asarray(groups)
    if groups.shape[0] != per_pose_values.shape[0]:
        raise ValueError(f'groups has {groups.shape[0]} labels for '
                         f'{per_pose_values.shape[0]} poses')
    flat = per_pose_values.reshape(per_pose_values.shape[0], -1)
    valid = np.isfinite(flat)
    labels, inverse = np.unique(groups, return_inverse=True)
    totals = np.zeros(len(labels))
    counts = np.zeros(len(labels))
    np.add.at(totals, inverse, np.sum(np.where(valid, flat, 0.0), axis=1))
    np.add.at(counts, inverse, np.sum(valid, axis=1))
    with np.errstate(invalid='ignore', divide='ignore'):
        means = np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)
    return {str(label): float(m) for label, m in zip(labels, means)}


def summarize(pred: np.ndarray, gt: np.ndarray, root_index: int,
              eval_joints: np.ndarray | None = None,
              pck_threshold_mm: float = PCK_THRESHOLD_MM) -> dict[str, float]:
    """The standard numbers for one set of poses.

    Alignment uses all joints (root subtraction, Procrustes fit); the errors are then averaged over
    `eval_joints` (indices; default all). Returns mpjpe, mpjpe_abs, pa_mpjpe, n_mpjpe (mm),
    pck, auc (percent, root-aligned), n_poses, n_joint_entries (labelled ones counted) and
    n_missing_gt_joints (unlabelled ones excluded).
    """
    selection = slice(None) if eval_joints is None else np.asarray(eval_joints)
    errors = {a: joint_errors(pred, gt, a, root_index)[:, selection] for a in ALIGNMENTS}
    labelled = valid_mask(np.asarray(gt, np.float64))[:, selection]
    return dict(
        mpjpe=nan_mean(errors['root']),
        mpjpe_abs=nan_mean(errors['none']),
        pa_mpjpe=nan_mean(errors['procrustes']),
        n_mpjpe=nan_mean(errors['scale']),
        pck=pck(errors['root'], pck_threshold_mm),
        auc=auc(errors['root']),
        n_poses=int(np.shape(gt)[0]),
        n_joint_entries=int(np.count_nonzero(labelled)),
        n_missing_gt_joints=int(np.count_nonzero(~labelled)),
    )


def wacv23_metric_set(pred: np.ndarray, gt: np.ndarray, root_index: int) -> dict[str, float]:
    """The metric set of MeTRAbs's WACV'23 evaluation (`eval_wacv23` in the released
    posepile/ds/{h36m,tdhp,mupots}/eval.py): every joint of [N, J, 3] mm poses, pooled over poses.

    MPJPE (root-aligned), PA-MPJPE (similarity Procrustes), A-MPJPE (absolute); PCK@50/100/150 and
    linear AUC@50/100/150 (`auc_linear`) on root-aligned errors; CPS@100/150/200 (a pose counts
    when its worst root-aligned joint is below the threshold) and its linear AUC; APCK@150/300
    and linear AUC on absolute errors. Strict `<` throughout, as the released code.
    """
    root = joint_errors(pred, gt, 'root', root_index)
    absolute = joint_errors(pred, gt, 'none', root_index)
    # Procrustes fits a translation, so aligning the roots first (as the release does) is moot.
    procrustes = joint_errors(pred, gt, 'procrustes', root_index)
    worst = np.fmax.reduce(root, axis=1)  # [N]; unlabelled joints (NaN) are skipped
    result = dict(mpjpe=nan_mean(root), pa_mpjpe=nan_mean(procrustes),
                  a_mpjpe=nan_mean(absolute))
    for t in (50, 100, 150):
        result[f'pck{t}'] = pck(root, t)
        result[f'auc{t}'] = auc_linear(root, t)
    for t in (100, 150, 200):
        result[f'cps{t}'] = pck(worst, t)
        result[f'cps_auc{t}'] = auc_linear(worst, t)
    for t in (150, 300):
        result[f'apck{t}'] = pck(absolute, t)
        result[f'apck_auc{t}'] = auc_linear(absolute, t)
    return result
