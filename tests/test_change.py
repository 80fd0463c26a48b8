"""Land-use change (methods.md §3-4): transitions, structure, intensity, stocks, sequestration.

Oracles: the Plum Island 1985 -> 1999 transition matrix printed in its SOURCE notes (cell for
cell), hand-computed intensity analysis and dynamic degrees, seed 001 Table 4, true cell areas
on a geographic grid (pyproj.Geod), and the stock identity sum_ij area_ij (d_j - d_i) = dStock.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Geod

from lucr.change import intensity, stocks, structure
from lucr.config import CONFIG_DIR, load_config, parse_config
from lucr.errors import CoefficientTableError, ConfigError
from lucr.runner import run
from tests.conftest import REPO

PLUM = REPO / "data" / "sample" / "plum_island_landuse_1985_1991_1999"
#: SOURCE.md of the Plum Island data: 1985 (rows) -> 1999 (columns), cells, classes forest, built, other
SOURCE_MATRIX_CELLS = np.array([[44107, 4250, 656], [11, 36957, 154], [1259, 2248, 23921]])
CELL_HA = 99.92125984251513 * 99.95485327313365 / 1e4


@pytest.fixture(scope="module")
def plum(tmp_path_factory):
    cfg = load_config(CONFIG_DIR / "plum_island_change.yaml")
    with pytest.warns(UserWarning, match="not an equal-area projection"):
        return run(cfg, out_dir=tmp_path_factory.mktemp("plum"))


def test_plum_island_1985_1999_matrix_reproduces_the_source_notes(plum):
    wide = plum.change.tables["transition_matrix_grid"]
    m = wide[(wide.year_from == 1985) & (wide.year_to == 1999)][["area_ha_to_1", "area_ha_to_2", "area_ha_to_3"]].to_numpy()
    np.testing.assert_allclose(m / CELL_HA, SOURCE_MATRIX_CELLS, rtol=0, atol=1e-6)
    long = plum.change.tables["transitions_grid"]
    assert set(zip(long.year_from, long.year_to)) == {(1985, 1991), (1991, 1999), (1985, 1999)}
    # the transition map holds the same counts (1 + i*K + j)
    with rasterio.open(plum.maps["transitions_1985_1999"]) as src:
        counts = np.bincount(src.read(1).ravel(), minlength=10)
        assert src.colormap(1)[1] == (200, 200, 200, 255) and src.tags()["lucr_classes"] == "1,2,3"
    np.testing.assert_array_equal(counts[1:10].reshape(3, 3), SOURCE_MATRIX_CELLS)


def test_counties_and_the_outside_sum_to_the_grid(plum):
    t = plum.change.tables["transitions_counties"]
    g = plum.change.tables["transitions_grid"]
    by_county = t.groupby(["year_from", "year_to", "class_from", "class_to"])["area_ha"].sum()
    grid = g.set_index(["year_from", "year_to", "class_from", "class_to"])["area_ha"]
    assert (by_county <= grid.loc[by_county.index] + 1e-9).all()  # the raster reaches beyond the two counties
    # county class areas at each date are the zonal tables' (same cross-tab)
    s = plum.change.tables["land_use_structure_counties"].set_index(["unit_id", "year"])
    for year, result in plum.by_year.items():
        z = result.tables["county"].set_index("unit_id")
        valid = z[[f"area_ha_class_{c}" for c in (1, 2, 3)]].sum(axis=1)
        np.testing.assert_allclose(s.xs(year, level="year").loc[z.index, "area_ha"], valid, rtol=1e-12)


def test_exact_engine_transitions_add_up_to_its_class_areas(tmp_path):
    """Exact engine: county transitions (boundary cells by coverage fraction) sum to the
    exact class areas of both dates, which equal exactextract with float64 boundary fractions."""
    import geopandas as gpd

    from tests.test_exact_engine import coverage_weighted_class_areas

    cfg = load_config(CONFIG_DIR / "plum_island_change.yaml")
    with pytest.warns(UserWarning, match="not an equal-area projection"):
        result = run(cfg, out_dir=tmp_path, engine="exact", chunks=96)
    t = result.change.tables["transitions_counties"]
    t = t[(t.year_from == 1985) & (t.year_to == 1999)]
    for year, key in ((1985, "class_from"), (1999, "class_to")):
        zonal = result.by_year[year].tables["county"].set_index("unit_id")
        summed = t.groupby(["unit_id", key])["area_ha"].sum()
        for (uid, code), area in summed.items():
            assert area == pytest.approx(zonal.loc[uid, f"area_ha_class_{code}"], rel=1e-12)
    counties = gpd.read_file(PLUM / "ma_counties_overlapping.gpkg")
    exact, _ = coverage_weighted_class_areas(PLUM / "pie_landuse_1985.tif", counties, "fips")
    zonal = result.by_year[1985].tables["county"].set_index("unit_id")
    for (uid, code), ref in exact.items():
        if code in (1, 2, 3):
            assert zonal.loc[uid, f"area_ha_class_{code}"] == pytest.approx(ref, rel=1e-9, abs=1e-9), (uid, code)


def test_change_carbon_adds_up_to_the_stock_change(plum):
    """sum_ij area_ij (d_j - d_i) = stock(t2) - stock(t1) where every cell has a class at both dates."""
    cc = plum.change.tables["change_carbon_grid"]
    seq = plum.change.tables["sequestration_grid"].set_index(["year_from", "year_to"])
    for (a, b), part in cc.groupby(["year_from", "year_to"]):
        assert part["carbon_tc"].sum() == pytest.approx(seq.loc[(a, b), "sequestration_tc"], rel=1e-12)
    top = cc[(cc.year_from == 1985) & (cc.year_to == 1999)].iloc[0]
    assert top["transition_type"] == "forest -> built_up" and top["direction"] == "loss" and top["rank"] == 1
    # pools of the example table: forest 200, built 51 t C/ha -> -149 t C/ha over 4,250 cells
    assert top["carbon_tc"] == pytest.approx(-149 * 4250 * CELL_HA, rel=1e-12)


def test_stocks_and_valuation_by_hand(plum):
    st = plum.change.tables["carbon_stock_grid"].set_index("year")
    cells = {1985: [49013, 37122, 27428], 1999: [45377, 43455, 24731]}  # legend.csv of the data set
    density = np.array([72 + 14 + 105 + 9, 5 + 1 + 45 + 0, 12 + 6 + 80 + 2])
    for year, n in cells.items():
        assert st.loc[year, "total_tc"] == pytest.approx(np.dot(n, density) * CELL_HA, rel=1e-12)
        assert st.loc[year, "c_soil_tc"] == pytest.approx(np.dot(n, [105, 45, 80]) * CELL_HA, rel=1e-12)
    seq = plum.change.tables["sequestration_grid"].set_index(["year_from", "year_to"]).loc[(1985, 1999)]
    delta = (np.dot(cells[1999], density) - np.dot(cells[1985], density)) * CELL_HA
    assert seq["sequestration_tc"] == pytest.approx(delta, rel=1e-12)
    factor = 43.0 / 14 * sum(1 / 1.07**t for t in range(14))  # InVEST's valuation, written out
    assert seq["npv"] == pytest.approx(delta * factor, rel=1e-12)
    with rasterio.open(plum.maps["sequestration_1985_1999"]) as src:
        d = src.read(1)
    assert np.nansum(d) * CELL_HA == pytest.approx(delta, rel=1e-6)


def test_intensity_analysis_hand_computed():
    c = np.array([[50.0, 10, 0], [5, 20, 5], [0, 0, 10]])  # E = 100 ha, 10 years
    assert intensity.interval_intensity(c, 10) == pytest.approx(2.0)  # 20 ha changed / 100 / 10 years
    assert intensity.uniform_intensity([c, np.diag([55.0, 30, 15])], 2000, 2015) == pytest.approx(20 / 100 / 15 * 100)
    gain, loss = intensity.category_intensity(c, 10)
    np.testing.assert_allclose(gain, [5 / 55 * 10, 10 / 30 * 10, 5 / 15 * 10])  # % per year
    np.testing.assert_allclose(loss, [10 / 60 * 10, 10 / 30 * 10, 0])
    r, w = intensity.gain_transition_intensity(c, 10)
    assert r[0, 1] == pytest.approx(10 / 60 * 10) and r[2, 1] == 0 and np.isnan(r[1, 1])
    assert w[1] == pytest.approx(10 / 70 * 10)  # B targets A (1.667 > 1.429), avoids C
    q, v = intensity.loss_transition_intensity(c, 10)
    assert q[1, 0] == pytest.approx(5 / 55 * 10) and q[1, 2] == pytest.approx(5 / 15 * 10)
    assert v[1] == pytest.approx(10 / 70 * 10)
    assert structure.comprehensive_dynamic_degree(c, 10) == pytest.approx(2.0)


def test_intensity_tables_of_the_run(plum):
    cat = plum.change.tables["intensity_category_grid"]
    row = cat[(cat.year_from == 1985) & (cat.class_code == 2)].iloc[0]  # built gains 1985-1991
    m = plum.change.tables["transition_matrix_grid"]
    m = m[(m.year_from == 1985) & (m.year_to == 1991)][["area_ha_to_1", "area_ha_to_2", "area_ha_to_3"]].to_numpy()
    assert row["gain_intensity_pct"] == pytest.approx((m[:, 1].sum() - m[1, 1]) / m[:, 1].sum() / 6 * 100)
    assert row["gain_state"] == "active"  # built-up grew faster than the landscape changed
    iv = plum.change.tables["intensity_interval_grid"]
    assert list(iv.speed) == ["fast", "slow"] or list(iv.speed) == ["slow", "fast"]


def test_single_dynamic_degree_seed001_table4():
    """Seed 001 Table 4, 2005-2019 column. Areas are sinks / coefficient (Table 5, 10^4 t), so the
    coefficient cancels: K = (s_2019 - s_2005) / s_2005 / 14. Each printed value must lie within
    the range the printed rounding of Table 5 allows. (Its two 7-year columns divide by 14, not 7:
    e.g. orchard 2005-2012 (10.70 - 7.74) / 7.74 / 7 = 5.46 %, printed 2.73 %; not used.)"""
    sinks = {"orchard": (7.74, 10.40, 2.45), "forest": (510.11, 574.57, 0.90), "grassland": (3.37, 0.15, -6.82),
             "unused": (0.89, 1.08, 1.48), "water": (4.49, 3.77, -1.15)}
    for name, (s05, s19, printed) in sinks.items():
        k = structure.single_dynamic_degree(np.array([s05]), np.array([s19]), 14)[0]
        lo = structure.single_dynamic_degree(np.array([s05 + 0.005]), np.array([s19 - 0.005]), 14)[0]
        hi = structure.single_dynamic_degree(np.array([s05 - 0.005]), np.array([s19 + 0.005]), 14)[0]
        assert lo - 0.005 <= printed <= hi + 0.005, (name, k, printed)
        assert abs(k - printed) < 0.05, (name, k)


def test_gibbs_martin_hand():
    np.testing.assert_allclose(structure.gibbs_martin(np.array([[50.0, 30, 20], [0, 0, 0]])), [1 - (0.25 + 0.09 + 0.04), np.nan])


def _geo_raster(path, data):
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype="uint8", crs="EPSG:4326",
                   transform=Affine(0.25, 0, 100.0, 0, -0.25, 60.0), nodata=255)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def test_stocks_on_a_geographic_grid_use_true_cell_areas(tmp_path):
    """InVEST refuses geographic grids; lucr takes each row's ellipsoidal cell area (checked with Geod)."""
    a = np.array([[1, 1, 2, 2], [1, 3, 3, 2], [2, 2, 2, 255]], np.uint8)
    b = np.array([[1, 2, 2, 2], [3, 3, 3, 2], [2, 2, 1, 255]], np.uint8)
    _geo_raster(tmp_path / "a.tif", a)
    _geo_raster(tmp_path / "b.tif", b)
    pools = tmp_path / "pools.csv"
    pools.write_text("LUCODE,c_above,C_BELOW,c_soil,c_dead\n1,100,20,50,5\n2,5,1,20,0\n3,20,5,60,2\n")  # names as InVEST matches them
    cfg = parse_config({"landcover": {"years": {2000: "a.tif", 2010: "b.tif"}}, "legend": "plum_island", "change": {"pools": "pools.csv"},
                        "output": {"tables": ["csv"]}}, tmp_path)
    result = run(cfg, out_dir=tmp_path / "o")
    geod = Geod(ellps="WGS84")
    lon = np.linspace(100, 100.25, 201)  # parallels densified: a geodesic between two points of a parallel is not the parallel

    def cell_ha(top):
        return abs(geod.polygon_area_perimeter(np.r_[lon, lon[::-1]], np.r_[np.full(201, top), np.full(201, top - 0.25)])[0]) / 1e4

    row_ha = [cell_ha(60 - 0.25 * r) for r in range(3)]
    density = {1: 175.0, 2: 26.0, 3: 87.0}
    expect = {y: sum(density[int(v)] * row_ha[r] for r in range(3) for v in d[r] if v != 255) for y, d in ((2000, a), (2010, b))}
    st = result.change.tables["carbon_stock_grid"].set_index("year")["total_tc"]
    for year in (2000, 2010):
        assert st[year] == pytest.approx(expect[year], rel=1e-9)
    seq = result.change.tables["sequestration_grid"].iloc[0]
    assert seq["sequestration_tc"] == pytest.approx(expect[2010] - expect[2000], rel=1e-9)
    assert seq["sequestration_tc_per_yr"] == pytest.approx((expect[2010] - expect[2000]) / 10, rel=1e-9)


