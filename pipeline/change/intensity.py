"""Intensity analysis of transition matrices (Aldwaik & Pontius 2012, Landscape and Urban
Planning 106: 103-114), at the interval, category and transition levels.

For an interval of ``d`` years with transition matrix ``C`` (ha, rows: class at the
start, columns: class at the end) over an extent of ``E`` ha, all in % per year:

- interval: ``S = (E - trace C) / E / d * 100``; the uniform line over all intervals
  ``U = sum_t changed_t / E / (Y_last - Y_first) * 100``;
- category: gross gain ``G_j = (col_j - C_jj) / col_j / d * 100`` (relative to j's size at
  the end), gross loss ``L_i = (row_i - C_ii) / row_i / d * 100`` (relative to i's size at the
  start); *active* when above ``S``, else *dormant*;
- transition, gain of n: ``R_in = C_in / row_i / d * 100`` (i != n) against the uniform
  ``W_n = (col_n - C_nn) / (E - row_n) / d * 100``: n *targets* i when ``R_in > W_n``, else
  *avoids* it; loss of m: ``Q_mj = C_mj / col_j / d * 100`` (j != m) against
  ``V_m = (row_m - C_mm) / (E - col_m) / d * 100``.

Ratios with a zero denominator are NaN. Every function takes a stack of matrices
``(..., K, K)`` (one per unit) and is vectorised over units.
"""

from __future__ import annotations

import numpy as np


def _div(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def interval_intensity(matrices: np.ndarray, years: float) -> np.ndarray:
    """``S``: annual change over the interval, % of the extent per year."""
    extent = matrices.sum(axis=(-2, -1))
    changed = extent - np.trace(matrices, axis1=-2, axis2=-1)
    return _div(changed, extent) / years * 100.0


def uniform_intensity(interval_matrices: list[np.ndarray], first_year: float, last_year: float) -> np.ndarray:
    """``U``: change of all intervals over the extent, % per year of the whole period.

    The extent is that of the first interval (intensity analysis assumes a constant extent).
    """
    extent = interval_matrices[0].sum(axis=(-2, -1))
    changed = sum(m.sum(axis=(-2, -1)) - np.trace(m, axis1=-2, axis2=-1) for m in interval_matrices)
    return _div(changed, extent) / (last_year - first_year) * 100.0


def category_intensity(matrices: np.ndarray, years: float) -> tuple[np.ndarray, np.ndarray]:
    """Gross gain ``G`` and gross loss ``L`` of each category, (..., K) each."""
    diag = np.diagonal(matrices, axis1=-2, axis2=-1)
    col, row = matrices.sum(axis=-2), matrices.sum(axis=-1)
    return _div(col - diag, col) / years * 100.0, _div(row - diag, row) / years * 100.0


def gain_transition_intensity(matrices: np.ndarray, years: float) -> tuple[np.ndarray, np.ndarray]:
    """``R[..., i, n]`` (gain of n from i, diagonal NaN) and the uniform ``W[..., n]``."""
    k = matrices.shape[-1]
    row = matrices.sum(axis=-1)
    col = matrices.sum(axis=-2)
    extent = row.sum(axis=-1)[..., None]
    diag = np.diagonal(matrices, axis1=-2, axis2=-1)
    r = _div(matrices, row[..., :, None]) / years * 100.0
    r[..., np.arange(k), np.arange(k)] = np.nan
    w = _div(col - diag, extent - row) / years * 100.0
    return r, w


def loss_transition_intensity(matrices: np.ndarray, years: float) -> tuple[np.ndarray, np.ndarray]:
    """``Q[..., m, j]`` (loss of m to j, diagonal NaN) and the uniform ``V[..., m]``."""
    k = matrices.shape[-1]
    row = matrices.sum(axis=-1)
    col = matrices.sum(axis=-2)
    extent = row.sum(axis=-1)[..., None]
    diag = np.diagonal(matrices, axis1=-2, axis2=-1)
    q = _div(matrices, col[..., None, :]) / years * 100.0
    q[..., np.arange(k), np.arange(k)] = np.nan
    v = _div(row - diag, extent - col) / years * 100.0
    return q, v
