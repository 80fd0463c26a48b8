"""Spatial autocorrelation of per-unit values: global Moran's I and LISA (methods.md §5, §7).

Seed ``003_*.txt`` (the China carbon-oxygen balance paper) maps CBC/OBC across units
with global Moran's I and LISA clusters, computed there in GeoDa; here with PySAL
``esda`` on the weights of :mod:`lucr.analysis.weights`:

- :func:`global_moran`: Moran's I with normal and permutation inference;
- :func:`local_moran`: LISA per unit, its quadrant (HH, LH, LL, HL), cluster and
  spatial type (aggregated, transitional, dispersed; methods.md §7);
- :func:`moran_panel`: both for every year of a unit x year panel.

Permutation results are reproducible for a given seed. Values are a ``Series`` indexed
by unit id, or a *panel* (``DataFrame``: index unit ids, one column per year). esda is
imported when first used (slow import); its numba kernels are cached on disk.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lucr.errors import AnalysisError
from lucr.analysis.panel import id_listing as _listing
from lucr.analysis.weights import SpatialWeights

log = logging.getLogger("lucr")

#: esda's quadrant codes (PySAL scheme, ``geoda_quads=False``).
QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
#: methods.md §7: spatial type of a unit from its LISA cluster.
SPATIAL_TYPES = {"HH": "aggregated", "LL": "aggregated", "HL": "transitional", "LH": "transitional", "not significant": "dispersed"}
NOT_SIGNIFICANT = "not significant"
EXCLUDED = "excluded (island)"
STATUS_OK = "ok"
STATUS_CONSTANT = "undefined: all values equal"


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


def _say_first_compile(cache: Path | None = None) -> None:
    """esda compiles its LISA permutation kernels (numba) the first time they run on a machine
    (10-30 s on 2 cores, then cached beside esda, or in ``cache``): said, so that the wait is not taken for a hang."""
    import importlib.util

    if cache is None:
        spec = importlib.util.find_spec("esda")
        cache = Path(spec.origin).parent / "__pycache__" if spec and spec.origin else None
    if cache is not None and not any(cache.glob("crand*.nbi")):
        log.info("compiling esda's LISA permutation kernels: first use on this machine only (10-30 s)")


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
    _say_first_compile()
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


__all__ = ["MoranResult", "global_moran", "local_moran", "moran_panel"]