# -- bad inputs: a clear error naming the file, nothing published ------------------------------

@pytest.mark.parametrize("body, fragment", [
    ("lucode,c_above,c_below,c_soil\n1,1,1,1\n", "column(s) ['c_dead'] missing"),
    ("lucode,c_above,c_below,c_soil,c_dead\n1,100,20,50,5\n3,1,1,1,1\n", "no carbon pools for class(es) 2 (Built), present in the land cover"),
    ("lucode,c_above,c_below,c_soil,c_dead\n1,100,20,-50,5\n2,1,1,1,1\n3,1,1,1,1\n", "negative carbon pools (1: c_soil = -50)"),
    ("lucode,c_above,c_below,c_soil,c_dead\n1,100,20,lots,5\n", "line 2: c_soil 'lots' is not a number"),
])
def test_bad_pool_tables(tmp_path, body, fragment):
    pools = tmp_path / "pools.csv"
    pools.write_text(body)
    years = {1985: str(PLUM / "pie_landuse_1985.tif"), 1999: str(PLUM / "pie_landuse_1999.tif")}
    cfg = parse_config({"landcover": {"years": years}, "legend": "plum_island", "change": {"pools": "pools.csv"}}, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(CoefficientTableError) as err:
        run(cfg, out_dir=out)
    assert fragment in str(err.value) and "pools.csv" in str(err.value)
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]


