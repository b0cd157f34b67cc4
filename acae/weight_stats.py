"""How sparse and how convex a fitted ACAE is: statistics of W_enc [L, J] and W_dec [J, L].

Every row sums to one, so its L1 norm is 1 + 2 x (its negative mass): a row L1 norm of 1 means a
convex combination (all weights >= 0), larger values mean cancelling positive and negative
weights, which amplify independent errors of the points they combine. The released fit is
nearly convex (row L1 norms close to 1) and sparse (most weights near zero).
"""
from __future__ import annotations

import numpy as np

NEAR_ZERO = 0.01
"""|w| below this counts as a near-zero weight (for J = 555 joints, 1/J = 0.0018)."""


def matrix_statistics(weights: np.ndarray, near_zero: float = NEAR_ZERO) -> dict[str, float]:
    """Statistics of one [A, B] weight matrix whose rows sum to one.

    Returns (floats):
        row_l1_mean, row_l1_max: sum_b |w[a, b]| over a row, mean and max over rows;
        negative_mass_mean: sum of the negative weights of a row (as a positive number), mean;
        near_zero_share: fraction of all entries with |w| < near_zero;
        support_mean: entries with |w| >= near_zero per row, mean;
        max_abs: the largest |w|.
    """
    w = np.asarray(weights, np.float64)
    if w.ndim != 2:
        raise ValueError(f'matrix_statistics: need a 2-D weight matrix, got shape {w.shape}')
    row_l1 = np.abs(w).sum(axis=1)
    large = np.abs(w) >= near_zero
    return {'row_l1_mean': float(row_l1.mean()), 'row_l1_max': float(row_l1.max()),
            'negative_mass_mean': float(-np.minimum(w, 0).sum(axis=1).mean()),
            'near_zero_share': float(1 - large.mean()),
            'support_mean': float(large.sum(axis=1).mean()),
            'max_abs': float(np.abs(w).max())}


def weight_statistics(w_enc: np.ndarray, w_dec: np.ndarray, near_zero: float = NEAR_ZERO
                      ) -> dict[str, dict[str, float]]:
    """{'encoder': matrix_statistics(W_enc), 'decoder': matrix_statistics(W_dec)}."""
    return {'encoder': matrix_statistics(w_enc, near_zero),
            'decoder': matrix_statistics(w_dec, near_zero)}


def format_statistics(stats: dict[str, dict[str, float]], near_zero: float = NEAR_ZERO) -> str:
    """A small text table of weight_statistics (one line per matrix)."""
    lines = [f'{"":8s} {"row L1 mean":>11s} {"row L1 max":>10s} {"neg. mass":>9s} '
             f'{f"|w|<{near_zero:g}":>9s} {"support/row":>11s} {"max |w|":>7s}']
    for name, s in stats.items():
        lines.append(f'{name:8s} {s["row_l1_mean"]:11.3f} {s["row_l1_max"]:10.3f} '
                     f'{s["negative_mass_mean"]:9.3f} {100 * s["near_zero_share"]:8.1f}% '
                     f'{s["support_mean"]:11.1f} {s["max_abs"]:7.3f}')
    return '\n'.join(lines)
