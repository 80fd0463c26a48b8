"""Spatial pattern of per-unit values: weights, Moran's I, LISA, centre of gravity (methods.md §5, §7).

Seed ``003_*.txt`` (the China carbon-oxygen balance paper) maps CBC/OBC across units
with global Moran's I and LISA clusters (computed there in GeoDa; here with PySAL
``esda`` on ``libpysal`` weights) and follows the centre of gravity of the
coefficients over the years. This module provides

- :func:`build_weights`: queen/rook contiguity, k nearest neighbours or a distance band,
  row-standardised, with an explicit policy for units without neighbours (islands);
- :func:`global_moran`, :func:`local_moran`, :func:`moran_panel`: Moran's I with
  permutation inference and LISA clusters / spatial types (methods.md §7), reproducible
  for a given seed;
- :func:`centre_of_gravity`, :func:`gravity_trajectory`, :func:`deviational_ellipses`,
  :func:`trajectory_features`: weighted mean centre per year, its track between years
  and the standard deviational ellipse, vectorised over units and years.

Values are a ``Series`` indexed by unit id, or a *panel* (``DataFrame``: index unit
ids, one column per year). Distances and centroids are computed in an equal-area CRS
(:func:`equal_area_crs`), never in degrees.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Geod, Transformer
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AlbersEqualAreaConversion, LambertCylindricalEqualAreaConversion
from scipy.spatial import cKDTree

from lucr.area import is_equal_area
from lucr.errors import AnalysisError
from lucr.analysis.panel import id_listing as _listing

if TYPE_CHECKING:  # libpysal/esda are imported lazily (slow imports)
    import libpysal

log = logging.getLogger("lucr")

KINDS = ("queen", "rook", "knn", "distance")
ISLAND_POLICIES = ("nearest", "exclude")
#: esda's quadrant codes (PySAL scheme, ``geoda_quads=False``).
QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
#: methods.md §7: spatial type of a unit from its LISA cluster.
SPATIAL_TYPES = {"HH": "aggregated", "LL": "aggregated", "HL": "transitional", "LH": "transitional", "not significant": "dispersed"}
NOT_SIGNIFICANT = "not significant"
EXCLUDED = "excluded (island)"
STATUS_OK = "ok"
STATUS_CONSTANT = "undefined: all values equal"
COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
WGS84 = CRS.from_epsg(4326)
#: Ellipse axes below this (metres) are rounding noise: the weight sits on one centroid.
DEGENERATE_M = 1e-3
_GEOD = Geod(ellps="WGS84")


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


# ----------------------------------------------------------------------------- Moran's I


@dataclass(frozen=True)
class MoranResult:
    """Global Moran's I with normal and permutation inference (two-sided p_norm, folded p_sim)."""

    I: float            # noqa: E741
    expected_I: float   # -1 / (n - 1)
    z_norm: float
    p_norm: float
    z_sim: float
    p_sim: float
    permutations: int
    n: int


def _aligned(values: pd.Series, weights: SpatialWeights, what: str = "values") -> np.ndarray:
    """``values`` in the order of ``weights.ids`` as float, after checking the ids."""
    if not isinstance(values, pd.Series):
        raise AnalysisError(f"{what} must be a pandas Series indexed by unit id, not {type(values).__name__}", fix="pass one column, e.g. panel[2019]")
    if values.index.duplicated().any():
        raise AnalysisError(f"{what}: unit ids repeat: {_listing(values.index[values.index.duplicated()].unique())}", fix="keep one value per unit")
    if not pd.api.types.is_numeric_dtype(values):
        raise AnalysisError(f"{what} are not numeric ({values.dtype})", fix="pass a numeric column")
    ids = weights.ids
    present = values.reindex(ids)
    missing = present.index[present.isna()]
    if len(missing):
        raise AnalysisError(f"{what}: {len(missing)} unit(s) of the weights have no value (or NaN): {_listing(missing)}", fix="give a value for every unit, or build the weights from the units that have one")
    known = set(ids) | set(weights.excluded)
    unknown = [i for i in values.index if i not in known]
    if unknown:
        raise AnalysisError(
            f"{what}: {len(unknown)} unit id(s) match no polygon of the weights: {_listing(unknown)} (weights ids look like: {_listing(ids[:5])})",
            fix="use the polygons' ids (same type: '110000' is not 110000), or drop those units",
        )
    y = present.to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise AnalysisError(f"{what}: infinite values for units {_listing(present.index[~np.isfinite(y)])}", fix="drop or cap those values (e.g. a ratio with a zero denominator)")
    return y


