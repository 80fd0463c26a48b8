"""Per-chunk (zone, class at date 1, class at date 2) area accumulation, kept small.

A dense zone x K x K array per chunk would hold every zone of the run (~230 MB for
40,000 townships and 25 classes). The kernel first lists the zones present in the
chunk (few: a chunk covers a small area), accumulates a dense
(local zone x K x K) block for those only, and the caller keeps its non-zero entries.
Areas are int64 fixed point, as in :mod:`lucr.kernels.crosstab`, so sums are exact and
independent of chunking.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .crosstab import local_zones


@njit(nogil=True, cache=True)
def accumulate_transitions(codes_from, codes_to, zones, row_area_fx, class_from, offset_from, class_to, offset_to, n_cols, local_of_zone):
    """Area of every (zone, column at date 1, column at date 2) of one chunk.

    Parameters
    ----------
    codes_from, codes_to : 2-D integer arrays (rows, cols), class codes at the two dates
    zones : 2-D integer array (rows, cols), zone index (0 outside every unit)
    row_area_fx : 1-D int64 (rows,), fixed-point area of one cell of each row
    class_from, class_to : dense ``code - offset -> column`` tables of each date
        (classes 0..K-1, unknown K, nodata K+1; see ``lucr.legend.ClassColumns``)
    offset_from, offset_to : smallest code of each table
    n_cols : K + 2
    local_of_zone : 1-D int64 scratch (n_zones + 1,), all -1 on entry and on return

    Returns
    -------
    zone_ids : 1-D int64 (n_local,), the zones present, in order of first appearance
    area_fx : 3-D int64 (n_local, n_cols, n_cols)

    Examples
    --------
    >>> lut = np.array([0, 1, 3], np.int32)  # codes 0, 1 -> columns 0, 1; code 2 -> nodata (K=2)
    >>> scratch = np.full(3, -1, np.int64)
    >>> z, a = accumulate_transitions(np.array([[0, 0]], np.uint8), np.array([[0, 1]], np.uint8),
    ...     np.array([[2, 2]], np.int32), np.array([5], np.int64), lut, 0, lut, 0, 4, scratch)
    >>> z.tolist(), a[0, 0].tolist()
    ([2], [5, 5, 0, 0])
    """
    rows, cols = codes_from.shape
    zone_ids, n_local = local_zones(zones, local_of_zone, 0)
    area_fx = np.zeros((n_local, n_cols, n_cols), np.int64)
    n_from = class_from.shape[0]
    n_to = class_to.shape[0]
    nodata = n_cols - 1
    for i in range(rows):
        a = row_area_fx[i]
        for j in range(cols):
            k = np.int64(codes_from[i, j]) - offset_from
            c1 = class_from[k] if 0 <= k < n_from else nodata
            k = np.int64(codes_to[i, j]) - offset_to
            c2 = class_to[k] if 0 <= k < n_to else nodata
            area_fx[local_of_zone[zones[i, j]], c1, c2] += a
    for m in range(n_local):
        local_of_zone[zone_ids[m]] = -1
    return zone_ids[:n_local].copy(), area_fx
