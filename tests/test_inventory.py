"""The statistics route: seed 001's accounting, the carbon-oxygen balance, ecological-land demand."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from lucr.config import CONFIG_DIR, load_config, parse_config
from lucr.errors import InputFileError
from lucr.inventory import account, demand_increase_pct, load_carbon_oxygen_factors, load_inventory_factors, read_statistics
from lucr.runner import run
from tests.conftest import SAMPLE_PROVINCES, SAMPLE_RASTER

# seed 001 Table 5 (10^4 t C): year -> printed sink, source, net
PRINTED = {
    2005: (1945.36, 4021.65, 2076.29), 2006: (1794.79, 4476.87, 2682.09), 2007: (1866.43, 4939.43, 3073.00),
    2008: (1928.74, 4627.58, 2698.84), 2009: (1945.15, 4999.78, 3054.63), 2010: (1927.97, 5418.32, 3490.35),
    2011: (1649.98, 5350.10, 3700.12), 2012: (1970.27, 6578.58, 4608.31), 2013: (1925.74, 6185.93, 4260.19),
    2014: (2042.08, 6509.11, 4379.78), 2015: (2069.75, 6463.38, 4377.37), 2016: (2149.59, 6217.87, 4459.31),
    2017: (2096.78, 6425.34, 4727.81), 2018: (1863.74, 6610.18, 4705.79), 2019: (1824.79, 6882.41, 5057.62),
}


@pytest.fixture(scope="module")
def guizhou(tmp_path_factory):
    return run(load_config(CONFIG_DIR / "guizhou_seed001_inventory.yaml"), out_dir=tmp_path_factory.mktemp("gz"))


def test_guizhou_table5_sink_and_net_from_the_components(guizhou):
    """Six sink components and two source components give the printed sink and net for every year
    to the printed rounding (each component is rounded to 0.01, so sums to <= 0.03)."""
    t = guizhou.inventory.tables["inventory"].set_index("year")
    for year, (sink, source, net) in PRINTED.items():
        assert t.at[year, "sink_tc"] / 1e4 == pytest.approx(sink, abs=0.03), year
        assert t.at[year, "net_tc"] / 1e4 == pytest.approx(net, abs=0.03), year
        # the printed source column is inconsistent in 2014-2018 (2016 and 2017 print less than
        # built-up emissions alone); elsewhere it is farm inputs + built-up, as computed here
        if year in range(2014, 2019):
            assert abs(t.at[year, "source_tc"] / 1e4 - source) > 10, year
        else:
            assert t.at[year, "source_tc"] / 1e4 == pytest.approx(source, abs=0.03), year
    assert t.at[2016, "builtup_emission_tc"] / 1e4 > PRINTED[2016][1]


def test_guizhou_demand_is_forecast_and_written(guizhou):
    demand = guizhou.inventory.tables["inventory_eco_land_demand"].iloc[0]
    assert demand["target_year"] == 2030 and demand["human_release_tc"] > guizhou.inventory.tables["inventory"]["human_release_tc"].max()
    assert demand["increase_carbon_pct"] == pytest.approx(max(0.0, demand["cbc_target"] / 3 - 1) * 100)
    assert (guizhou.out_dir / "inventory.csv").exists() and (guizhou.out_dir / "run.json").exists()


def test_guizhou_risk_from_the_statistics_cbc(guizhou):
    """A statistics-only run grades seed 003's CBC (release / fixation), types its trend, forecasts it
    and reports it: Guizhou's CBC rises from 2.07 (2005) to 3.77 (2019): a significant rise of the
    source, graded by the fixed breaks 0.5, 1, 3, 10."""
    from lucr.analysis.risk import CBC_BREAKS, grade

    out = guizhou.out_dir
    risk = pd.read_csv(out / "risk_inventory.csv", dtype={"unit_id": str}, encoding="utf-8-sig")
    inv = guizhou.inventory.tables["inventory"].set_index("year")
    assert risk["cbc"].to_numpy() == pytest.approx(inv.loc[risk["year"], "human_release_tc"].to_numpy() / inv.loc[risk["year"], "ecosystem_fixation_tc"].to_numpy())
    assert (risk["grade"] == grade(risk["cbc"], CBC_BREAKS)).all()
    last = risk.set_index("year").loc[2019]
    assert last["grade_label"] == "high risk" and last["warning"] == "orange"
    assert last["balance_type"] in ("source-type", "source-sink dual") and last["temporal_type"] == "long-term"
    assert last["driver_type"] == "n/a (statistics)"
    forecast = pd.read_csv(out / "risk_inventory_forecast.csv", dtype={"unit_id": str}, encoding="utf-8-sig")
    assert forecast.query("method == 'ensemble' and kind == 'forecast'")["year"].max() == 2030
    from lucr.outputs_spec import check_folder

    assert check_folder(out).ok
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Risk from the statistics" in page and "series and forecasts" in page and "贵州省" in page


@pytest.mark.parametrize("unit, carbon, oxygen", [("Shanghai", 556.37, 1245.60), ("Jiangsu", 51.76, 155.40), ("Ningxia", 183.52, 345.67), ("Tianjin", 113.43, 400.48)])
def test_demand_formula_reproduces_seed003_table5(unit, carbon, oxygen):
    """increase = max(0, B / 3 - 1): the balance coefficients these increases imply give them back."""
    cbc, obc = 3 * (1 + carbon / 100), 3 * (1 + oxygen / 100)
    assert float(demand_increase_pct(cbc)) == pytest.approx(carbon, abs=1e-9)
    assert float(demand_increase_pct(obc)) == pytest.approx(oxygen, abs=1e-9)
    assert float(demand_increase_pct(2.9)) == 0.0  # already enough ecological land


def _stats(tmp_path, text: str, name="stats.csv", encoding="utf-8") -> pd.DataFrame:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return read_statistics(path)


def _account(stats, energy_factor="seed001"):
    return account(stats, load_inventory_factors(), load_carbon_oxygen_factors(), energy_factor)[0].iloc[0]


def test_farm_inputs_by_hand(tmp_path):
    stats = _stats(tmp_path, "unit_id,year,fertiliser [t],sown_area [10^3 ha],machinery_power [10^4 kW],irrigated_area [ha],plastic_film [t]\n"
                             "a,2019,100,1,0.05,200,1\n")
    expected = (100 * 895.6 + 1000 * 16.47 + 500 * 0.18 + 200 * 266.48 + 1000 * 5.18) / 1000
    assert _account(stats)["farm_input_emission_tc"] == pytest.approx(expected, rel=1e-12)


def test_builtup_energy_by_hand(tmp_path):
    stats = _stats(tmp_path, "unit_id,year,energy_intensity [tce / 10^4 yuan],gdp_secondary [亿元],gdp_tertiary [亿元]\na,2019,0.5,100,200\n")
    assert _account(stats)["builtup_emission_tc"] == pytest.approx(0.5 * 3e6 * 0.7476, rel=1e-12)
    assert _account(stats, "ndrc_068")["builtup_emission_tc"] == pytest.approx(0.5 * 3e6 * 0.68, rel=1e-12)
    direct = _stats(tmp_path, "unit_id,year,energy_use [万吨标准煤]\na,2019,2\n", name="e.csv")
    assert _account(direct)["builtup_emission_tc"] == pytest.approx(2e4 * 0.7476, rel=1e-12)


def test_crop_uptake_by_hand(tmp_path):
    stats = _stats(tmp_path, "unit_id,year,yield_rice [t],yield_soybean [万吨],moisture_rice [%]\na,2019,1000,0.1,14\n")
    expected = 0.4709 * 1000 * 0.86 / 0.40 + 0.45 * 1000 * 1.0 / 0.34
    assert _account(stats)["crop_uptake_tc"] == pytest.approx(expected, rel=1e-12)


def test_carbon_oxygen_balance_by_hand(tmp_path):
    stats = _stats(tmp_path, "unit_id,year,coal [t],natural_gas [10^4 m3],cement [t],population [万人],sink_forest [t C]\na,2019,1000,10,100,1,500\n")
    row = _account(stats)
    coal_c, gas_c = 1000 * 0.7143 * 0.7559, 10 * 13.3 * 0.4483
    release = coal_c + gas_c + 100 * 0.1347 + 1e4 * 0.0996
    o2 = coal_c * 32 / 12 * (1 + 0.8 / 4) + gas_c * 32 / 12 * (1 + 4 / 4) + 1e4 * 0.307
    assert row["human_release_tc"] == pytest.approx(release, rel=1e-12)
    assert row["o2_consumed_t"] == pytest.approx(o2, rel=1e-12)
    assert row["ecosystem_fixation_tc"] == 500 and row["o2_released_t"] == pytest.approx(500 * 2.6667)
    assert row["cbc"] == pytest.approx(release / 500) and row["obc"] == pytest.approx(o2 / (500 * 2.6667))


def test_long_form_gb18030_and_xlsx(tmp_path, caplog):
    long = "unit_id,year,variable,value,unit\na,2019,fertiliser,1,万吨\na,2019,sown_area,15,亩\nb,2019,fertiliser,500,t\n"
    with caplog.at_level(logging.WARNING, logger="lucr"):
        stats = _stats(tmp_path, long, encoding="gb18030")
    assert stats.loc[("a", 2019), "fertiliser"] == 1e4 and stats.loc[("a", 2019), "sown_area"] == pytest.approx(1.0)
    assert "fertiliser is given in 2 units" in caplog.text
    frame = pd.DataFrame({"unit_id": ["单位", "a"], "year": [None, 2019], "fertiliser": ["t", 7]})
    frame.to_excel(tmp_path / "s.xlsx", index=False)
    assert read_statistics(tmp_path / "s.xlsx").loc[("a", 2019), "fertiliser"] == 7


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("unit_id,year,fertilizer [t]\na,2019,1\n", "unknown variable 'fertilizer' (did you mean 'fertiliser'?)"),
        ("unit_id,year,fertiliser [lbs]\na,2019,1\n", "unit 'lbs' of 'fertiliser' is not one lucr knows"),
        ("unit_id,year,fertiliser\na,2019,1\n", "column 'fertiliser' gives no unit"),
        ("unit_id,year,fertiliser [t]\na,2019,-5\n", "negative quantities: row 2 (-5)"),
        ("unit_id,year,fertiliser [t]\na,2019,about 5\n", "cells that are not numbers: row 2 ('about 5')"),
        ("unit_id,year,fertiliser [t]\na,2019,1\na,2019,2\n", "unit-years given twice"),
        ("unit_id,year,fertiliser [t]\na,twenty,1\n", "years that are not whole numbers"),
        ("unit_id,year,variable,value,unit\na,2019,coal,1,t\na,2019,coal,2,t\n", "coal of unit a in 2019 is given 2 times"),
    ],
)
def test_bad_statistics_are_refused(tmp_path, text, fragment):
    with pytest.raises(InputFileError) as exc:
        _stats(tmp_path, text)
    assert fragment in str(exc.value) and "stats.csv" in str(exc.value) and "Fix:" in str(exc.value)


def test_missing_values_stay_missing_and_are_said(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lucr"):
        stats = _stats(tmp_path, "unit_id,year,fertiliser [t],sown_area [ha]\na,2019,1,\nb,2019,2,3\n")
    out = account(stats, load_inventory_factors(), load_carbon_oxygen_factors())[0]
    assert np.isnan(out.loc[("a", 2019), "farm_input_emission_tc"]) and np.isfinite(out.loc[("b", 2019), "farm_input_emission_tc"])
    assert "sown_area 1 unit-year(s)" in caplog.text and "never taken as zero" in caplog.text


def test_intensities_standard_land_and_tier_by_hand(tmp_path):
    """Standard ecological land = fixation / forest's 0.644 t C/ha/yr; release per 10^4 yuan of
    secondary + tertiary GDP (no total given) and per person; the tier says where figures come from."""
    stats = _stats(tmp_path, "unit_id,year,energy_use [tce],gdp_secondary [亿元],gdp_tertiary [亿元],population [persons],sink_forest [t C]\n"
                             "a,2019,1000,1,3,500,644\n")
    row = _account(stats)
    release = 1000 * 0.7476 + 500 * 0.0996  # no fuels: seed 001's built-up source; respiration of the population
    assert row["standard_ecological_land_ha"] == pytest.approx(644 / 0.644)
    assert row["human_release_tc"] == pytest.approx(release) and row["release_tc_per_capita"] == pytest.approx(release / 500)
    assert row["release_tc_per_10k_yuan"] == pytest.approx(release / 4e4) and row["gdp_basis"] == "secondary + tertiary"
    assert row["tier"] == "source: statistics x factors; sink: given totals"
    total = _account(_stats(tmp_path, "unit_id,year,energy_use [tce],gdp [亿元],builtup_emission [t C]\na,2019,1000,2,50\n", name="g.csv"))
    assert total["gdp_basis"] == "total" and total["tier"].startswith("source: given totals")


def test_with_a_raster_fixation_comes_from_the_class_areas(tmp_path, caplog):
    stats = tmp_path / "s.csv"
    stats.write_text("adcode,year,energy_use [万吨标准煤],population [万人]\n520000,2019,1000,3600\n530000,2019,1200,4700\n999999,2019,1,1\n")
    cfg = parse_config({
        "landcover": {"path": str(SAMPLE_RASTER), "year": 2019}, "legend": "igbp",
        "zones": [{"level": "province", "path": str(SAMPLE_PROVINCES), "layer": "provinces", "id": "adcode", "name": "name"}],
        "statistics": {"path": str(stats), "id": "adcode", "level": "province", "demand": None},
        "output": {"dir": str(tmp_path / "out"), "tables": ["gpkg", "csv"]},
    }, tmp_path)
    with caplog.at_level(logging.INFO, logger="lucr"):
        result = run(cfg)
    inv = result.inventory.tables["inventory_provinces"].set_index("unit_id")
    prov = result.tables["province"].set_index("unit_id")
    from lucr.coefficients import load_table

    co = load_carbon_oxygen_factors()
    rates = {c.code: co.fixation[c.category].value for c in load_table("igbp").classes if c.category in co.fixation}
    expected = sum(prov.at["520000", f"area_ha_class_{code}"] * r for code, r in rates.items())
    assert inv.at["520000", "ecosystem_fixation_tc"] == pytest.approx(expected, rel=1e-12)
    assert inv.at["520000", "cbc"] == pytest.approx(inv.at["520000", "human_release_tc"] / expected)
    assert inv.at["520000", "name"] == "贵州省" and inv.geometry.notna().sum() == 2
    assert inv.at["520000", "tier"] == "source: statistics x factors; sink: land-cover areas x class rates"
    built = [f"area_ha_class_{c.code}" for c in load_table("igbp").classes if c.category == "built_up"]
    assert inv.at["520000", "builtup_coef_tc_per_ha"] == pytest.approx(inv.at["520000", "builtup_emission_tc"] / prov.loc["520000", built].sum())
    assert "built-up energy emissions over built-up area give" in caplog.text
    assert "1 unit id(s) have no polygon in level 'province': 999999" in caplog.text
    assert "32 unit(s) of level 'province' have no statistics" in caplog.text
    assert (result.out_dir / "inventory_provinces.gpkg").exists()


TWO_PROVINCES = "adcode,year,energy_use [万吨标准煤],fertiliser [万吨],yield_rice [万吨]\n520000,2019,10650,82.1,422\n530000,2019,12000,200,520\n"


def _allocation_run(tmp_path, engine: str, stats_text: str = TWO_PROVINCES, **statistics):
    """A run of the sample (provinces and cities) with statistics at the province level, allocated."""
    from tests.conftest import SAMPLE_CITIES

    stats = tmp_path / "s.csv"
    stats.write_text(stats_text)
    return run(parse_config({
        "landcover": {"path": str(SAMPLE_RASTER), "year": 2019}, "legend": "igbp", "engine": engine, "risk": statistics.pop("risk", None),
        "zones": [{"level": "province", "path": str(SAMPLE_PROVINCES), "layer": "provinces", "id": "adcode", "name": "name"},
                  {"level": "city", "path": str(SAMPLE_CITIES), "layer": "cities", "id": "adcode", "name": "name", "parent": "province_adcode"}],
        "statistics": {"path": str(stats), "id": "adcode", "level": "province", "demand": None, **statistics},
        "output": {"dir": str(tmp_path / "out"), "tables": ["csv"], "report": False},
    }, tmp_path))


def _province_cells(path):
    """``(cells_of(province_id), cell areas ha, transform, crs, shape)`` of a map of the sample grid: cells by
    centre, rasterised here with rasterio from the city polygons, independently of lucr's zone raster."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize

    from lucr.area import row_cell_area_ha
    from lucr.grid import Grid
    from tests.conftest import SAMPLE_CITIES

    with rasterio.open(path) as src:
        transform, crs, shape = src.transform, src.crs, (src.height, src.width)
    cities = gpd.read_file(SAMPLE_CITIES, layer="cities")
    index = rasterize(((g, i + 1) for i, g in enumerate(cities.geometry)), out_shape=shape, transform=transform, dtype="int32")
    province = cities["province_adcode"].astype(str).to_numpy()
    area = row_cell_area_ha(Grid(shape[0], shape[1], transform, crs))[:, None] * np.ones(shape[1])
    return (lambda unit: np.isin(index, np.flatnonzero(province == unit) + 1)), area


