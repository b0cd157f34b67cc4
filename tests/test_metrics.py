"""eval.metrics against hand-computed cases, scipy.spatial.procrustes and a numerical optimum."""
import numpy as np
import pytest
import scipy.optimize
import scipy.spatial
from scipy.spatial.transform import Rotation

from eval import metrics


def random_poses(rng, n=5, j=17):
    """Non-planar random 'poses' in mm, spread like a body (~ +-500 mm), 3 m in front."""
    return rng.normal(0, 300, size=(n, j, 3)) + np.array([0, 0, 3000.0])


def similarity(rng, poses):
    rot = Rotation.random(len(poses), random_state=rng).as_matrix()
    scale = rng.uniform(0.5, 2.0, size=len(poses))
    shift = rng.normal(0, 1000, size=(len(poses), 1, 3))
    return scale[:, None, None] * np.einsum('nij,nkj->nki', rot, poses) + shift


def test_mpjpe_hand_computed():
    gt = np.zeros((1, 3, 3))
    gt[0, 1] = [100, 0, 0]
    gt[0, 2] = [0, 100, 0]
    pred = gt.copy()
    pred[0, 1] += [30, 40, 0]  # 50 mm off
    pred[0, 2] += [0, 0, 20]   # 20 mm off
    errors = metrics.joint_errors(pred, gt, 'root', root_index=0)
    np.testing.assert_allclose(errors, [[0, 50, 20]])
    assert metrics.nan_mean(errors) == pytest.approx(70 / 3)
    # A pure translation: absolute error = its length, root-aligned error = 0.
    shifted = gt + np.array([3.0, 4.0, 12.0])
    np.testing.assert_allclose(metrics.joint_errors(shifted, gt, 'none'), 13.0)
    np.testing.assert_allclose(metrics.joint_errors(shifted, gt, 'root', 0), 0.0, atol=1e-12)


def test_pa_mpjpe_matches_scipy_procrustes():
    rng = np.random.default_rng(0)
    gt = random_poses(rng)
    pred = similarity(rng, gt) + rng.normal(0, 20, size=gt.shape)
    aligned = metrics.procrustes_align(pred, gt)
    for n in range(len(gt)):
        # scipy standardises both to unit Frobenius norm; its disparity is our residual sum of
        # squares divided by the centred ground truth's squared norm.
        _, _, disparity = scipy.spatial.procrustes(gt[n], pred[n])
        gt_centred = gt[n] - gt[n].mean(axis=0)
        rss = np.sum((aligned[n] - gt[n]) ** 2)
        assert rss / np.sum(gt_centred ** 2) == pytest.approx(disparity, rel=1e-9)


def _numerical_best_fit_rss(pred, gt):
    """Min over rotation (proper), scale > 0, translation of the residual sum of squares."""
    def residuals(params):
        # exp keeps the scale positive: -1 times a rotation would be a reflection in 3D.
        rot = Rotation.from_rotvec(params[:3]).as_matrix()
        return (np.exp(params[3]) * pred @ rot.T + params[4:] - gt).ravel()

    best = np.inf
    for start in Rotation.random(8, random_state=1).as_rotvec():
        x0 = np.concatenate([start, [0.0], gt.mean(0) - pred.mean(0)])
        best = min(best, np.sum(scipy.optimize.least_squares(residuals, x0).fun ** 2))
    return best


def test_procrustes_excludes_reflections():
    rng = np.random.default_rng(1)
    gt = random_poses(rng, n=1, j=10)
    mirrored = gt * np.array([1, 1, -1.0])  # a reflection: error 0 only if reflections allowed
    aligned = metrics.procrustes_align(mirrored, gt)
    rss = np.sum((aligned - gt) ** 2)
    assert rss > 1.0
    assert rss == pytest.approx(_numerical_best_fit_rss(mirrored[0], gt[0]), rel=1e-6)
    # The fitted linear map must be a positive similarity (det > 0).
    centred_in = mirrored[0] - mirrored[0].mean(0)
    centred_out = aligned[0] - aligned[0].mean(0)
    linear_map = np.linalg.lstsq(centred_in, centred_out, rcond=None)[0]
    assert np.linalg.det(linear_map) > 0


def test_procrustes_is_least_squares_optimum():
    rng = np.random.default_rng(2)
    gt = random_poses(rng, n=1, j=12)
    pred = similarity(rng, gt) + rng.normal(0, 40, size=gt.shape)
    rss = np.sum((metrics.procrustes_align(pred, gt) - gt) ** 2)
    assert rss == pytest.approx(_numerical_best_fit_rss(pred[0], gt[0]), rel=1e-6)


