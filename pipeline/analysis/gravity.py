"""Centre of gravity of per-unit values over the years (methods.md §5).

Seed ``003_*.txt`` (the China carbon-oxygen balance paper) follows the weighted centre
of the coefficients (CBC/OBC) across units over the years. This module provides
:func:`centre_of_gravity` (weighted mean centre per year), :func:`gravity_trajectory`
(its geodesic steps between years: distance, bearing, compass direction, speed),
:func:`deviational_ellipses` / :func:`deviational_ellipse` (the standard deviational
ellipse) and :func:`trajectory_features` (points and lines for a GeoPackage),
vectorised over units and years.

Weights are a ``Series`` indexed by unit id, or a *panel* (``DataFrame``: index unit
ids, one column per year). Centroids are taken in an equal-area CRS
(:func:`lucr.analysis.weights.equal_area_crs`, metres), never in degrees; centres are
also reported in WGS84 degrees, steps in km.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Geod, Transformer

from lucr.errors import AnalysisError
from lucr.analysis.panel import id_listing as _listing
from lucr.analysis.weights import _centroids, _check_units, _projected, equal_area_crs

COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
WGS84 = CRS.from_epsg(4326)
#: Ellipse axes below this (metres) are rounding noise: the weight sits on one centroid.
DEGENERATE_M = 1e-3
_GEOD = Geod(ellps="WGS84")


# ----------------------------------------------------------------------------- centre of gravity


def _weight_matrix(units: gpd.GeoDataFrame, id_col: str, weights_panel, crs) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, CRS]:
    """Checked weights (units x years), their centroids (n, 2) in the metric CRS, and that CRS."""
    _check_units(units, id_col)
    panel = weights_panel.to_frame(weights_panel.name if weights_panel.name is not None else "value") if isinstance(weights_panel, pd.Series) else weights_panel
    if not isinstance(panel, pd.DataFrame):
        raise AnalysisError(f"gravity weights must be a Series or a unit x year DataFrame, not {type(weights_panel).__name__}", fix="pivot the table to units x years")
    if panel.empty:
        raise AnalysisError("centre of gravity needs at least one unit and one year of weights", fix="check the table's ids and years")
    if panel.index.duplicated().any():
        raise AnalysisError(f"gravity weights: unit ids repeat: {_listing(panel.index[panel.index.duplicated()].unique())}", fix="keep one row per unit")
    known = set(units[id_col])
    unknown = [i for i in panel.index if i not in known]
    if unknown:
        raise AnalysisError(
            f"gravity weights: {len(unknown)} unit id(s) match no polygon: {_listing(unknown)} (polygon ids look like: {_listing(list(units[id_col])[:5])})",
            fix="use the polygons' ids (same type: '110000' is not 110000), or drop those units",
        )
    try:
        values = panel.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise AnalysisError("centre of gravity needs numeric weights", fix="pass numeric columns") from None
    for j, col in enumerate(panel.columns):
        column = values[:, j]
        if np.isnan(column).any():
            raise AnalysisError(f"centre of gravity needs a weight for every unit; {col} is NaN for units {_listing(panel.index[np.isnan(column)])}", fix="fill or drop those units")
        if (column < 0).any():
            raise AnalysisError(
                f"centre of gravity needs non-negative weights; {col} has negative values for units {_listing(panel.index[column < 0])}",
                fix="weight by a non-negative quantity (e.g. the magnitude of a sink, or emissions and sinks separately)",
            )
        if not column.sum() > 0:
            raise AnalysisError(f"centre of gravity needs a positive total weight; {col} sums to 0", fix="drop that year or weight by another variable")
    crs = equal_area_crs(units) if crs is None else _projected(crs)
    xy = _centroids(units, id_col, crs).loc[panel.index, ["x", "y"]].to_numpy()
    return panel, values, xy, crs


def _to_lonlat(crs: CRS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return Transformer.from_crs(crs, WGS84, always_xy=True).transform(x, y)


def _weighted_centres(values: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    total = values.sum(axis=0)
    return total, xy[:, 0] @ values / total, xy[:, 1] @ values / total


def centre_of_gravity(units: gpd.GeoDataFrame, id_col: str, weights_panel: pd.DataFrame, crs=None) -> pd.DataFrame:
    """Weighted centre of gravity per year (methods.md §5; seed ``003_*.txt``).

    ``X = sum(w_i x_i) / sum(w_i)``, ``Y`` likewise, ``(x_i, y_i)`` the unit centroids in
    ``crs`` (default :func:`equal_area_crs`), ``w_i`` the unit's weight that year
    (non-negative, positive sum). Polygons without a row in the panel are ignored.

    Returns
    -------
    DataFrame, one row per year: year, x, y (metres in the metric CRS), lon, lat (WGS84
    degrees), total_weight, n_units (units with a positive weight).
    """
    panel, values, xy, crs = _weight_matrix(units, id_col, weights_panel, crs)
    total, x, y = _weighted_centres(values, xy)
    lon, lat = _to_lonlat(crs, x, y)
    out = pd.DataFrame({"year": list(panel.columns), "x": x, "y": y, "lon": lon, "lat": lat, "total_weight": total, "n_units": (values > 0).sum(axis=0)})
    out.attrs["crs"] = crs.to_wkt()
    return out


def _compass(bearing: np.ndarray) -> np.ndarray:
    idx = (np.floor(((bearing + 22.5) % 360) / 45)).astype(int) % 8
    return np.asarray(COMPASS, dtype=object)[idx]


def gravity_trajectory(centres: pd.DataFrame) -> pd.DataFrame:
    """Steps of the centre of gravity between consecutive years (geodesic on WGS84).

    Returns
    -------
    DataFrame, one row per step: from_year, to_year, distance_km (``pyproj.Geod.inv``),
    bearing_deg (initial azimuth clockwise from north, [0, 360); NaN for no move),
    direction (8-point compass: N, NE, E, SE, S, SW, W, NW; "none" for no move),
    speed_km_per_year, cumulative_km.
    """
    columns = ["from_year", "to_year", "distance_km", "bearing_deg", "direction", "speed_km_per_year", "cumulative_km"]
    missing = [c for c in ("year", "lon", "lat") if c not in centres.columns]
    if missing:
        raise AnalysisError(f"centres lack column(s) {missing}", fix="pass the output of centre_of_gravity")
    c = centres.sort_values("year", kind="stable")
    years = pd.to_numeric(c["year"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(years).any() or (np.diff(years) == 0).any():
        raise AnalysisError(f"a trajectory needs distinct numeric years; got {list(c['year'])}", fix="give one centre per year")
    if len(c) < 2:
        return pd.DataFrame(columns=columns)
    lon, lat = c["lon"].to_numpy(float), c["lat"].to_numpy(float)
    azimuth, _, metres = _GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    km = np.asarray(metres) / 1000.0
    moved = km > 0
    bearing = np.where(moved, np.mod(azimuth, 360.0), np.nan)
    bearing = np.where(bearing >= 360.0, 0.0, bearing)
    direction = np.where(moved, _compass(np.nan_to_num(bearing)), "none")
    return pd.DataFrame({
        "from_year": c["year"].to_numpy()[:-1], "to_year": c["year"].to_numpy()[1:], "distance_km": km, "bearing_deg": bearing,
        "direction": direction, "speed_km_per_year": km / np.diff(years), "cumulative_km": np.cumsum(km),
    })[columns]


def deviational_ellipses(units: gpd.GeoDataFrame, id_col: str, weights_panel: pd.DataFrame, crs=None, n_std: float = 1.0, n_vertices: int = 72) -> gpd.GeoDataFrame:
    """Weighted standard deviational ellipse per year (directional distribution).

    The weighted covariance of the unit centroids (in ``crs``, default
    :func:`equal_area_crs`; divisor ``sum(w)``) is diagonalised: ``major_km`` and
    ``minor_km`` are ``n_std`` weighted standard deviations along its principal axes,
    ``rotation_deg`` the direction of the major axis clockwise from north in [0, 180)
    (90 = east-west; a circle reports 90), ``flattening = 1 - minor / major``. ArcGIS
    Pro's Directional Distribution multiplies the axes by sqrt(2) for "1 standard
    deviation" (2-D adjustment); pass ``n_std=np.sqrt(2)`` to compare. A year whose
    weight sits on a single centroid has zero axes, NaN rotation and flattening and no
    geometry.

    Returns
    -------
    GeoDataFrame (EPSG:4326), one row per year: year, x, y, lon, lat (centre), major_km,
    minor_km, rotation_deg, flattening, geometry (the ellipse, ``n_vertices`` vertices).
    """
    panel, values, xy, crs = _weight_matrix(units, id_col, weights_panel, crs)
    total, cx, cy = _weighted_centres(values, xy)
    dx, dy = xy[:, [0]] - cx, xy[:, [1]] - cy            # (units, years)
    sxx = (values * dx * dx).sum(axis=0) / total
    syy = (values * dy * dy).sum(axis=0) / total
    sxy = (values * dx * dy).sum(axis=0) / total
    half, root = (sxx + syy) / 2, np.hypot((sxx - syy) / 2, sxy)
    major = n_std * np.sqrt(half + root)
    minor = n_std * np.sqrt(np.clip(half - root, 0.0, None))
    point = major < DEGENERATE_M                          # all weight on one centroid (rounding noise only)
    major, minor = np.where(point, 0.0, major), np.where(point, 0.0, minor)
    theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)          # major axis, counter-clockwise from east
    rotation = np.where(point, np.nan, np.mod(90.0 - np.degrees(theta), 180.0))
    t = np.linspace(0.0, 2 * np.pi, n_vertices, endpoint=False)
    u, v = major[:, None] * np.cos(t), minor[:, None] * np.sin(t)   # (years, vertices)
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    ring = np.stack([cx[:, None] + u * cos - v * sin, cy[:, None] + u * sin + v * cos], axis=-1)
    polygons = gpd.GeoSeries(np.where(point, None, shapely.polygons(ring)), crs=crs).to_crs(WGS84)
    lon, lat = _to_lonlat(crs, cx, cy)
    with np.errstate(divide="ignore", invalid="ignore"):
        flattening = np.where(major > 0, 1.0 - minor / major, np.nan)
    return gpd.GeoDataFrame({
        "year": list(panel.columns), "x": cx, "y": cy, "lon": lon, "lat": lat, "major_km": major / 1000.0, "minor_km": minor / 1000.0,
        "rotation_deg": rotation, "flattening": flattening,
    }, geometry=polygons.to_numpy(), crs=WGS84)


def deviational_ellipse(units: gpd.GeoDataFrame, id_col: str, weights: pd.Series, crs=None, n_std: float = 1.0) -> dict:
    """The standard deviational ellipse of one set of weights, as a dict (see :func:`deviational_ellipses`)."""
    row = deviational_ellipses(units, id_col, weights if isinstance(weights, pd.Series) else pd.Series(weights), crs=crs, n_std=n_std).iloc[0]
    return row.to_dict()


def trajectory_features(centres: pd.DataFrame, trajectory: pd.DataFrame | None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Centres and steps as EPSG:4326 features (e.g. for a GeoPackage).

    Returns
    -------
    points : one Point per year with the centre's columns
    lines : one two-vertex LineString per step (from one year's centre to the next) with
        the step's columns; empty when ``trajectory`` is None or has no steps
    """
    points = gpd.GeoDataFrame(centres.copy(), geometry=gpd.points_from_xy(centres["lon"], centres["lat"]), crs=WGS84)
    if trajectory is None or len(trajectory) == 0:
        columns = list(trajectory.columns) if trajectory is not None else []
        return points, gpd.GeoDataFrame(pd.DataFrame(columns=columns), geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
    at = centres.set_index("year")[["lon", "lat"]]
    start = at.loc[trajectory["from_year"]].to_numpy(float)
    end = at.loc[trajectory["to_year"]].to_numpy(float)
    lines = shapely.linestrings(np.stack([start, end], axis=1))
    return points, gpd.GeoDataFrame(trajectory.reset_index(drop=True), geometry=lines, crs=WGS84)


__all__ = [
    "centre_of_gravity", "gravity_trajectory", "deviational_ellipse", "deviational_ellipses", "trajectory_features",
]
