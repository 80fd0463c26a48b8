"""Carbon risk: grades, trends, weights, types, warnings and the Monte Carlo, on hand cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lucr.analysis import risk


def test_grade_boundaries_ties_and_nan():
    g = risk.grade([0.2, 0.5, 0.99, 1.0, 2.5, 3.0, 10.0, 42.0, np.nan], risk.CBC_BREAKS)
    assert g.tolist() == [1, 2, 2, 3, 3, 4, 5, 5, 0]  # a value on a break takes the higher grade; NaN: 0 (no data)


def test_breaks_by_scheme():
    v = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert risk.fit_breaks(v, "equal", 5) == pytest.approx((2.8, 4.6, 6.4, 8.2))
    assert risk.fit_breaks(v, "quantiles", 5) == pytest.approx(tuple(np.quantile(v, [0.2, 0.4, 0.6, 0.8])))
    assert risk.fit_breaks(v, "fixed", 5, fixed=(1, 2, 3, 4)) == (1, 2, 3, 4)
    jenks = risk.fit_breaks(np.array([1, 1.1, 1.2, 5, 5.1, 9, 9.2, 20, 21, 40.0]), "jenks", 5)
    assert jenks == pytest.approx((1.2, 5.1, 9.2, 21.0))  # natural groups
    same = risk.fit_breaks(np.full(6, 2.0), "jenks", 5)  # all equal: one class, the rest empty
    assert risk.grade([2.0], same).tolist() == [1]


def test_sens_slope_and_mann_kendall_against_hand_values():
    from scipy.stats import norm

    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
    t = np.arange(6.0)
    slopes = [(y[j] - y[i]) / (t[j] - t[i]) for i in range(6) for j in range(i + 1, 6)]
    assert risk.sens_slope(y, t) == pytest.approx(np.median(slopes))
    s = sum(np.sign(y[j] - y[i]) for i in range(6) for j in range(i + 1, 6))  # 11
    var = 6 * 5 * 17 / 18
    z, p = risk.mann_kendall(y)
    assert s == 11 and z == pytest.approx((s - 1) / np.sqrt(var)) and p == pytest.approx(2 * (1 - norm.cdf(abs(z))))
    assert risk.mann_kendall([2.0, 2.0, 2.0, 2.0]) == (0.0, 1.0)  # all ties: no trend


def test_entropy_weights_textbook():
    """Columns: a constant indicator carries no information (weight 0); the spread one takes it all."""
    x = np.array([[1.0, 5.0], [2.0, 5.0], [7.0, 5.0]])
    w = risk.entropy_weights(x)
    assert w == pytest.approx([1.0, 0.0])
    x2 = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    p = x2 / x2.sum(axis=0)
    e = -(p * np.log(p)).sum(axis=0) / np.log(3)
    assert risk.entropy_weights(x2) == pytest.approx((1 - e) / (1 - e).sum())


def test_types_on_constructed_series():
    years = np.arange(2010, 2020, dtype=float)
    rising = np.linspace(1, 10, 10)
    flat = np.full(10, 5.0)
    assert risk.balance_type(rising, flat, years, 0.05) == "source-type"
    assert risk.balance_type(flat, rising[::-1], years, 0.05) == "sink-type"
    assert risk.balance_type(rising, rising[::-1], years, 0.05) == "source-sink dual"
    assert risk.balance_type(flat, flat, years, 0.05) == "stable"
    assert risk.temporal_type([0.5, 0.6, 1.2, 0.7, 0.5], years[:5], 1.0, 3, 0.05) == "short-term"
    assert risk.temporal_type([0.5, 1.2, 1.3, 1.1, 0.5], years[:5], 1.0, 3, 0.05) == "long-term"
    assert risk.temporal_type([0.2, 0.3, 0.2, 0.3], years[:4], 1.0, 3, 0.05) == "none"
    assert risk.temporal_type([5.0], years[:1], 1.0, 3, 0.05) == "n/a (1 year)"


def test_warning_levels():
    assert risk._warning(1, 0.2, 0.1, 1.0) == "none"
    assert risk._warning(2, 0.95, 0.1, 1.0) == "blue" and risk._warning(2, 0.6, 0.1, 1.0) == "none"
    assert [risk._warning(g, 5.0, 0.1, 1.0) for g in (3, 4, 5)] == ["yellow", "orange", "red"]


def test_monte_carlo_intervals_against_the_triangular_distribution():
    """One unit, one source class (triangular low 0, mode 1, high 2 t C/ha) on 100 ha, one fixed sink:
    S = 100 x c, whose 5/50/95 % are analytic: symmetric triangle quantiles."""
    areas = np.array([[100.0, 50.0]])
    coefs, low, high = np.array([1.0, -1.0]), np.array([0.0, -1.0]), np.array([2.0, -1.0])
    mc = risk.monte_carlo(areas, coefs, low, high, draws=200_000, seed=1, breaks=risk.CBC_BREAKS)
    # symmetric triangle on [0, 2]: F(x) = x^2 / 2 below 1 -> q5 = sqrt(0.1), q95 = 2 - sqrt(0.1)
    assert mc["source_p5"][0] == pytest.approx(100 * np.sqrt(0.1), rel=0.01)
    assert mc["source_p50"][0] == pytest.approx(100.0, rel=0.01)
    assert mc["source_p95"][0] == pytest.approx(100 * (2 - np.sqrt(0.1)), rel=0.01)
    assert mc["sink_p50"][0] == pytest.approx(50.0)
    # CBC = 2c: P(CBC >= 1) = P(c >= 0.5) = 1 - 0.125; P(CBC >= 3) = P(c >= 1.5) = 0.125
    assert mc["p_cbc_ge_1"][0] == pytest.approx(0.875, abs=0.005) and mc["p_cbc_ge_3"][0] == pytest.approx(0.125, abs=0.005)
    assert sum(mc[f"p_grade_{j}"][0] for j in range(1, 6)) == pytest.approx(1.0)


def test_sample_run_grades_types_warnings_and_uncertainty(exact_run):
    """The bundled sample: every province graded by CBC on the default breaks, the Monte Carlo
    coherent with the point values, warnings following the grades."""
    result = exact_run.risk["province"]
    t = result.table.set_index("unit_id")
    prov = exact_run.tables["province"].set_index("unit_id")
    cbc = prov["source_tc"] / -prov["sink_tc"]
    np.testing.assert_allclose(t["cbc"], cbc.loc[t.index], rtol=1e-12)
    assert (t["grade"] == risk.grade(t["cbc"], risk.CBC_BREAKS)).all()
    assert set(t["grade_label"]) <= {"strong sink", "weak sink", "moderate risk", "high risk", "severe risk", "no data"}
    assert (t.loc[t["grade"] == 5, "warning"] == "red").all() and (t.loc[t["grade"] == 1, "warning"] == "none").all()
    probs = t[[f"p_grade_{j}" for j in range(1, 6)]].sum(axis=1)
    np.testing.assert_allclose(probs, 1.0)
    assert ((t["cbc_p5"] <= t["cbc_p50"]) & (t["cbc_p50"] <= t["cbc_p95"])).all()
    inside = (t["cbc"] >= t["cbc_p5"]) & (t["cbc"] <= t["cbc_p95"])
    assert inside.mean() > 0.9  # the point value lies in its 90 % interval
    assert t.loc["520000", "spatial_type"] in ("aggregated risk", "aggregated low risk", "transitional", "dispersed")
    assert t["balance_type"].str.startswith("n/a").all()  # one year: no trend
    breaks = result.breaks.iloc[0]
    assert [breaks[f"break_{i}"] for i in range(1, 5)] == list(risk.CBC_BREAKS) and breaks["fitted_on"] == "config"
    assert (exact_run.out_dir / "risk_provinces.gpkg").exists() and (exact_run.out_dir / "risk_cities_breaks.csv").exists()


def test_data_driven_breaks_are_frozen_on_the_base_year():
    from lucr.coefficients import load_table
    from lucr.config import RiskConfig

    table = load_table("igbp")
    codes = [c.code for c in table.classes]

    def frame(scale):
        rows = {f"area_ha_class_{c}": np.linspace(1, 10, 8) * (scale if c == 13 else 1.0) for c in codes}
        f = pd.DataFrame({"unit_id": [f"u{i}" for i in range(8)], "name": [f"u{i}" for i in range(8)], "area_ha": 1e3, "valid_fraction": 1.0, **rows})
        coefs = np.array([c.coef for c in table.classes])
        areas = f[[f"area_ha_class_{c}" for c in codes]].to_numpy()
        f["source_tc"], f["sink_tc"] = areas @ np.maximum(coefs, 0), areas @ np.minimum(coefs, 0)
        f["net_tc_per_ha"] = (f["source_tc"] + f["sink_tc"]) / 1e3
        return f

    cfg = RiskConfig(scheme="quantiles", uncertainty=None)
    result = risk.assess({2010: frame(1.0), 2020: frame(3.0)}, "unit", table, cfg)
    assert result.breaks["fitted_on"].tolist() == [2010, 2010]
    later = result.table[result.table["year"] == 2020]
    assert (later["grade"] >= result.table[result.table["year"] == 2010]["grade"].to_numpy()).all()  # more built-up: never a lower grade
    unfrozen = risk.assess({2010: frame(1.0), 2020: frame(3.0)}, "unit", table, RiskConfig(scheme="quantiles", freeze=False, uncertainty=None))
    assert unfrozen.breaks["fitted_on"].tolist() == [2010, 2020]


def test_per_cell_risk_map_grades_each_cells_net_density(exact_run):
    """risk_grade.tif: each cell inside the units has the grade of its class's coefficient on the
    net-per-ha breaks; its probability band matches the triangular distribution of the class."""
    import rasterio

    from lucr.coefficients import load_table
    from tests.conftest import SAMPLE_RASTER

    with rasterio.open(exact_run.out_dir / "risk_grade.tif") as src:
        grades, cmap, tags = src.read(1), src.colormap(1), src.tags()
    with rasterio.open(exact_run.out_dir / "risk_grade_probability.tif") as src:
        prob = src.read(1)
    with rasterio.open(SAMPLE_RASTER) as src:
        codes = src.read(1)
    table = {c.code: c for c in load_table("igbp").classes}
    mapped = grades > 0
    assert 0.2 < mapped.mean() < 0.4  # inside the units only
    expected = np.zeros(256, np.uint8)
    for code, c in table.items():
        expected[code] = risk.grade([c.coef], (-0.5, 0.0, 0.5, 2.0))[0]
    np.testing.assert_array_equal(grades[mapped], expected[codes[mapped]])
    assert cmap[5][:3] == (215, 48, 39) and "5 severe risk" in tags["lucr_legend"]
    # cropland 0.422, unverified (+-50 %): triangular(0.211, 0.422, 0.633); P(< 0.5) = 1 - (0.633 - 0.5)^2 / (0.422 * 0.211)
    p = 1 - (0.633 - 0.5) ** 2 / ((0.633 - 0.211) * (0.633 - 0.422))
    cropland = mapped & (codes == 12)
    assert np.unique(prob[cropland]).size == 1 and prob[cropland][0] == pytest.approx(100 * p, abs=4)
    assert (prob[mapped & (codes == 1)] == 100).all()  # forest, paper (+-10 %): always below -0.5


def test_a_source_without_sink_land_is_severe_not_no_data():
    """CBC = S / 0 = +inf: the highest grade, certain in every draw (as a planner reads it)."""
    assert risk.grade([np.inf, np.nan], risk.CBC_BREAKS).tolist() == [5, 0]
    mc = risk.monte_carlo(np.array([[100.0, 0.0]]), np.array([1.0, -1.0]), np.array([0.5, -1.5]), np.array([1.5, -0.5]), 200, 1, risk.CBC_BREAKS)
    assert mc["p_grade_5"][0] == 1.0 and mc["p_cbc_ge_3"][0] == 1.0 and mc["cbc_p50"][0] == np.inf


def _long(series: dict[str, list[float]], years: list[int]) -> pd.DataFrame:
    """Unit-year indicators with the given CBC series (source = CBC, sink 1)."""
    rows = [{"unit_id": u, "name": u, "year": y, "source": v, "sink": 1.0, "net": v - 1.0, "cbc": v, "net_per_ha": np.nan,
             "sink_share": 1.0 / (1.0 + v), "builtup_share": np.nan} for u, values in series.items() for y, v in zip(years, values)]
    return pd.DataFrame(rows)


def test_forecast_crossing_year_on_a_hand_case():
    """CBC 0.5, 0.6, 0.7, 0.8 (2016-2019): every method stays below 1 in 2020 (linear 0.9, growth
    0.8 x 1.17 = 0.94, GM(1,1) ~0.92) and reaches it in 2021 (linear exactly 1.0), so the ensemble
    crosses in 2021. A unit already over the threshold gets no crossing; a flat one none either."""
    from lucr.config import RiskConfig

    long = _long({"rising": [0.5, 0.6, 0.7, 0.8], "flat": [0.30, 0.31, 0.30, 0.31], "over": [1.2, 1.3, 1.4, 1.5]}, [2016, 2017, 2018, 2019])
    result, _ = risk.assess_indicators(long, "unit", RiskConfig(warning_year=2030, uncertainty=None), None, None, None)
    t = result.table[result.table["year"] == 2019].set_index("unit_id")
    assert t.at["rising", "crossing_year"] == 2021
    assert np.isnan(t.at["flat", "crossing_year"]) and np.isnan(t.at["over", "crossing_year"])
    fc = result.forecast
    ens = fc[(fc["unit_id"] == "rising") & (fc["method"] == "ensemble") & (fc["kind"] == "forecast")].set_index("year")["value"]
    assert ens[2020] < 1.0 <= ens[2021] and ens.index.max() == 2030
    linear = fc[(fc["unit_id"] == "rising") & (fc["method"] == "linear") & (fc["kind"] == "forecast")].set_index("year")["value"]
    assert linear[2021] == pytest.approx(1.0)  # the hand value
    assert set(fc["method"]) == {"observed", "gm11", "linear", "growth", "ensemble"}
    assert t.at["rising", "forecast_grade"] in ("good", "qualified", "barely", "unqualified")
    assert "forecast to cross in 2021" in t.at["rising", "assessment"]
    assert t.at["rising", "threshold_margin"] == pytest.approx(0.8 - 1.0) and t.at["over", "threshold_margin"] == pytest.approx(0.5)
    assert t.at["over", "assessment"].startswith("high risk - ") or t.at["over", "assessment"].startswith("moderate risk - ")


def test_no_forecast_with_uneven_or_few_years():
    from lucr.config import RiskConfig

    cfg = RiskConfig(uncertainty=None)
    uneven, _ = risk.assess_indicators(_long({"a": [0.5, 0.6, 0.7, 0.8]}, [2000, 2005, 2015, 2020]), "unit", cfg, None, None, None)
    few, _ = risk.assess_indicators(_long({"a": [0.5, 0.6, 0.7]}, [2017, 2018, 2019]), "unit", cfg, None, None, None)
    assert uneven.forecast is None and few.forecast is None
    assert uneven.table["crossing_year"].isna().all()


def test_driver_types_on_constructed_transitions():
    """Each rule: the transition category that releases most carbon names the driver."""
    from lucr.analysis.risk_drivers import driver_types
    from types import SimpleNamespace as C  # a class needs only code, name, category and coef here

    classes = [C(code=1, name="Forest", category="forest", coef=-0.6), C(code=2, name="Dry land", category="cropland", coef=0.4),
               C(code=3, name="Urban land", category="built_up", coef=50.0), C(code=4, name="Industrial, mining and transport land", category="built_up", coef=50.0),
               C(code=5, name="Grassland", category="grassland", coef=-0.02)]
    rows = [  # unit, from, to, ha
        ("urban", 1, 3, 10.0), ("urban", 1, 2, 5.0), ("urban", 1, 1, 100.0),
        ("mine", 5, 4, 3.0), ("mine", 1, 3, 1.0),
        ("farm", 1, 2, 50.0), ("farm", 5, 3, 0.1),
        ("natural", 1, 5, 20.0),
        ("restored", 2, 1, 30.0),
        ("still", 1, 1, 40.0),
    ]
    t = pd.DataFrame(rows, columns=["unit_id", "class_from", "class_to", "area_ha"]).assign(year_from=2000, year_to=2020)
    d = driver_types(t, classes).set_index("unit_id")
    assert d.at["urban", "driver_type"] == "urban expansion"
    assert d.at["urban", "driver_share"] == pytest.approx(10 * 50.6 / (10 * 50.6 + 5 * 1.0))  # t C / yr of each transition
    assert d.at["mine", "driver_type"] == "industry/mining"
    assert d.at["farm", "driver_type"] == "agricultural"  # 50 ha x 1.0 = 50 > 0.1 ha x 50.02 = 5
    assert d.at["natural", "driver_type"] == "natural background"  # forest -> grassland: a loss between natural classes
    assert d.at["restored", "driver_type"] == "restoration"
    assert d.at["still", "driver_type"] == "natural background" and d.at["still", "driver_transition"] == "no land changed"
    assert "Forest -> Urban land: 10.0 ha" in d.at["urban", "driver_transition"]
    # with pools, the stock lost decides: here the cropland conversion loses more stock than the urban one
    cc = pd.DataFrame({"unit_id": ["urban", "urban"], "class_from": [1, 1], "class_to": [3, 2], "year_from": 2000, "year_to": 2020, "carbon_tc": [-100.0, -900.0]})
    assert driver_types(t[t["unit_id"] == "urban"], classes, change_carbon=cc).iloc[0]["driver_type"] == "agricultural"


def test_monte_carlo_normal_draws_against_the_normal_quantiles():
    """A sink class with sd: K = A x N(0.6, 0.05) has 5 / 95 % at A (0.6 -/+ 1.645 x 0.05); the source fixed."""
    areas = np.array([[100.0, 10.0]])
    mc = risk.monte_carlo(areas, np.array([-0.6, 2.0]), np.array([-0.6, 2.0]), np.array([-0.6, 2.0]), draws=200_000, seed=3,
                          breaks=risk.CBC_BREAKS, sd=np.array([0.05, np.nan]))
    assert mc["sink_p5"][0] == pytest.approx(100 * (0.6 - 1.645 * 0.05), rel=2e-3)
    assert mc["sink_p95"][0] == pytest.approx(100 * (0.6 + 1.645 * 0.05), rel=2e-3)
    assert mc["source_p5"][0] == mc["source_p95"][0] == 20.0


def test_coefficient_ranges_config_then_table_then_assumed(tmp_path):
    from lucr.coefficients import load_table
    from lucr.config import UncertaintyConfig

    path = tmp_path / "flux.csv"
    path.write_text("code,name,coef,ref,status,coef_low,coef_high,coef_sd,range_ref\n"
                    "1,Forest,-0.644,seed,paper,-0.7,-0.5,,Fang 2007\n2,Crop,0.4,x,unverified,,,0.1,my survey\n3,Urban,50,y,unverified,,,,\n4,Water,-0.2,z,paper,,,,\n", encoding="utf-8")
    table = load_table(path=path)
    r = risk.coefficient_ranges(table, UncertaintyConfig(ranges={4: (-0.3, -0.1)})).set_index("code")
    assert (r.at[1, "low"], r.at[1, "high"]) == (-0.7, -0.5) and r.at[1, "range_source"] == "table: range (Fang 2007)"
    assert r.at[2, "sd"] == 0.1 and r.at[2, "range_source"] == "table: sd (my survey)"
    assert (r.at[3, "low"], r.at[3, "high"]) == (25.0, 75.0) and r.at[3, "range_source"].startswith("assumed: +/-50%")
    assert (r.at[4, "low"], r.at[4, "high"]) == (-0.3, -0.1) and r.at[4, "range_source"].startswith("config")


@pytest.mark.parametrize("cells, message", [
    ("-0.7,,", "go together"),
    ("-0.6,-0.5,", "does not hold its value"),
    ("-0.7,-0.5,0.1", "both a range and a standard deviation"),
    (",,-0.1", "positive number"),
])
def test_bad_coefficient_ranges_are_refused(tmp_path, cells, message):
    from lucr.coefficients import load_table
    from lucr.errors import CoefficientTableError

    path = tmp_path / "flux.csv"
    path.write_text(f"code,name,coef,coef_low,coef_high,coef_sd\n1,Forest,-0.644,{cells}\n", encoding="utf-8")
    with pytest.raises(CoefficientTableError, match=message) as err:
        load_table(path=path)
    assert "flux.csv" in str(err.value) and "class 1" in str(err.value)


def test_builtin_forest_range_is_fangs(tmp_path):
    """flux_seed001's forest row: 0.075 Pg C/yr over 116.5 or 142.8 Mha (Fang et al. 2007)."""
    from lucr.coefficients import load_table

    forest = next(c for c in load_table("igbp").classes if c.category == "forest")
    assert forest.spread == ("range", -0.644, -0.525) and forest.range_ref == "fang2007"
    assert -0.075e9 / 116.5e6 == pytest.approx(-0.644, abs=5e-4) and -0.075e9 / 142.8e6 == pytest.approx(-0.525, abs=5e-4)


