"""Analysis after the zonal pass (``analysis`` config section) and ``lucr analyze``.

The numbers themselves are checked against oracles in test_forecast.py and
test_spatial.py; here the run's tables must equal those functions (and esda) applied
independently to the tables the run wrote.
"""

from __future__ import annotations

import json

import esda
import geopandas as gpd
import libpysal
import numpy as np
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from lucr.analysis import forecast, grey_relational
from lucr.analysis import analyse_file
from lucr.cli import app
from lucr.config import SAMPLE_CONFIG, analysis_settings, load_config, parse_config
from lucr.errors import AnalysisError, ConfigError, InputFileError
from lucr.runner import run

from tests.conftest import SAMPLE_CITIES, SAMPLE_PROVINCES, SAMPLE_RASTER

YEARS = (2016, 2017, 2018, 2019)
#: seed 001 Table 5 (Guizhou, 10^4 t C): land classes' emissions (sinks as magnitudes) and net emissions
SEED001_TABLE5 = pd.DataFrame(
    [
        (2005, 7.74, 510.11, 3.37, 0.89, 4.49, 1418.75, 3910.07, 2076.29), (2006, 7.79, 509.76, 3.36, 0.89, 4.74, 1268.23, 4359.66, 2682.09),
        (2007, 7.79, 509.43, 3.35, 0.91, 4.95, 1340.00, 4817.05, 3073.00), (2008, 7.82, 509.33, 3.36, 0.91, 5.25, 1402.09, 4494.22, 2698.84),
        (2009, 7.81, 509.23, 3.35, 0.90, 5.33, 1418.53, 4861.06, 3054.63), (2010, 10.14, 579.32, 0.16, 1.10, 5.34, 1331.91, 5281.87, 3490.35),
        (2011, 10.15, 577.88, 0.15, 1.11, 6.05, 1054.65, 5202.33, 3700.12), (2012, 10.70, 577.09, 0.15, 1.10, 5.39, 1375.83, 6423.81, 4608.31),
        (2013, 10.82, 576.69, 0.15, 1.10, 3.84, 1333.15, 6058.16, 4260.19), (2014, 10.71, 576.12, 0.15, 1.09, 3.79, 1450.22, 6258.16, 4379.78),
        (2015, 10.63, 575.75, 0.15, 1.09, 3.79, 1478.36, 6278.93, 4377.37), (2016, 10.52, 575.21, 0.15, 1.08, 3.78, 1558.84, 6438.52, 4459.31),
        (2017, 10.44, 574.84, 0.15, 1.08, 3.77, 1506.50, 6660.36, 4727.81), (2018, 10.40, 574.57, 0.15, 1.08, 3.77, 1273.78, 6408.55, 4705.79),
        (2019, 10.40, 574.57, 0.15, 1.08, 3.77, 1234.82, 6732.70, 5057.62),
    ],
    columns=["year", "orchard", "forest", "grassland", "unused", "water", "cropland", "built_up", "net"],
).assign(province="520000")


def _queen_with_islands(polygons: gpd.GeoDataFrame, ids) -> libpysal.weights.W:
    """Queen weights built here, independently of lucr.analysis.weights: each island joined to the unit nearest its coast."""
    units = polygons.astype({"adcode": str}).set_index("adcode").loc[[str(i) for i in ids]].reset_index()
    names = units["adcode"].astype(str).tolist()
    queen = libpysal.weights.Queen.from_dataframe(units, ids=names, use_index=False, silence_warnings=True)
    neighbours = {k: list(v) for k, v in queen.neighbors.items()}
    shapes = units.to_crs("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +datum=WGS84").geometry
    for island in queen.islands:
        i = names.index(island)
        nearest = names[shapes.drop(index=i).distance(shapes.iloc[i]).idxmin()]
        neighbours[island].append(nearest)
        neighbours[nearest].append(island)
    w = libpysal.weights.W(neighbours, id_order=names, silence_warnings=True)
    w.transform = "r"
    return w


# --- the sample run (one year): Moran's I and LISA per level, centre of gravity ---------------


