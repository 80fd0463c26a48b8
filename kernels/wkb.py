"""Polygon rings straight from WKB: the vertices, ring ends and polygon ends of many units.

The OGC Well-Known Binary layout (Simple Features Access 1.2.1, §8.2): a Polygon is a
byte-order byte, a uint32 type (3), a uint32 ring count, then each ring as a uint32 point
count and its points; a MultiPolygon (6) is a polygon count and that many Polygons. Z and
M (ISO types 1003/2003/3003, or EWKB's 0x80000000/0x40000000 flags) add 8 bytes per point,
which are skipped. Only little-endian WKB without an SRID is read (what shapely writes with
``byte_order=1``); each unit must end where the next one starts.

Reading the rings here costs a pass over the bytes; shapely's ``get_parts`` and
``get_rings`` copy every part and ring as a GEOS geometry (0.9 s for 324,523 units).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _u32(buf, pos):
    return np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8) | (np.int64(buf[pos + 2]) << 16) | (np.int64(buf[pos + 3]) << 24)


@njit(nogil=True, cache=True)
def _header(buf, pos, end):
    """Base type (1-7) and bytes per point at ``pos``; type -1 for what is not read here
    (big-endian, an EWKB SRID, a header past ``end``)."""
    if pos + 5 > end or buf[pos] != 1:
        return -1, 0
    code = _u32(buf, pos + 1)
    flags = code & 0xF0000000
    if flags & 0x20000000:
        return -1, 0  # an SRID follows the type
    code = code & 0x0FFFFFFF
    base, iso = code % 1000, code // 1000
    dims = 2 + ((flags & 0x80000000) != 0 or iso == 1 or iso == 3) + ((flags & 0x40000000) != 0 or iso == 2 or iso == 3)
    return base, 8 * dims


@njit(nogil=True, cache=True)
def _walk(buf, starts, xy, ring_end, ring_is_hole, polygon_ring_end, fill):
    """Count (``fill`` False) or fill the outputs; returns (vertices, rings, bad unit or -1).

    A unit is bad if it is not a little-endian Polygon or MultiPolygon, or if its counts
    point past its bytes or leave some of them unread (truncated or corrupt WKB).
    """
    n_vertices = 0
    n_rings = 0
    for unit in range(starts.shape[0]):
        pos = starts[unit]
        end = starts[unit + 1] if unit + 1 < starts.shape[0] else buf.shape[0]
        base, stride = _header(buf, pos, end)
        if base == 3:
            n_polygons = 1
        elif base == 6 and pos + 9 <= end:
            n_polygons = _u32(buf, pos + 5)
            pos += 9
        else:
            return n_vertices, n_rings, unit
        for _ in range(n_polygons):
            base, stride = _header(buf, pos, end)
            if base != 3 or pos + 9 > end:
                return n_vertices, n_rings, unit
            count = _u32(buf, pos + 5)
            pos += 9
            for ring in range(count):
                if pos + 4 > end:
                    return n_vertices, n_rings, unit
                n_points = _u32(buf, pos)
                pos += 4
                if pos + stride * n_points > end:
                    return n_vertices, n_rings, unit
                if fill:
                    for k in range(n_points):
                        for b in range(16):  # x and y, little-endian float64
                            xy[16 * (n_vertices + k) + b] = buf[pos + stride * k + b]
                    ring_end[n_rings] = n_vertices + n_points
                    ring_is_hole[n_rings] = ring > 0
                pos += stride * n_points
                n_vertices += n_points
                n_rings += 1
        if pos != end:
            return n_vertices, n_rings, unit
        if fill:
            polygon_ring_end[unit] = n_rings
    return n_vertices, n_rings, -1


@njit(nogil=True, cache=True)
def polygon_rings(buf, starts):
    """The rings of polygons given as WKB, one unit after the other.

    Parameters
    ----------
    buf : 1-D uint8, the WKB of every unit, concatenated
    starts : 1-D int64, the offset of each unit's WKB in ``buf``

    Returns
    -------
    xy : 1-D uint8, the vertices' x and y as little-endian float64 pairs (``xy.view(np.float64)``)
    ring_end : 1-D int64, index one past each ring's last vertex
    ring_is_hole : 1-D bool, whether each ring is a hole (not its part's first ring)
    polygon_ring_end : 1-D int64, index one past each unit's last ring
    bad : the first unit that is not a little-endian Polygon or MultiPolygon (without an
        EWKB SRID), or whose bytes are truncated or longer than its counts say; -1 if none

    Rings and vertices are in WKB order (each part's exterior, then its holes), as
    shapely's ``get_parts``, ``get_rings`` and ``get_coordinates`` give them.

    Examples
    --------
    A square with a square hole (x, y of the first vertex, then the ring structure):

    >>> import shapely
    >>> square = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (2, 1), (2, 2), (1, 1)]])
    >>> wkb = shapely.to_wkb(square, byte_order=1)
    >>> xy, ring_end, hole, poly_end, bad = polygon_rings(np.frombuffer(wkb, np.uint8), np.array([0]))
    >>> xy.view(np.float64)[:2].tolist(), ring_end.tolist(), hole.tolist(), poly_end.tolist(), bad
    ([0.0, 0.0], [5, 9], [False, True], [2], -1)
    """
    empty_u8 = np.empty(0, np.uint8)
    empty_i8 = np.empty(0, np.int64)
    empty_b = np.empty(0, np.bool_)
    n_vertices, n_rings, bad = _walk(buf, starts, empty_u8, empty_i8, empty_b, empty_i8, False)
    if bad >= 0:
        return empty_u8, empty_i8, empty_b, empty_i8, bad
    xy = np.empty(16 * n_vertices, np.uint8)
    ring_end = np.empty(n_rings, np.int64)
    ring_is_hole = np.empty(n_rings, np.bool_)
    polygon_ring_end = np.empty(starts.shape[0], np.int64)
    _walk(buf, starts, xy, ring_end, ring_is_hole, polygon_ring_end, True)
    return xy, ring_end, ring_is_hole, polygon_ring_end, -1
