"""Exact coverage fractions of the cells a polygon's boundary crosses.

The area of a polygon ``P`` inside a cell follows from Green's theorem. In pixel
coordinates (``u`` the column, ``v`` the row, cells unit squares), for the cell
``[k, k + 1] x [r, r + 1]``::

    area(P ∩ cell) = ∮_∂P (clamp(u, k, k + 1) - k) · 1[r < v < r + 1] dv

so each piece of the boundary inside row band ``r`` adds ``∫(u - k) dv`` to the cell
``k`` it lies in and its whole ``dv`` (a full cell width) to every cell left of it. Summed
from the right along the row, the pieces give every cell's coverage; cells between two
pieces hold the running sum (1 inside, 0 outside, a fraction under a horizontal edge).
This is the scan-line form of the coverage fractions exactextract computes
(Baston 2022, https://github.com/isciences/exactextract); the kernel reports only the
cells the boundary crosses or runs along, which the cell-centre zone raster gets wrong.

Each row is computed from the polygon's pieces in that row across its whole width, in
ring order, so a cell's fraction does not depend on the chunk it is computed for.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _grow(a, n):
    out = np.empty(max(2 * a.shape[0], n), a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(nogil=True, cache=True)
def _ring_factor(u, v, start, end, is_hole):
    """+1 or -1: what makes the ring count positive (exterior) or negative (hole), whatever its winding."""
    twice_area = 0.0
    for e in range(start, end - 1):
        twice_area += u[e] * v[e + 1] - u[e + 1] * v[e]
    positive = twice_area >= 0.0
    return 1.0 if positive != is_hole else -1.0


@njit(nogil=True, cache=True)
def _row_pieces(u, v, ring_end, ring_is_hole, first, row0, row1):
    """Boundary pieces in rows [row0, row1): row, column, ∫(u - column) dv and dv of each, in ring order.

    The rings are ``ring_end`` (vertex index one past each ring's last), the first starting at
    ``first``; each ring's pieces are signed so that exteriors add area and holes take it away.
    A first loop over the edges bounds the number of pieces (rows plus column lines each edge
    crosses), so the buffers are allocated once: a buffer that may be rebound inside the loop
    makes numba keep its reference count on every iteration (measured 6x slower).
    """
    n_rings = ring_end.shape[0]
    factors = np.zeros(n_rings, np.float64)  # 0: not a ring with area, or none of it in these rows
    bound = 0
    start = first
    for ring in range(n_rings):
        end = ring_end[ring]
        if end - start >= 4 and (min(v[start:end]) < row1 and max(v[start:end]) > row0):
            factors[ring] = _ring_factor(u, v, start, end, ring_is_hole[ring])
            for e in range(start, end - 1):
                ua, va, ub, vb = u[e], v[e], u[e + 1], v[e + 1]
                vlo, vhi = min(va, vb), max(va, vb)
                if vlo == vhi or vhi <= row0 or vlo >= row1:
                    continue
                # the edge within the rows only (its u where the loop below cuts it), so that an
                # edge far longer than the window does not bound the buffers
                slope = (ub - ua) / (vb - va)
                v0, v1 = max(vlo, float(row0)), min(vhi, float(row1))
                u0 = ua if v0 == va else (ub if v0 == vb else ua + (v0 - va) * slope)
                u1 = ua if v1 == va else (ub if v1 == vb else ua + (v1 - va) * slope)
                bound += int(math.ceil(v1) - math.floor(v0)) + int(math.ceil(max(u0, u1)) - math.floor(min(u0, u1))) + 3
        start = end
    p_row = np.empty(bound, np.int64)
    p_col = np.empty(bound, np.int64)
    p_d = np.empty(bound, np.float64)
    p_s = np.empty(bound, np.float64)
    n = 0
    start = first
    for ring in range(n_rings):
        end = ring_end[ring]
        factor = factors[ring]
        for e in range(start, end - 1):
            if factor == 0.0:
                break
            ua, va, ub, vb = u[e], v[e], u[e + 1], v[e + 1]
            if va == vb:
                continue  # horizontal: no dv (the running sum covers the cells under it)
            vlo, vhi = min(va, vb), max(va, vb)
            if vhi <= row0 or vlo >= row1:
                continue
            slope = (ub - ua) / (vb - va)
            r_first = max(int(math.floor(vlo)), row0)
            r_last = min(int(math.ceil(vhi)), row1)
            for r in range(r_first, r_last):
                s0, s1 = max(vlo, float(r)), min(vhi, float(r + 1))
                if s1 <= s0:
                    continue
                # the piece in the edge's direction
                if vb > va:
                    vs, ve = s0, s1
                else:
                    vs, ve = s1, s0
                us = ua + (vs - va) * slope if vs != va else ua
                ue = ua + (ve - va) * slope if ve != vb else ub
                dv = (ve - vs) * factor
                k_lo = int(math.floor(min(us, ue)))
                k_hi = int(math.floor(max(us, ue)))
                if k_lo == k_hi or us == ue:
                    k = int(math.floor(0.5 * (us + ue)))
                    p_row[n], p_col[n], p_d[n], p_s[n] = r, k, dv * (0.5 * (us + ue) - k), dv
                    n += 1
                    continue
                # split at the column lines the piece crosses, walking from us to ue
                step = 1 if ue > us else -1
                t_prev, u_prev = 0.0, us
                m_line = k_lo + 1 if step > 0 else k_hi
                while True:
                    if (step > 0 and m_line >= ue) or (step < 0 and m_line <= ue):
                        u_next, t_next = ue, 1.0
                    else:
                        u_next = float(m_line)
                        t_next = (u_next - us) / (ue - us)
                    mid = 0.5 * (u_prev + u_next)
                    k = int(math.floor(mid))
                    dvk = (t_next - t_prev) * dv
                    p_row[n], p_col[n], p_d[n], p_s[n] = r, k, dvk * (mid - k), dvk
                    n += 1
                    if t_next >= 1.0:
                        break
                    t_prev, u_prev = t_next, u_next
                    m_line += step
        start = end
    return p_row[:n], p_col[:n], p_d[:n], p_s[:n]


@njit(nogil=True, cache=True)
def boundary_coverage(u, v, ring_end, ring_is_hole, row0, row1, col0, col1):
    """Coverage fractions of the cells of a window that a polygon's boundary crosses.

    Parameters
    ----------
    u, v : 1-D float64, vertex coordinates in pixel units of the full grid (``u`` the
        column, ``v`` the row; cell ``(r, k)`` is ``[k, k+1] x [r, r+1]``); the rings of
        every part one after the other, each closed (last vertex = first)
    ring_end : 1-D int64, index one past the last vertex of each ring
    ring_is_hole : 1-D bool, whether each ring is a hole (an interior ring); rings may wind
        either way
    row0, row1, col0, col1 : the window, ``[row0, row1) x [col0, col1)`` of the full grid

    Returns
    -------
    rows, cols : 1-D int64, full-grid indices of the cells, each once (computed as int32, as by
        :func:`boundary_coverage_many`: grids of up to 2^31 rows and columns)
    fraction : 1-D float64 in [0, 1], the share of the cell's area inside the polygon

    Every cell that a boundary piece passes through (also along a cell edge, where the
    fraction may be 0 or 1) is listed; cells under a horizontal edge are listed when
    their fraction is not 0 or 1 (to 1e-12). Cells not listed are wholly inside or outside.

    Examples
    --------
    A 2 x 1.5 rectangle from (0.5, 0.5): its corner cells hold 1/4, its edge cells 1/2.

    >>> u = np.array([0.5, 2.5, 2.5, 0.5, 0.5]); v = np.array([0.5, 0.5, 2.0, 2.0, 0.5])
    >>> r, c, f = boundary_coverage(u, v, np.array([5]), np.array([False]), 0, 3, 0, 3)
    >>> sorted(zip(r.tolist(), c.tolist(), f.round(3).tolist()))[:3]
    [(0, 0, 0.25), (0, 1, 0.5), (0, 2, 0.25)]
    """
    rows, cols, fraction, _ = boundary_coverage_many(u, v, ring_end, ring_is_hole, np.array([ring_end.shape[0]]), row0, row1, col0, col1)
    return rows.astype(np.int64), cols.astype(np.int64), fraction


@njit(nogil=True, cache=True)
def boundary_coverage_many(u, v, ring_end, ring_is_hole, polygon_ring_end, row0, row1, col0, col1):
    """:func:`boundary_coverage` of many polygons at once (one call per chunk).

    ``polygon_ring_end[p]`` is the index one past the last ring of polygon ``p`` in
    ``ring_end``. Returns ``rows, cols, fraction, polygon`` (the polygon's position; rows,
    columns and positions as int32, views of buffers at most twice their length: a chunk
    with many small units has ~1e6 entries).
    """
    o_row = np.empty(1024, np.int32)
    o_col = np.empty(1024, np.int32)
    o_f = np.empty(1024, np.float64)
    o_p = np.empty(1024, np.int32)
    m = 0
    ring0 = 0
    for p in range(polygon_ring_end.shape[0]):
        ring1 = polygon_ring_end[p]
        if ring1 > ring0:
            first = ring_end[ring0 - 1] if ring0 > 0 else 0
            o_row, o_col, o_f, o_p, m = _append_coverage(u, v, ring_end[ring0:ring1], ring_is_hole[ring0:ring1], first, row0, row1, col0, col1, p, o_row, o_col, o_f, o_p, m)
        ring0 = ring1
    return o_row[:m], o_col[:m], o_f[:m], o_p[:m]


@njit(nogil=True, cache=True)
def _append_coverage(u, v, ring_end, ring_is_hole, first, row0, row1, col0, col1, polygon, o_row, o_col, o_f, o_p, m):
    """Append one polygon's boundary cells in the window to the buffers (from position ``m``).

    Returns the buffers (grown once if needed) and the new count. The pieces are summed per
    cell from the right of each row, in the same order whatever the window (a stable sort by
    row and column), so a cell's fraction does not depend on the chunking.
    """
    p_row, p_col, p_d, p_s = _row_pieces(u, v, ring_end, ring_is_hole, first, row0, row1)
    n = p_row.shape[0]
    if n == 0:
        return o_row, o_col, o_f, o_p, m
    eps = 1e-12
    k_min, k_max = p_col.min(), p_col.max()
    order = np.argsort((p_row - row0) * (k_max - k_min + 1) + (p_col - k_min), kind="mergesort")
    # the cells holding pieces, from the last (row, column): each cell's pieces summed as the row scan meets them
    c_row = np.empty(n, np.int64)
    c_col = np.empty(n, np.int64)
    c_d = np.empty(n, np.float64)
    c_s = np.empty(n, np.float64)
    n_cells = 0
    for i in range(n - 1, -1, -1):
        j = order[i]
        if n_cells > 0 and c_row[n_cells - 1] == p_row[j] and c_col[n_cells - 1] == p_col[j]:
            c_d[n_cells - 1] += p_d[j]
            c_s[n_cells - 1] += p_s[j]
        else:
            c_row[n_cells], c_col[n_cells], c_d[n_cells], c_s[n_cells] = p_row[j], p_col[j], p_d[j], p_s[j]
            n_cells += 1
    # the running sum of dv right of each cell (1 inside, 0 outside, a fraction under a horizontal
    # edge), and the number of entries, so that the buffers grow at most once (see _row_pieces)
    right = np.empty(n_cells, np.float64)
    n_out = 0
    k = 0
    while k < n_cells:
        r = c_row[k]
        running = 0.0
        prev = k_max + 1
        while k < n_cells and c_row[k] == r:
            right[k] = running
            if eps < running < 1.0 - eps:  # cells under a horizontal edge, between two cells with pieces
                n_out += max(min(prev, col1) - max(c_col[k] + 1, col0), 0)
            if col0 <= c_col[k] < col1:
                n_out += 1
            running += c_s[k]
            prev = c_col[k]
            k += 1
    if m + n_out > o_row.shape[0]:
        o_row, o_col, o_f, o_p = _grow(o_row, m + n_out), _grow(o_col, m + n_out), _grow(o_f, m + n_out), _grow(o_p, m + n_out)
    k = 0
    while k < n_cells:
        r = c_row[k]
        prev = k_max + 1
        while k < n_cells and c_row[k] == r:
            between = right[k]
            if eps < between < 1.0 - eps:
                for c in range(max(c_col[k] + 1, col0), min(prev, col1)):
                    o_row[m], o_col[m], o_f[m], o_p[m] = r, c, between, polygon
                    m += 1
            if col0 <= c_col[k] < col1:
                o_row[m], o_col[m], o_f[m], o_p[m] = r, c_col[k], min(max(c_d[k] + between, 0.0), 1.0), polygon
                m += 1
            prev = c_col[k]
            k += 1
    return o_row, o_col, o_f, o_p, m


@njit(nogil=True, cache=True)
def burn_cell_centres(u, v, ring_end, polygon_ring_end, values, row0, row1, col0, col1, out):
    """Burn ``values[p]`` into the cells of ``out`` whose centre lies inside polygon ``p`` (the cell-centre rule).

    Same inputs as :func:`boundary_coverage_many`; ``out`` is the window
    ``[row0, row1) x [col0, col1)``. Row ``r`` is scanned at ``v = r + 0.5``: the edges crossing
    it (half-open in ``v``, so a vertex on the scan line counts once) give the ``u`` of each
    crossing, and the cells whose centre lies in ``[u_in, u_out)`` of each inside span are
    burnt (even-odd rule). A centre on an edge shared by two polygons goes to the right-hand
    one. Later polygons overwrite earlier ones, as GDAL burns them.

    Examples
    --------
    >>> out = np.zeros((3, 3), np.int32)
    >>> u = np.array([0.2, 2.0, 2.0, 0.2, 0.2]); v = np.array([0.2, 0.2, 2.9, 2.9, 0.2])
    >>> burn_cell_centres(u, v, np.array([5]), np.array([1]), np.array([7], np.int32), 0, 3, 0, 3, out)
    >>> out.tolist()
    [[7, 7, 0], [7, 7, 0], [7, 7, 0]]
    """
    cap = 256
    x_row = np.empty(cap, np.int64)
    x_u = np.empty(cap, np.float64)
    ring0 = 0
    for p in range(polygon_ring_end.shape[0]):
        ring1 = polygon_ring_end[p]
        n = 0
        start = ring_end[ring0 - 1] if ring0 > 0 else 0
        for ring in range(ring0, ring1):
            end = ring_end[ring]
            for e in range(start, end - 1):
                # from the lower endpoint, so an edge shared by two polygons gives the same u in both
                if v[e] < v[e + 1]:
                    ul, vl, uh, vh = u[e], v[e], u[e + 1], v[e + 1]
                elif v[e] > v[e + 1]:
                    ul, vl, uh, vh = u[e + 1], v[e + 1], u[e], v[e]
                else:
                    continue
                r_first = max(int(math.ceil(vl - 0.5)), row0)  # scan lines r + 0.5 in [vl, vh)
                r_last = min(int(math.ceil(vh - 0.5)), row1)
                if r_last <= r_first:
                    continue
                slope = (uh - ul) / (vh - vl)
                if n + r_last - r_first > x_row.shape[0]:
                    x_row, x_u = _grow(x_row, n + r_last - r_first), _grow(x_u, n + r_last - r_first)
                for r in range(r_first, r_last):
                    x_row[n] = r
                    x_u[n] = ul + (r + 0.5 - vl) * slope
                    n += 1
            start = end
        ring0 = ring1
        if n == 0:
            continue
        order = np.argsort(x_u[:n], kind="mergesort")
        order = order[np.argsort(x_row[:n][order], kind="mergesort")]  # by row, then u
        z = values[p]
        k = 0
        while k + 1 < n:
            a, b = order[k], order[k + 1]
            if x_row[a] != x_row[b]:  # an odd count in a row (degenerate ring): skip its last crossing
                k += 1
                continue
            r = x_row[a]
            c_first = max(int(math.ceil(x_u[a] - 0.5)), col0)  # centres c + 0.5 in [u_in, u_out)
            c_last = min(int(math.ceil(x_u[b] - 0.5)), col1)
            for c in range(c_first, c_last):
                out[r - row0, c - col0] = z
            k += 2


@njit(nogil=True, cache=True)
def edge_corrections(rows, cols, fraction, unit, zones, row_area_fx):
    """Corrections of the cell-centre ``zones`` of a window from the boundary fractions of its units.

    Parameters
    ----------
    rows, cols, fraction, unit : 1-D, one entry per (boundary cell, unit): window row and
        column, the unit's coverage fraction of the cell and the unit's zone index (>= 1);
        each (cell, unit) once
    zones : 2-D integer, the window's cell-centre zone raster (0 outside every unit)
    row_area_fx : 1-D int64, fixed-point area of one cell of each window row

    Returns
    -------
    rows, cols : 1-D int32; zone : 1-D int32; share : 1-D float64; area_fx : 1-D int64
    (``lucr.chunk.EdgeCells``). Each unit gets ``round(fraction x cell area)`` of its
    boundary cells; of each boundary cell whose centre zone is 0 or a unit crossing it,
    the centre zone gives back the whole cell (in the same entry as its own fraction) and
    the outside row (0) gets what no unit covers (the fixed-point remainder, so every cell
    still adds up to its area exactly; no entry where that is 0). A centre zone that covers
    the cell entirely (units overlapping there) keeps it. One entry per (cell, zone), half
    as many as with separate give-back entries: what bounds a chunk's memory with many
    small units.

    Examples
    --------
    A cell split 0.25 / 0.75 between units 1 and 2, its centre in unit 2:

    >>> r, c, z, s, a = edge_corrections(np.array([0, 0]), np.array([0, 0]), np.array([0.25, 0.75]),
    ...     np.array([1, 2]), np.array([[2]], np.int32), np.array([100], np.int64))
    >>> list(zip(z.tolist(), s.tolist(), a.tolist()))
    [(1, 0.25, 25), (2, -0.25, -25)]
    """
    none_i, none_f = np.empty(0, np.int32), np.empty(0, np.float64)
    o_row, o_col, o_zone, o_share, o_area, m = append_edge_corrections(
        rows, cols, fraction, unit, zones, row_area_fx, 0, none_i, none_i.copy(), none_i.copy(), none_f, np.empty(0, np.int64), 0)
    return o_row[:m], o_col[:m], o_zone[:m], o_share[:m], o_area[:m]


@njit(nogil=True, cache=True)
def append_edge_corrections(rows, cols, fraction, unit, zones, row_area_fx, row_offset, o_row, o_col, o_zone, o_share, o_area, m):
    """:func:`edge_corrections` of a strip of a window, written into buffers from position ``m``.

    ``zones`` and ``row_area_fx`` are the strip's, ``rows`` its rows; the entries' rows are
    the window's (``row_offset`` added). The buffers (``o_row``, ``o_col``, ``o_zone`` int32,
    ``o_share`` float64, ``o_area`` int64) grow when full (to the entries needed or twice
    their size, a copy): strip after strip, a window's corrections fill one set of buffers,
    not joined from pieces. Returns the buffers and the new count.
    """
    n = rows.shape[0]
    width = zones.shape[1]
    # the boundary cells, in order of first appearance (a slot per cell, 1-based; no sort), with
    # their centre zone, what their units cover, and each entry's cell and fixed-point area
    slot_of_cell = np.zeros(zones.shape[0] * width, np.int32)
    cell_index = np.empty(n, np.int32)  # row * width + column
    centre = np.empty(n, np.int32)
    covered = np.zeros(n, np.float64)
    covered_fx = np.zeros(n, np.int64)
    centre_crosses = np.zeros(n, np.bool_)
    cell_of_entry = np.empty(n, np.int32)
    area_of_entry = np.empty(n, np.int64)
    n_cells = 0
    for e in range(n):
        r, c = rows[e], cols[e]
        i = r * width + c
        k = slot_of_cell[i] - 1
        if k < 0:
            k = n_cells
            slot_of_cell[i] = k + 1
            cell_index[k], centre[k] = i, zones[r, c]
            n_cells += 1
        a = np.int64(np.rint(fraction[e] * row_area_fx[r]))
        cell_of_entry[e], area_of_entry[e] = k, a
        covered[k] += fraction[e]
        covered_fx[k] += a
        if unit[e] == centre[k]:
            centre_crosses[k] = True
    n_out = m + n
    for k in range(n_cells):
        if centre[k] == 0 or (centre_crosses[k] and row_area_fx[cell_index[k] // width] - covered_fx[k] != 0):
            n_out += 1
    if n_out > o_row.shape[0]:
        o_row, o_col, o_zone, o_share, o_area = _grow(o_row, n_out), _grow(o_col, n_out), _grow(o_zone, n_out), _grow(o_share, n_out), _grow(o_area, n_out)
    for e in range(n):
        r = rows[e]
        a = area_of_entry[e]
        f = fraction[e]
        if unit[e] == centre[cell_of_entry[e]]:  # the centre zone: its fraction, less the whole cell it held
            a -= row_area_fx[r]
            f -= 1.0
        o_row[m + e], o_col[m + e], o_zone[m + e], o_share[m + e], o_area[m + e] = r + row_offset, cols[e], unit[e], f, a
    m += n
    for k in range(n_cells):
        r, c = cell_index[k] // width, cell_index[k] % width
        rest = row_area_fx[r] - covered_fx[k]
        if centre[k] == 0:  # the outside row held the cell: it keeps what no unit covers
            o_row[m], o_col[m], o_zone[m], o_share[m], o_area[m] = r + row_offset, c, 0, -covered[k], -covered_fx[k]
            m += 1
        elif centre_crosses[k] and rest != 0:
            o_row[m], o_col[m], o_zone[m], o_share[m], o_area[m] = r + row_offset, c, 0, 1.0 - covered[k], rest
            m += 1
    return o_row, o_col, o_zone, o_share, o_area, m