def test_pa_mpjpe_invariant_to_similarity_of_prediction():
    rng = np.random.default_rng(3)
    gt = random_poses(rng, n=6)
    pred = gt + rng.normal(0, 30, size=gt.shape)
    base = metrics.joint_errors(pred, gt, 'procrustes')
    moved = metrics.joint_errors(similarity(rng, pred), gt, 'procrustes')
    np.testing.assert_allclose(moved, base, rtol=1e-8, atol=1e-8)
    # An exact similarity copy has zero PA error.
    np.testing.assert_allclose(metrics.joint_errors(similarity(rng, gt), gt, 'procrustes'), 0,
                               atol=1e-7)


def test_procrustes_fits_only_labelled_joints():
    rng = np.random.default_rng(4)
    gt = random_poses(rng, n=2, j=9)
    pred = similarity(rng, gt) + rng.normal(0, 10, size=gt.shape)
    gt_missing = gt.copy()
    gt_missing[:, [2, 5]] = np.nan
    errors = metrics.joint_errors(pred, gt_missing, 'procrustes')
    keep = [0, 1, 3, 4, 6, 7, 8]
    reference = metrics.joint_errors(pred[:, keep], gt[:, keep], 'procrustes')
    np.testing.assert_allclose(errors[:, keep], reference, rtol=1e-9)
    assert np.all(np.isnan(errors[:, [2, 5]]))


def test_n_mpjpe_scale_alignment():
    rng = np.random.default_rng(5)
    gt = random_poses(rng, n=3)
    pred = 0.5 * (gt - gt[:, :1]) + np.array([10.0, 20, 30])  # half size, elsewhere
    np.testing.assert_allclose(metrics.joint_errors(pred, gt, 'scale', 0), 0, atol=1e-9)
    # Hand case: root at origin, one joint at (100,0,0), predicted at (50,50,0): the best scale
    # is <p,g>/<p,p> = 5000/5000 = 1, leaving an error of sqrt(50^2 + 50^2).
    gt1 = np.array([[[0, 0, 0], [100, 0, 0]]], float)
    pred1 = np.array([[[0, 0, 0], [50, 50, 0]]], float)
    np.testing.assert_allclose(metrics.joint_errors(pred1, gt1, 'scale', 0)[0, 1],
                               np.hypot(50, 50))


def test_pck_and_auc_hand_computed():
    errors = np.array([[0.0, 3.0, 5.0, 7.0], [150.0, 151.0, np.nan, 1000.0]])
    # Labelled entries: 7; strictly below 150 mm: 0, 3, 5, 7.
    assert metrics.pck(errors) == pytest.approx(100 * 4 / 7)
    assert metrics.pck(errors, 5.0) == pytest.approx(100 * 2 / 7)
    # Thresholds 0, 5, ..., 150 (31): entry e passes those > e.
    passed = np.array([30, 30, 29, 29, 0, 0, 0])
    assert metrics.auc(errors) == pytest.approx(100 * np.mean(passed / 31))
    np.testing.assert_array_equal(metrics.AUC_THRESHOLDS_MM, np.arange(0, 151, 5))


def test_missing_ground_truth_is_excluded_and_counted():
    gt = np.zeros((2, 3, 3))
    gt[:, 1, 0] = 100
    gt[:, 2, 1] = 100
    gt[1, 2] = np.nan
    pred = gt.copy()
    pred[:, 1, 0] += 10  # 10 mm on joint 1
    pred[1, 2] = 5.0  # a value where GT is missing: ignored
    summary = metrics.summarize(pred, gt, root_index=0)
    assert summary['n_missing_gt_joints'] == 1
    assert summary['n_joint_entries'] == 5
    assert summary['mpjpe'] == pytest.approx(20 / 5)
    assert metrics.count_missing(gt) == 1
    # Missing root: the whole pose drops out of root-aligned metrics.
    gt_no_root = gt.copy()
    gt_no_root[0, 0] = np.nan
    assert np.all(np.isnan(metrics.joint_errors(pred, gt_no_root, 'root', 0)[0]))