@pytest.mark.parametrize("engine", ["fast", "exact"])
def test_allocation_conserves_every_unit_total(tmp_path, engine):
    """The allocated map summed over each unit's cells (by cell centre), with true cell areas, gives back
    the unit's statistical totals (1e-9), with either engine (the exact engine sums the map's
    denominators by centre)."""
    import rasterio

    result = _allocation_run(tmp_path, engine)
    inv = result.inventory.tables["inventory_provinces"].set_index("unit_id")
    path = result.out_dir / "inventory_allocated.tif"
    with rasterio.open(path) as src:
        dens = src.read().astype(np.float64)
        assert src.descriptions == ("builtup_emission", "farm_input_emission", "crop_uptake")
    cells_of, area = _province_cells(path)
    for unit in ("520000", "530000"):
        cells = cells_of(unit)
        for b, column, sign in ((0, "builtup_emission_tc", 1), (1, "farm_input_emission_tc", 1), (2, "crop_uptake_tc", -1)):
            band = np.where(cells, dens[b], np.nan)
            assert np.nansum(band * area) == pytest.approx(sign * inv.at[unit, column], rel=1e-9), (unit, column)
    assert np.isnan(dens[0][~(cells_of("520000") | cells_of("530000"))]).all()


@pytest.mark.parametrize("engine", ["fast", "exact"])
def test_covariate_weighted_allocation_on_another_grid(tmp_path, caplog, engine):
    """A weight raster at twice the resolution (constant within each land-cover cell, so GDAL's
    average resampling gives it back exactly; zero, negative and nodata patches): each cell of a unit's category
    gets T w / sum(w a); the unit's cells add up to its total (1e-9); zero or no-data weight: 0."""
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(SAMPLE_RASTER) as src:
        t, crs, shape = src.transform, src.crs, (src.height, src.width)
    rows, cols = np.indices(shape)
    coarse = (1.0 + rows % 7 + (cols % 5) * 0.5).astype(np.float32)
    coarse[540:560, 640:700] = 0.0  # a patch of zero weight
    coarse[540:545, 640:700] = -1.0  # and of negative weight: bad input, said, and given nothing
    coarse[560:580, 640:700] = -9999.0  # and of no data
    fine = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
    weights = tmp_path / "weights_fine.tif"
    with rasterio.open(weights, "w", driver="GTiff", height=fine.shape[0], width=fine.shape[1], count=1, dtype="float32", crs=crs,
                       transform=t @ Affine.scale(0.5), nodata=-9999.0, tiled=True) as dst:
        dst.write(fine, 1)
    with caplog.at_level(logging.INFO, logger="lucr"):
        result = _allocation_run(tmp_path, engine, weights={"path": str(weights)})
    assert "warped onto the land-cover grid (average resampling)" in caplog.text
    assert "negative weights on" in caplog.text
    inv = result.inventory.tables["inventory_provinces"].set_index("unit_id")
    path = result.out_dir / "inventory_allocated.tif"
    with rasterio.open(path) as src:
        dens = src.read().astype(np.float64)
        assert "weighted by weights_fine.tif" in src.tags()["lucr_allocation"]
    cells_of, area = _province_cells(path)
    w = np.where(coarse > 0, coarse, 0.0)
    for unit in ("520000", "530000"):
        cells = cells_of(unit)
        for b, column, sign in ((0, "builtup_emission_tc", 1), (1, "farm_input_emission_tc", 1), (2, "crop_uptake_tc", -1)):
            band = np.where(cells, dens[b], np.nan)
            category = cells & np.isfinite(band)
            assert np.nansum(band * area) == pytest.approx(sign * inv.at[unit, column], rel=1e-9), (unit, column)
            expected = sign * inv.at[unit, column] * w[category] / (w[category] * area[category]).sum()
            assert band[category] == pytest.approx(expected, rel=1e-12), (unit, column)
    patch = dens[:, 540:580, 640:700]
    assert np.isfinite(patch).sum() > 100 and (patch[np.isfinite(patch)] == 0).all()  # zero and no-data weights get nothing (in Guizhou)