def test_dates_listed_out_of_order_are_refused(tmp_path):
    years = {1999: str(PLUM / "pie_landuse_1999.tif"), 1985: str(PLUM / "pie_landuse_1985.tif")}
    with pytest.raises(ConfigError, match="list the land-cover dates from the earliest to the latest"):
        parse_config({"landcover": {"years": years}, "legend": "plum_island"}, tmp_path)


def test_valuation_factor_matches_a_written_out_sum():
    assert stocks.valuation_factor(43.0, 7.0, 0.0, 14) == pytest.approx(43.0 / 14 * sum(1 / 1.07**t for t in range(14)))
    assert stocks.valuation_factor(10.0, 5.0, -2.0, 3) == pytest.approx(10 / 3 * sum(1 / (1.05**t * 0.98**t) for t in range(3)))


# -- scenarios --------------------------------------------------------------------------------

def _plum_cfg(tmp_path, scenarios, years=(1985, 1991, 1999), **change):
    cfg = {
        "landcover": {"years": {y: str(PLUM / f"pie_landuse_{y}.tif") for y in years}}, "legend": "plum_island",
        "zones": [{"level": "county", "path": str(PLUM / "ma_counties_overlapping.gpkg"), "id": "fips", "name": "name"}],
        "change": {"pools": str(CONFIG_DIR / "parameters" / "pools_plum_island_example.csv"), "maps": [], "scenarios": scenarios, **change},
        "output": {"tables": ["csv"], "map": False},
    }
    return parse_config(cfg, tmp_path)


