"""Spatial weights between units (methods.md §5), the neighbourhoods behind Moran's I and LISA.

:func:`build_weights` gives queen/rook contiguity (shared vertex / shared edge, PySAL
``libpysal``), the ``k`` nearest centroids or a distance band, row-standardised, with an
explicit policy for units without neighbours (islands: joined to the unit nearest their
coast, or excluded). Seed ``003_*.txt`` (the China carbon-oxygen balance paper) does not
state its weights (it used GeoDa).

Distances and centroids are computed in an equal-area CRS (:func:`equal_area_crs`,
metres), never in degrees; :mod:`lucr.analysis.gravity` takes its centroids from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AlbersEqualAreaConversion, LambertCylindricalEqualAreaConversion
from scipy.spatial import cKDTree

from lucr.area import is_equal_area
from lucr.errors import AnalysisError
from lucr.analysis.panel import id_listing as _listing

if TYPE_CHECKING:  # libpysal is imported lazily (slow import)
    import libpysal

log = logging.getLogger("lucr")

KINDS = ("queen", "rook", "knn", "distance")
ISLAND_POLICIES = ("nearest", "exclude")


# ----------------------------------------------------------------------------- helpers


def _check_units(units: gpd.GeoDataFrame, id_col: str, min_units: int = 1) -> None:
    if not isinstance(units, gpd.GeoDataFrame):
        raise AnalysisError(f"units must be a GeoDataFrame of polygons, not {type(units).__name__}", fix="read the polygons with geopandas.read_file")
    if id_col not in units.columns:
        raise AnalysisError(f"the units have no id column '{id_col}' (columns: {_listing(units.columns)})", fix="name the column that holds the unit ids")
    if units.crs is None:
        raise AnalysisError("the units have no coordinate reference system", fix="assign one, e.g. units.set_crs('EPSG:4326')")
    dup = units.loc[units[id_col].duplicated(), id_col].unique()
    if len(dup):
        raise AnalysisError(f"unit ids repeat in '{id_col}': {_listing(dup)}", fix="dissolve the polygons by id first (one feature per unit)")
    bad = units.loc[units.geometry.isna() | units.geometry.is_empty, id_col]
    if len(bad):
        raise AnalysisError(f"units without geometry: {_listing(bad)}", fix="drop them or repair their polygons")
    if len(units) < min_units:
        raise AnalysisError(f"spatial weights need at least {min_units} units; got {len(units)}", fix="analyse a level with more units")


def equal_area_crs(units: gpd.GeoDataFrame) -> CRS:
    """An equal-area, metric CRS for the units' centroids and distances.

    An equal-area projected CRS (Albers, Lambert azimuthal, ...) is kept as is. Any
    other CRS (geographic, or a projection that distorts area such as Web Mercator):
    an Albers equal-area conic
    centred on the data (``lon_0`` = middle of the longitude range, standard parallels at
    1/6 and 5/6 of the latitude range, ``lat_0`` its middle) on the data's own datum; a
    Lambert cylindrical equal-area if the range is symmetric about the equator (where
    the cone degenerates).

    Returns
    -------
    pyproj.CRS, units metres.
    """
    crs = CRS.from_user_input(units.crs) if units.crs is not None else None
    if crs is None:
        raise AnalysisError("the units have no coordinate reference system", fix="assign one, e.g. units.set_crs('EPSG:4326')")
    if is_equal_area(crs):
        return crs
    if not (crs.is_geographic or crs.is_projected):
        raise AnalysisError(f"the units' CRS is neither geographic nor projected ({crs.name})", fix="reproject the polygons to EPSG:4326 or a projected CRS")
    minx, miny, maxx, maxy = (float(v) for v in (units.total_bounds if crs.is_geographic else units.to_crs(crs.geodetic_crs).total_bounds))
    lon_0, lat_0 = (minx + maxx) / 2, (miny + maxy) / 2
    lat_1, lat_2 = miny + (maxy - miny) / 6, miny + 5 * (maxy - miny) / 6
    if abs(np.sin(np.radians(lat_1)) + np.sin(np.radians(lat_2))) < 1e-6:
        conversion = LambertCylindricalEqualAreaConversion(longitude_natural_origin=lon_0)
    else:
        conversion = AlbersEqualAreaConversion(lat_1, lat_2, latitude_false_origin=lat_0, longitude_false_origin=lon_0)
    name = "Lambert cylindrical" if isinstance(conversion, LambertCylindricalEqualAreaConversion) else "Albers"
    return ProjectedCRS(conversion, name=f"lucr equal-area ({name}, centred on the units)", geodetic_crs=crs.geodetic_crs)


def _projected(crs) -> CRS:
    crs = CRS.from_user_input(crs)
    if not crs.is_projected:
        raise AnalysisError(f"the CRS for centroids must be projected (metres), not {crs.name}", fix="give an equal-area CRS, or crs=None for an Albers centred on the units")
    return crs


def _centroids(units: gpd.GeoDataFrame, id_col: str, crs: CRS) -> pd.DataFrame:
    """Unit centroids (x, y in ``crs`` metres) indexed by unit id."""
    pts = units.geometry.to_crs(crs).centroid
    return pd.DataFrame({"x": pts.x.to_numpy(), "y": pts.y.to_numpy()}, index=pd.Index(units[id_col].to_numpy(), name="unit_id"))


# ----------------------------------------------------------------------------- weights


@dataclass
class SpatialWeights:
    """Row-standardised spatial weights over unit ids (units kept in the analysis only)."""

    w: "libpysal.weights.W"
    kind: str              # "queen" | "rook" | "knn" | "distance"
    islands: list          # unit ids without neighbours under the requested rule
    island_policy: str     # "nearest" (joined to their island_k nearest units) | "exclude"
    excluded: list         # unit ids left out (islands with policy "exclude")

    @property
    def ids(self) -> list:
        """Unit ids of the analysis, in the weights' order."""
        return list(self.w.id_order)