def test_sample_run_writes_the_spatial_analysis(fast_run):
    out = fast_run.out_dir
    for label in ("provinces", "cities"):
        for name in ("moran", "lisa", "gravity", "gravity_ellipses"):
            for ext in ("gpkg", "csv", "parquet"):
                assert (out / f"analysis_{label}_{name}.{ext}").is_file()
        summary = json.loads((out / f"analysis_{label}_summary.json").read_text())
        assert summary["skipped"] == ["forecast", "relational"]  # one year only
        assert not (out / f"analysis_{label}_forecast.csv").exists()
    moran = pd.read_csv(out / "analysis_provinces_moran.csv")
    assert set(moran["variable"]) == {"net_tc_per_ha", "cbc_landcover"} and set(moran["year"]) == {2019}
    lisa = gpd.read_file(out / "analysis_cities_lisa.gpkg")
    cities_with_sinks = fast_run.tables["city"]["cbc_landcover"].notna().sum()  # cbc is undefined without sink land
    assert len(lisa) == 370 + cities_with_sinks and lisa.crs.to_epsg() == 4326
    assert set(lisa["cluster"]) <= {"HH", "LL", "HL", "LH", "not significant", "excluded (island)"}


@pytest.mark.parametrize("level,path,layer", [("province", SAMPLE_PROVINCES, "provinces"), ("city", SAMPLE_CITIES, "cities")])
def test_run_moran_and_lisa_equal_esda_on_independent_weights(fast_run, level, path, layer):
    label = {"province": "provinces", "city": "cities"}[level]
    table = fast_run.tables[level].set_index("unit_id")
    lisa = fast_run.analyses[label].tables["lisa"]
    moran = fast_run.analyses[label].tables["moran"].set_index("variable")
    polygons = gpd.read_file(path, layer=layer)
    for variable in ("net_tc_per_ha", "cbc_landcover"):
        y = table[variable].dropna()
        w = _queen_with_islands(polygons, y.index)
        values = y.loc[w.id_order].to_numpy()
        np.random.seed(12345)
        direct = esda.Moran(values, w, permutations=999)
        assert moran.loc[variable, "I"] == pytest.approx(direct.I, abs=1e-12)
        assert moran.loc[variable, "p_sim"] == direct.p_sim
        local = esda.Moran_Local(values, w, permutations=999, seed=12345, n_jobs=1)
        ours = lisa[lisa["variable"] == variable].set_index("unit_id").loc[w.id_order]
        np.testing.assert_allclose(ours["local_i"], local.Is, atol=1e-12)
        np.testing.assert_array_equal(ours["p_sim"], local.p_sim)
        np.testing.assert_array_equal(ours["quadrant"], np.array(["HH", "LH", "LL", "HL"])[local.q - 1])


def test_sample_centre_of_gravity_is_the_weighted_mean_of_centroids(fast_run):
    table = fast_run.tables["province"]
    gravity = fast_run.analyses["provinces"].tables["gravity"].set_index("variable")
    albers = "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +datum=WGS84"
    centroids = table.to_crs(albers).centroid
    for variable, weight in (("source_tc", table["source_tc"]), ("sink_tc", -table["sink_tc"])):
        x = np.average(centroids.x, weights=weight)
        y = np.average(centroids.y, weights=weight)
        lon, lat = gpd.GeoSeries(gpd.points_from_xy([x], [y]), crs=albers).to_crs(4326).iloc[0].coords[0]
        # the pipeline picks its own equal-area projection: centres agree to well under 30 km
        assert abs(gravity.loc[variable, "lon"] - lon) < 0.3 and abs(gravity.loc[variable, "lat"] - lat) < 0.3
    assert gravity.loc["sink_tc", "weight"] == "magnitude"
    # China's built-up and cropland sources lie east of its forest and grassland sinks
    assert gravity.loc["source_tc", "lon"] > gravity.loc["sink_tc", "lon"]


# --- several years: forecasts, grey relations, trajectories ---------------------------------


