"""Spatial pattern (methods.md §5, §7): weights, Moran's I / LISA against esda, centre of gravity by hand.

Oracles: hand-computed centres, ellipses and trajectory steps (``pyproj.Geod`` for the
geodesic steps); ``esda.Moran`` / ``esda.Moran_Local`` called directly on the same
weights and seed; ``libpysal`` KNN / DistanceBand on the same centroids.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import esda
import geopandas as gpd
import libpysal
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS, Geod, Transformer

from lucr.analysis import autocorrelation as ac
from lucr.analysis import gravity as grav
from lucr.analysis import weights as sw
from lucr.errors import AnalysisError

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "china_admin_cnmaps"
COUNTIES = Path("/work/shared/data/china_admin_cnmaps/china_counties_simplified.gpkg")
EASE = CRS.from_epsg(6933)  # WGS 84 / NSIDC EASE-Grid 2.0 Global: cylindrical equal-area, metres
SEED = 12345


@pytest.fixture(scope="module")
def provinces() -> gpd.GeoDataFrame:
    return gpd.read_file(SAMPLE / "china_provinces_lite.gpkg", layer="provinces")


@pytest.fixture(scope="module")
def cities() -> gpd.GeoDataFrame:
    return gpd.read_file(SAMPLE / "china_cities_lite.gpkg", layer="cities")


def log_area(units: gpd.GeoDataFrame) -> pd.Series:
    """A real-looking, spatially patterned variable: log of the unit area (km2)."""
    return pd.Series(np.log(units["area_km2"].to_numpy()), index=units["adcode"])


def squares(centres_m, ids=None, crs=EASE, half=1.0) -> gpd.GeoDataFrame:
    """Small squares (side 2*half m) centred on the given points: centroid = centre exactly."""
    ids = ids or [f"u{i}" for i in range(len(centres_m))]
    geoms = [shapely.box(x - half, y - half, x + half, y + half) for x, y in centres_m]
    return gpd.GeoDataFrame({"uid": ids}, geometry=geoms, crs=crs)


# ----------------------------------------------------------------------------- centre of gravity by hand


def test_centre_two_units_weights_1_and_3_lies_three_quarters_of_the_way():
    units = squares([(0.0, 0.0), (1_000_000.0, 0.0)], ids=["a", "b"])
    panel = pd.DataFrame({2000: [1.0, 3.0], 2010: [3.0, 1.0]}, index=["a", "b"])
    centres = grav.centre_of_gravity(units, "uid", panel)
    # X = (1 * 0 + 3 * 1000 km) / (1 + 3) = 750 km; swapped weights: 250 km
    assert centres["x"].tolist() == pytest.approx([750_000.0, 250_000.0], abs=1e-6)
    assert centres["y"].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert centres["total_weight"].tolist() == [4.0, 4.0]
    assert centres["n_units"].tolist() == [2, 2]
    lon, lat = Transformer.from_crs(EASE, 4326, always_xy=True).transform(750_000.0, 0.0)
    assert (centres.loc[0, "lon"], centres.loc[0, "lat"]) == pytest.approx((lon, lat))


def test_centre_of_symmetric_layout_is_the_symmetry_centre():
    units = squares([(-300_000.0, -300_000.0), (300_000.0, -300_000.0), (-300_000.0, 300_000.0), (300_000.0, 300_000.0)], half=50_000.0)
    centres = grav.centre_of_gravity(units, "uid", pd.Series(2.5, index=units["uid"], name=2020))
    assert centres.loc[0, ["x", "y", "lon", "lat"]].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0], abs=1e-6)
    assert centres.loc[0, "year"] == 2020


def test_ellipse_of_cross_layout_by_hand():
    # points (+-2, 0), (0, +-1) km, equal weights: var_x = 8/4 = 2 km2, var_y = 2/4 = 0.5 km2, cov 0
    units = squares([(2000.0, 0.0), (-2000.0, 0.0), (0.0, 1000.0), (0.0, -1000.0)])
    ellipse = grav.deviational_ellipse(units, "uid", pd.Series(1.0, index=units["uid"]))
    assert ellipse["major_km"] == pytest.approx(np.sqrt(2.0), rel=1e-9)
    assert ellipse["minor_km"] == pytest.approx(np.sqrt(0.5), rel=1e-9)
    assert ellipse["rotation_deg"] == pytest.approx(90.0)       # major axis east-west
    assert ellipse["flattening"] == pytest.approx(0.5)
    # the polygon (EPSG:4326) reaches +-major along x and +-minor along y in the metric CRS
    ring = gpd.GeoSeries([ellipse["geometry"]], crs=4326).to_crs(EASE).iloc[0]
    assert ring.bounds == pytest.approx((-1000 * np.sqrt(2), -1000 * np.sqrt(0.5), 1000 * np.sqrt(2), 1000 * np.sqrt(0.5)), abs=1e-3)
    # ArcGIS Pro's "1 standard deviation" ellipse is sqrt(2) larger
    arcgis = grav.deviational_ellipse(units, "uid", pd.Series(1.0, index=units["uid"]), n_std=np.sqrt(2))
    assert arcgis["major_km"] == pytest.approx(2.0) and arcgis["minor_km"] == pytest.approx(1.0)


@pytest.mark.parametrize("points, rotation", [
    ([(0.0, 2000.0), (0.0, -2000.0), (1000.0, 0.0), (-1000.0, 0.0)], 0.0),        # north-south
    ([(1000.0, 1000.0), (-1000.0, -1000.0), (300.0, -300.0), (-300.0, 300.0)], 45.0),   # NE-SW
    ([(-1000.0, 1000.0), (1000.0, -1000.0), (300.0, 300.0), (-300.0, -300.0)], 135.0),  # NW-SE
])
def test_ellipse_rotation_clockwise_from_north(points, rotation):
    units = squares(points)
    panel = pd.DataFrame({2000: 1.0, 2010: 2.0}, index=units["uid"])
    ellipses = grav.deviational_ellipses(units, "uid", panel)
    assert ellipses["rotation_deg"].tolist() == pytest.approx([rotation, rotation], abs=1e-9)
    assert ellipses.crs.to_epsg() == 4326 and len(ellipses.geometry.iloc[0].exterior.coords) == 73


def test_ellipse_of_weight_on_one_unit_is_a_point():
    units = squares([(0.0, 0.0), (5000.0, 0.0), (0.0, 7000.0)])
    ellipse = grav.deviational_ellipses(units, "uid", pd.DataFrame({2000: [0.0, 4.0, 0.0]}, index=units["uid"])).iloc[0]
    assert ellipse["major_km"] == 0.0 and ellipse["minor_km"] == 0.0
    assert np.isnan(ellipse["rotation_deg"]) and np.isnan(ellipse["flattening"]) and ellipse["geometry"] is None


def test_trajectory_step_due_north_matches_pyproj_geod():
    centres = pd.DataFrame({"year": [2000, 2005], "lon": [110.0, 110.0], "lat": [30.0, 31.0]})
    step = grav.gravity_trajectory(centres).iloc[0]
    _, _, metres = Geod(ellps="WGS84").inv(110.0, 30.0, 110.0, 31.0)
    assert step["distance_km"] == pytest.approx(metres / 1000, rel=1e-12)
    assert 110.8 < step["distance_km"] < 111.0   # one degree of latitude at 30N
    assert step["bearing_deg"] == pytest.approx(0.0, abs=1e-9) and step["direction"] == "N"
    assert step["speed_km_per_year"] == pytest.approx(step["distance_km"] / 5)


def test_trajectory_due_east_at_the_equator_and_compass_labels():
    centres = pd.DataFrame({"year": [2020, 2000, 2010, 2015], "lon": [-1.0, 0.0, 1.0, 0.0], "lat": [-1.0, 0.0, 0.0, 0.0]})
    steps = grav.gravity_trajectory(centres)                       # sorted by year
    assert steps[["from_year", "to_year"]].values.tolist() == [[2000, 2010], [2010, 2015], [2015, 2020]]
    east = steps.iloc[0]
    assert east["bearing_deg"] == pytest.approx(90.0) and east["direction"] == "E"
    assert east["distance_km"] == pytest.approx(2 * np.pi * 6378.137 / 360, rel=1e-9)   # 1 degree of the equator
    assert steps["direction"].tolist() == ["E", "W", "SW"]
    assert steps["bearing_deg"].tolist()[1] == pytest.approx(270.0)
    assert steps["cumulative_km"].tolist() == pytest.approx(np.cumsum(steps["distance_km"]).tolist())
    assert steps["speed_km_per_year"].tolist()[0] == pytest.approx(east["distance_km"] / 10)


def test_trajectory_features_points_and_lines():
    centres = pd.DataFrame({"year": [2000, 2005, 2010], "lon": [110.0, 110.0, 111.0], "lat": [30.0, 31.0, 31.0]})
    steps = grav.gravity_trajectory(centres)
    points, lines = grav.trajectory_features(centres, steps)
    assert points.crs.to_epsg() == 4326 and lines.crs.to_epsg() == 4326
    assert [(p.x, p.y) for p in points.geometry] == [(110.0, 30.0), (110.0, 31.0), (111.0, 31.0)]
    assert [list(g.coords) for g in lines.geometry] == [[(110.0, 30.0), (110.0, 31.0)], [(110.0, 31.0), (111.0, 31.0)]]
    assert lines["direction"].tolist() == ["N", "E"]
    _, no_lines = grav.trajectory_features(centres, None)
    assert len(no_lines) == 0


def test_gravity_on_cities_vectorised_over_years(cities):
    rng = np.random.default_rng(0)
    panel = pd.DataFrame(rng.random((len(cities), 3)), index=cities["adcode"], columns=[2000, 2010, 2020])
    centres = grav.centre_of_gravity(cities, "adcode", panel)
    one = grav.centre_of_gravity(cities, "adcode", panel[[2010]])
    assert one.loc[0, ["x", "y"]].tolist() == pytest.approx(centres.loc[1, ["x", "y"]].tolist())
    crs = sw.equal_area_crs(cities)
    xy = cities.to_crs(crs).centroid
    w = panel[2020].to_numpy()
    assert centres.loc[2, "x"] == pytest.approx((w * xy.x.to_numpy()).sum() / w.sum())
    assert 100 < centres["lon"].mean() < 120 and 25 < centres["lat"].mean() < 40   # inside China
    ellipses = grav.deviational_ellipses(cities, "adcode", panel)
    assert (ellipses["major_km"] >= ellipses["minor_km"]).all() and ellipses.geometry.is_valid.all()


# ----------------------------------------------------------------------------- weights


def test_equal_area_crs_for_geographic_and_projected(provinces):
    crs = sw.equal_area_crs(provinces)
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    minx, miny, maxx, maxy = provinces.total_bounds
    assert params["Longitude of false origin"] == pytest.approx((minx + maxx) / 2)
    assert params["Latitude of 1st standard parallel"] == pytest.approx(miny + (maxy - miny) / 6)
    assert params["Latitude of 2nd standard parallel"] == pytest.approx(miny + 5 * (maxy - miny) / 6)
    # equal-area: planar areas in the CRS = the geodesic areas of the bundled table
    area_km2 = provinces.to_crs(crs).area.to_numpy() / 1e6
    assert area_km2 == pytest.approx(provinces["area_km2"].to_numpy(), rel=2e-3)
    assert sw.equal_area_crs(provinces.to_crs(EASE)) == EASE


def test_province_islands_reported_and_joined_or_excluded(provinces, caplog):
    caplog.set_level(logging.INFO, logger="lucr")
    joined = sw.build_weights(provinces, "adcode", kind="queen", islands="nearest")
    assert sorted(joined.islands) == ["460000", "710000"]            # Hainan, Taiwan
    assert "460000" in caplog.text and "710000" in caplog.text
    assert joined.excluded == [] and joined.w.n == 34 and not joined.w.islands
    assert joined.ids == provinces["adcode"].tolist()
    assert joined.w.transform == "R" and all(sum(v) == pytest.approx(1.0) for v in joined.w.weights.values())
    assert joined.w.neighbors["710000"] == ["350000"]                  # Taiwan -> Fujian (nearest coast)
    assert joined.w.neighbors["460000"] == ["440000"]                  # Hainan -> Guangdong, not Macau's nearer centroid
    assert "710000" in joined.w.neighbors["350000"]                   # symmetric link
    excluded = sw.build_weights(provinces, "adcode", kind="rook", islands="exclude")
    assert sorted(excluded.excluded) == ["460000", "710000"] and excluded.w.n == 32
    assert not set(excluded.excluded) & set(excluded.ids)


def test_knn_and_distance_weights_match_libpysal_on_the_same_centroids(provinces):
    crs = sw.equal_area_crs(provinces)
    xy = np.column_stack([provinces.to_crs(crs).centroid.x, provinces.to_crs(crs).centroid.y])
    ids = provinces["adcode"].tolist()
    knn = sw.build_weights(provinces, "adcode", kind="knn", k=4)
    oracle = libpysal.weights.KNN.from_array(xy, k=4, ids=ids)
    assert knn.islands == [] and all(set(knn.w.neighbors[i]) == set(oracle.neighbors[i]) for i in ids)
    band = sw.build_weights(provinces, "adcode", kind="distance", distance_km=500, islands="exclude")
    oracle = libpysal.weights.DistanceBand.from_array(xy, threshold=500_000, ids=ids, silence_warnings=True)
    assert sorted(band.islands) == sorted(oracle.islands) and band.islands
    assert all(set(band.w.neighbors[i]) == set(oracle.neighbors[i]) for i in band.ids)
    joined = sw.build_weights(provinces, "adcode", kind="distance", distance_km=500, islands="nearest", island_k=2)
    assert all(len(joined.w.neighbors[i]) >= 2 for i in joined.islands) and not joined.w.islands


# ----------------------------------------------------------------------------- Moran's I against esda


@pytest.fixture(scope="module", params=["provinces-nearest", "cities-exclude"])
def case(request, provinces, cities):
    level, policy = request.param.split("-")
    units = provinces if level == "provinces" else cities
    return units, sw.build_weights(units, "adcode", kind="queen", islands=policy), log_area(units)


def test_global_moran_equals_esda(case):
    _, weights, values = case
    result = ac.global_moran(values, weights, permutations=999, seed=SEED)
    y = values.loc[weights.ids].to_numpy()
    np.random.seed(SEED)
    oracle = esda.Moran(y, weights.w, permutations=999)
    assert (result.I, result.expected_I, result.z_norm, result.p_norm) == (oracle.I, oracle.EI, oracle.z_norm, oracle.p_norm)
    assert (result.z_sim, result.p_sim, result.n) == (oracle.z_sim, oracle.p_sim, len(weights.ids))
    assert result.I > 0.15 and result.p_sim < 0.06     # area is clustered (small east, large west)


def test_local_moran_equals_esda(case):
    _, weights, values = case
    local = ac.local_moran(values, weights, permutations=999, seed=SEED, alpha=0.05)
    y = values.loc[weights.ids].to_numpy()
    oracle = esda.Moran_Local(y, weights.w, permutations=999, n_jobs=1, seed=SEED)
    kept = local.loc[weights.ids]
    assert np.array_equal(kept["local_i"].to_numpy(), oracle.Is)
    assert np.array_equal(kept["p_sim"].to_numpy(), oracle.p_sim)
    assert np.array_equal(kept["z"].to_numpy(), oracle.z)
    assert kept["quadrant"].tolist() == [ac.QUADRANTS[q] for q in oracle.q]
    assert kept["lag_z"].to_numpy() == pytest.approx(libpysal.weights.lag_spatial(weights.w, oracle.z))
    significant = oracle.p_sim < 0.05
    assert (kept["cluster"].to_numpy()[significant] == kept["quadrant"].to_numpy()[significant]).all()
    assert (kept["cluster"].to_numpy()[~significant] == "not significant").all()
    assert kept["spatial_type"].map({"aggregated": 1, "transitional": 1, "dispersed": 1}).notna().all()
    if weights.excluded:
        islands = local.loc[weights.excluded]
        assert (islands["cluster"] == "excluded (island)").all() and islands["local_i"].isna().all()
        assert islands["value"].tolist() == values.loc[weights.excluded].tolist()


def test_spatial_types_follow_methods_section_7():
    assert {c: ac.SPATIAL_TYPES[c] for c in ("HH", "LL", "HL", "LH", "not significant")} == {
        "HH": "aggregated", "LL": "aggregated", "HL": "transitional", "LH": "transitional", "not significant": "dispersed",
    }


def test_same_seed_same_p_sim_and_global_rng_untouched(provinces):
    weights = sw.build_weights(provinces, "adcode")
    values = log_area(provinces)
    np.random.seed(7)
    expected_next = np.random.random()
    np.random.seed(7)
    first = ac.global_moran(values, weights, permutations=199, seed=3)
    assert np.random.random() == expected_next            # caller's generator not disturbed
    assert ac.global_moran(values, weights, permutations=199, seed=3).p_sim == first.p_sim
    a = ac.local_moran(values, weights, permutations=199, seed=3)
    b = ac.local_moran(values, weights, permutations=199, seed=3)
    c = ac.local_moran(values, weights, permutations=199, seed=4)
    assert np.array_equal(a["p_sim"], b["p_sim"]) and not np.array_equal(a["p_sim"], c["p_sim"])


def test_moran_panel_survives_a_constant_year(provinces, caplog):
    weights = sw.build_weights(provinces, "adcode", islands="exclude")
    values = log_area(provinces).drop(index=weights.excluded)
    panel = pd.DataFrame({2000: values, 2010: 5.0, 2020: values**2})
    with caplog.at_level(logging.WARNING, logger="lucr"):
        moran, lisa = ac.moran_panel(panel, weights, "cbc", permutations=99, seed=SEED, alpha=0.05)
    assert "all values are equal" in caplog.text
    assert moran["status"].tolist() == ["ok", "undefined: all values equal", "ok"]
    assert np.isnan(moran.loc[1, "I"]) and moran.loc[0, "I"] == ac.global_moran(panel[2000], weights, permutations=99, seed=SEED).I
    assert len(lisa) == 3 * len(provinces) and set(lisa["variable"]) == {"cbc"}
    flat = lisa[lisa["year"] == 2010]
    assert (flat["status"] == "undefined: all values equal").all() and flat["local_i"].isna().all()
    direct = ac.local_moran(panel[2020], weights, permutations=99, seed=SEED)
    year = lisa[lisa["year"] == 2020].set_index("unit_id")
    assert np.array_equal(year.loc[direct.index, "p_sim"].to_numpy(), direct["p_sim"].to_numpy(), equal_nan=True)
    assert (year.loc[weights.excluded, "cluster"] == "excluded (island)").all()


# ----------------------------------------------------------------------------- mistakes


def test_weights_errors(provinces):
    with pytest.raises(AnalysisError, match="at least 3 units"):
        sw.build_weights(provinces.head(1), "adcode")
    with pytest.raises(AnalysisError, match="repeat.*110000"):
        sw.build_weights(pd.concat([provinces, provinces.head(1)]), "adcode")
    with pytest.raises(AnalysisError, match="no coordinate reference system"):
        sw.build_weights(provinces.set_crs(None, allow_override=True), "adcode")
    with pytest.raises(AnalysisError, match="unknown weights kind 'bishop'"):
        sw.build_weights(provinces, "adcode", kind="bishop")
    with pytest.raises(AnalysisError, match="distance_km"):
        sw.build_weights(provinces, "adcode", kind="distance")
    with pytest.raises(AnalysisError, match="no id column 'code'"):
        sw.build_weights(provinces, "code")


def test_moran_errors(provinces):
    weights = sw.build_weights(provinces, "adcode", islands="exclude")
    values = log_area(provinces)
    with pytest.raises(AnalysisError, match=r"Moran's I is undefined when all values are equal \(zero variance\)"):
        ac.global_moran(pd.Series(1.0, index=weights.ids), weights)
    with pytest.raises(AnalysisError, match="all values are equal"):
        ac.local_moran(pd.Series(1.0, index=weights.ids), weights)
    with pytest.raises(AnalysisError, match="no value.*110000"):
        ac.global_moran(values.drop(index="110000"), weights)
    with pytest.raises(AnalysisError, match="match no polygon.*999999"):
        ac.global_moran(pd.concat([values, pd.Series({"999999": 1.0})]), weights)
    numeric_ids = pd.Series(values.to_numpy(), index=values.index.astype(int))
    with pytest.raises(AnalysisError, match="no value"):
        ac.global_moran(numeric_ids, weights)
    ac.global_moran(values, weights, permutations=0)          # excluded islands' values are ignored


def test_gravity_errors(provinces):
    panel = pd.DataFrame({2000: 1.0, 2010: 1.0}, index=provinces["adcode"])
    panel.loc[["110000", "120000"], 2010] = -1.0
    with pytest.raises(AnalysisError, match="non-negative weights; 2010 has negative values for units 110000, 120000"):
        grav.centre_of_gravity(provinces, "adcode", panel)
    with pytest.raises(AnalysisError, match="positive total weight"):
        grav.centre_of_gravity(provinces, "adcode", panel[[2000]] * 0)
    with pytest.raises(AnalysisError, match="match no polygon: 999999"):
        grav.centre_of_gravity(provinces, "adcode", pd.concat([panel[[2000]], pd.DataFrame({2000: [1.0]}, index=["999999"])]))
    with pytest.raises(AnalysisError, match="non-negative"):
        grav.deviational_ellipses(provinces, "adcode", panel)
    with pytest.raises(AnalysisError, match="must be projected"):
        grav.centre_of_gravity(provinces, "adcode", panel[[2000]], crs=4326)


# ----------------------------------------------------------------------------- performance


@pytest.mark.skipif(not COUNTIES.exists(), reason="county polygons not available")
def test_lisa_999_permutations_on_2875_counties_takes_seconds():
    counties = gpd.read_file(COUNTIES)
    weights = sw.build_weights(counties, "adcode", kind="knn", k=6)     # queen takes ~4 s to build here
    values = log_area(counties)
    ac.local_moran(values, weights, permutations=9)                   # numba compiles on the first call
    start = time.perf_counter()
    local = ac.local_moran(values, weights, permutations=999, seed=SEED)
    elapsed = time.perf_counter() - start
    assert len(local) == 2875 and elapsed < 5.0, f"LISA took {elapsed:.1f} s"


def test_results_do_not_depend_on_the_order_of_the_polygons(provinces):
    values = log_area(provinces)
    forward = ac.local_moran(values, sw.build_weights(provinces, "adcode"), permutations=999, seed=SEED)
    backward = ac.local_moran(values.iloc[::-1], sw.build_weights(provinces.iloc[::-1], "adcode"), permutations=999, seed=SEED)
    pd.testing.assert_frame_equal(forward.sort_index(), backward.sort_index())


def test_a_projection_that_is_not_equal_area_is_not_used_for_centroids(provinces):
    weights = pd.DataFrame({2019: provinces["area_km2"].to_numpy()}, index=provinces["adcode"])
    lonlat = grav.centre_of_gravity(provinces, "adcode", weights)
    mercator = grav.centre_of_gravity(provinces.to_crs(3857), "adcode", weights)
    assert mercator["lon"].iloc[0] == pytest.approx(lonlat["lon"].iloc[0], abs=1e-3)
    assert mercator["lat"].iloc[0] == pytest.approx(lonlat["lat"].iloc[0], abs=1e-3)


def test_values_equal_up_to_rounding_are_constant(provinces):
    weights = sw.build_weights(provinces, "adcode")
    values = pd.Series(np.where(np.arange(len(provinces)) % 2, 0.3, 0.1 + 0.2), index=provinces["adcode"])
    with pytest.raises(AnalysisError, match="undefined when all values are equal"):
        ac.global_moran(values, weights)
    with pytest.raises(AnalysisError, match="infinite values"):
        ac.global_moran(values.where(values.index != values.index[0], np.inf), weights)


def test_nearest_shapes_equals_brute_force_distances(cities):
    shapes = cities.geometry.to_crs(sw.equal_area_crs(cities)).to_numpy()
    for i in (0, 57, 200, len(shapes) - 1):
        gap = shapely.distance(shapes[i], shapes)
        gap[i] = np.inf
        assert sw._nearest_shapes(shapes, i, 3) == np.argsort(gap, kind="stable")[:3].tolist()