def test_change_indicators_and_the_sensitivity_components():
    """The dynamic degree and change carbon of the consecutive interval ending in each year; the
    sensitivity is the mean of the min-max normalised components that are known."""
    from lucr.analysis.risk_drivers import change_indicators
    from lucr.config import RiskConfig

    dd = pd.DataFrame({"unit_id": ["a", "a", "a", "b", "b", "b"], "year_from": [2000, 2010, 2000] * 2, "year_to": [2010, 2020, 2020] * 2,
                       "class_code": 1, "comprehensive_dynamic_degree_pct_per_yr": [1.0, 2.0, 9.0, 3.0, 4.0, 9.0]})
    cc = pd.DataFrame({"unit_id": ["a", "a", "a", "b"], "year_from": [2000, 2000, 2000, 2010], "year_to": [2010, 2010, 2020, 2020], "carbon_tc": [-5.0, 2.0, -99.0, -7.0]})
    rows = change_indicators(dd, cc).set_index(["unit_id", "year"])
    assert rows.loc[("a", 2010), "dynamic_degree_pct_per_yr"] == 1.0 and rows.loc[("a", 2020), "dynamic_degree_pct_per_yr"] == 2.0  # not the 2000-2020 span
    assert rows.loc[("a", 2010), "change_carbon"] == -3.0 and np.isnan(rows.loc[("a", 2020), "change_carbon"]) and rows.loc[("b", 2020), "change_carbon"] == -7.0
    long = _long({"a": [0.5, 0.6, 0.7], "b": [0.5, 0.5, 0.5], "c": [0.5, 0.8, 1.4]}, [2000, 2010, 2020])
    long["builtup_share"] = np.tile([0.1, 0.2, 0.3], 3) * np.repeat([1.0, 2.0, 0.0], 3)
    result, _ = risk.assess_indicators(long, "unit", RiskConfig(uncertainty=None), None, None, None, change_rows=rows.reset_index())
    t = result.table[result.table["year"] == 2020].set_index("unit_id")
    # dynamic degree known for a (mean 1.5) and b (3.5), not c: a 0, b 1; built-up expansion a 0.01, b 0.02, c 0 /yr -> 0.5, 1, 0
    assert t.at["a", "sensitivity_dynamic_degree"] == 0.0 and t.at["b", "sensitivity_dynamic_degree"] == 1.0 and np.isnan(t.at["c", "sensitivity_dynamic_degree"])
    assert t["sensitivity_builtup_expansion"].tolist() == pytest.approx([0.5, 1.0, 0.0])
    for unit in "abc":
        known = [v for v in (t.at[unit, "sensitivity_net_trend"], t.at[unit, "sensitivity_dynamic_degree"], t.at[unit, "sensitivity_builtup_expansion"]) if np.isfinite(v)]
        assert t.at[unit, "sensitivity"] == pytest.approx(np.mean(known))
    assert t.at["c", "net_trend_p"] == pytest.approx(risk.mann_kendall([0.5 - 1, 0.8 - 1, 1.4 - 1])[1])