@pytest.fixture(scope="module")
def multi_year_run(tmp_path_factory):
    """Four dates derived from the 2019 sample: a growing share of cropland becomes built-up."""
    d = tmp_path_factory.mktemp("years")
    with rasterio.open(SAMPLE_RASTER) as src:
        codes, profile = src.read(1), src.profile
    rows, cols = np.indices(codes.shape)
    years = {}
    for i, year in enumerate(YEARS):
        grown = codes.copy()
        grown[(codes == 12) & ((rows * 7 + cols * 13) % 40 < 2 * i)] = 13  # urban expansion onto cropland
        years[year] = d / f"lc_{year}.tif"
        with rasterio.open(years[year], "w", **profile) as dst:
            dst.write(grown, 1)
    sample = load_config(SAMPLE_CONFIG)
    cfg = parse_config({
        "landcover": {"years": {y: str(p) for y, p in years.items()}},
        "legend": "igbp",
        "zones": [{"level": "province", "path": str(SAMPLE_PROVINCES), "layer": "provinces", "id": "adcode", "name": "name"}],
        "output": {"map": False, "tables": ["csv", "parquet"]},
        "analysis": {**sample.analysis.model_dump(), "variables": ["net_tc", "cbc_landcover"], "forecast": {"until": 2025}},
    }, d)
    return run(cfg, out_dir=d / "out")


def test_multi_year_run_writes_the_unit_year_table(multi_year_run):
    by_year = pd.read_parquet(multi_year_run.out_dir / "zonal_provinces_by_year.parquet")
    assert len(by_year) == 34 * len(YEARS) and sorted(by_year["year"].unique()) == list(YEARS)
    for year in YEARS:
        one = pd.read_csv(multi_year_run.out_dir / f"zonal_provinces_{year}.csv", dtype={"unit_id": str})
        np.testing.assert_allclose(by_year.loc[by_year["year"] == year, "net_tc"], one["net_tc"])


def test_multi_year_forecasts_equal_the_forecast_functions_on_the_written_table(multi_year_run):
    out = multi_year_run.out_dir
    by_year = pd.read_parquet(out / "zonal_provinces_by_year.parquet")
    panel = by_year.pivot(index="unit_id", columns="year", values="net_tc")
    expected = forecast.forecast_panel(panel, horizon=6)  # 2020..2025
    got = pd.read_parquet(out / "analysis_provinces_forecast.parquet")
    got = got[got["variable"] == "net_tc"]
    for method, result in expected.items():
        mine = got[(got["method"] == method) & (got["kind"] == "forecast")].pivot(index="unit_id", columns="year", values="value")
        pd.testing.assert_frame_equal(mine.loc[result.forecast.index], result.forecast, check_names=False, check_dtype=False)
    fit = pd.read_parquet(out / "analysis_provinces_forecast_fit.parquet")
    gm = fit[(fit["variable"] == "net_tc") & (fit["method"] == "gm11")].set_index("unit_id")
    np.testing.assert_allclose(gm.loc[expected["gm11"].stats.index, "C"], expected["gm11"].stats["C"])
    # urban expansion raises every province's net emissions: the linear slopes are positive
    lin = fit[(fit["variable"] == "net_tc") & (fit["method"] == "linear") & (fit["status"] == "ok")]
    assert (lin["slope"] > 0).mean() > 0.9


def test_multi_year_grey_relations_and_trajectory(multi_year_run):
    result = multi_year_run.analyses["provinces"]
    gra = result.tables["grey_relational"]
    assert set(gra["reference"]) == {"net_tc"}
    assert gra["comparison"].str.startswith("area_ha_class_").all()
    ok = gra[gra["status"] == "ok"]
    assert ok["degree"].between(0, 1).all() and len(ok) > 0
    # built-up area (class 13) drives the change in net emissions: it ranks first in most provinces
    top = ok.loc[ok.groupby("unit_id")["degree"].idxmax(), "comparison"]
    assert (top == "area_ha_class_13").mean() > 0.5
    track = result.tables["gravity_track"]
    assert len(track) == 2 * (len(YEARS) - 1)
    source, sink = track[track["variable"] == "source_tc"], track[track["variable"] == "sink_tc"]
    assert (source["distance_km"] > 0).all() and source["bearing_deg"].between(0, 360).all()
    assert (sink["distance_km"] == 0).all() and (sink["direction"] == "none").all()  # cropland -> built-up leaves sinks as they were


# --- config and CLI ---------------------------------------------------------------------------