#: Values whose spread is below this share of their magnitude are equal up to rounding.
REL_TOL = 1e-12


def _constant(y: np.ndarray) -> bool:
    return bool(np.ptp(y) <= REL_TOL * np.max(np.abs(y)))


def _check_constant(y: np.ndarray, what: str) -> None:
    if _constant(y):
        raise AnalysisError(f"{what}: Moran's I is undefined when all values are equal (zero variance)", fix="analyse a variable that varies across units")


def global_moran(values: pd.Series, weights: SpatialWeights, permutations: int = 999, seed: int = 12345) -> MoranResult:
    """Global Moran's I of ``values`` under ``weights`` (``esda.Moran``, methods.md §5).

    ``esda.Moran`` draws its permutations from NumPy's global generator: it is seeded with
    ``seed`` just before the call and restored afterwards, so the same seed gives the
    same ``p_sim`` (pseudo p-value, ``(extreme + 1) / (permutations + 1)``, folded as in
    GeoDa) without disturbing other users of ``np.random``. ``permutations=0`` skips the
    simulation (``z_sim``, ``p_sim`` NaN).

    Values for excluded islands are ignored; any other id mismatch raises.
    """
    import esda

    y = _aligned(values, weights)
    _check_constant(y, "values")
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        m = esda.Moran(y, weights.w, transformation="r", permutations=permutations)
    finally:
        np.random.set_state(state)
    return MoranResult(
        I=float(m.I), expected_I=float(m.EI), z_norm=float(m.z_norm), p_norm=float(m.p_norm),
        z_sim=float(getattr(m, "z_sim", np.nan)), p_sim=float(getattr(m, "p_sim", np.nan)), permutations=int(permutations), n=int(m.n),
    )


LOCAL_COLUMNS = ["value", "z", "lag_z", "local_i", "p_sim", "quadrant", "cluster", "spatial_type"]


_ESDA_CACHED = False


def _cache_esda_kernels() -> None:
    """Let numba cache esda's compiled kernels on disk (esda's ``njit`` does not ask for it).

    The first LISA of a process then takes about 4 s instead of 16 s (numba cannot cache
    the one kernel that takes the statistic as a function argument). Results are the same.
    """
    global _ESDA_CACHED
    if _ESDA_CACHED:
        return
    _ESDA_CACHED = True
    try:
        import importlib
        import pkgutil

        import esda
        from numba.core.registry import CPUDispatcher

        for info in pkgutil.iter_modules(esda.__path__):
            if info.name not in ("crand", "moran", "significance"):
                continue
            module = importlib.import_module(f"esda.{info.name}")
            for obj in vars(module).values():
                if isinstance(obj, CPUDispatcher) and type(obj._cache).__name__ == "NullCache":
                    obj.enable_caching()
    except Exception as exc:  # caching is an optimisation only
        log.debug("numba caching of esda kernels not enabled (%s)", exc)


def _esda_local(y: np.ndarray, weights: SpatialWeights, permutations: int, seed: int):
    import esda

    _cache_esda_kernels()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The alternative hypothesis for conditional randomization")
        return esda.Moran_Local(y, weights.w, transformation="r", permutations=permutations, n_jobs=1, seed=seed)


def local_moran(values: pd.Series, weights: SpatialWeights, permutations: int = 999, seed: int = 12345, alpha: float = 0.05) -> pd.DataFrame:
    """Local Moran's I (LISA) per unit with clusters and spatial types (methods.md §5, §7).

    ``esda.Moran_Local`` with conditional permutations (numba, ``n_jobs=1`` and ``seed``:
    reproducible). ``z`` is the value standardised as esda does (population sd),
    ``lag_z`` its spatial lag, ``quadrant`` esda's ``q`` (HH, LH, LL, HL), ``cluster`` the
    quadrant when ``p_sim < alpha`` else ``"not significant"``; ``spatial_type`` is
    ``aggregated`` (HH, LL), ``transitional`` (HL, LH) or ``dispersed`` (not significant).

    Returns
    -------
    DataFrame indexed by unit id (weights order, then excluded islands, whose statistics
    are NaN and cluster ``"excluded (island)"``), columns ``LOCAL_COLUMNS``.
    """
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1; got {alpha}", fix="use e.g. alpha=0.05")
    if permutations < 1:
        raise AnalysisError("LISA clusters need permutation p-values (permutations >= 1)", fix="use e.g. permutations=999")
    y = _aligned(values, weights)
    _check_constant(y, "values")
    lm = _esda_local(y, weights, permutations, seed)
    quadrant = pd.Series(lm.q, dtype=int).map(QUADRANTS).to_numpy()
    cluster = np.where(lm.p_sim < alpha, quadrant, NOT_SIGNIFICANT)
    frame = pd.DataFrame(
        {
            "value": y, "z": lm.z, "lag_z": weights.w.sparse @ lm.z, "local_i": lm.Is, "p_sim": lm.p_sim,
            "quadrant": quadrant, "cluster": cluster, "spatial_type": pd.Series(cluster).map(SPATIAL_TYPES).to_numpy(),
        },
        index=pd.Index(weights.ids, name="unit_id"),
    )
    return pd.concat([frame, _excluded_rows(values, weights)]) if weights.excluded else frame