def test_nan_prediction_where_labelled_is_an_error():
    gt = np.zeros((1, 2, 3))
    pred = gt.copy()
    pred[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        metrics.joint_errors(pred, gt)
    with pytest.raises(ValueError, match='same shape'):
        metrics.joint_errors(np.zeros((1, 3, 3)), gt)


def test_group_means_and_per_joint():
    values = np.array([[1.0, 3.0], [5.0, np.nan], [10.0, 20.0]])
    means = metrics.group_means(values, np.array(['a', 'a', 'b']))
    assert means == {'a': pytest.approx(3.0), 'b': pytest.approx(15.0)}
    np.testing.assert_allclose(metrics.per_joint(values), [16 / 3, 11.5])


def test_pck_inclusive_boundary():
    errors = np.array([49.0, 50.0, 50.5, np.nan])
    assert metrics.pck(errors, 50.0) == pytest.approx(100 / 3)  # 3DHP/MuPoTS: strict <
    assert metrics.pck(errors, 50.0, inclusive=True) == pytest.approx(200 / 3)  # 3DPW: <=


def _pck_curve_quad(errors, upper, strict=False):
    """The PCK curve's area on [0, upper] by scipy quad over the exact step curve: an independent
    route to the integral (no discretisation)."""
    import scipy.integrate
    errors = errors[np.isfinite(errors)]

    def curve(t):
        return np.mean(errors < t) if strict else np.mean(errors <= t)
    knots = np.unique(np.clip(errors, 0, upper))
    return scipy.integrate.quad(curve, 0, upper, points=knots[:50], limit=500)[0] / upper


def test_auc_trapezoid_equals_the_official_3dpw_integration():
    """evaluate.py: PCK (<=) at np.arange(0, 200), then quad of np.interp over thresholds / 199,
    reimplemented here as the script does it."""
    import scipy.integrate
    rng = np.random.default_rng(5)
    errors = rng.gamma(2.0, 40.0, size=(60, 12))
    errors[0, 0] = np.nan  # missing entries are excluded
    valid = errors[np.isfinite(errors)]
    thresholds = np.arange(0.0, 200.0)
    pck_values = [np.mean(valid <= t) for t in thresholds]
    x = thresholds / thresholds.max()
    official = scipy.integrate.quad(lambda v: np.interp(v, x, pck_values), 0, 1, limit=400,
                                    points=x[1:-1][::4])[0]
    # quad integrates the piecewise-linear curve to ~1e-7 (its own roundoff warning).
    assert metrics.auc_trapezoid(errors, 199.0) == pytest.approx(100 * official, abs=1e-4)


def test_auc_binned_is_the_area_with_errors_at_bin_centres():
    """MeTRAbs's 3DPW AUC: errors moved to the centre of their 199/50 mm bin, then the exact
    area under the PCK curve on [0, 199] (scipy quad)."""
    rng = np.random.default_rng(6)
    errors = np.concatenate([rng.uniform(0, 260, 40), [0.0, 199.0, 3.98]])
    width = 199.0 / 50
    centred = (np.floor(errors / width) + 0.5) * width
    expected = 100 * _pck_curve_quad(centred, 199.0)
    assert metrics.auc_binned(errors, 199.0, 50) == pytest.approx(expected, abs=1e-3)


def test_auc_linear_is_the_continuous_pck_area():
    rng = np.random.default_rng(7)
    errors = rng.uniform(0, 220, 30)
    for threshold in (50.0, 150.0):
        assert metrics.auc_linear(errors, threshold) == pytest.approx(
            100 * _pck_curve_quad(errors, threshold, strict=True), abs=1e-3)


def test_wacv23_metric_set_hand_case():
    """Two 3-joint poses, root = joint 0. Pose 0 is exact but 400 mm too far (absolute); pose 1
    has joint 2 off by 120 mm along x, absolute and root-relative."""
    gt = np.array([[[0, 0, 3000], [100, 0, 3000], [0, 100, 3000]],
                   [[0, 0, 4000], [200, 0, 4000], [0, 300, 4000]]], float)
    pred = gt.copy()
    pred[0, :, 2] += 400
    pred[1, 2, 0] += 120
    s = metrics.wacv23_metric_set(pred, gt, root_index=0)
    assert s['mpjpe'] == pytest.approx(120 / 6)
    assert s['a_mpjpe'] == pytest.approx((3 * 400 + 120) / 6)
    assert s['pck50'] == pytest.approx(100 * 5 / 6) and s['pck150'] == 100
    assert s['auc100'] == pytest.approx(100 * (5 + 0) / 6)  # max(0, 1 - 120/100) = 0
    assert s['auc150'] == pytest.approx(100 * (5 + (1 - 120 / 150)) / 6)
    assert s['cps100'] == 50 and s['cps150'] == 100  # worst joints: 0 and 120 mm
    assert s['cps_auc200'] == pytest.approx(100 * (1 + (1 - 120 / 200)) / 2)
    assert s['apck150'] == pytest.approx(100 * 3 / 6) and s['apck300'] == pytest.approx(50)
    assert s['apck_auc300'] == pytest.approx(100 * (2 + (1 - 120 / 300)) / 6)  # 400 mm: 0
    assert 0 < s['pa_mpjpe'] < s['mpjpe']
