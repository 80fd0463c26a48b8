"""True cell area (lucr.area) against pyproj's geodesic polygon areas."""

import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Geod
from rasterio.crs import CRS

from lucr.area import NotEqualAreaWarning, fixed_point_scale_bits, from_fixed_point, is_equal_area, row_cell_area_ha, to_fixed_point
from lucr.grid import Grid

WGS84 = Geod(ellps="WGS84")


def geod_cell_area_ha(lon0: float, lat_bottom: float, dlon: float, dlat: float, n: int = 200) -> float:
    """Area of a lat/lon cell from pyproj.Geod, its parallels densified into n geodesic pieces."""
    lons = np.linspace(lon0, lon0 + dlon, n + 1)
    xs = np.concatenate([lons, lons[::-1]])
    ys = np.concatenate([np.full(n + 1, lat_bottom), np.full(n + 1, lat_bottom + dlat)])
    area, _ = WGS84.polygon_area_perimeter(xs, ys)
    return abs(area) / 1e4


@pytest.mark.parametrize("lat", [0.0, 45.0, 80.0])
@pytest.mark.parametrize("cell_deg", [0.05, 1 / 3600, 0.25])
def test_geographic_cell_area_matches_geod(lat, cell_deg):
    grid = Grid(3, 3, Affine(cell_deg, 0, 10.0, 0, -cell_deg, lat + 3 * cell_deg), CRS.from_epsg(4326))
    ours = row_cell_area_ha(grid)
    for row in range(3):
        top = lat + (3 - row) * cell_deg
        ref = geod_cell_area_ha(10.0, top - cell_deg, cell_deg, cell_deg)
        assert ours[row] == pytest.approx(ref, rel=1e-6), (lat, cell_deg, row)
    # a 30 m-like cell at 45 deg is about 70 % of one at the equator
    if cell_deg == 1 / 3600 and lat == 45.0:
        eq = geod_cell_area_ha(10.0, 0.0, cell_deg, cell_deg)
        assert ours[2] / eq == pytest.approx(0.707, abs=0.005)


def test_projected_equal_area_and_warning():
    albers = CRS.from_proj4("+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=WGS84 +units=m")
    assert is_equal_area(albers) and not is_equal_area(CRS.from_epsg(3857)) and not is_equal_area(CRS.from_epsg(4326))
    grid = Grid(4, 5, Affine(30, 0, 0, 0, -30, 0), albers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(row_cell_area_ha(grid), np.full(4, 0.09))
    with pytest.warns(NotEqualAreaWarning, match="not an equal-area"):
        row_cell_area_ha(Grid(4, 5, Affine(30, 0, 0, 0, -30, 0), CRS.from_epsg(3857)))
    assert is_equal_area(CRS.from_epsg(3035)) and is_equal_area(CRS.from_epsg(6933))


def test_fixed_point_round_trip_and_headroom():
    grid = Grid(3600, 7200, Affine(0.05, 0, -180, 0, -0.05, 90), CRS.from_epsg(4326))
    area = row_cell_area_ha(grid)
    bits = fixed_point_scale_bits(grid, area)
    total_fx = to_fixed_point(area, bits).astype(object).sum() * grid.width
    assert total_fx < 2**62  # the whole globe fits in int64
    # the globe's area (WGS84 authalic sphere 510,065,622 km2) within 1e-6
    assert float(area.sum() * grid.width) == pytest.approx(5.10065622e10, rel=1e-6)
    # resolution of the fixed point: 2**-bits m2, ~1e-8 of the smallest (polar) 0.05 deg cell
    np.testing.assert_allclose(from_fixed_point(to_fixed_point(area, bits), bits), area, rtol=2e-8)


def test_sample_valid_area_vs_polygon_geodesic_area(fast_run):
    """China's cells (by centre) against the polygons' geodesic area: they differ by the edge effect only."""
    prov = fast_run.tables["province"]
    cells_ha = float((prov["valid_fraction"] * prov["area_ha"]).sum())
    poly_ha = float(prov["polygon_area_ha"].sum())
    rel = cells_ha / poly_ha - 1
    print(f"\nsample: valid cell area inside China {cells_ha / 1e6:,.3f} Mha, polygons' geodesic area {poly_ha / 1e6:,.3f} Mha, difference {100 * rel:+.3f} %")
    assert abs(rel) < 0.005
    with rasterio.open(fast_run.summary["landcover"]) as src:
        assert src.crs.to_epsg() == 4326