def _excluded_rows(values: pd.Series, weights: SpatialWeights) -> pd.DataFrame:
    rows = pd.DataFrame(np.nan, index=pd.Index(weights.excluded, name="unit_id"), columns=LOCAL_COLUMNS).astype({c: object for c in ("quadrant", "cluster", "spatial_type")})
    rows["value"] = values.reindex(weights.excluded).to_numpy(dtype=float)
    rows["quadrant"] = rows["spatial_type"] = None
    rows["cluster"] = EXCLUDED
    return rows


def moran_panel(
    panel: pd.DataFrame, weights: SpatialWeights, variable: str, permutations: int = 999, seed: int = 12345, alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Global and local Moran's I for every year (column) of a unit x year panel.

    Every year uses the same ``seed``. A year whose values are all equal does not stop the
    panel: its Moran row is NaN and its LISA rows NaN, both with status
    ``"undefined: all values equal"``, and a warning is logged.

    Returns
    -------
    moran : one row per year: variable, year, I, expected_I, z_sim, p_sim, z_norm, p_norm, n, status
    lisa : one row per unit-year: unit_id, variable, year, ``LOCAL_COLUMNS``, status
    """
    if not isinstance(panel, pd.DataFrame):
        raise AnalysisError(f"a panel must be a DataFrame (index unit ids, columns years), not {type(panel).__name__}", fix="pivot the table to units x years")
    morans, lisas = [], []
    for year in panel.columns:
        values = panel[year]
        y = _aligned(values, weights, what=f"{variable} {year}")
        if _constant(y):
            log.warning("%s %s: Moran's I is undefined when all values are equal (zero variance); year left as NaN", variable, year)
            morans.append({"I": np.nan, "expected_I": np.nan, "z_sim": np.nan, "p_sim": np.nan, "z_norm": np.nan, "p_norm": np.nan, "n": len(y), "status": STATUS_CONSTANT})
            local = pd.DataFrame(np.nan, index=pd.Index(weights.ids, name="unit_id"), columns=LOCAL_COLUMNS).astype({c: object for c in ("quadrant", "cluster", "spatial_type")})
            local["value"] = y
            if weights.excluded:
                local = pd.concat([local, _excluded_rows(values, weights)])
            local["status"] = STATUS_CONSTANT
        else:
            m = global_moran(values, weights, permutations=permutations, seed=seed)
            morans.append({"I": m.I, "expected_I": m.expected_I, "z_sim": m.z_sim, "p_sim": m.p_sim, "z_norm": m.z_norm, "p_norm": m.p_norm, "n": m.n, "status": STATUS_OK})
            local = local_moran(values, weights, permutations=permutations, seed=seed, alpha=alpha).assign(status=STATUS_OK)
        morans[-1] = {"variable": variable, "year": year, **morans[-1]}
        lisas.append(local.reset_index().assign(variable=variable, year=year))
    moran = pd.DataFrame(morans, columns=["variable", "year", "I", "expected_I", "z_sim", "p_sim", "z_norm", "p_norm", "n", "status"])
    columns = ["unit_id", "variable", "year", *LOCAL_COLUMNS, "status"]
    lisa = pd.concat(lisas, ignore_index=True)[columns] if lisas else pd.DataFrame(columns=columns)
    return moran, lisa


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
    "SpatialWeights", "MoranResult", "equal_area_crs", "build_weights", "global_moran", "local_moran", "moran_panel",
    "centre_of_gravity", "gravity_trajectory", "deviational_ellipse", "deviational_ellipses", "trajectory_features",
]