def test_builtup_from_the_statistics_in_tables_maps_and_risk(tmp_path):
    """statistics.builtup: statistics: a unit's built-up flux is its statistics' built-up emissions
    (tables exactly, its cities their area shares, provinces without statistics keep the
    coefficient); the carbon-balance map's cells add up to the tables (float32 map, 1e-6); the
    risk map grades the allocated densities; the Monte Carlo keeps that flux fixed; the summary
    says which source the run used."""
    import rasterio

    from lucr.analysis.risk import NET_BREAKS, grade
    from lucr.coefficients import load_table

    result = _allocation_run(tmp_path, "fast", "adcode,year,energy_use [万吨标准煤]\n520000,2019,10650\n530000,2019,12000\n", builtup="statistics", risk={})
    prov = result.tables["province"].set_index("unit_id")
    city = result.tables["city"]
    table = load_table("igbp")
    emission = {"520000": 10650e4 * 0.7476, "530000": 12000e4 * 0.7476}
    other = [f"area_ha_class_{c.code}" for c in table.classes if c.coef > 0 and c.category != "built_up"]
    coef = {f"area_ha_class_{c.code}": c.coef for c in table.classes}
    for unit, e in emission.items():
        assert prov.at[unit, "builtup_statistics_tc"] == pytest.approx(e, rel=1e-12)
        expected = e + sum(prov.at[unit, col] * coef[col] for col in other)
        assert prov.at[unit, "source_tc"] == pytest.approx(expected, rel=1e-12)
        assert city.loc[city["parent_id"] == unit, "builtup_statistics_tc"].sum() == pytest.approx(e, rel=1e-12)
    assert np.isnan(prov.at["110000", "builtup_statistics_tc"])
    built = [f"area_ha_class_{c.code}" for c in table.classes if c.category == "built_up"]
    beijing = sum(prov.at["110000", col] * coef[col] for col in other + built)
    assert prov.at["110000", "source_tc"] == pytest.approx(beijing, rel=1e-12)  # no statistics: the coefficient
    summary = result.by_year[2019].summary
    assert summary["builtup_source"]["units_with_statistics"] > 0 and summary["builtup_source"]["source"].startswith("statistics")
    path = result.out_dir / "carbon_balance.tif"
    with rasterio.open(path) as src:
        source = src.read(1).astype(np.float64)
        assert "statistics.builtup" in src.tags()["lucr_builtup"]
    cells_of, area = _province_cells(path)
    for unit in ("520000", "530000", "110000"):
        assert np.nansum(np.where(cells_of(unit), source, np.nan) * area) == pytest.approx(prov.at[unit, "source_tc"], rel=1e-6), unit
    with rasterio.open(result.out_dir / "risk_grade.tif") as g, rasterio.open(result.out_dir / "risk_grade_probability.tif") as pr:
        grades, probability = g.read(1), pr.read(1)
    with rasterio.open(result.out_dir / "inventory_allocated.tif") as src:
        density = src.read(1)
    cells = cells_of("520000") & np.isfinite(density)
    assert cells.sum() > 0 and (grades[cells] == grade(density[cells], NET_BREAKS)).all() and (probability[cells] == 100).all()
    risk = result.risk["province"].table.set_index("unit_id")
    assert risk.at["520000", "source_p5"] <= prov.at["520000", "source_tc"] <= risk.at["520000", "source_p95"]
    assert risk.at["520000", "source_p95"] - risk.at["520000", "source_p5"] < 0.1 * prov.at["520000", "source_tc"]  # the built-up flux is not drawn


