"""Per-(zone, class) sums of a per-cell value raster times true cell area, in one chunk.

Used where a raster gives a value per cell in place of a class coefficient (methods.md
§8: a flux raster such as NEP, or a carbon-density raster): the zonal tables then add the
raster's sums over the cells it covers to the class coefficients' contribution over the
cells it does not. Positive and negative products are kept apart (sources and sinks).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def accumulate_zone_class_values(codes, zones, values, has_nodata, nodata, row_area_ha, class_of_code, code_offset, out_pos, out_neg, out_area):
    """Add ``value * area`` (split by sign) and the covered area per (zone, class column).

    Parameters
    ----------
    codes, zones : 2-D integer arrays (rows, cols): class codes and zone index (0 outside)
    values : 2-D numeric array (rows, cols), value per hectare (e.g. t C / ha / yr)
    has_nodata, nodata : whether ``values`` has a nodata value, and that value; NaN and
        infinite values are never valid
    row_area_ha : 1-D float64 (rows,), true cell area of each row (ha)
    class_of_code, code_offset : dense ``code - offset -> column`` table (``lucr.legend.ClassColumns``)
    out_pos, out_neg, out_area : 2-D float64 (n_zones + 1, n_cols), updated in place

    Examples
    --------
    >>> lut = np.array([0, 1, 3], np.int32)
    >>> pos, neg, area = np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 4))
    >>> accumulate_zone_class_values(np.array([[0, 1, 1]], np.uint8), np.array([[1, 1, 0]], np.int32),
    ...     np.array([[2.0, -1.0, np.nan]]), False, 0.0, np.array([10.0]), lut, 0, pos, neg, area)
    >>> pos[1].tolist(), neg[1].tolist(), area[1].tolist(), area[0].tolist()
    ([20.0, 0.0, 0.0, 0.0], [0.0, -10.0, 0.0, 0.0], [10.0, 10.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0])
    """
    n_codes = class_of_code.shape[0]
    nodata_col = out_area.shape[1] - 1
    rows, cols = codes.shape
    for i in range(rows):
        a = row_area_ha[i]
        for j in range(cols):
            v = np.float64(values[i, j])
            if not np.isfinite(v) or (has_nodata and v == nodata):
                continue
            k = np.int64(codes[i, j]) - code_offset
            col = class_of_code[k] if 0 <= k < n_codes else nodata_col
            z = zones[i, j]
            out_area[z, col] += a
            if v > 0:
                out_pos[z, col] += v * a
            else:
                out_neg[z, col] += v * a
