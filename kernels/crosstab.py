"""Fused single-pass kernel: (zone x class) area cross-tab of one raster chunk.

Every zonal table of lucr (class areas, sources, sinks, net flux, valid fraction) is
derived from this small cross-tab times the coefficient table (methods.md section 1:
``flux = coef[class] * area_ha``), so the raster is walked once.

Areas are accumulated as int64 fixed-point numbers (``area_m2 * 2**scale_bits``,
chosen by the pipeline so the grid total cannot overflow). Integer sums are
associative, so the cross-tab is bit-identical whatever the chunking, the order the
chunks are reduced in, or the scheduler.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def local_zones(zones, local_of_zone, room):
    """The zones present in ``zones``, in order of first appearance, each given its local index in
    ``local_of_zone`` (all -1 on entry for them); returns the ids (with ``room`` free entries
    after them) and their count."""
    rows, cols = zones.shape
    zone_ids = np.empty(min(rows * cols + room, local_of_zone.shape[0]), np.int64)
    n_local = 0
    for i in range(rows):
        for j in range(cols):
            z = zones[i, j]
            if local_of_zone[z] < 0:
                local_of_zone[z] = n_local
                zone_ids[n_local] = z
                n_local += 1
    return zone_ids, n_local


@njit(nogil=True, cache=True)
def accumulate_zone_class_area(codes, zones, row_area_fx, class_of_code, code_offset, n_cols, local_of_zone, out_code_count,
                                edge_rows, edge_cols, edge_zones, edge_area_fx):
    """Accumulate the cell areas of one chunk per (zone, class column), for the zones present in it.

    A dense (all zones x classes) block per chunk would grow with the number of units of
    the run (~26 MB for 300,000 units); this one grows with the units the chunk holds.

    Parameters
    ----------
    codes : 2-D integer array (rows, cols), land-cover class codes of the chunk
    zones : 2-D integer array (rows, cols), zone index of each cell: 0 outside every unit
    row_area_fx : 1-D int64 (rows,), fixed-point area of one cell of each row
    class_of_code : 1-D int32, ``class_of_code[code - code_offset]`` = column: 0..K-1 for the
        K classes of the table, K for codes missing from it (unknown), K+1 for nodata
    code_offset : smallest code ``class_of_code`` covers
    n_cols : K + 2 (classes, unknown, nodata)
    local_of_zone : 1-D int64 scratch (n_zones + 1,), all -1 on entry and on return
    out_code_count : 1-D int64, same length as ``class_of_code``: cell count of every code
        (a histogram of the chunk, which names unknown codes with their counts), updated in place
    edge_rows, edge_cols, edge_zones, edge_area_fx : the exact engine's corrections of
        boundary cells (``lucr.chunk.EdgeCells``; empty arrays for the fast engine): entry
        ``i`` adds ``edge_area_fx[i]`` to zone ``edge_zones[i]`` in the class of its cell

    Returns
    -------
    zone_ids : 1-D int64 (n_local,), the zones present, in order of first appearance
    area_fx : 2-D int64 (n_local, n_cols)

    Examples
    --------
    >>> lut = np.full(256, 2, np.int32); lut[1] = 0; lut[2] = 1; lut[9] = 3
    >>> scratch = np.full(8, -1, np.int64); hist = np.zeros(256, np.int64)
    >>> none = np.zeros(0, np.int64)
    >>> z, a = accumulate_zone_class_area(np.array([[1, 2], [2, 9]], np.uint8), np.array([[7, 7], [0, 7]], np.int32),
    ...     np.array([10, 20], np.int64), lut, 0, 4, scratch, hist, none, none, none, none)
    >>> z.tolist(), a.tolist()
    ([7, 0], [[10, 10, 0, 20], [0, 20, 0, 0]])
    """
    rows, cols = codes.shape
    zone_ids, n_local = local_zones(zones, local_of_zone, edge_zones.shape[0])
    for m in range(edge_zones.shape[0]):  # a unit may reach the chunk without holding a cell centre there
        z = edge_zones[m]
        if local_of_zone[z] < 0:
            local_of_zone[z] = n_local
            zone_ids[n_local] = z
            n_local += 1
    area_fx = np.zeros((n_local, n_cols), np.int64)
    n_codes = class_of_code.shape[0]
    nodata_col = n_cols - 1
    for i in range(rows):
        a = row_area_fx[i]
        for j in range(cols):
            k = np.int64(codes[i, j]) - code_offset
            if 0 <= k < n_codes:
                col = class_of_code[k]
                out_code_count[k] += 1
            else:
                col = nodata_col
            area_fx[local_of_zone[zones[i, j]], col] += a
    for m in range(edge_zones.shape[0]):
        k = np.int64(codes[edge_rows[m], edge_cols[m]]) - code_offset
        col = class_of_code[k] if 0 <= k < n_codes else nodata_col
        area_fx[local_of_zone[edge_zones[m]], col] += edge_area_fx[m]
    for m in range(n_local):
        local_of_zone[zone_ids[m]] = -1
    return zone_ids[:n_local].copy(), area_fx
