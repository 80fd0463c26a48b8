"""InVEST parity: natcap.invest.carbon (3.20.2, run in .venv-peers by `make peers`) on the same
inputs as lucr. Plum Island 1985 -> 1999 with a pool table: total storage per date and total
sequestration equal to 1e-6 relative, per-cell max |difference| <= 1e-3 t C/ha on the storage
and change maps, and the valuation. Skips locally without the peer venv; fails under CI=true."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import rasterio

from lucr.config import parse_config
from lucr.runner import run
from tests.conftest import REPO
from tests.peers import invest_python, run_invest_carbon

PLUM = REPO / "data" / "sample" / "plum_island_landuse_1985_1991_1999"
POOLS = "lucode,LULC_name,C_Above,c_below,c_soil,c_dead\n1,forest,100,20,50,5\n2,built,5,1,20,0\n3,other,20,5,60,2\n"


def test_plum_island_storage_sequestration_and_value_match_invest(tmp_path):
    invest_python()
    pools = tmp_path / "pools.csv"
    pools.write_text(POOLS)
    a, b = PLUM / "pie_landuse_1985.tif", PLUM / "pie_landuse_1999.tif"
    ws = run_invest_carbon({
        "workspace_dir": str(tmp_path / "invest"), "lulc_bas_path": str(a), "lulc_alt_path": str(b), "carbon_pools_path": str(pools),
        "calc_sequestration": True, "do_valuation": True, "lulc_bas_year": 1985, "lulc_alt_year": 1999,
        "price_per_metric_ton_of_c": 43.0, "discount_rate": 7.0, "rate_change": 0.0, "n_workers": -1,
    }, tmp_path / "invest")
    with open(ws / "raster_values_summary.csv", newline="") as f:
        invest_totals = {row["Raster"]: float(row["Total"]) for row in csv.DictReader(f)}
    cfg = parse_config({"landcover": {"years": {1985: str(a), 1999: str(b)}}, "legend": "plum_island",
                        "change": {"pools": str(pools), "valuation": {"price_per_tc": 43.0, "discount_rate": 7.0, "rate_change": 0.0},
                                   "maps": ["stock", "sequestration"]}, "output": {"tables": ["csv"]}}, tmp_path)
    with pytest.warns(UserWarning, match="equal-area"):
        result = run(cfg, out_dir=tmp_path / "lucr")
    stock = result.change.tables["carbon_stock_grid"].set_index("year")["total_tc"]
    seq = result.change.tables["sequestration_grid"].iloc[0]
    assert stock[1985] == pytest.approx(invest_totals["Baseline Carbon Storage"], rel=1e-6)
    assert stock[1999] == pytest.approx(invest_totals["Alternate Carbon Storage"], rel=1e-6)
    assert seq["sequestration_tc"] == pytest.approx(invest_totals["Change in Carbon Storage"], rel=1e-6)
    assert seq["npv"] == pytest.approx(invest_totals["Net Present Value of Carbon Change"], rel=1e-6)  # InVEST's npv map is float32
    for lucr_map, band, invest_map in ((result.maps["carbon_stock_1985"], 5, "c_storage_bas.tif"), (result.maps["carbon_stock_1999"], 5, "c_storage_alt.tif"),
                                       (result.maps["sequestration_1985_1999"], 1, "c_change_bas_alt.tif")):
        with rasterio.open(lucr_map) as x, rasterio.open(ws / invest_map) as y:
            ours, theirs = x.read(band), y.read(1)
            valid = theirs != y.nodata
            np.testing.assert_array_equal(np.isfinite(ours), valid)  # the same no-data cells (code 255)
            assert np.abs(ours[valid] - theirs[valid]).max() <= 1e-3
