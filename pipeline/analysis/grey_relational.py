"""Deng's grey relational analysis of unit x year panels (methods.md §6).

Ranks comparison series (e.g. land-class areas) by their tie to a reference series
(e.g. net emissions, t C), as seed ``001_*.txt`` (the Guizhou land-use carbon emission
paper, eqs. 7-10) ranks land classes: :func:`grey_relational` for one set of series,
:func:`grey_relational_panel` for every unit of a panel at once. Coefficients and
degrees are dimensionless, in (0, 1].

Not an oracle: seed 001's Table 6 relational degrees are NOT reproducible from its
Table 5 with any of the initial, mean or min-max normalisations.

Panels follow :mod:`lucr.analysis.forecast` (unit ids as index, equally spaced years as
columns, no NaN), whose panel checks are used here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from lucr.errors import AnalysisError
from lucr.analysis.forecast import STATUS_OK, _REL_TOL, _check_panel, _ids

NORMALISATIONS = ("initial", "mean", "minmax")


@dataclass(frozen=True)
class GreyRelation:
    """Grey relational analysis: ``coefficients`` (steps x series, ξ_i(k)),
    ``degrees`` r_i (sorted descending) and ``ranks`` (1 = strongest tie)."""

    coefficients: pd.DataFrame
    degrees: pd.Series
    ranks: pd.Series


# --------------------------------------------------------------------------- grey relational analysis

def _grey_core(x: np.ndarray, normalise: str, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ξ (units, series, steps) and reason codes (units, 1 + series).

    ``x`` is (units, 1 + series, steps) with the reference at ``[:, 0]``; min-min and
    max-max of the deltas are taken per unit over all its series and steps (Deng's
    global form). Reason codes: 0 ok, 1 zero first value, 2 zero mean, 3 constant.
    """
    if normalise == "initial":
        denom, shift, code, tol = x[..., :1], 0.0, 1, 0.0
    elif normalise == "mean":                                 # a mean or range of ~1e-17 is rounding
        denom, shift, code, tol = x.mean(axis=-1, keepdims=True), 0.0, 2, _REL_TOL
    else:
        lo = x.min(axis=-1, keepdims=True)
        denom, shift, code, tol = x.max(axis=-1, keepdims=True) - lo, lo, 3, _REL_TOL
    scale = np.max(np.abs(x), axis=-1, keepdims=True)
    bad = (np.abs(denom) <= tol * scale) | (scale == 0)
    y = (x - shift) / np.where(bad, 1.0, denom)
    codes = np.where(bad[..., 0], code, 0)
    delta = np.abs(y[:, 1:, :] - y[:, :1, :])
    delta[codes[:, 1:] > 0] = np.nan                          # a series that cannot be normalised drops out
    usable = ~np.isnan(delta).all(axis=(1, 2), keepdims=True)
    filled = np.where(usable, delta, 0.0)
    minmin = np.nanmin(filled, axis=(1, 2), keepdims=True)
    maxmax = np.nanmax(filled, axis=(1, 2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(maxmax > 0, (minmin + rho * maxmax) / (delta + rho * maxmax), np.where(np.isnan(delta), np.nan, 1.0))
    xi[codes[:, 0] > 0] = np.nan                              # no reference, no relation
    return xi, codes


_GREY_REASONS = {1: "zero first value, initial-value normalisation impossible",
                 2: "zero mean, mean normalisation impossible",
                 3: "constant series, min-max normalisation impossible"}


def _check_grey_options(normalise: str, rho: float) -> None:
    if normalise not in NORMALISATIONS:
        raise AnalysisError(f"unknown normalisation {normalise!r}", fix=f"choose from {list(NORMALISATIONS)}")
    if not (isinstance(rho, (int, float)) and 0 < rho <= 1):
        raise AnalysisError(f"distinguishing coefficient rho must lie in (0, 1], got {rho!r}",
                            fix="use the usual rho = 0.5")


def grey_relational(reference, comparisons, normalise: str = "initial", rho: float = 0.5) -> GreyRelation:
    """Deng's grey relational analysis of comparison series against a reference
    (methods.md §6, seed ``001_*.txt`` eqs. 7-10).

    Parameters
    ----------
    reference : 1-D array-like or Series over time steps (e.g. net emissions, t C).
    comparisons : DataFrame (time steps x series) or dict name -> 1-D array-like,
        matched to the reference by position.
    normalise : "initial" (x / x[0]), "mean" (x / mean(x)) or "minmax"
        ((x - min) / (max - min)), applied to every series.
    rho : distinguishing coefficient in (0, 1].

    Returns
    -------
    GreyRelation
        ξ_i(k) = (minmin + rho maxmax) / (Δ_i(k) + rho maxmax), Δ_i(k) = |x0(k) - xi(k)|,
        min-min and max-max over all series and steps (all ξ = 1 if maxmax = 0);
        degree r_i = mean over k of ξ_i(k), dimensionless in (0, 1].

    Examples
    --------
    >>> grey_relational([1, 2, 3], {"A": [1, 2, 4], "B": [2, 2, 2]}).degrees.round(4).tolist()
    [0.8333, 0.6111]
    """
    _check_grey_options(normalise, rho)
    if isinstance(comparisons, pd.DataFrame):
        table = comparisons
    elif isinstance(comparisons, Mapping):
        lengths = {name: np.size(v) for name, v in comparisons.items()}
        if len(set(lengths.values())) > 1:
            raise AnalysisError(f"grey relational: comparison series differ in length: {lengths}",
                                fix="give every series the same time steps")
        table = pd.DataFrame({name: np.asarray(v, dtype=float).ravel() for name, v in comparisons.items()})
    else:
        raise AnalysisError("grey relational: comparisons must be a DataFrame or a dict name -> series",
                            fix="e.g. {'forest': forest_area, 'cropland': cropland_area}")
    ref = np.asarray(reference, dtype=float).ravel()
    if table.shape[1] == 0:
        raise AnalysisError("grey relational: no comparison series", fix="pass at least one series")
    if ref.size != table.shape[0]:
        raise AnalysisError(f"grey relational: the reference has {ref.size} time steps, "
                            f"the comparisons {table.shape[0]}", fix="give every series the same time steps")
    if ref.size < 2:
        raise AnalysisError("grey relational: needs at least 2 time steps", fix="give a longer time series")
    comp = table.to_numpy(dtype=float).T
    nan_names = (["reference"] if not np.all(np.isfinite(ref)) else []) + \
        [str(c) for c, row in zip(table.columns, comp) if not np.all(np.isfinite(row))]
    if nan_names:
        raise AnalysisError(f"grey relational: NaN or infinite values in {', '.join(nan_names)}",
                            fix="fill or drop the missing time steps")
    xi, codes = _grey_core(np.vstack([ref, comp])[None], normalise, rho)
    if codes.any():
        names = ["reference"] + [str(c) for c in table.columns]
        bad = [f"{names[i]} ({_GREY_REASONS[c]})" for i, c in enumerate(codes[0]) if c]
        raise AnalysisError(f"grey relational: cannot normalise {'; '.join(bad)}",
                            fix="choose another normalisation or drop these series")
    index = reference.index if isinstance(reference, pd.Series) and not isinstance(comparisons, pd.DataFrame) \
        else table.index
    coefficients = pd.DataFrame(xi[0].T, index=index, columns=table.columns)
    degrees = coefficients.mean(axis=0).sort_values(ascending=False, kind="stable").rename("degree")
    ranks = degrees.rank(ascending=False, method="min").astype(int).rename("rank")
    return GreyRelation(coefficients, degrees, ranks)


def grey_relational_panel(reference: pd.DataFrame, comparisons: Mapping[str, pd.DataFrame],
                          normalise: str = "initial", rho: float = 0.5) -> pd.DataFrame:
    """Grey relational degrees of every unit at once (3-D arrays units x series x years).

    ``reference`` and each comparison are unit x year panels with the same units and
    years (comparisons are aligned to the reference's unit order). Returns a long table
    with columns ``unit_id``, ``comparison``, ``degree``, ``rank`` (1 = strongest within
    the unit) and ``status``. A comparison series that cannot be normalised (e.g. a class
    absent from the unit: zero first value) gets a NaN degree and the reason in ``status``
    and is left out of the unit's min-min and max-max; a reference that cannot be
    normalised makes the whole unit NaN. No error is raised for either.
    """
    _check_grey_options(normalise, rho)
    if not comparisons:
        raise AnalysisError("grey relational: no comparison panels", fix="pass at least one panel")
    ref, years, _ = _check_panel(reference, 2, "grey relational (reference)")
    layers = [ref]
    for name, comp in comparisons.items():
        _check_panel(comp, 2, f"grey relational ({name})")
        if not comp.columns.equals(reference.columns):
            raise AnalysisError(f"grey relational: {name!r} has years {list(comp.columns)}, "
                                f"the reference {list(reference.columns)}", fix="give every panel the same years")
        missing = reference.index.difference(comp.index)
        if len(missing):
            raise AnalysisError(f"grey relational: {name!r} lacks units {_ids(missing)}",
                                fix="give every panel the same units")
        layers.append(comp.reindex(reference.index).to_numpy(dtype=float))
    xi, codes = _grey_core(np.stack(layers, axis=1), normalise, rho)
    degree = xi.mean(axis=2)                                      # (units, series)
    rank = pd.DataFrame(degree).rank(axis=1, ascending=False, method="min").to_numpy()
    n_units, n_series = degree.shape
    # status per (unit, comparison): the reference's reason, else the comparison's own
    reasons = np.array([""] + [_GREY_REASONS[c] for c in sorted(_GREY_REASONS)], dtype=object)
    ref_reason = np.where(codes[:, :1] > 0, "reference: " + reasons[codes[:, :1]].astype(str), "")
    own_reason = reasons[codes[:, 1:]].astype(str)
    status = np.where(ref_reason != "", np.broadcast_to(ref_reason, own_reason.shape), np.where(own_reason != "", own_reason, STATUS_OK))
    return pd.DataFrame({
        "unit_id": np.repeat(reference.index.to_numpy(), n_series),
        "comparison": np.tile(np.array(list(comparisons), dtype=object), n_units),
        "degree": degree.ravel(),
        "rank": pd.array(rank.ravel(), dtype="Int64"),
        "status": status.ravel(),
    })
