"""Forecasting and grey relational analysis (methods.md §6).

Oracles: seed ``001_*.txt`` Table 5 (Guizhou net emissions 2005-2019) -> C, P of its
GM(1,1) as printed; a geometric series (closed-form GM(1,1) solution); a 4-point case
solved by ``np.linalg.lstsq``; ``scipy.stats.linregress``; hand-computed grey relations.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from lucr.errors import AnalysisError
from lucr.analysis.forecast import (
    GreyModelWarning, PanelForecast, _grade, ensemble, forecast_panel, gm11, gm11_panel, growth_panel, linear_panel,
)
from lucr.analysis.grey_relational import grey_relational, grey_relational_panel

# Seed 001 Table 5: net carbon emissions of Guizhou, 2005-2019, 10^4 t.
GUIZHOU_NET = [2076.29, 2682.09, 3073.00, 2698.84, 3054.63, 3490.35, 3700.12, 4608.31,
               4260.19, 4379.78, 4377.37, 4459.31, 4727.81, 4705.79, 5057.62]


def _panel(values, years=None, ids=None) -> pd.DataFrame:
    values = np.asarray(values, dtype=float)
    years = list(range(2005, 2005 + values.shape[1])) if years is None else years
    ids = [f"u{i}" for i in range(values.shape[0])] if ids is None else ids
    return pd.DataFrame(values, index=pd.Index(ids, name="unit_id"), columns=years)


def _random_positive(n_units: int, n_years: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.03, rng.uniform(0.005, 0.15, (n_units, 1)), (n_units, n_years))
    return rng.uniform(10, 5000, (n_units, 1)) * np.exp(np.cumsum(steps, axis=1))


# --------------------------------------------------------------------------- GM(1,1), one series

def test_gm11_oracle_seed001_table5():
    # The paper (MATLAB) prints C = 0.3235 and P = 0.9333; our conventions: residuals
    # over all n points with e(1) = 0, population standard deviations.
    with pytest.warns(GreyModelWarning, match="not suited"):   # 2682.09/3073.00 = 0.873 < e^(-2/16)
        r = gm11(GUIZHOU_NET, horizon=11)
    assert round(r.C, 4) == 0.3235
    assert round(r.P, 4) == 0.9333
    assert r.a == pytest.approx(-0.0447001, abs=1e-7)
    assert r.b == pytest.approx(2752.618, abs=1e-3)
    assert r.grade == "qualified"                              # P < 0.95, so not "good"
    # The paper's Table 7 forecasts (2020: 5634.88, 2030: 9015.77) are NOT reproducible
    # from its Table 5 with the standard GM(1,1): it gives 5440.92 and 8507.51.
    assert r.forecast[0] == pytest.approx(5440.92, abs=0.01)
    assert r.forecast[-1] == pytest.approx(8507.51, abs=0.01)
    assert abs(r.forecast[0] - 5634.88) > 100 and abs(r.forecast[-1] - 9015.77) > 400


def test_gm11_geometric_series_closed_form():
    # x0(k) = c r^(k-1): x0(k) = -a z(k) + b holds exactly with a = 2(1-r)/(1+r),
    # b = 2c/(1+r); the time response then gives x0^(k+1) = c r/(1-r) (e^a - 1) e^(-ak).
    c, q, n = 50.0, 1.08, 10
    x = c * q ** np.arange(n)
    r = gm11(x, horizon=5)
    a, b = 2 * (1 - q) / (1 + q), 2 * c / (1 + q)
    assert r.a == pytest.approx(a, rel=1e-12)
    assert r.b == pytest.approx(b, rel=1e-12)
    k = np.arange(1, n + 5)
    expected = np.concatenate([[c], c * q / (1 - q) * np.expm1(a) * np.exp(-a * k)])
    np.testing.assert_allclose(np.concatenate([r.fitted, r.forecast]), expected, rtol=1e-10)
    np.testing.assert_allclose(r.fitted, x, rtol=2e-3)        # only close: e^(-a) = 1.07996 ~ q
    assert r.grade == "good" and r.ratio_test_passed


def test_gm11_four_points_against_lstsq():
    # x0 = [3, 4, 6, 7]: x1 = [3, 7, 13, 20], z = [5, 10, 16.5], y = [4, 6, 7].
    x = np.array([3.0, 4.0, 6.0, 7.0])
    design = np.array([[-5.0, 1.0], [-10.0, 1.0], [-16.5, 1.0]])
    (a, b), *_ = np.linalg.lstsq(design, np.array([4.0, 6.0, 7.0]), rcond=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GreyModelWarning)      # 4/6 = 0.667 < e^(-2/5) = 0.670
        r = gm11(x, horizon=2)
    assert r.a == pytest.approx(a, rel=1e-12) and r.b == pytest.approx(b, rel=1e-12)
    k = np.arange(6)
    x1_hat = (3.0 - b / a) * np.exp(-a * k) + b / a               # textbook time response
    x0_hat = np.concatenate([[3.0], np.diff(x1_hat)])
    np.testing.assert_allclose(np.concatenate([r.fitted, r.forecast]), x0_hat, rtol=1e-12)
    e = x - x0_hat[:4]
    np.testing.assert_allclose(r.residuals, e, atol=1e-12)
    assert r.residuals[0] == 0.0
    assert r.C == pytest.approx(e.std() / x.std(), rel=1e-12)
    assert r.P == np.mean(np.abs(e - e.mean()) < 0.6745 * x.std())


def test_gm11_negated_series_is_negated_model():
    x = np.array(GUIZHOU_NET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GreyModelWarning)
        pos, neg = gm11(x, 5), gm11(-x, 5)
    assert neg.a == pytest.approx(pos.a, rel=1e-12)
    assert neg.b == pytest.approx(-pos.b, rel=1e-12)
    np.testing.assert_allclose(neg.fitted, -pos.fitted, rtol=1e-12)
    np.testing.assert_allclose(neg.forecast, -pos.forecast, rtol=1e-12)
    np.testing.assert_allclose(neg.relative_errors, pos.relative_errors, rtol=1e-9, atol=1e-15)
    assert neg.C == pytest.approx(pos.C, rel=1e-12) and neg.P == pos.P and neg.grade == pos.grade


@pytest.mark.parametrize("value", [5.0, 0.1, -3.7])
def test_gm11_constant_series(value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = gm11([value] * 8, horizon=4)
    assert abs(r.a) < 1e-12
    np.testing.assert_allclose(r.fitted, value, rtol=1e-12)
    np.testing.assert_allclose(r.forecast, value, rtol=1e-12)
    assert r.C == 0.0 and r.P == 1.0 and r.grade == "good"     # C = 0/0 defined as 0
    assert np.all(np.isfinite(r.fitted)) and np.all(np.isfinite(r.forecast))


def test_gm11_ratio_test():
    x = np.array([100.0, 105.0, 111.0, 116.0, 122.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = gm11(x)
    assert r.ratio_test_passed
    assert r.ratio_bounds == pytest.approx((np.exp(-2 / 6), np.exp(2 / 6)))
    with pytest.warns(GreyModelWarning, match="not suited to GM"):
        r = gm11([100.0, 300.0, 310.0, 320.0, 330.0])        # 100/300 < e^(-1/3)
    assert not r.ratio_test_passed


def test_grade_thresholds():
    C = np.array([0.35, 0.35, 0.5, 0.5, 0.65, 0.65, 0.66, 0.1])
    P = np.array([0.95, 0.94, 0.80, 0.79, 0.70, 0.69, 0.99, 0.5])
    assert _grade(C, P).tolist() == ["good", "qualified", "qualified", "barely", "barely",
                                     "unqualified", "unqualified", "unqualified"]


@pytest.mark.parametrize("values, match", [
    ([1.0, 2.0, 3.0], "at least 4"),
    ([1.0, np.nan, 3.0, 4.0], "NaN"),
    ([1.0, 0.0, 3.0, 4.0], "zero or mixed-sign"),
    ([1.0, -2.0, 3.0, 4.0], "zero or mixed-sign"),
])
def test_gm11_bad_series_raise(values, match):
    with pytest.raises(AnalysisError, match=match):
        gm11(values)


# --------------------------------------------------------------------------- panels

def test_gm11_panel_equals_single_series():
    x = _random_positive(300, 12, seed=1)
    x[:20] *= -1                                               # some sinks
    panel = _panel(x)
    with pytest.warns(GreyModelWarning) as record:
        out = gm11_panel(panel, horizon=6)
    grey = [w for w in record if issubclass(w.category, GreyModelWarning)]
    assert len(grey) == 1 and "units are not suited" in str(grey[0].message)
    assert list(out.forecast.columns) == list(range(2017, 2023))
    assert (out.stats["status"] == "ok").all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GreyModelWarning)
        for i, uid in enumerate(panel.index):
            r = gm11(x[i], horizon=6)
            row = out.stats.loc[uid]
            assert row["a"] == pytest.approx(r.a, rel=1e-12, abs=1e-15)
            assert row["b"] == pytest.approx(r.b, rel=1e-12)
            assert row["C"] == pytest.approx(r.C, rel=1e-12) and row["P"] == r.P
            assert row["grade"] == r.grade and bool(row["ratio_test_passed"]) == r.ratio_test_passed
            assert row["mape"] == pytest.approx(100 * np.mean(np.abs(r.relative_errors[1:])), rel=1e-12)
            assert row["rmse"] == pytest.approx(np.sqrt(np.mean(r.residuals[1:] ** 2)), rel=1e-12)
            np.testing.assert_allclose(out.fitted.loc[uid], r.fitted, rtol=1e-12)
            np.testing.assert_allclose(out.forecast.loc[uid], r.forecast, rtol=1e-12)


def test_gm11_panel_invalid_units_get_status():
    x = _random_positive(4, 6)
    x[1, 2] = 0.0
    x[2, 3] = -x[2, 3]
    x[3] = -x[3]                                               # an all-negative sink: fine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GreyModelWarning)
        out = gm11_panel(_panel(x), horizon=3)
    status = out.stats["status"].tolist()
    assert status[0] == status[3] == "ok"
    assert status[1] == status[2] == "zero or mixed-sign values: GM(1,1) needs a series of one sign"
    assert out.fitted.iloc[1:3].isna().all().all() and out.forecast.iloc[1:3].isna().all().all()
    assert out.stats.iloc[1:3][["a", "b", "C", "P"]].isna().all().all()
    assert out.stats.iloc[[0, 3]][["a", "b", "C", "P"]].notna().all().all()


def test_panel_checks_raise():
    good = _random_positive(3, 6)
    with pytest.raises(AnalysisError, match="at least 4 years"):
        gm11_panel(_panel(good[:, :3]), 2)
    with pytest.raises(AnalysisError, match=r"equally spaced.*\[2000, 2001, 2003, 2004, 2005, 2006\]"):
        gm11_panel(_panel(good, years=[2000, 2001, 2003, 2004, 2005, 2006]), 2)
    with pytest.raises(AnalysisError, match="ascending"):
        linear_panel(_panel(good, years=[2005, 2004, 2003, 2002, 2001, 2000]), 2)
    with pytest.raises(AnalysisError, match="whole years"):
        growth_panel(_panel(good, years=[2000.5 + i for i in range(6)]), 2)
    with pytest.raises(AnalysisError, match="whole years"):
        gm11_panel(_panel(good, years=[str(2000 + i) for i in range(6)]), 2)
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(AnalysisError, match="NaN.*u2"):
        gm11_panel(_panel(bad), 2)
    with pytest.raises(AnalysisError, match="horizon"):
        linear_panel(_panel(good), -1)


def test_linear_panel_matches_linregress():
    x = _random_positive(50, 9, seed=2) - 300.0                  # some cross zero: fine for OLS
    years = list(range(1990, 2035, 5))
    out = linear_panel(_panel(x, years=years), horizon=3)
    assert list(out.forecast.columns) == [2035, 2040, 2045]
    for i, uid in enumerate(out.stats.index):
        ref = sps.linregress(years, x[i])
        row = out.stats.loc[uid]
        assert row["slope"] == pytest.approx(ref.slope, rel=1e-9)
        assert row["intercept"] == pytest.approx(ref.intercept, rel=1e-9)
        assert row["r2"] == pytest.approx(ref.rvalue ** 2, rel=1e-9)
        assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
        np.testing.assert_allclose(out.fitted.loc[uid], ref.intercept + ref.slope * np.array(years), rtol=1e-9)
        np.testing.assert_allclose(out.forecast.loc[uid], ref.intercept + ref.slope * np.array([2035, 2040, 2045]),
                                   rtol=1e-9)
        fitted = out.fitted.loc[uid].to_numpy()
        assert row["rmse"] == pytest.approx(np.sqrt(np.mean((x[i] - fitted) ** 2)), rel=1e-12)
    two = linear_panel(_panel(x[:, :2]), horizon=1)
    assert two.stats["p_value"].isna().all() and (two.stats["status"] == "ok").all()


def test_growth_panel_rate_is_per_year():
    # 5-yearly panel: 100 -> 200 over 2000..2020 -> r = 2^(1/20) - 1 per year.
    x = np.array([[100.0, 130.0, 150.0, 170.0, 200.0],
                  [-100.0, -130.0, -150.0, -170.0, -200.0],   # a sink: same rate
                  [0.0, 1.0, 2.0, 3.0, 4.0],                  # zero first value
                  [10.0, 5.0, 2.0, -1.0, -3.0]])               # sign change
    out = growth_panel(_panel(x, years=[2000, 2005, 2010, 2015, 2020]), horizon=2)
    rate = 2 ** (1 / 20) - 1
    np.testing.assert_allclose(out.stats["rate"].iloc[:2], rate, rtol=1e-12)
    t = np.array([0, 5, 10, 15, 20])
    np.testing.assert_allclose(out.fitted.iloc[0], 100 * (1 + rate) ** t, rtol=1e-12)
    np.testing.assert_allclose(out.forecast.iloc[1], [-200 * (1 + rate) ** 5, -200 * (1 + rate) ** 10], rtol=1e-12)
    assert list(out.forecast.columns) == [2025, 2030]
    assert out.stats["status"].tolist()[:2] == ["ok", "ok"]
    assert all("growth rate undefined" in s for s in out.stats["status"].iloc[2:])
    assert out.fitted.iloc[2:].isna().all().all() and out.stats["rate"].iloc[2:].isna().all()


def test_ensemble_averages_members_and_reports_failures():
    x = _random_positive(5, 8, seed=3)
    x[4, 3] = -x[4, 3]                                         # gm11 fails; growth still fine
    panel = _panel(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GreyModelWarning)
        runs = forecast_panel(panel, horizon=4)
        gm = gm11_panel(panel, 4)
    assert list(runs) == ["gm11", "linear", "growth", "ensemble"]
    members = [gm, linear_panel(panel, 4), growth_panel(panel, 4)]
    ens = ensemble(members)
    pd.testing.assert_frame_equal(ens.forecast, runs["ensemble"].forecast)
    mean = (members[0].forecast + members[1].forecast + members[2].forecast) / 3
    pd.testing.assert_frame_equal(ens.forecast.iloc[:4], mean.iloc[:4])
    assert ens.forecast.iloc[4].isna().all()
    assert ens.stats["status"].iloc[4].startswith("gm11: zero or mixed-sign")
    fitted = ens.fitted.to_numpy()[:4]
    np.testing.assert_allclose(ens.stats["rmse"].iloc[:4], np.sqrt(np.mean((x[:4] - fitted) ** 2, axis=1)))
    np.testing.assert_allclose(ens.stats["mape"].iloc[:4], 100 * np.mean(np.abs((x[:4] - fitted) / x[:4]), axis=1))
    with pytest.raises(AnalysisError, match="unknown forecast method"):
        forecast_panel(panel, 2, methods=("arima",))
    with pytest.raises(AnalysisError, match="different units or years"):
        ensemble([gm, linear_panel(panel, 3)])
    only = forecast_panel(panel, 2, methods=("linear",))
    assert list(only) == ["linear"] and isinstance(only["linear"], PanelForecast)


def test_large_batch_runs():
    x = _random_positive(3000, 15, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GreyModelWarning)
        runs = forecast_panel(_panel(x), horizon=11)
    assert runs["ensemble"].forecast.shape == (3000, 11)
    assert runs["gm11"].stats["C"].notna().all()


# --------------------------------------------------------------------------- grey relational analysis
# Seed 001 Table 6's degrees (0.64 0.65 0.43 0.67 0.38 0.7 0.59 for orchard, forest,
# grassland, unused, water, cropland, built-up vs net emissions) could not be reproduced
# from its Table 5 with initial, mean or min-max normalisation (global or per-series
# extremes), so they are not used as an oracle.

def test_grey_relational_hand_initial():
    # reference [1,2,3] / 1 = [1,2,3]; A = [1,2,4] / 1 = [1,2,4]; B = [2,2,2] / 2 = [1,1,1]
    # Δ_A = [0,0,1], Δ_B = [0,1,2]; minmin = 0, maxmax = 2, rho maxmax = 1
    # ξ = (0 + 1) / (Δ + 1): A = [1, 1, 1/2], B = [1, 1/2, 1/3]
    # r_A = 2.5/3 = 5/6, r_B = (11/6)/3 = 11/18
    g = grey_relational([1, 2, 3], {"A": [1, 2, 4], "B": [2, 2, 2]})
    np.testing.assert_allclose(g.coefficients["A"], [1, 1, 0.5], atol=1e-12)
    np.testing.assert_allclose(g.coefficients["B"], [1, 0.5, 1 / 3], atol=1e-12)
    assert list(g.degrees.index) == ["A", "B"]
    np.testing.assert_allclose(g.degrees.to_numpy(), [5 / 6, 11 / 18], atol=1e-12)
    assert g.ranks.to_dict() == {"A": 1, "B": 2}


def test_grey_relational_hand_mean_nonzero_minmin():
    # mean: reference [1,2,3] / 2 = [0.5,1,1.5]; A = [3,1,2] / 2 = [1.5,0.5,1];
    # E = [2,1,1] / (4/3) = [1.5,0.75,0.75]
    # Δ_A = [1,0.5,0.5], Δ_E = [1,0.25,0.75]; minmin = 0.25, maxmax = 1
    # ξ = (0.25 + 0.5) / (Δ + 0.5): A = [0.5, 0.75, 0.75], E = [0.5, 1, 0.6]
    # r_A = 2/3, r_E = 0.7 -> E ranks first
    g = grey_relational(pd.Series([1.0, 2, 3]), pd.DataFrame({"A": [3.0, 1, 2], "E": [2.0, 1, 1]}), normalise="mean")
    np.testing.assert_allclose(g.coefficients["A"], [0.5, 0.75, 0.75], atol=1e-12)
    np.testing.assert_allclose(g.coefficients["E"], [0.5, 1.0, 0.6], atol=1e-12)
    assert g.degrees.to_dict() == pytest.approx({"E": 0.7, "A": 2 / 3}, abs=1e-12)
    assert list(g.degrees.index) == ["E", "A"] and g.ranks.to_dict() == {"E": 1, "A": 2}
    # rho = 1: ξ = 1.25 / (Δ + 1): A = [0.625, 5/6, 5/6]
    g1 = grey_relational([1, 2, 3], {"A": [3, 1, 2], "E": [2, 1, 1]}, normalise="mean", rho=1.0)
    np.testing.assert_allclose(g1.coefficients["A"], [0.625, 5 / 6, 5 / 6], atol=1e-12)


def test_grey_relational_minmax_and_identical():
    # minmax: reference [1,2,3] -> [0,0.5,1]; A = [10,30,20] -> [0,1,0.5]; Δ = [0,0.5,0.5]
    # minmin = 0, maxmax = 0.5; ξ = 0.25 / (Δ + 0.25) = [1, 1/3, 1/3]; r = 5/9
    g = grey_relational([1, 2, 3], {"A": [10, 30, 20]}, normalise="minmax")
    np.testing.assert_allclose(g.coefficients["A"], [1, 1 / 3, 1 / 3], atol=1e-12)
    assert g.degrees["A"] == pytest.approx(5 / 9, abs=1e-12)
    # every comparison identical to the reference after normalisation: maxmax = 0 -> ξ = 1
    for how in ("initial", "mean", "minmax"):
        g = grey_relational([1, 2, 4], {"A": [2, 4, 8], "B": [1, 2, 4]}, normalise=how)
        assert (g.coefficients.to_numpy() == 1.0).all() and g.ranks.tolist() == [1, 1]


@pytest.mark.parametrize("kwargs, match", [
    (dict(reference=[0, 1, 2], comparisons={"A": [1, 2, 3]}), "reference.*zero first value"),
    (dict(reference=[1, 2, 3], comparisons={"A": [-1, 0, 1]}, normalise="mean"), "A.*zero mean"),
    (dict(reference=[1, 2, 3], comparisons={"A": [2, 2, 2]}, normalise="minmax"), "A.*constant"),
    (dict(reference=[1, np.nan, 3], comparisons={"A": [1, 2, 3]}), "NaN.*reference"),
    (dict(reference=[1, 2, 3], comparisons={"A": [1, 2]}), "time steps"),
    (dict(reference=[1, 2, 3], comparisons={"A": [1, 2, 3]}, rho=0.0), "rho"),
    (dict(reference=[1, 2, 3], comparisons={"A": [1, 2, 3]}, normalise="zscore"), "normalisation"),
])
def test_grey_relational_bad_input_raises(kwargs, match):
    with pytest.raises(AnalysisError, match=match):
        grey_relational(**kwargs)


def test_grey_relational_panel_equals_single():
    rng = np.random.default_rng(5)
    years = list(range(2010, 2018))
    ids = [f"c{i}" for i in range(40)]
    ref = pd.DataFrame(rng.uniform(1, 10, (40, 8)), index=ids, columns=years)
    comps = {name: pd.DataFrame(rng.uniform(1, 10, (40, 8)), index=ids, columns=years)
             for name in ("forest", "cropland", "built_up")}
    comps["forest"] = comps["forest"].iloc[::-1]              # other unit order: aligned by id
    comps["built_up"].iloc[3, 0] = 0.0                        # c3 cannot be initial-normalised
    bad_ref = ref.copy()
    bad_ref.iloc[7, 0] = 0.0                                  # no reference: the whole unit is NaN
    long = grey_relational_panel(bad_ref, comps, normalise="initial")
    c7 = long[long["unit_id"] == "c7"]
    assert c7["degree"].isna().all() and c7["status"].str.startswith("reference: zero first value").all()
    for how in ("initial", "mean", "minmax"):
        long = grey_relational_panel(ref, comps, normalise=how)
        assert list(long.columns) == ["unit_id", "comparison", "degree", "rank", "status"]
        assert len(long) == 40 * 3
        for uid in ids:
            rows = long[long["unit_id"] == uid].set_index("comparison")
            single_input = {n: c.loc[uid].to_numpy() for n, c in comps.items()}
            if how == "initial" and uid == "c3":
                # the series that cannot be normalised drops out; the others relate as without it
                assert np.isnan(rows.loc["built_up", "degree"]) and pd.isna(rows.loc["built_up", "rank"])
                assert rows.loc["built_up", "status"] == "zero first value, initial-value normalisation impossible"
                with pytest.raises(AnalysisError, match="built_up"):
                    grey_relational(ref.loc[uid], single_input, normalise=how)
                del single_input["built_up"]
                rows = rows.drop(index="built_up")
            g = grey_relational(ref.loc[uid].to_numpy(), single_input, normalise=how)
            assert (rows["status"] == "ok").all()
            np.testing.assert_allclose(rows.loc[g.degrees.index, "degree"], g.degrees, rtol=1e-12)
            assert rows.loc[g.ranks.index, "rank"].astype(int).tolist() == g.ranks.tolist()
