"""True cell area in hectares (methods.md section 1: ``flux = coef * area_ha``).

Geographic grids: the area of a cell bounded by two parallels and two meridians on the
ellipsoid is ``dlon * a**2 / 2 * (q(lat_top) - q(lat_bottom))`` where ``q`` is the
authalic-latitude function (Snyder 1987, *Map Projections: A Working Manual*, USGS PP
1395, eq. 3-12; the same quantity as ``sin(beta) * q_p``). It depends only on the row,
so it is computed once per row and broadcast. Projected grids: ``|a * e|`` of the
affine transform, in metres; exact for equal-area projections, and a warning
otherwise.
"""

from __future__ import annotations

import warnings

import numpy as np
from pyproj import CRS as ProjCRS

from lucr.grid import Grid

M2_PER_HA = 10_000.0

#: Projection methods whose map units preserve area (PROJ method names, lowercase).
EQUAL_AREA_METHODS = (
    "albers equal area",
    "lambert azimuthal equal area",
    "lambert cylindrical equal area",
    "equal earth",
    "mollweide",
    "sinusoidal",
    "eckert iv",
    "eckert vi",
    "goode homolosine",
    "interrupted goode homolosine",
    "quartic authalic",
)


class NotEqualAreaWarning(UserWarning):
    """Cell areas from a projected CRS that does not preserve area."""


def authalic_q(lat_deg: np.ndarray, e: float) -> np.ndarray:
    """Snyder's ``q(lat)`` (eq. 3-12) for eccentricity ``e``; ``q(90) = q_p``."""
    s = np.sin(np.radians(lat_deg))
    if e == 0.0:
        return 2.0 * s
    e2 = e * e
    return (1.0 - e2) * (s / (1.0 - e2 * s * s) + np.arctanh(e * s) / e)


def ellipsoidal_cell_area_m2(lat_top: np.ndarray, lat_bottom: np.ndarray, dlon_deg: float, a: float, f: float) -> np.ndarray:
    """Area (m2) of lat/lon cells between two parallels, ``dlon_deg`` wide, on an ellipsoid.

    Parameters
    ----------
    lat_top, lat_bottom : array of float
        Latitudes of the cell edges (degrees).
    dlon_deg : float
        Cell width in longitude (degrees).
    a, f : float
        Semi-major axis (m) and flattening of the ellipsoid.

    Examples
    --------
    >>> round(float(ellipsoidal_cell_area_m2(np.array([0.05]), np.array([0.0]), 0.05, 6378137.0, 1 / 298.257223563)[0]))
    30770229
    """
    e = np.sqrt(f * (2.0 - f))
    dq = np.abs(authalic_q(np.asarray(lat_top, float), e) - authalic_q(np.asarray(lat_bottom, float), e))
    return np.radians(abs(dlon_deg)) * a * a / 2.0 * dq


def is_equal_area(crs) -> bool:
    """True when ``crs`` is a projected CRS whose projection preserves area."""
    pcrs = ProjCRS.from_user_input(crs)
    if not pcrs.is_projected:
        return False
    op = pcrs.coordinate_operation
    method = (op.method_name if op is not None else "").lower()
    return any(name in method for name in EQUAL_AREA_METHODS)


def row_cell_area_ha(grid: Grid, row_start: int = 0, row_stop: int | None = None) -> np.ndarray:
    """Area (ha) of one cell of each row ``row_start:row_stop`` of ``grid`` (float64).

    Raises ``ValueError`` for rotated grids. Warns (``NotEqualAreaWarning``) when a
    projected CRS is not equal-area, as its map-unit cell area is then not the true
    area.
    """
    row_stop = grid.height if row_stop is None else row_stop
    t = grid.transform
    if t.b != 0 or t.d != 0:
        raise ValueError("rotated grids are not supported; warp the raster to a north-up grid first")
    n = row_stop - row_start
    pcrs = ProjCRS.from_user_input(grid.crs)
    if pcrs.is_geographic:
        ellipsoid = pcrs.ellipsoid
        a = ellipsoid.semi_major_metre
        f = 1.0 / ellipsoid.inverse_flattening if ellipsoid.inverse_flattening else 0.0
        rows = np.arange(row_start, row_stop, dtype=np.float64)
        lat_top = t.f + t.e * rows
        lat_bottom = lat_top + t.e
        return ellipsoidal_cell_area_m2(lat_top, lat_bottom, t.a, a, f) / M2_PER_HA
    if not is_equal_area(pcrs):
        warnings.warn(
            f"CRS '{pcrs.name}' is not an equal-area projection: cell areas are taken from the "
            "map units and can be far from the true area; reproject to an equal-area CRS "
            "(e.g. Albers) for accounting.",
            NotEqualAreaWarning,
            stacklevel=2,
        )
    unit_m = pcrs.axis_info[0].unit_conversion_factor if pcrs.axis_info else 1.0
    cell_m2 = abs(t.a * t.e) * unit_m * unit_m
    return np.full(n, cell_m2 / M2_PER_HA, dtype=np.float64)


def fixed_point_scale_bits(grid: Grid, row_area_ha: np.ndarray) -> int:
    """Bits of the int64 fixed-point area unit (``m2 * 2**bits``) safe for this grid.

    Chosen so the area of the whole grid stays below 2**62, whatever the zone; more
    bits give finer resolution (a 30 m cell of a 1e10-cell grid keeps ~1e-9 relative).
    """
    total_m2 = float(row_area_ha.sum()) * grid.width * M2_PER_HA
    return int(np.floor(np.log2(2.0**62 / max(total_m2, 1.0))))


def to_fixed_point(area_ha: np.ndarray, scale_bits: int) -> np.ndarray:
    """Convert areas (ha) to int64 fixed-point ``m2 * 2**scale_bits``."""
    return np.rint(np.asarray(area_ha) * M2_PER_HA * 2.0**scale_bits).astype(np.int64)


def from_fixed_point(area_fx: np.ndarray, scale_bits: int) -> np.ndarray:
    """Convert int64 fixed-point areas back to hectares (float64)."""
    return np.asarray(area_fx, dtype=np.float64) / 2.0**scale_bits / M2_PER_HA