def test_builtup_from_statistics_needs_a_level_and_no_flux_raster(tmp_path):
    from lucr.errors import ConfigError

    cfg = {"landcover": {"path": str(SAMPLE_RASTER)}, "legend": "igbp", "statistics": {"path": "s.csv", "builtup": "statistics"}}
    with pytest.raises(ConfigError, match="statistics.builtup: statistics needs statistics.level"):
        parse_config(cfg, tmp_path)


def test_weighted_densities_fall_back_to_area_where_no_cell_has_weight(caplog):
    from lucr.coefficients import load_table
    from lucr.inventory.allocation import densities

    table = load_table("igbp")
    codes = [c.code for c in table.classes]
    zonal = pd.DataFrame({"unit_id": ["a", "b"], **{f"area_ha_class_{c}": [10.0, 20.0] for c in codes}})
    weights = np.zeros((2, len(codes)))
    weights[0, codes.index(13)] = 40.0  # unit a: sum(w a) of its built-up cells; unit b: none
    totals = pd.DataFrame({"builtup_emission_tc": [100.0, 60.0]}, index=["a", "b"])
    with caplog.at_level(logging.WARNING, logger="lucr"):
        dens, weighted, _ = densities(totals, zonal, table, weights)
    built = codes.index(13)
    assert weighted[0].tolist() == [True, False] and dens[0, 0, built] == pytest.approx(100.0 / 40.0)  # x w of each cell
    assert dens[0, 1, built] == pytest.approx(60.0 / 20.0) and "1 unit(s) have no positive weight on their built_up cells" in caplog.text