def test_unknown_analysis_column_fails_before_the_pass(tmp_path):
    sample = load_config(SAMPLE_CONFIG)
    cfg = sample.model_copy(update={"analysis": sample.analysis.model_copy(update={"variables": ["net_tc_per_hectare"]})})
    with pytest.raises(ConfigError, match=r"'net_tc_per_hectare' \(did you mean 'net_tc_per_ha'\?\)"):
        run(cfg, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_analysis_config_errors():
    with pytest.raises(ConfigError, match="weights: distance needs 'distance_km'"):
        analysis_settings(None, variables=["x"], weights="distance")
    with pytest.raises(ConfigError, match="--reference needs the comparison columns"):
        analysis_settings(None, variables=["x"], reference="net")


def test_analyze_seed001_table5_gm11_oracle_and_grey_relations(tmp_path):
    table = tmp_path / "guizhou.csv"
    SEED001_TABLE5.to_csv(table, index=False)
    result = CliRunner().invoke(app, [
        "analyze", str(table), "--id", "province", "--year", "year", "--value", "net", "--until", "2030",
        "--reference", "net", *[a for c in ("orchard", "forest", "grassland", "unused", "water", "cropland", "built_up") for a in ("--compare", c)],
        "--out", str(tmp_path / "out"),
    ])
    assert result.exit_code == 0, result.output
    fit = pd.read_csv(tmp_path / "out" / "analysis_guizhou_forecast_fit.csv")
    gm = fit[fit["method"] == "gm11"].iloc[0]
    assert round(gm["C"], 4) == 0.3235 and round(gm["P"], 4) == 0.9333  # as printed in seed 001
    values = pd.read_csv(tmp_path / "out" / "analysis_guizhou_forecast.csv")
    assert values.loc[values["kind"] == "forecast", "year"].max() == 2030
    ens = values[(values["method"] == "ensemble") & (values["year"] == 2030)]["value"].iloc[0]
    members = values[(values["method"].isin(["gm11", "linear", "growth"])) & (values["year"] == 2030)]["value"]
    assert ens == pytest.approx(members.mean())
    gra = pd.read_csv(tmp_path / "out" / "analysis_guizhou_grey_relational.csv")
    assert len(gra) == 7 and sorted(gra["rank"]) == list(range(1, 8))
    single = grey_relational.grey_relational(SEED001_TABLE5["net"], SEED001_TABLE5[["orchard", "forest", "grassland", "unused", "water", "cropland", "built_up"]])
    np.testing.assert_allclose(gra.set_index("comparison").loc[single.degrees.index, "degree"], single.degrees, rtol=1e-9)  # CSV: 10 digits


def test_analyze_zonal_table_with_polygons_matches_the_run(fast_run, tmp_path):
    """A user's single-period table + polygons through ``lucr analyze`` = the run's own analysis."""
    table = fast_run.out_dir / "zonal_provinces.csv"
    result = CliRunner().invoke(app, [
        "analyze", str(table), "--id", "unit_id", "--value", "net_tc_per_ha", "--polygons", str(SAMPLE_PROVINCES),
        "--polygons-id", "adcode", "--polygons-layer", "provinces", "--name", "name", "--out", str(tmp_path), "--format", "csv",
    ])
    assert result.exit_code == 0, result.output
    mine = pd.read_csv(tmp_path / "analysis_zonal_provinces_lisa.csv").set_index("unit_id")
    run_lisa = fast_run.analyses["provinces"].tables["lisa"]
    run_lisa = run_lisa[run_lisa["variable"] == "net_tc_per_ha"].set_index("unit_id")
    run_lisa.index = run_lisa.index.astype(int)
    np.testing.assert_allclose(mine.loc[run_lisa.index, "local_i"], run_lisa["local_i"], atol=1e-12)
    np.testing.assert_array_equal(mine.loc[run_lisa.index, "cluster"], run_lisa["cluster"])


def _province_table(tmp_path, values, ids=None):
    ids = ids if ids is not None else gpd.read_file(SAMPLE_PROVINCES, layer="provinces")["adcode"].tolist()
    path = tmp_path / "t.csv"
    pd.DataFrame({"adcode": ids, "x": values if np.ndim(values) else [values] * len(ids)}).to_csv(path, index=False)
    return path


def test_analyze_bad_inputs(tmp_path):
    settings = analysis_settings(None, variables=["x"])
    kw = dict(id_col="adcode", year_col=None, settings=settings, out_dir=tmp_path / "out", polygons_path=SAMPLE_PROVINCES, polygons_layer="provinces")
    # table ids without polygons are listed
    with pytest.raises(AnalysisError, match=r"1 unit id\(s\) of the table .* have no polygon .*: 999999"):
        analyse_file(_province_table(tmp_path, 1.0, ids=[110000, 120000, 130000, 999999]), **kw)
    # a single unit cannot have spatial autocorrelation
    with pytest.raises(AnalysisError, match="at least 3 units"):
        analyse_file(_province_table(tmp_path, 1.0, ids=[110000]), **kw)
    # all-equal values: Moran's I is undefined, said plainly in the table and the log
    result, _ = analyse_file(_province_table(tmp_path, 1.0), **{**kw, "out_dir": tmp_path / "eq"})
    assert result.tables["moran"]["status"].iloc[0].startswith("undefined: all values equal")
    # missing id column, missing polygon file
    with pytest.raises(InputFileError, match="'code' is not a column"):
        analyse_file(_province_table(tmp_path, 1.0), **{**kw, "id_col": "code"})
    with pytest.raises(InputFileError, match="polygon file not found"):
        analyse_file(_province_table(tmp_path, 1.0), **{**kw, "polygons_path": tmp_path / "nope.gpkg"})
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("analysis_*"))


