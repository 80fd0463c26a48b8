"""Forecasting of unit x year panels (methods.md §6).

Three extrapolations, each vectorised over all units (rows) of a panel at once:

- ``gm11``: the grey model GM(1,1) with its posterior-variance ratio C and small-error
  probability P (seed ``001_*.txt``, the Guizhou land-use carbon emission paper);
- ``linear``: ordinary least squares of value on year;
- ``growth``: the average annual growth rate between the first and the last year;

and ``ensemble``, their mean, as seed ``003_*.txt`` (the China carbon-oxygen balance
paper) averages the three forecasts for 2030. Grey relational analysis (also §6) is in
:mod:`lucr.analysis.grey_relational`, which shares this module's panel checks.

Oracle: seed 001 Table 5 (Guizhou net emissions 2005-2019) gives C = 0.3235 and
P = 0.9333 as printed (tests/test_forecast.py). Its Table 7 forecasts (2020: 5634.88,
2030: 9015.77) are NOT reproducible from Table 5 with the standard GM(1,1), which gives
5440.92 and 8507.51, so they are not used as an oracle.

Panel convention: a ``DataFrame`` with unit ids as index and years as columns (ints,
ascending, equally spaced), float values, no NaN. Forecast years are
``last_year + step * (1..horizon)``. Units that a method cannot model get NaN rows and
their reason in ``stats["status"]`` (``"ok"`` otherwise); mistakes that concern the
whole panel raise ``AnalysisError``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from lucr.errors import AnalysisError
from lucr.analysis.panel import id_listing

GM11_MIN_YEARS = 4
GRADES = (  # methods.md §6: (grade, max C, min P), tested in order
    ("good", 0.35, 0.95),
    ("qualified", 0.5, 0.80),
    ("barely", 0.65, 0.70),
)
STATUS_OK = "ok"
STATUS_SIGN = "zero or mixed-sign values: GM(1,1) needs a series of one sign"
STATUS_GROWTH = "first or last value zero or of different sign: growth rate undefined"
METHODS = ("gm11", "linear", "growth", "ensemble")
_REL_TOL = 1e-12  # relative size under which a spread counts as zero (constant series)


class GreyModelWarning(UserWarning):
    """A series fails the class-ratio test: GM(1,1) may not suit it."""


@dataclass(frozen=True)
class PanelForecast:
    """Fitted values, forecasts and statistics of one method over a panel.

    ``fitted``: unit x observed years; ``forecast``: unit x future years (NaN rows for
    units that were not modelled); ``stats``: unit x statistics, always with a
    ``status`` column, ``"ok"`` or the reason the unit was not modelled;
    ``observed``: the input panel (floats), which ``ensemble`` scores its fit against.
    """

    method: str
    fitted: pd.DataFrame
    forecast: pd.DataFrame
    stats: pd.DataFrame
    observed: pd.DataFrame | None = None


@dataclass(frozen=True)
class GM11Result:
    """GM(1,1) of one series (methods.md §6); values in the series' unit.

    ``residuals`` = x0 - fitted over all n points (e(1) = 0 included),
    ``relative_errors`` = residuals / x0, ``ratio_bounds`` = the open interval
    (exp(-2/(n+1)), exp(2/(n+1))) the class ratios must lie in.
    """

    a: float
    b: float
    fitted: np.ndarray
    forecast: np.ndarray
    residuals: np.ndarray
    relative_errors: np.ndarray
    C: float
    P: float
    grade: str
    ratio_test_passed: bool
    ratio_bounds: tuple[float, float]


# --------------------------------------------------------------------------- checks (also used by lucr.analysis.grey_relational)

def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 0:
        raise AnalysisError(f"forecast horizon must be a whole number >= 0, got {horizon!r}",
                            fix="pass the number of future steps, e.g. horizon=11")
    return int(horizon)


def _ids(ids: Sequence, limit: int = 5) -> str:
    return id_listing(list(ids), limit)


def _check_panel(panel: pd.DataFrame, min_years: int, method: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Values (units, years) float, years (int) and step of a panel, or AnalysisError."""
    if not isinstance(panel, pd.DataFrame):
        raise AnalysisError(f"{method}: a panel must be a DataFrame (unit x year), got {type(panel).__name__}",
                            fix="build it with pandas, units as index and years as columns")
    if panel.shape[0] == 0:
        raise AnalysisError(f"{method}: the panel has no units", fix="pass at least one row")
    if not panel.index.is_unique:
        dup = panel.index[panel.index.duplicated()].unique()
        raise AnalysisError(f"{method}: duplicate unit ids in the panel: {_ids(dup)}",
                            fix="aggregate or drop duplicated units first")
    cols = list(panel.columns)
    numeric = pd.api.types.is_numeric_dtype(panel.columns) and not pd.api.types.is_bool_dtype(panel.columns)
    years = np.asarray(cols, dtype=float) if numeric else None
    if years is None or not np.all(np.isfinite(years)) or not np.all(years == np.round(years)):
        raise AnalysisError(f"{method}: panel columns must be whole years, got {cols}",
                            fix="make the columns integer years, e.g. panel.columns = panel.columns.astype(int)")
    years = years.astype(np.int64)
    if years.size < min_years:
        raise AnalysisError(f"{method}: needs at least {min_years} years, "
                            f"the panel has {years.size}: {years.tolist()}",
                            fix=f"give a longer time series (>= {min_years} equally spaced years)")
    steps = np.diff(years)
    if steps.size and (np.any(steps <= 0) or np.any(steps != steps[0])):
        raise AnalysisError(f"{method}: panel years must be ascending and equally spaced, got {years.tolist()}",
                            fix="sort the columns and keep one interval, e.g. every year or every 5 years")
    try:
        values = panel.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"{method}: panel values are not numeric ({exc})",
                            fix="convert the values to floats") from None
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise AnalysisError(f"{method}: missing (NaN) or infinite values for units {_ids(panel.index[bad])}",
                            fix="fill or drop these units before forecasting")
    return values, years, int(steps[0]) if steps.size else 1