def test_a_total_without_cells_of_its_category_is_reported_not_lost(caplog):
    from lucr.coefficients import load_table
    from lucr.inventory.allocation import densities

    table = load_table("igbp")
    zonal = pd.DataFrame({"unit_id": ["a", "b"], **{f"area_ha_class_{c.code}": [10.0, 10.0 if c.category != "built_up" else 0.0] for c in table.classes}})
    totals = pd.DataFrame({"builtup_emission_tc": [100.0, 50.0]}, index=["a", "b"])
    with caplog.at_level(logging.WARNING, logger="lucr"):
        dens, _, unallocated = densities(totals, zonal, table)
    assert unallocated == {"builtup_emission_tc": {"b": 50.0}} and "1 unit(s) have a total but no built_up cells" in caplog.text
    assert dens[0, 0, [c.code for c in table.classes].index(13)] == pytest.approx(100.0 / 10.0)


def test_statistics_years_outside_the_land_cover_years(tmp_path):
    from lucr.errors import ConfigError

    stats = tmp_path / "s.csv"
    stats.write_text("adcode,year,energy_use [tce]\n520000,2018,1\n520000,2019,1\n")
    cfg = {
        "landcover": {"path": str(SAMPLE_RASTER), "year": 2019}, "legend": "igbp", "risk": None,
        "zones": [{"level": "province", "path": str(SAMPLE_PROVINCES), "layer": "provinces", "id": "adcode", "name": "name"}],
        "statistics": {"path": str(stats), "id": "adcode", "level": "province", "demand": None, "allocate": False, "year_policy": "error"},
        "output": {"dir": str(tmp_path / "out"), "tables": ["csv"], "report": False},
    }
    with pytest.raises(ConfigError, match=r"statistics years \[2018\] are not land-cover years of the run \(\[2019\]\)"):
        run(parse_config(cfg, tmp_path))
    assert not (tmp_path / "out").exists()
    cfg["statistics"]["year_policy"] = "nearest"
    result = run(parse_config(cfg, tmp_path))
    inv = result.inventory.tables["inventory_provinces"].set_index(["unit_id", "year"])
    assert inv.loc[("520000", 2018), "ecosystem_fixation_tc"] == inv.loc[("520000", 2019), "ecosystem_fixation_tc"]  # 2019's areas, said