def test_analyze_missing_years_policy_is_reported(tmp_path):
    rows = [(u, y, float(10 + i + y - 2000)) for i, u in enumerate("abc") for y in range(2000, 2006)]
    frame = pd.DataFrame(rows, columns=["unit", "year", "x"])
    frame = frame.drop(index=[2, 17])  # a loses 2002 (interior), c loses 2005 (last)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    for policy, kept in (("interpolate", {"a", "b"}), ("drop", {"b"})):
        settings = analysis_settings(None, variables=["x"], missing_years=policy)
        result, _ = analyse_file(path, id_col="unit", year_col="year", settings=settings, out_dir=tmp_path / policy)
        assert set(result.tables["forecast_fit"]["unit_id"]) == kept
        panel = result.summary["panels"][0]
        assert panel["missing_years"] == policy and "c" in panel["dropped"]
        assert (panel["interpolated"] == {"a": [2002]}) == (policy == "interpolate")


def _sample_cfg(tmp_path, **analysis):
    sample = load_config(SAMPLE_CONFIG)
    return sample.model_copy(update={
        "zones": sample.zones[:1], "output": sample.output.model_copy(update={"map": False, "tables": ["csv"], "dir": tmp_path}),
        "analysis": sample.analysis.model_copy(update=analysis),
    })


def test_a_failing_analysis_section_keeps_the_runs_outputs(tmp_path, caplog):
    sample = load_config(SAMPLE_CONFIG)
    cfg = _sample_cfg(tmp_path, spatial=sample.analysis.spatial.model_copy(update={"weights": "knn", "k": 40}))  # 34 provinces
    result = run(cfg, out_dir=tmp_path)
    assert (tmp_path / "zonal_provinces.csv").is_file() and (tmp_path / "analysis_provinces_gravity.csv").is_file()
    summary = json.loads((tmp_path / "analysis_provinces_summary.json").read_text())
    assert "knn weights need 1 <= k < number of units (34)" in summary["failed"]["moran"]
    assert "moran not computed" in caplog.text and "moran" not in result.analyses["provinces"].tables


def test_outputs_not_produced_again_are_not_left_stale(tmp_path):
    run(_sample_cfg(tmp_path, gravity=["source_tc"]), out_dir=tmp_path)
    assert (tmp_path / "analysis_provinces_gravity.csv").is_file()
    run(_sample_cfg(tmp_path, gravity=["net_tc"]), out_dir=tmp_path, overwrite=True)  # both signs: skipped
    assert not (tmp_path / "analysis_provinces_gravity.csv").exists()
    assert json.loads((tmp_path / "analysis_provinces_summary.json").read_text())["gravity_skipped"] == {"net_tc": "values of both signs"}
