"""Land-use carbon risk per unit and year (docs/methods.md §12; digest §7, seed 000): indicators, grades,
types, early warning and their uncertainty.

Seed 000 names the concepts and gives no numbers: every threshold, weight and window here
is a documented, configurable default (``risk:`` in the run config, :class:`lucr.config.RiskConfig`).

- **Indicators** per unit-year: source S, sink magnitude K, net N = S - K, CBC = S / K, net
  per ha, sink share K / (S + K), built-up share.
- **Grades**: 1..5 by breaks of the indicator; a value equal to a break takes the higher
  grade; NaN -> grade 0 ("no data"). Schemes: ``fixed`` (CBC default 0.5, 1, 3, 10: 1 the
  net-zero line, 3 seed 003's rule that ecosystems should fix at least a third), ``jenks``
  (Fisher-Jenks, mapclassify), ``quantiles``, ``equal``; data-driven breaks are fitted on
  the base year and frozen for the other years, so grades compare over time.
- **Types**: balance type from the trends of S and K (Sen's slope, Mann-Kendall
  significance): source-type (S rises), sink-type (K falls), source-sink dual (both),
  stable; spatial type from LISA (HH aggregated, LL aggregated low, HL/LH transitional,
  not significant dispersed); temporal type: long-term (a significant rising CBC trend,
  or the risk threshold exceeded in >= ``long_term_years`` consecutive years), short-term
  (exceeded, but not so), none.
- **Composite index**: exposure (log CBC); sensitivity, the mean of the change components
  known (each min-max normalised over the units): Sen's slope of N over its mean |N| (with its
  Mann-Kendall p), the comprehensive dynamic degree (multi-date runs) and the built-up
  expansion (Sen's slope of the built-up share); adaptive capacity (sink share); min-max
  normalised; ``risk = E + S + (1 - A)`` weighted equally and by entropy weights (both reported).
- **Early warning**: blue (weak sink within ``margin`` of the net-zero line), yellow
  (moderate risk), orange (high), red (severe); a unit below the risk threshold whose
  ensemble forecast crosses it by ``warning_year`` gets the year of crossing.
- **Uncertainty**: a Monte Carlo over the class coefficients (triangular between
  ``coef x (1 -/+ r)``, r by the coefficient's status, or per-class ranges) on the
  cross-tabs: fluxes are linear in the coefficients, so each draw is a matrix product (no
  raster re-read): 5/50/95 % of S, K, N, CBC, the probability of each grade and of CBC > 1 and > 3.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger("lucr")

CBC_BREAKS = (0.5, 1.0, 3.0, 10.0)
NET_BREAKS = (-0.5, 0.0, 0.5, 2.0)  # net flux density, t C / ha / yr (lucr defaults; x 44/12 in t CO2)
LABELS = ("strong sink", "weak sink", "moderate risk", "high risk", "severe risk")
WARNING_LEVELS = ("none", "blue", "yellow", "orange", "red")


def grade(values, breaks) -> np.ndarray:
    """Grade 1..len(breaks)+1 of each value (a value on a break takes the higher grade; +inf the highest; NaN -> 0)."""
    v = np.asarray(values, dtype=float)
    g = np.searchsorted(np.asarray(breaks, dtype=float), v, side="right") + 1
    return np.where(np.isnan(v), 0, g).astype(np.int64)


def fit_breaks(values, scheme: str, k: int = 5, fixed=None) -> tuple[float, ...]:
    """``k - 1`` inner class bounds of a scheme: fixed, jenks (Fisher-Jenks), quantiles, equal intervals."""
    if scheme == "fixed":
        return tuple(float(b) for b in fixed)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return tuple([np.nan] * (k - 1))
    if scheme == "quantiles":
        return tuple(float(q) for q in np.quantile(v, np.arange(1, k) / k))
    if scheme == "equal":
        return tuple(float(q) for q in np.linspace(v.min(), v.max(), k + 1)[1:-1])
    if scheme == "jenks":
        import mapclassify

        distinct = np.unique(v)
        if distinct.size < k:  # fewer distinct values than classes: each value a class of its own
            return tuple(float(x) for x in distinct[1:]) + tuple([np.inf] * (k - distinct.size))
        return tuple(float(b) for b in mapclassify.FisherJenks(v, k=k).bins[:-1])
    raise ValueError(f"unknown scheme {scheme!r}")


def sens_slope(y, t) -> float:
    """Sen's slope: the median of the pairwise slopes (scipy's Theil-Sen)."""
    from scipy.stats import theilslopes

    y, t = np.asarray(y, float), np.asarray(t, float)
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return np.nan
    return float(theilslopes(y[ok], t[ok]).slope)


def mann_kendall(y) -> tuple[float, float]:
    """Mann-Kendall trend test: (Z, two-sided p), the variance corrected for ties."""
    from scipy.stats import norm

    y = np.asarray(y, float)
    y = y[np.isfinite(y)]
    n = y.size
    if n < 3:
        return np.nan, np.nan
    s = sum(np.sign(y[j] - y[i]) for i in range(n - 1) for j in range(i + 1, n))
    _, counts = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - sum(c * (c - 1) * (2 * c + 5) for c in counts)) / 18.0
    if var <= 0:
        return 0.0, 1.0
    z = (s - np.sign(s)) / math.sqrt(var)
    return float(z), float(2 * (1 - norm.cdf(abs(z))))


def entropy_weights(matrix: np.ndarray) -> np.ndarray:
    """Entropy weights of the columns of ``matrix`` (units x indicators, >= 0, larger = more of the indicator)."""
    x = np.asarray(matrix, float)
    n = x.shape[0]
    p = x / np.where(x.sum(axis=0) > 0, x.sum(axis=0), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=0) / math.log(n)
    d = 1.0 - e
    return d / d.sum() if d.sum() > 0 else np.full(x.shape[1], 1.0 / x.shape[1])


def _minmax(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, float)
    lo, hi = np.nanmin(v) if np.isfinite(v).any() else np.nan, np.nanmax(v) if np.isfinite(v).any() else np.nan
    return np.where(np.isfinite(v), (v - lo) / (hi - lo) if hi > lo else 0.0, np.nan)


def balance_type(source, sink_magnitude, years, alpha: float) -> str:
    """source-type (S rises), sink-type (K falls), source-sink dual (both) or stable; significance by Mann-Kendall."""
    s_up = sens_slope(source, years) > 0 and mann_kendall(source)[1] < alpha
    k_down = sens_slope(sink_magnitude, years) < 0 and mann_kendall(sink_magnitude)[1] < alpha
    return {(True, True): "source-sink dual", (True, False): "source-type", (False, True): "sink-type"}.get((s_up, k_down), "stable")


def temporal_type(indicator, years, threshold: float, long_term_years: int, alpha: float) -> str:
    """long-term: significant rising trend, or >= ``long_term_years`` consecutive years over the threshold;
    short-term: over it, but not so; none; n/a with fewer than two years."""
    v = np.asarray(indicator, float)
    if np.isfinite(v).sum() < 2:
        return "n/a (1 year)"  # one year cannot tell an isolated exceedance from a lasting one
    over = np.isfinite(v) & (v >= threshold)
    run, longest = 0, 0
    for o in over:
        run = run + 1 if o else 0
        longest = max(longest, run)
    rising = len(v) >= 3 and sens_slope(v, years) > 0 and mann_kendall(v)[1] < alpha
    if rising or longest >= long_term_years:
        return "long-term"
    return "short-term" if over.any() else "none"


SPATIAL = {"HH": "aggregated risk", "LL": "aggregated low risk", "HL": "transitional", "LH": "transitional", "not significant": "dispersed"}


@dataclass
class RiskResult:
    table: pd.DataFrame
    breaks: pd.DataFrame
    summary: dict = field(default_factory=dict)
    forecast: pd.DataFrame | None = None  # the indicator's series, fits and forecasts by method (4 or more equally spaced years)


def indicators(frame: pd.DataFrame, classes, col) -> pd.DataFrame:
    """Per unit-year indicators from a zonal table (``col`` maps t C names to the output unit's)."""
    s = frame[col("source_tc")].to_numpy(float)
    k = -frame[col("sink_tc")].to_numpy(float)
    built = [f"area_ha_class_{c.code}" for c in classes if c.category == "built_up" and f"area_ha_class_{c.code}" in frame]
    valid = frame["valid_fraction"].to_numpy(float) * frame["area_ha"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "source": s, "sink": k, "net": s - k,
            "cbc": np.where(k > 0, s / k, np.where(s > 0, np.inf, np.nan)),  # a source without sink land: unbounded, the highest grade
            "net_per_ha": frame[col("net_tc_per_ha")].to_numpy(float), "sink_share": np.where(s + k > 0, k / (s + k), np.nan),
            "builtup_share": np.where(valid > 0, frame[built].sum(axis=1).to_numpy(float) / valid, np.nan) if built else np.nan,
        }, index=frame.index)