def _one_sign(x: np.ndarray) -> np.ndarray:
    """Rows with no zero and a single sign."""
    return np.all(x > 0, axis=1) | np.all(x < 0, axis=1)


def _frames(method: str, panel: pd.DataFrame, x: np.ndarray, years: np.ndarray, step: int, horizon: int,
            fitted: np.ndarray, forecast: np.ndarray, stats: dict, status: np.ndarray) -> PanelForecast:
    index = panel.index
    future = years[-1] + step * np.arange(1, horizon + 1)
    st = pd.DataFrame(stats, index=index)
    st["status"] = status
    observed_years = pd.Index(years, name="year")
    return PanelForecast(method,
                         pd.DataFrame(fitted, index=index, columns=observed_years),
                         pd.DataFrame(forecast, index=index, columns=pd.Index(future, name="year")),
                         st, pd.DataFrame(x, index=index, columns=observed_years))


def _errors(x: np.ndarray, fitted: np.ndarray, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RMSE and MAPE (%) per row over observed points ``start:``; MAPE NaN if a value is 0."""
    e = x[:, start:] - fitted[:, start:]
    rmse = np.sqrt(np.mean(e * e, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = 100.0 * np.mean(np.abs(e / x[:, start:]), axis=1)
    mape[np.any(x[:, start:] == 0, axis=1)] = np.nan
    return rmse, mape


# --------------------------------------------------------------------------- GM(1,1)

def _gm11_core(x0: np.ndarray, horizon: int) -> dict[str, np.ndarray]:
    """GM(1,1) of every row of ``x0`` (m, n) at once; rows must be of one sign, no zero.

    Closed-form least squares of x0(k) = -a z(k) + b, k = 2..n, with centred sums.
    Time response in the stable form x1^(k+1) = x0(1) e^{-ak} + b g(a, k),
    g = -expm1(-ak)/a -> k as a -> 0, so a constant series gives a ~ 0 and flat values.
    """
    n = x0.shape[1]
    x1 = np.cumsum(x0, axis=1)
    z = 0.5 * (x1[:, 1:] + x1[:, :-1])
    y = x0[:, 1:]
    zc = z - z.mean(axis=1, keepdims=True)
    slope = np.sum(zc * (y - y.mean(axis=1, keepdims=True)), axis=1) / np.sum(zc * zc, axis=1)
    a = -slope
    b = y.mean(axis=1) - slope * z.mean(axis=1)

    k = np.arange(n + horizon, dtype=float)[None, :]          # k = 0 .. n+h-1
    ac = a[:, None]
    tiny = np.abs(ac) < 1e-12
    a_safe = np.where(tiny, 1.0, ac)
    with np.errstate(over="ignore", invalid="ignore"):
        g = np.where(tiny, k * (1.0 - 0.5 * ac * k), -np.expm1(-a_safe * k) / a_safe)
        x1_hat = x0[:, :1] * np.exp(-ac * k) + b[:, None] * g
    x0_hat = np.concatenate([x0[:, :1], np.diff(x1_hat, axis=1)], axis=1)
    fitted, forecast = x0_hat[:, :n], x0_hat[:, n:]

    e = x0 - fitted                                           # e(1) = 0 included
    s_data = x0.std(axis=1)
    s_resid = e.std(axis=1)
    scale = np.max(np.abs(x0), axis=1)
    flat = s_data <= _REL_TOL * scale                         # constant series: C = 0/0
    exact = np.max(np.abs(e), axis=1) <= 1e-9 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.where(flat, np.where(exact, 0.0, np.inf), s_resid / s_data)
    P = np.mean(np.abs(e - e.mean(axis=1, keepdims=True)) < 0.6745 * s_data[:, None], axis=1)
    P = np.where(flat, np.where(exact, 1.0, 0.0), P)

    sigma = x0[:, :-1] / x0[:, 1:]
    lo, hi = np.exp(-2.0 / (n + 1)), np.exp(2.0 / (n + 1))
    ratio_ok = np.all((sigma > lo) & (sigma < hi), axis=1)
    return dict(a=a, b=b, fitted=fitted, forecast=forecast, residuals=e, relative_errors=e / x0,
                C=C, P=P, grade=_grade(C, P), ratio_ok=ratio_ok, ratio_bounds=(float(lo), float(hi)))


def _grade(C: np.ndarray, P: np.ndarray) -> np.ndarray:
    grade = np.full(C.shape, "unqualified", dtype=object)
    for name, c_max, p_min in reversed(GRADES):              # best grade written last wins
        grade[(C <= c_max) & (P >= p_min)] = name
    return grade


def gm11(values, horizon: int = 0) -> GM11Result:
    """GM(1,1) grey model of one series (methods.md §6, seed ``001_*.txt``).

    Parameters
    ----------
    values : array-like, at least 4 equally spaced values of one sign, no zero or NaN.
        An all-negative series (a carbon sink) is accepted: GM(1,1) is equivariant
        under negation (a unchanged; b, fitted values and forecasts negated; C, P equal).
    horizon : number of steps to forecast after the last value.

    Returns
    -------
    GM11Result
        Development coefficient ``a`` (1/step), grey input ``b`` (unit of values),
        fitted values, forecasts, residuals, C, P and grade (good: C <= 0.35 and
        P >= 0.95; qualified: C <= 0.5, P >= 0.80; barely: C <= 0.65, P >= 0.70).
        C and P use all n residuals (e(1) = 0 included) and population standard
        deviations; for a constant series C = 0/0 is defined as C = 0, P = 1.

    Warns
    -----
    GreyModelWarning
        if a class ratio x0(k-1)/x0(k) falls outside (exp(-2/(n+1)), exp(2/(n+1))).

    Examples
    --------
    >>> r = gm11([2076.29, 2682.09, 3073.00, 2698.84, 3054.63], horizon=2)
    >>> r.forecast.shape
    (2,)
    """
    horizon = _check_horizon(horizon)
    try:
        x = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise AnalysisError("gm11: values are not numeric", fix="pass a sequence of numbers") from None
    if x.size < GM11_MIN_YEARS:
        raise AnalysisError(f"gm11: needs at least {GM11_MIN_YEARS} values, got {x.size}",
                            fix="give a longer time series")
    if not np.all(np.isfinite(x)):
        raise AnalysisError(f"gm11: the series has NaN or infinite values at positions "
                            f"{np.flatnonzero(~np.isfinite(x)).tolist()}", fix="fill or drop the missing years")
    if not _one_sign(x[None, :])[0]:
        raise AnalysisError(f"gm11: {STATUS_SIGN}",
                            fix="model sources and sinks separately, or shift the series away from zero")
    r = _gm11_core(x[None, :], horizon)
    if not r["ratio_ok"][0]:
        lo, hi = r["ratio_bounds"]
        warnings.warn(f"the series is not suited to GM(1,1): a class ratio x0(k-1)/x0(k) lies outside "
                      f"({lo:.4f}, {hi:.4f})", GreyModelWarning, stacklevel=2)
    return GM11Result(a=float(r["a"][0]), b=float(r["b"][0]), fitted=r["fitted"][0], forecast=r["forecast"][0],
                      residuals=r["residuals"][0], relative_errors=r["relative_errors"][0],
                      C=float(r["C"][0]), P=float(r["P"][0]), grade=str(r["grade"][0]),
                      ratio_test_passed=bool(r["ratio_ok"][0]), ratio_bounds=r["ratio_bounds"])


def gm11_panel(panel: pd.DataFrame, horizon: int) -> PanelForecast:
    """GM(1,1) of every unit of a panel at once (methods.md §6, seed ``001_*.txt``).

    Stats: ``a`` (1/step), ``b``, ``C``, ``P``, ``grade``, ``ratio_test_passed``,
    ``mape`` (mean |relative error| over k = 2..n, %; point 1 is exact by construction),
    ``rmse`` (over k = 2..n, unit of values), ``status``. Units with a zero or both signs
    are not modelled (status says so). One ``GreyModelWarning`` summarises the units
    that fail the class-ratio test. Raises ``AnalysisError`` for fewer than 4 years.
    """
    horizon = _check_horizon(horizon)
    x, years, step = _check_panel(panel, GM11_MIN_YEARS, "gm11")
    ok = _one_sign(x)
    r = _gm11_core(np.where(ok[:, None], x, 1.0), horizon)   # dummy rows, masked below
    rmse, mape = _errors(x, r["fitted"], start=1)
    stats = {key: np.where(ok, value, np.nan) for key, value in
             (("a", r["a"]), ("b", r["b"]), ("C", r["C"]), ("P", r["P"]))}
    stats["grade"] = np.where(ok, r["grade"], None)
    stats["ratio_test_passed"] = pd.array(np.where(ok, r["ratio_ok"], None), dtype="boolean")
    stats["mape"], stats["rmse"] = np.where(ok, mape, np.nan), np.where(ok, rmse, np.nan)
    failed = ok & ~r["ratio_ok"]
    if failed.any():
        lo, hi = r["ratio_bounds"]
        warnings.warn(f"{failed.sum()} of {ok.sum()} units are not suited to GM(1,1): a class ratio lies outside "
                      f"({lo:.4f}, {hi:.4f}), e.g. units {_ids(panel.index[failed])}", GreyModelWarning, stacklevel=2)
    nan_rows = ~ok[:, None]
    return _frames("gm11", panel, x, years, step, horizon,
                   np.where(nan_rows, np.nan, r["fitted"]), np.where(nan_rows, np.nan, r["forecast"]),
                   stats, np.where(ok, STATUS_OK, STATUS_SIGN))


# --------------------------------------------------------------------------- linear, growth

def linear_panel(panel: pd.DataFrame, horizon: int) -> PanelForecast:
    """Ordinary least squares of value on year for every unit (seed ``003_*.txt``).

    Stats: ``slope`` (unit of values per year), ``intercept`` (value at year 0),
    ``r2`` (NaN for a constant series), ``rmse``, ``mape`` (%, over all years; NaN if a
    value is 0), ``p_value`` of the slope (two-sided t test, n-2 d.o.f.; NaN if n <= 2,
    0 for an exact fit, 1 for a constant series),
    ``status``. Needs at least 2 years.
    """
    horizon = _check_horizon(horizon)
    x, years, step = _check_panel(panel, 2, "linear")
    n = years.size
    t = years.astype(float)
    tc = t - t.mean()
    stt = np.sum(tc * tc)
    xbar = x.mean(axis=1)
    slope = (x - xbar[:, None]) @ tc / stt
    intercept = xbar - slope * t.mean()
    future = t[-1] + step * np.arange(1, horizon + 1)
    fitted = xbar[:, None] + slope[:, None] * tc[None, :]
    forecast = xbar[:, None] + slope[:, None] * (future - t.mean())[None, :]
    ss_res = np.sum((x - fitted) ** 2, axis=1)
    ss_tot = np.sum((x - xbar[:, None]) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
        if n > 2:
            se = np.sqrt(ss_res / (n - 2) / stt)
            p = np.where(se > 0, 2.0 * sps.t.sf(np.abs(slope / se), n - 2), np.where(slope != 0, 0.0, 1.0))
        else:
            p = np.full(x.shape[0], np.nan)
    rmse, mape = _errors(x, fitted)
    stats = {"slope": slope, "intercept": intercept, "r2": r2, "rmse": rmse, "mape": mape, "p_value": p}
    return _frames("linear", panel, x, years, step, horizon, fitted, forecast, stats,
                   np.full(x.shape[0], STATUS_OK, dtype=object))


def growth_panel(panel: pd.DataFrame, horizon: int) -> PanelForecast:
    """Average annual growth-rate extrapolation for every unit (seed ``003_*.txt``).

    r = (x_n / x_1)^(1 / (t_n - t_1)) - 1 per year (also for 5-yearly panels);
    fitted and forecast values x_1 (1 + r)^(t - t_1). Stats: ``rate`` (fraction per
    year), ``rmse``, ``mape`` (%, over all years), ``status``; units whose first and
    last values are zero or of different sign are not modelled.
    """
    horizon = _check_horizon(horizon)
    x, years, step = _check_panel(panel, 2, "growth")
    first, last = x[:, 0], x[:, -1]
    ok = first * last > 0
    span = float(years[-1] - years[0])
    ratio = np.where(ok, last, 1.0) / np.where(ok, first, 1.0)
    rate = np.where(ok, ratio ** (1.0 / span) - 1.0, np.nan)
    t_all = np.concatenate([years, years[-1] + step * np.arange(1, horizon + 1)]).astype(float)
    values = np.where(ok, first, np.nan)[:, None] * (1.0 + rate[:, None]) ** (t_all - years[0])[None, :]
    fitted, forecast = values[:, :years.size], values[:, years.size:]
    rmse, mape = _errors(x, fitted)
    return _frames("growth", panel, x, years, step, horizon, fitted, forecast,
                   {"rate": rate, "rmse": rmse, "mape": mape}, np.where(ok, STATUS_OK, STATUS_GROWTH))


# --------------------------------------------------------------------------- ensemble

def ensemble(members: list[PanelForecast]) -> PanelForecast:
    """Mean of the members' fitted and forecast values (seed ``003_*.txt`` averages the
    linear, GM(1,1) and growth-rate forecasts).

    A unit is valid only if every member is; its status names the members that failed.
    Stats: ``rmse``, ``mape`` (%, over all years) of the ensemble fitted values against
    the members' ``observed`` panel (NaN if no member carries one), ``status``.
    """
    if not members:
        raise AnalysisError("ensemble: no member forecasts given",
                            fix="pass e.g. [gm11_panel(...), linear_panel(...)]")
    ref = members[0]
    for m in members[1:]:
        if not (m.fitted.index.equals(ref.fitted.index) and m.fitted.columns.equals(ref.fitted.columns)
                and m.forecast.columns.equals(ref.forecast.columns)):
            raise AnalysisError(f"ensemble: members {ref.method!r} and {m.method!r} cover different units or years",
                                fix="forecast the same panel with the same horizon for every member")
    reasons = np.full(len(ref.fitted), "", dtype=object)
    for m in members:                                             # loop over members, not units
        st = m.stats["status"].to_numpy(dtype=object)
        reasons = reasons + np.where(st != STATUS_OK, "; " + m.method + ": " + st, "")
    valid = reasons == ""
    status = np.where(valid, STATUS_OK, np.char.lstrip(reasons.astype(str), "; "))
    fitted = np.mean([m.fitted.to_numpy() for m in members], axis=0)
    forecast = np.mean([m.forecast.to_numpy() for m in members], axis=0)
    fitted[~valid], forecast[~valid] = np.nan, np.nan
    observed = next((m.observed for m in members if m.observed is not None), None)
    if observed is None:
        rmse = mape = np.full(len(valid), np.nan)
    else:
        rmse, mape = _errors(observed.to_numpy(dtype=float), fitted)
    return PanelForecast("ensemble",
                         pd.DataFrame(fitted, index=ref.fitted.index, columns=ref.fitted.columns),
                         pd.DataFrame(forecast, index=ref.forecast.index, columns=ref.forecast.columns),
                         pd.DataFrame({"rmse": rmse, "mape": mape, "status": status}, index=ref.fitted.index),
                         observed)


def forecast_panel(panel: pd.DataFrame, horizon: int,
                   methods: Sequence[str] = METHODS) -> dict[str, PanelForecast]:
    """Forecasts of a panel by each of ``methods`` ("gm11", "linear", "growth",
    "ensemble"; the ensemble averages the other three, seed ``003_*.txt``)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise AnalysisError(f"unknown forecast method(s) {unknown}", fix=f"choose from {list(METHODS)}")
    runs = {"gm11": gm11_panel, "linear": linear_panel, "growth": growth_panel}
    needed = set(runs) if "ensemble" in methods else set(methods)
    done = {name: runs[name](panel, horizon) for name in runs if name in needed}
    if "ensemble" in methods:
        done["ensemble"] = ensemble([done[name] for name in runs])
    return {name: done[name] for name in methods}
