"""Land-use structure (methods.md §3, seed 001 eq. 1-2).

- Gibbs-Martin diversity ``G = 1 - sum(x_i^2) / (sum x_i)^2`` (x_i area of class i): 0 for
  one class, approaching 1 - 1/n for n equal classes.
- Single land-use dynamic degree ``K = (U_b - U_a) / U_a / T * 100`` (% per year) of each
  class between two dates T years apart (seed 001 eq. 2).
- Comprehensive land-use dynamic degree ``LC = sum_i dLU_i / sum_i LU_i / T * 100`` (% per
  year), dLU_i the area of class i converted to other classes (the transition matrix's
  off-diagonal row sums). Liu Jiyuan's usual form ``sum |dLU_i-j| / (2 sum LU_i)`` counts
  each converted hectare twice (as loss and as gain) and halves it: the same number.
"""

from __future__ import annotations

import numpy as np


def gibbs_martin(areas: np.ndarray) -> np.ndarray:
    """Diversity of each row of ``areas`` (units x classes, ha); NaN for a row without area.

    Examples
    --------
    >>> gibbs_martin(np.array([[1.0, 1.0, 1.0, 1.0], [5.0, 0.0, 0.0, 0.0]])).tolist()
    [0.75, 0.0]
    """
    total = areas.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - (areas**2).sum(axis=-1) / total**2, np.nan)


def single_dynamic_degree(area_start: np.ndarray, area_end: np.ndarray, years: float) -> np.ndarray:
    """``(U_b - U_a) / U_a / T * 100`` (% per year) per element; NaN where a class starts at 0.

    Examples
    --------
    >>> single_dynamic_degree(np.array([160.0]), np.array([8.0]), 14).round(3).tolist()  # a grassland losing 95 %
    [-6.786]
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area_start > 0, (area_end - area_start) / area_start / years * 100.0, np.nan)


def comprehensive_dynamic_degree(matrices: np.ndarray, years: float) -> np.ndarray:
    """``sum_i (converted area of i) / sum_i (area at t1) / T * 100`` (% per year) for each unit's K x K matrix."""
    start = matrices.sum(axis=(-2, -1))
    converted = start - np.trace(matrices, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(start > 0, converted / start / years * 100.0, np.nan)