def test_illustrative_raw_statistics_run_end_to_end(tmp_path):
    """The bundled illustrative table (made-up raw statistics of two provinces): every component
    computed from the raw columns, CBC and OBC defined, the demand forecast to 2030."""
    result = run(load_config(CONFIG_DIR / "illustrative_statistics_provinces.yaml"), out_dir=tmp_path)
    t = result.inventory.tables["inventory"].set_index(["unit_id", "year"])
    row = t.loc[("520000", 2019)]
    farm = (92e4 * 895.6 + 5520e3 * 16.47 + 2650e4 * 0.18 + 1150e3 * 266.48 + 5.2e7 * 5.18) / 1000
    assert row["farm_input_emission_tc"] == pytest.approx(farm, rel=1e-12)
    assert row["builtup_emission_tc"] == pytest.approx(0.90 * (6000 + 8000) * 1e4 * 0.7476, rel=1e-12)
    assert row["crop_uptake_tc"] == pytest.approx((0.4709 * 422e4 + 0.4709 * 455e4 + 0.4853 * 40e4) / 0.40, rel=1e-12)
    assert (t["cbc"] > 0).all() and (t["obc"] > 0).all()
    demand = result.inventory.tables["inventory_eco_land_demand"].set_index("unit_id")
    assert demand["increase_carbon_pct"].notna().all() and demand["increase_oxygen_pct"].notna().all()


def test_validate_checks_the_statistics(tmp_path, capsys):
    """lucr validate reads the statistics as the run would: a statistics-only config is valid,
    a table with an unknown variable is refused before any run."""
    from lucr.validate import validate_config
    from tests.test_bad_inputs import run_cli

    report = validate_config(load_config(CONFIG_DIR / "guizhou_seed001_inventory.yaml"))
    assert any("guizhou_seed001_table5.csv: 1 units, years 2005-2019" in n for n in report.notes), report.notes
    bad = tmp_path / "s.csv"
    bad.write_text("unit_id,year,fertilizer [t]\na,2019,1\n")
    code, shown = run_cli(tmp_path, {"statistics": {"path": str(bad)}}, capsys=capsys, command="validate")
    assert code == 2 and "unknown variable 'fertilizer' (did you mean 'fertiliser'?)" in shown and "Fix:" in shown
