"""Zonal statistics on the bundled sample: conservation, engines, and an independent exactextract call."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pyproj import Geod

from lucr.coefficients import load_table
from tests.conftest import SAMPLE_CITIES, SAMPLE_RASTER
from tests.test_exact_engine import coverage_weighted_class_areas

REL = 1e-9


def test_conservation_units_plus_outside_equals_grid(fast_run):
    """sum over units + area outside all units = grid total, for area, source, sink and net (1e-9)."""
    s = fast_run.summary
    for level, frame in fast_run.tables.items():
        valid = float((frame["valid_fraction"] * frame["area_ha"]).sum())
        assert valid + s["outside_units"]["valid_area_ha"] == pytest.approx(s["whole_raster"]["valid_area_ha"], rel=REL), level
        for col in ("source_tc", "sink_tc", "net_tc"):
            assert frame[col].sum() + s["outside_units"][col] == pytest.approx(s["whole_raster"][col], rel=REL), (level, col)


def test_grid_totals_match_an_independent_numpy_pass(fast_run):
    """Class areas of the whole grid: numpy histogram per row x geodesic row area (no lucr code)."""
    with rasterio.open(SAMPLE_RASTER) as src:
        codes, t = src.read(1), src.transform
    geod = Geod(ellps="WGS84")
    expected = {}
    for r in range(codes.shape[0]):
        top = t.f + t.e * r
        lons = np.linspace(0, t.a, 101)
        area, _ = geod.polygon_area_perimeter(np.r_[lons, lons[::-1]], np.r_[np.full(101, top + t.e), np.full(101, top)])
        counts = np.bincount(codes[r], minlength=256)
        for code in np.flatnonzero(counts):
            expected[int(code)] = expected.get(int(code), 0.0) + counts[code] * abs(area) / 1e4
    got = fast_run.summary["whole_raster"]["class_area_ha"]
    for code, ha in got.items():
        assert ha == pytest.approx(expected.get(int(code), 0.0), rel=1e-6), code
    table = load_table("igbp")
    net = sum(c.coef * expected.get(c.code, 0.0) for c in table.classes)
    assert fast_run.summary["whole_raster"]["net_tc"] == pytest.approx(net, rel=1e-6)


def test_provinces_are_exact_sums_of_their_cities(fast_run):
    prov = fast_run.tables["province"].set_index("unit_id")
    cities = fast_run.tables["city"].groupby("parent_id")[["area_ha", "source_tc", "sink_tc", "net_tc", "area_ha_class_13"]].sum()
    for col in cities.columns:
        np.testing.assert_allclose(prov.loc[cities.index, col], cities[col], rtol=1e-12)


def test_fast_vs_exact_engine_province_totals(fast_run, exact_run):
    """Cell-centre vs coverage-fraction zonal totals per province.

    Areas agree to <= 1 % for every province over 1 Mha (the max observed is printed:
    0.86 %, Beijing). Fluxes of a province hinge on a few edge cells of rare classes
    (a 0.05 deg built-up cell is ~140 kt C/yr), so per province only their median
    is held to 1 % and the max is printed; national sums agree to 1 %.
    """
    fast = fast_run.tables["province"].set_index("unit_id")
    exact = exact_run.tables["province"].set_index("unit_id")
    big = exact["valid_fraction"] * exact["area_ha"] > 1e6  # provinces of more than 1 Mha (~400 cells)
    lines = []
    for col in ("area_ha", "source_tc", "sink_tc", "net_tc"):
        rel = (fast[col] / exact[col] - 1).abs()[big]
        lines.append(f"{col}: max {rel.max():.2%} ({rel.idxmax()}), median {rel.median():.3%}")
        assert rel.median() <= 0.01, col
        assert abs(fast[col].sum() / exact[col].sum() - 1) <= 0.01, col
        if col == "area_ha":
            assert rel.max() <= 0.01
    print("\nfast vs exact engine, provinces > 1 Mha: " + "; ".join(lines))


def test_exact_engine_equals_direct_exactextract(exact_run):
    """Our exact engine vs exactextract called here, geodesic cell areas, boundary fractions in float64 (1e-9).

    exactextract's own fractions are float32: as they are, they agree to ~5e-8 of a cell.
    """
    cities = gpd.read_file(SAMPLE_CITIES)
    exact, as_is = coverage_weighted_class_areas(SAMPLE_RASTER, cities, "adcode")
    ours = exact_run.tables["city"].set_index("unit_id")
    worst = worst_as_is = 0.0
    for (uid, code), ref in exact.items():
        got = ours.loc[uid, f"area_ha_class_{code}"]
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-6), (uid, code)  # 1e-6 ha: 1e-9 of a 0.05-degree cell
        worst = max(worst, abs(got - ref) / max(ref, 1e3))
        worst_as_is = max(worst_as_is, abs(got - as_is[(uid, code)]) / ours.loc[uid, "area_ha"])
    print(f"\nexact engine vs exactextract, cities: max rel {worst:.1e} (float32 fractions as they are: {worst_as_is:.1e} of the unit area)")
    assert worst_as_is < 1e-7


def test_table_schema_and_values(fast_run):
    table = load_table("igbp")
    for level, frame in fast_run.tables.items():
        expected = ["unit_id", "name", "parent_id", "level", "area_ha", "valid_fraction"] + [f"area_ha_class_{c}" for c in table.codes] + ["source_tc", "sink_tc", "net_tc", "net_tc_per_ha", "cbc_landcover"]
        assert list(frame.columns[: len(expected)]) == expected
        assert (frame["source_tc"] >= 0).all() and (frame["sink_tc"] <= 0).all()
        np.testing.assert_allclose(frame["net_tc"], frame["source_tc"] + frame["sink_tc"])
        assert frame["valid_fraction"].between(0, 1 + 1e-12).all()
        per_ha = frame["net_tc_per_ha"].dropna()
        sinks = frame["sink_tc"] < 0
        np.testing.assert_allclose(frame.loc[sinks, "cbc_landcover"], frame.loc[sinks, "source_tc"] / -frame.loc[sinks, "sink_tc"])
        assert frame.loc[~sinks, "cbc_landcover"].isna().all()
        assert per_ha.between(table.coefs.min() - 1e-9, table.coefs.max() + 1e-9).all()  # a mean of the coefficients
    prov = fast_run.tables["province"].set_index("unit_id")
    assert len(prov) == 34 and len(fast_run.tables["city"]) == 370
    assert prov["valid_fraction"].min() > 0.99  # the raster covers China with data
    # forest-dominated provinces (forest sink above built-up + cropland sources) are net sinks
    forest = prov[[f"area_ha_class_{c}" for c in (1, 2, 3, 4, 5, 6, 8, 9)]].sum(axis=1)
    dominated = forest * 0.644 > prov["area_ha_class_13"] * 55.8 + (prov["area_ha_class_12"] + prov["area_ha_class_14"]) * 0.422
    assert {"530000", "520000", "540000"} <= set(prov.index[dominated])  # Yunnan, Guizhou, Tibet
    assert (prov.loc[dominated, "net_tc"] < 0).all()
    assert (prov.loc[["110000", "310000", "440000"], "net_tc"] > 0).all()  # Beijing, Shanghai, Guangdong