def _neighbours_knn(xy: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of each point's k nearest other points."""
    _, idx = cKDTree(xy).query(xy, k=k + 1)
    idx = idx.reshape(len(xy), k + 1)
    not_self = idx != np.arange(len(xy))[:, None]
    first = np.argsort(~not_self, axis=1, kind="stable")[:, :k]  # drop self wherever it sits
    return np.take_along_axis(idx, first, axis=1)


def _nearest_shapes(shapes: np.ndarray, i: int, k: int, batch: int = 16) -> list[int]:
    """Indices of the ``k`` shapes nearest to ``shapes[i]`` (boundary distance, ties by index).

    Exact distances are computed in order of the bounding-box distance (a lower bound),
    only until no remaining shape can be nearer: a few polygons instead of all of them.
    """
    lower = shapely.distance(shapely.envelope(shapes[i]), shapely.envelope(shapes))
    lower[i] = np.inf
    order = np.argsort(lower, kind="stable")
    exact: dict[int, float] = {}
    for start in range(0, len(order) - 1, batch):
        chunk = order[start:start + batch]
        exact.update(zip(chunk.tolist(), shapely.distance(shapes[i], shapes[chunk]).tolist()))
        kth = sorted(exact.values())[:k]
        after = start + batch
        if len(kth) == k and (after >= len(order) or kth[-1] <= lower[order[after]]):
            break
    return sorted((j for j in exact if j != i), key=lambda j: (exact[j], j))[:k]


def build_weights(
    units: gpd.GeoDataFrame, id_col: str, kind: str = "queen", k: int = 4, distance_km: float | None = None,
    islands: str = "nearest", island_k: int = 1,
) -> SpatialWeights:
    """Spatial weights between units, row-standardised, with islands handled explicitly.

    Parameters
    ----------
    units : polygons with a CRS and unique ids in ``id_col``
    kind : ``queen`` / ``rook`` contiguity (shared vertex / shared edge, libpysal), ``knn``
        (the ``k`` nearest centroids) or ``distance`` (centroids within ``distance_km``).
        Centroids and distances are taken in :func:`equal_area_crs`.
    islands : what to do with units without neighbours (e.g. Hainan and Taiwan under
        queen contiguity): ``nearest`` joins each to the ``island_k`` units nearest to its
        boundary (distance between polygons in the equal-area CRS, so Hainan joins
        Guangdong across the Qiongzhou Strait; centroid distance would pick Macau), links
        made symmetric as ``libpysal.weights.attach_islands`` does; ``exclude`` leaves them
        out (listed in ``excluded``). Islands are logged either way, with their joins.

    Returns
    -------
    SpatialWeights whose ``w`` has the unit ids as ids, transform ``"R"``.
    """
    from libpysal import weights as lpw

    if kind not in KINDS:
        raise AnalysisError(f"unknown weights kind '{kind}'", fix=f"use one of {', '.join(KINDS)}")
    if islands not in ISLAND_POLICIES:
        raise AnalysisError(f"unknown island policy '{islands}'", fix=f"use one of {', '.join(ISLAND_POLICIES)}")
    _check_units(units, id_col, min_units=3)
    units = units.sort_values(id_col, kind="stable").reset_index(drop=True)  # results independent of row order
    ids = list(units[id_col])
    n = len(ids)
    if kind == "knn" and not 1 <= k < n:
        raise AnalysisError(f"knn weights need 1 <= k < number of units ({n}); got k={k}", fix="choose a smaller k")
    if kind == "distance" and (distance_km is None or not distance_km > 0):
        raise AnalysisError(f"distance weights need a positive distance_km; got {distance_km}", fix="give the band in km, e.g. distance_km=300")
    if not 1 <= island_k < n:
        raise AnalysisError(f"island_k must be between 1 and {n - 1}; got {island_k}", fix="join each island to one or a few nearest units")

    xy = None
    if kind in ("queen", "rook"):
        cls = lpw.Queen if kind == "queen" else lpw.Rook
        contiguity = cls.from_dataframe(units, ids=id_col, use_index=False, silence_warnings=True)
        neighbours = {i: list(contiguity.neighbors[i]) for i in ids}
    else:
        xy = _centroids(units, id_col, equal_area_crs(units))[["x", "y"]].to_numpy()
        if kind == "knn":
            nb = _neighbours_knn(xy, k)
            neighbours = {ids[i]: [ids[j] for j in row] for i, row in enumerate(nb)}
        else:
            pairs = cKDTree(xy).query_pairs(distance_km * 1000.0, output_type="ndarray")
            neighbours = {i: [] for i in ids}
            for a, b in pairs:
                neighbours[ids[a]].append(ids[b])
                neighbours[ids[b]].append(ids[a])

    lonely = [i for i in ids if not neighbours[i]]
    excluded: list = []
    if lonely:
        rule = f"{kind} contiguity" if kind in ("queen", "rook") else f"a {distance_km:g} km band"
        if islands == "nearest":
            pos = {u: i for i, u in enumerate(ids)}
            shapes = units.geometry.to_crs(equal_area_crs(units)).to_numpy()
            for island in lonely:
                for j in _nearest_shapes(shapes, pos[island], island_k):
                    other = ids[j]
                    if other not in neighbours[island]:
                        neighbours[island].append(other)
                        neighbours[other].append(island)
            joins = [f"{i} -> {'+'.join(str(j) for j in neighbours[i])}" for i in lonely]
            log.info("%d unit(s) have no neighbours under %s; joined to the nearest unit(s) across the gap: %s", len(lonely), rule, _listing(joins))
        else:
            log.info("%d unit(s) have no neighbours under %s; excluded from the analysis: %s", len(lonely), rule, _listing(lonely))
            excluded = lonely
            drop = set(lonely)
            ids = [i for i in ids if i not in drop]
            if len(ids) < 3:
                raise AnalysisError(f"only {len(ids)} units are left once the islands are excluded", fix="use islands='nearest'")
            neighbours = {i: neighbours[i] for i in ids}
    w = lpw.W(neighbours, id_order=ids, silence_warnings=True)
    w.transform = "R"
    if w.n_components > 1:
        log.info("the %s weights have %d disconnected groups of units", kind, w.n_components)
    return SpatialWeights(w=w, kind=kind, islands=lonely, island_policy=islands, excluded=excluded)


__all__ = ["SpatialWeights", "equal_area_crs", "build_weights"]