def draw_coefficients(coefs, low, high, sd, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(K, draws)`` coefficients: normal (coef, sd) where ``sd`` is finite, else triangular (low, coef, high), else fixed."""
    sd = np.full(len(coefs), np.nan) if sd is None else np.asarray(sd, float)
    return np.stack([rng.normal(m, s, draws) if np.isfinite(s) else rng.triangular(lo, m, hi, draws) if hi > lo else np.full(draws, m)
                     for lo, m, hi, s in zip(low, coefs, high, sd)])


def monte_carlo(areas: np.ndarray, coefs: np.ndarray, low: np.ndarray, high: np.ndarray, draws: int, seed: int, breaks, thresholds=(1.0, 3.0),
                sd: np.ndarray | None = None, fixed_source: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Percentiles of S, K, N, CBC per unit and the probability of each grade and of CBC >= each threshold.

    ``areas``: (units, K) ha; coefficients drawn per class from a normal distribution (coef, ``sd``)
    where ``sd`` is finite, else a triangular one (low, coef, high); the same draw for every unit
    (a coefficient is one number for all). ``fixed_source``: per unit, a source added to every draw
    (the statistics' built-up flux, whose classes then have no area in ``areas``).
    """
    c = draw_coefficients(coefs, low, high, sd, draws, np.random.default_rng(seed))  # (K, draws)
    s = areas @ np.maximum(c, 0.0)
    if fixed_source is not None:
        s = s + np.nan_to_num(np.asarray(fixed_source, float))[:, None]
    k = -(areas @ np.minimum(c, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cbc = np.where(k > 0, s / k, np.where(s > 0, np.inf, np.nan))
    out = {}
    defined = ~np.isnan(cbc).all(axis=1)  # a unit with neither source nor sink has no CBC in any draw
    for name, m in (("source", s), ("sink", k), ("net", s - k), ("cbc", cbc)):
        q = np.full((3, m.shape[0]), np.nan)
        rows = ~np.isnan(m).all(axis=1)
        q[:, rows] = np.nanpercentile(m[rows], [5, 50, 95], axis=1, method="nearest")  # "nearest": no arithmetic on an infinite CBC
        out.update({f"{name}_p5": q[0], f"{name}_p50": q[1], f"{name}_p95": q[2]})
    g = grade(cbc, breaks)
    for j in range(1, len(breaks) + 2):
        out[f"p_grade_{j}"] = np.where(defined, (g == j).mean(axis=1), np.nan)
    for t in thresholds:
        hits = np.where(np.isnan(cbc), False, cbc >= t).sum(axis=1)
        out[f"p_cbc_ge_{t:g}"] = np.where(defined, hits / np.maximum((~np.isnan(cbc)).sum(axis=1), 1), np.nan)
    return out


def zonal_indicators(frames: dict, classes, units: str = "t C") -> pd.DataFrame:
    """``unit_id, name, year`` and the indicators of every unit-year of a level's zonal tables (``frames``: year -> table, output units)."""
    from lucr.units import renamed

    col = lambda base: renamed(base, units)  # noqa: E731
    parts = []
    for year, frame in frames.items():
        ind = indicators(frame, classes, col)
        parts.append(pd.concat([frame[["unit_id", "name"]].reset_index(drop=True).assign(year=year), ind.reset_index(drop=True)], axis=1))
    return pd.concat(parts, ignore_index=True)


def statistics_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """Indicators of the statistics route's table (seed 003's definitions, methods.md §11): S the human
    release (seed 001's source where the table has no fuels, cement or population), K the ecosystem
    fixation, CBC and OBC as accounted (release / fixation, O2 consumed / O2 released). Carbon in the
    table's unit; no areas, so ``net_per_ha`` and ``builtup_share`` are NaN."""
    carbon = next((u for u in ("tc", "tco2") if f"net_{u}" in frame), "tc")
    s = frame[f"human_release_{carbon}"].fillna(frame[f"source_{carbon}"]).to_numpy(float) if f"human_release_{carbon}" in frame else frame[f"source_{carbon}"].to_numpy(float)
    k = frame[f"ecosystem_fixation_{carbon}"].fillna(frame[f"sink_{carbon}"]).to_numpy(float) if f"ecosystem_fixation_{carbon}" in frame else frame[f"sink_{carbon}"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cbc = frame["cbc"].to_numpy(float) if "cbc" in frame else np.where(k > 0, s / k, np.where(s > 0, np.inf, np.nan))
        return pd.DataFrame({
            "unit_id": frame["unit_id"].astype(str).to_numpy(), "name": frame["name"].to_numpy() if "name" in frame else frame["unit_id"].astype(str).to_numpy(),
            "year": frame["year"].to_numpy(), "source": s, "sink": k, "net": s - k, "cbc": cbc,
            "obc": frame["obc"].to_numpy(float) if "obc" in frame else np.nan, "net_per_ha": np.nan,
            "sink_share": np.where(s + k > 0, k / (s + k), np.nan), "builtup_share": np.nan,
        })


def assess(frames: dict, level: str, table, cfg, units: str = "t C", lisa: pd.DataFrame | None = None, drivers: pd.DataFrame | None = None,
           change_rows: pd.DataFrame | None = None) -> RiskResult:
    """Risk of every unit-year of one level: ``frames`` are its zonal tables by year (output units);
    ``drivers``: :func:`driver_types` of the level (multi-date runs), else ``driver_type`` is n/a."""
    from lucr.units import factor, renamed

    long = zonal_indicators(frames, table.classes, units)
    result, breaks_by_year = assess_indicators(long, level, cfg, lisa, renamed("cbc_landcover" if cfg.indicator == "cbc" else "net_tc_per_ha", units), drivers, factor(units), change_rows)
    if cfg.uncertainty is not None:
        result.table = _with_uncertainty(result.table, frames, table, cfg, units, breaks_by_year)
    return result


def assess_statistics(frame: pd.DataFrame, level: str, cfg) -> RiskResult:
    """Risk of every unit-year of the statistics route's table (seed 003's CBC; no Monte Carlo: the
    factor tables give no ranges)."""
    if cfg.indicator != "cbc":
        from lucr.errors import ConfigError

        raise ConfigError(f"risk.indicator {cfg.indicator!r} needs unit areas; the statistics route grades CBC", fix="set risk.indicator: cbc, or add land cover to the run")
    result, _ = assess_indicators(statistics_indicators(frame), level, cfg, None, None, "statistics")
    result.summary["indicators_from"] = "statistics (seed 003: CBC = human release / ecosystem fixation)"
    return result


def assess_indicators(long: pd.DataFrame, level: str, cfg, lisa: pd.DataFrame | None, lisa_variable: str | None,
                      drivers: pd.DataFrame | str | None, to_units: float = 1.0, change_rows: pd.DataFrame | None = None) -> tuple[RiskResult, dict]:
    """Grades, types, composite index and warnings of the unit-year indicators ``long``; and the breaks of
    each year. ``drivers``: :func:`driver_types`, or why there are none (said in ``driver_type``);
    ``to_units``: t C -> output unit, for the default net-per-ha breaks; ``change_rows``: per ``unit_id, year``
    the dynamic degree and change carbon of the interval ending that year (:func:`lucr.analysis.risk_drivers.change_indicators`)."""
    years = list(dict.fromkeys(long["year"]))
    at = lambda y: long["year"].isna() if y is None else long["year"] == y  # noqa: E731  (an undated raster: year None)
    fixed = cfg.breaks or (CBC_BREAKS if cfg.indicator == "cbc" else tuple(b * to_units for b in NET_BREAKS))
    base = cfg.base_year if cfg.base_year is not None else years[0]
    k = len(cfg.labels)
    if cfg.scheme == "fixed" or cfg.freeze:
        b = fit_breaks(long.loc[at(base), cfg.indicator], cfg.scheme, k, fixed)
        breaks_by_year = {y: b for y in years}
    else:
        breaks_by_year = {y: fit_breaks(long.loc[at(y), cfg.indicator], cfg.scheme, k, fixed) for y in years}
    long["grade"] = 0
    for y in years:
        long.loc[at(y), "grade"] = grade(long.loc[at(y), cfg.indicator], breaks_by_year[y])
    long["grade_label"] = [cfg.labels[g - 1] if g > 0 else "no data" for g in long["grade"]]
    threshold = cfg.risk_threshold
    # types per unit (over the years)
    by_unit = long.groupby("unit_id", sort=False)
    n_years = len(years)
    balance, temporal, trend, trend_p, expansion = {}, {}, {}, {}, {}
    for unit, g in by_unit:
        y = g["year"].to_numpy(float) if g["year"].notna().all() else np.arange(len(g), dtype=float)
        if n_years >= 3:
            balance[unit] = balance_type(g["source"], g["sink"], y, cfg.trend_alpha)
            mean_net = np.nanmean(np.abs(g["net"]))
            trend[unit] = sens_slope(g["net"], y) / mean_net if mean_net > 0 else np.nan
            trend_p[unit] = mann_kendall(g["net"])[1]
        else:
            balance[unit], trend[unit], trend_p[unit] = f"n/a ({n_years} year{'s' if n_years > 1 else ''})", np.nan, np.nan
        expansion[unit] = sens_slope(g["builtup_share"], y) if n_years >= 2 else np.nan
        temporal[unit] = temporal_type(g[cfg.indicator], y, threshold, cfg.long_term_years, cfg.trend_alpha)
    long["balance_type"] = long["unit_id"].map(balance)
    long["temporal_type"] = long["unit_id"].map(temporal)
    long["spatial_type"] = _spatial(long, lisa, lisa_variable)
    if isinstance(drivers, pd.DataFrame):
        long = long.merge(drivers, on="unit_id", how="left")
        long["driver_type"] = long["driver_type"].fillna("natural background")  # no land changed in the unit
    else:
        long["driver_type"], long["driver_transition"] = f"n/a ({drivers or 'one date'})", None
    # change indicators of the interval ending in each year (multi-date runs)
    if change_rows is not None and len(change_rows):
        long = long.merge(change_rows, on=["unit_id", "year"], how="left")
    for column in ("dynamic_degree_pct_per_yr", "change_carbon"):
        if column not in long:
            long[column] = np.nan
    long["net_trend_rel_per_yr"] = long["unit_id"].map(trend)
    long["net_trend_p"] = long["unit_id"].map(trend_p)
    long["builtup_expansion_per_yr"] = long["unit_id"].map(expansion)
    # sensitivity: the change components, each min-max normalised over the units, averaged where known
    dynamic = long.groupby("unit_id", sort=False)["dynamic_degree_pct_per_yr"].transform("mean").to_numpy(float)
    parts = {"net_trend": long["net_trend_rel_per_yr"].to_numpy(float), "dynamic_degree": dynamic, "builtup_expansion": long["builtup_expansion_per_yr"].to_numpy(float)}
    normalised = np.column_stack([_minmax(v) for v in parts.values()])
    for j, name in enumerate(parts):
        long[f"sensitivity_{name}"] = normalised[:, j]
    known = np.isfinite(normalised).sum(axis=1)
    sensitivity = np.where(known > 0, np.nansum(normalised, axis=1) / np.maximum(known, 1), np.nan)
    # composite index: exposure - sensitivity - adaptive capacity
    cbc = long["cbc"].to_numpy(float)
    top = np.nanmax(cbc[np.isfinite(cbc)]) if np.isfinite(cbc).any() else 1.0
    exposure = np.log(np.clip(np.where(np.isposinf(cbc), top, cbc), 1e-6, None))  # no sink land: as exposed as the most exposed unit
    comp = np.column_stack([_minmax(exposure), sensitivity, 1.0 - _minmax(long["sink_share"].to_numpy(float))])
    used = [j for j in range(3) if np.isfinite(comp[:, j]).any()]
    long["exposure"], long["sensitivity"], long["adaptive_capacity"] = comp[:, 0], comp[:, 1], 1.0 - comp[:, 2]
    ok = np.isfinite(comp[:, used]).all(axis=1)
    w_entropy = np.full(3, np.nan)
    w_entropy[used] = entropy_weights(comp[ok][:, used]) if ok.sum() > 1 else np.full(len(used), 1.0 / len(used))
    parts = comp[:, used]
    counted = np.isfinite(parts).sum(axis=1)
    mean = np.where(counted > 0, np.nansum(parts, axis=1) / np.maximum(counted, 1), np.nan)  # nanmean without its empty-row warning
    long["risk_index_equal"] = np.where(np.isfinite(comp[:, 0]), mean, np.nan)  # no CBC, no index
    long["risk_index_entropy"] = comp[:, used] @ w_entropy[used]
    # early warning
    long["warning"] = [_warning(g, v, cfg.warning_margin, threshold) for g, v in zip(long["grade"], long[cfg.indicator])]
    long["threshold_margin"] = long[cfg.indicator].astype(float) - threshold  # > 0: over the risk threshold by this much
    crossing, forecast = _crossing(long, cfg, threshold)
    long = long.merge(crossing, on="unit_id", how="left")
    long["assessment"] = [_assessment(*row) for row in zip(long["grade_label"], long["balance_type"], long["spatial_type"], long["temporal_type"], long["driver_type"], long["warning"], long["crossing_year"])]
    breaks = pd.DataFrame([{"year": y, "scheme": cfg.scheme, "indicator": cfg.indicator, **{f"break_{i + 1}": b for i, b in enumerate(bb)},
                            "fitted_on": base if (cfg.scheme != "fixed" and cfg.freeze) else (y if cfg.scheme != "fixed" else "config")} for y, bb in breaks_by_year.items()])
    summary = {"level": level, "indicator": cfg.indicator, "scheme": cfg.scheme, "labels": list(cfg.labels),
               "entropy_weights": {n: (None if not np.isfinite(w) else float(w)) for n, w in zip(("exposure", "sensitivity", "adaptive_capacity"), w_entropy)},
               "grades": long.groupby(["year", "grade_label"], dropna=False).size().rename("units").reset_index().to_dict("records")}
    return RiskResult(table=long, breaks=breaks, summary=summary, forecast=forecast), breaks_by_year


def _assessment(grade_label: str, balance: str, spatial: str, temporal: str, driver: str, warning: str, crossing) -> str:
    """Seed 000's "grade - type - effect" in one line: the grade; the types that are known; the effect
    (the warning level, and the forecast year of crossing the threshold)."""
    types = [t for t in (balance, spatial, temporal, driver) if isinstance(t, str) and not t.startswith("n/a") and t not in ("none", "stable")]
    effect = f"{warning} warning" if warning != "none" else "no warning"
    if crossing is not None and np.isfinite(crossing):
        effect += f", forecast to cross in {int(crossing)}"
    return " - ".join([grade_label, ", ".join(types) or "no type", effect])


def _spatial(long: pd.DataFrame, lisa: pd.DataFrame | None, variable: str) -> list:
    if lisa is None or not len(lisa):
        return ["n/a (no LISA)"] * len(long)
    part = lisa[lisa["variable"] == variable]
    if not len(part):
        return ["n/a (no LISA)"] * len(long)
    key = dict(zip(zip(part["unit_id"].astype(str), part["year"].astype("Int64").astype(str)), part["cluster"]))
    return [SPATIAL.get(key.get((str(u), str(y))), "n/a") for u, y in zip(long["unit_id"], long["year"])]


def _warning(g: int, value: float, margin: float, threshold: float) -> str:
    if g >= 3:
        return WARNING_LEVELS[min(g - 1, 4)]  # moderate -> yellow, high -> orange, severe -> red
    if g == 2 and np.isfinite(value) and value >= threshold - margin:
        return "blue"  # a weak sink close to the net-zero line
    return "none"


def _crossing(long: pd.DataFrame, cfg, threshold: float) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Year the ensemble forecast crosses the threshold (units below it in the last year), with the GM(1,1)
    fit grade; and the forecast table (the indicator's observed, fitted and forecast values by method)."""
    from lucr.analysis.panel import equally_spaced

    years = sorted(long["year"].dropna().unique())
    out = pd.DataFrame({"unit_id": long["unit_id"].unique()})
    out["crossing_year"], out["forecast_grade"], out["low_confidence"] = np.nan, None, False
    if len(years) < 4 or cfg.warning_year <= years[-1] or not equally_spaced(years):
        return out, None
    import warnings

    from lucr.analysis.forecast import GreyModelWarning, forecast_panel

    panel = long.pivot(index="unit_id", columns="year", values=cfg.indicator)
    panel = panel[np.isfinite(panel.to_numpy(float)).all(axis=1)]  # an infinite CBC (no sink land) cannot be modelled
    step = int(years[1] - years[0])
    horizon = int(math.ceil((cfg.warning_year - years[-1]) / step))
    if panel.empty:
        return out, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GreyModelWarning)  # the fit grade says it, per unit (forecast_grade, low_confidence)
        result = forecast_panel(panel, horizon)
    fc, fit = result["ensemble"].forecast, result["gm11"].stats
    crossing = {}
    for unit in fc.index:
        if panel.at[unit, years[-1]] >= threshold:
            continue
        over = [y for y in fc.columns if np.isfinite(fc.at[unit, y]) and fc.at[unit, y] >= threshold]
        crossing[unit] = over[0] if over else np.nan
    out["crossing_year"] = out["unit_id"].map(crossing)
    grades = fit["grade"] if "grade" in fit else pd.Series(dtype=object)
    out["forecast_grade"] = out["unit_id"].map(grades)
    out["low_confidence"] = out["forecast_grade"].isin(["barely", "unqualified"])
    series = []
    for method, run in result.items():
        for kind, values in (("fitted", run.fitted), ("forecast", run.forecast)):
            part = values.rename_axis(index="unit_id", columns="year").stack(future_stack=True).rename("value").reset_index()
            series.append(part.assign(method=method, kind=kind))
    observed = panel.rename_axis(index="unit_id", columns="year").stack(future_stack=True).rename("value").reset_index().assign(method="observed", kind="observed")
    forecast = pd.concat([observed, *series], ignore_index=True).assign(indicator=cfg.indicator)
    forecast = forecast[["unit_id", "indicator", "method", "kind", "year", "value"]].sort_values(["unit_id", "method", "year"], kind="stable", ignore_index=True)
    return out, forecast


def coefficient_ranges(table, u, to_units: float = 1.0) -> pd.DataFrame:
    """The distribution each class's coefficient is drawn from, and where it comes from, in this order:
    the config's ``uncertainty.ranges`` (by code), the coefficient table's range or standard deviation
    (``coef_low``/``coef_high``, ``coef_sd``, with ``range_ref``), else coef x (1 -/+ r) with r the
    assumed half-width of the coefficient's status (``uncertainty.relative``). Output unit per ha."""
    rows = []
    for c in table.classes:
        coef = c.coef * to_units
        if c.code in u.ranges:
            lo, hi = sorted(v * to_units for v in u.ranges[c.code])
            rows.append((c.code, coef, lo, hi, np.nan, "config (uncertainty.ranges)"))
        elif c.spread is not None and c.spread[0] == "sd":
            sd = c.spread[1] * abs(to_units)
            rows.append((c.code, coef, coef - 1.645 * sd, coef + 1.645 * sd, sd, f"table: sd ({table.references.get(c.range_ref, c.range_ref) or 'no source given'})"))
        elif c.spread is not None:
            lo, hi = sorted((c.spread[1] * to_units, c.spread[2] * to_units))
            rows.append((c.code, coef, lo, hi, np.nan, f"table: range ({table.references.get(c.range_ref, c.range_ref) or 'no source given'})"))
        else:
            r = u.relative.get(c.status, 0.3)
            lo, hi = sorted((coef * (1 - r), coef * (1 + r)))
            rows.append((c.code, coef, lo, hi, np.nan, f"assumed: +/-{r:.0%} ({c.status})"))
    return pd.DataFrame(rows, columns=["code", "coef", "low", "high", "sd", "range_source"])


def _with_uncertainty(long: pd.DataFrame, frames: dict, table, cfg, units: str, breaks_by_year: dict) -> pd.DataFrame:
    from lucr.units import factor, renamed

    u = cfg.uncertainty
    ranges = coefficient_ranges(table, u, factor(units))
    parts = []
    built = np.array([c.category == "built_up" for c in table.classes])
    for year, frame in frames.items():
        areas = np.stack([frame[f"area_ha_class_{c.code}"].to_numpy(float) for c in table.classes], axis=1)
        fixed = None
        column = renamed("builtup_statistics_tc", units)
        if column in frame:  # statistics.builtup: those units' built-up flux is the statistics', not drawn
            fixed = frame[column].to_numpy(float)
            areas[np.isfinite(fixed)[:, None] & built[None, :]] = 0.0
        mc = monte_carlo(areas, ranges["coef"].to_numpy(), ranges["low"].to_numpy(), ranges["high"].to_numpy(), u.draws, u.seed, breaks_by_year[year],
                         sd=ranges["sd"].to_numpy(), fixed_source=fixed)
        parts.append(pd.DataFrame({"unit_id": frame["unit_id"].to_numpy(), "year": year, **mc}))
    return long.merge(pd.concat(parts, ignore_index=True), on=["unit_id", "year"], how="left")


def assess_levels(cfg, by_year: dict, analyses: dict, table, path_of, say=lambda _: None, change=None) -> dict:
    """Risk of every level of a run from its zonal tables of every year, its LISA and (multi-date runs)
    its transitions; writes ``risk_<level>s``, ``risk_<level>s_breaks`` and, with a forecast,
    ``risk_<level>s_forecast`` at ``path_of(name)``. Returns level -> :class:`RiskResult`."""
    import geopandas as gpd

    from lucr.analysis.risk_drivers import change_indicators, driver_types

    out = {}
    for z in cfg.zones:
        say(f"risk of {z.plural}: grades, types, warnings, uncertainty")
        frames = {y: r.tables[z.level] for y, r in by_year.items()}
        analysed = analyses.get(z.plural)
        lisa = analysed.tables.get("lisa") if analysed is not None else None
        drivers, change_rows = None, None
        if change is not None and f"transitions_{z.plural}" in change.tables:
            drivers = driver_types(change.tables[f"transitions_{z.plural}"], table.classes, cfg.output.units, change.tables.get(f"change_carbon_{z.plural}"))
            change_rows = change_indicators(change.tables.get(f"dynamic_degree_{z.plural}"), change.tables.get(f"change_carbon_{z.plural}"), cfg.output.units)
        result = assess(frames, z.level, table, cfg.risk, cfg.output.units, lisa, drivers, change_rows)
        geometry = next(iter(frames.values()))[["unit_id", "geometry"]]
        frame = gpd.GeoDataFrame(result.table.merge(geometry, on="unit_id", how="left"), geometry="geometry", crs=next(iter(frames.values())).crs)
        write_results(result, frame, z.plural, cfg, path_of)
        out[z.level] = result
    return out


def output_stems(level: str) -> list[str]:
    """The tables a risk assessment may write for a level (``level``: ``provinces``, ``inventory``), as declared."""
    from lucr.outputs_spec import stem

    return [stem(output, level=level) for output in ("risk", "risk_breaks", "risk_forecast")]


def write_results(result: RiskResult, frame: pd.DataFrame, level: str, cfg, path_of) -> None:
    """The risk table of a level (``frame``: the result's table, with geometry where it has one), its breaks and forecasts."""
    from lucr.export import write_frame

    fmt = dict(csv_bom=cfg.output.csv_bom, lang=cfg.output.lang)
    table, breaks, forecast = output_stems(level)
    write_frame(frame, table, cfg.output.tables, path_of, **fmt)
    write_frame(result.breaks, breaks, cfg.output.tables, path_of, **fmt)
    if result.forecast is not None:
        write_frame(result.forecast, forecast, cfg.output.tables, path_of, **fmt)