def test_markov_projection_and_conversion_rules(tmp_path):
    scenarios = [
        {"name": "trend_2013", "markov": {"from": 1985, "to": 1999, "year": 2013}},
        {"name": "reforest_essex", "conversions": [{"units": ["25009"], "from": 2, "to": 1, "share": 0.1}]},
    ]
    with pytest.warns(UserWarning, match="equal-area"):
        result = run(_plum_cfg(tmp_path, scenarios), out_dir=tmp_path / "o")
    # per county: one step of the county's own 1985 -> 1999 matrix (from the run's transition table)
    wide = result.change.tables["transition_matrix_counties"]
    counties = result.change.tables["scenarios_counties"].set_index(["scenario", "unit_id"])
    for uid, part in wide[(wide.year_from == 1985) & (wide.year_to == 1999)].groupby("unit_id"):
        m = part.sort_values("class_from")[["area_ha_to_1", "area_ha_to_2", "area_ha_to_3"]].to_numpy()
        got = counties.loc[("trend_2013", uid), ["area_ha_class_1", "area_ha_class_2", "area_ha_class_3"]].to_numpy(float)
        np.testing.assert_allclose(got, m.sum(axis=0) @ (m / m.sum(axis=1, keepdims=True)), rtol=1e-9)
    # without zones the whole raster is the unit: by hand from the SOURCE matrix, one 14-year step from 1999
    cfg = _plum_cfg(tmp_path, scenarios[:1])
    with pytest.warns(UserWarning, match="equal-area"):
        grid = run(cfg.model_copy(update={"zones": []}), out_dir=tmp_path / "g").change.tables["scenarios_grid"].set_index("scenario")
    p = SOURCE_MATRIX_CELLS / SOURCE_MATRIX_CELLS.sum(axis=1, keepdims=True)
    expected = SOURCE_MATRIX_CELLS.sum(axis=0) @ p * CELL_HA
    got = grid.loc["trend_2013", ["area_ha_class_1", "area_ha_class_2", "area_ha_class_3"]].to_numpy(float)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert grid.loc["trend_2013", "year"] == 2013 and grid.loc["trend_2013", "base_year"] == 1999
    density = np.array([200.0, 51.0, 100.0])
    assert grid.loc["trend_2013", "d_stock_tc"] == pytest.approx((expected - SOURCE_MATRIX_CELLS.sum(axis=0) * CELL_HA) @ density, rel=1e-9)
    # conversion: 10 % of Essex's built-up land (1999) becomes forest; Middlesex unchanged
    base = result.by_year[1999].tables["county"].set_index("unit_id")
    essex = counties.loc[("reforest_essex", "25009")]
    built = counties.loc[("baseline", "25009"), "area_ha_class_2"]
    assert essex["area_ha_class_2"] == pytest.approx(0.9 * built, rel=1e-12)
    assert essex["area_ha_class_1"] == pytest.approx(counties.loc[("baseline", "25009"), "area_ha_class_1"] + 0.1 * built, rel=1e-12)
    assert essex["d_net_tc"] == pytest.approx(0.1 * built * (-0.644 - 55.8), rel=1e-9)
    assert counties.loc[("reforest_essex", "25017"), "d_net_tc"] == 0
    assert counties.loc[("baseline", "25009"), "area_ha_class_2"] == pytest.approx(base.loc["25009", "area_ha_class_2"], rel=1e-12)


@pytest.mark.parametrize("scenarios, years, fragment", [
    ([{"name": "x", "conversions": [{"units": ["99999"], "from": 2, "to": 1, "share": 0.1}]}], (1985, 1999), "unit id(s) ['99999'] are not ids of level 'county'"),
    ([{"name": "x", "conversions": [{"from": 7, "to": 1, "share": 0.1}]}], (1985, 1999), "class code(s) [7] are not classes of legend 'plum_island'"),
    ([{"name": "x", "conversions": [{"from": 2, "to": 1, "share": 0.6}, {"from": 2, "to": 3, "share": 0.5}]}], (1985, 1999), "conversion shares above 100 %"),
    ([{"name": "x", "markov": {"from": 1985, "to": 1999, "year": 2010}}], (1985, 1999), "target year 2010 is not 1999 + n x 14"),
    ([{"name": "x", "markov": {"from": 1985, "to": 1999, "year": 2013}}], (1999,), "a Markov projection needs two observed dates; the run has 1"),
])
def test_bad_scenarios_are_refused(tmp_path, scenarios, years, fragment):
    out = tmp_path / "o"
    with pytest.raises(ConfigError) as err:
        run(_plum_cfg(tmp_path, scenarios, years), out_dir=out)
    assert fragment in str(err.value), str(err.value)
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]


def test_plum_island_writes_only_declared_outputs(plum):
    from lucr.outputs_spec import check_folder

    check = check_folder(plum.out_dir)
    assert check.ok, (check.undeclared_files, check.undeclared_columns)
    assert {"transitions", "change_carbon", "sequestration_map", "analysis_gravity_track", "risk"} <= set(check.files.values())
