"""Legends apart from parameter tables: schema checks, code -> column mapping, category keys."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from lucr.coefficients import load_table
from lucr.errors import CoefficientTableError
from lucr.legend import ClassColumns, builtin_legend_files, load_legend
from lucr.parameters import load_parameters


def test_builtin_legends_keep_their_categories():
    for legend_id in builtin_legend_files():
        legend = load_legend(legend_id)
        assert all(c.category for c in legend.classes), legend_id
        table = load_table(legend_id)
        # every class takes the value of its category in the seed-001 flux table
        flux = load_parameters("flux_seed001")
        by_category = {r.key: r.values["coef"] for r in flux.rows}
        assert [c.coef for c in table.classes] == [by_category[c.category] for c in legend.classes]
        assert [c.category for c in table.classes] == [c.category for c in legend.classes]


def test_igbp_water_is_0_in_mcd12c1_and_17_in_mcd12q1(tmp_path):
    from lucr.config import parse_config
    from lucr.runner import run

    t = {c.code: c for c in load_table("igbp").classes}
    assert t[17].coef == t[0].coef == -0.218 and t[17].category == "water"
    # a 2 x 2 MCD12Q1-style raster: water 17, forest 1, fill 255
    path = tmp_path / "q1.tif"
    profile = dict(driver="GTiff", width=2, height=2, count=1, dtype="uint8", crs="EPSG:6933", transform=Affine(500, 0, 0, 0, -500, 1000), nodata=255)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.array([[17, 17], [1, 255]], np.uint8), 1)
    result = run(parse_config({"landcover": {"path": str(path)}, "legend": "igbp", "output": {"tables": ["csv"]}}, tmp_path), out_dir=tmp_path / "o")
    s = result.summary
    assert s["whole_raster"]["class_area_ha"]["17"] == 50.0 and s["whole_raster"]["class_area_ha"]["1"] == 25.0
    assert s["whole_raster"]["sink_tc"] == pytest.approx(50 * -0.218 + 25 * -0.644)


def test_class_columns_layout():
    cols = ClassColumns.build(np.array([-5, 300]), (-1,), np.dtype("int16"))
    assert (cols.n_classes, cols.unknown, cols.nodata, cols.n_columns, cols.offset) == (2, 2, 3, 4, -32768)
    assert cols.class_of_code[[-5 + 32768, 300 + 32768, 7 + 32768, -1 + 32768]].tolist() == [0, 1, 2, 3]
    lut = cols.lut([2.0, -1.0])
    assert lut[-5 + 32768] == 2.0 and np.isnan(lut[-1 + 32768]) and np.isnan(lut[7 + 32768])
    count = np.zeros(cols.class_of_code.shape, np.int64)
    count[[7 + 32768, -5 + 32768, -1 + 32768]] = [4, 9, 2]
    assert cols.unknown_codes(count) == {7: 4}
    crosstab = np.arange(8).reshape(2, 4)
    np.testing.assert_array_equal(cols.classes(crosstab), [[0, 1], [4, 5]])


def test_unknown_key_in_a_legend_names_the_nearest(tmp_path):
    path = tmp_path / "my_legend.yaml"
    path.write_text("legend: x\nnodata: [0]\nclasses:\n  - {code: 1, name: forest, categroy: forest}\n")
    with pytest.raises(CoefficientTableError, match=r"unknown key 'classes.0.categroy'; did you mean 'category'\?") as err:
        load_legend(path)
    assert "my_legend.yaml" in str(err.value)
    path.write_text("legend: x\nclasses:\n  - {code: 1, name: a, category: woodland}\n")
    with pytest.raises(CoefficientTableError, match="category 'woodland' is not one of"):
        load_legend(path)
    path.write_text("legend: x\nclasses:\n  - {code: 1, name: a}\n  - {code: 1, name: b}\n")
    with pytest.raises(CoefficientTableError, match=r"duplicate class code 1 \(entries 1 and 2\)"):
        load_legend(path)


def test_category_table_applied_to_a_legend(tmp_path):
    """A regional flux table keyed by category serves any legend; a missing category is named."""
    table = tmp_path / "regional.yaml"
    table.write_text(
        "table: regional\nkind: flux\nkey: category\nunit: t CO2 / ha / yr\nrows:\n"
        + "".join(f"  - {{category: {c}, coef: {v}, ref: my survey, status: user}}\n" for c, v in
                  (("cropland", 1.1), ("forest", -3.3), ("grassland", -0.11), ("water", -0.44), ("built_up", 220), ("unused", 0)))
    )
    t = load_table("clcd", path=table)
    coef = {c.code: c.coef for c in t.classes}
    assert coef[2] == pytest.approx(-3.3 * 12 / 44) and coef[3] == coef[2] and coef[8] == pytest.approx(60.0)
    table.write_text("table: regional\nkind: flux\nkey: category\nrows:\n  - {category: forest, coef: -1}\n")
    with pytest.raises(CoefficientTableError, match=r"no row for class\(es\) 1 \(Cropland, category cropland\)"):
        load_table("clcd", path=table)
    table.write_text("table: regional\nkind: flux\nkey: category\nrows:\n  - {category: forest, cof: -1}\n")
    with pytest.raises(CoefficientTableError, match=r"unknown key 'rows\[1\].cof'"):
        load_table("clcd", path=table)
    with pytest.raises(CoefficientTableError, match="keyed by category and needs a legend"):
        load_table(path=load_parameters("flux_seed001").path)


def test_pool_table_by_code_resolves_per_class(tmp_path):
    """The ``pools`` kind (InVEST's four carbon pools, t C/ha) uses the same machinery."""
    from lucr.legend import Legend, LegendClass
    from lucr.parameters import build_table, ParameterFile

    doc = ParameterFile.model_validate({"table": "p", "kind": "pools", "key": "code", "rows": [
        {"code": 1, "c_above": 100, "c_below": 20, "c_soil": 50, "c_dead": 5},
        {"code": 2, "c_above": 1, "c_below": 2, "c_soil": 3, "c_dead": 4},
    ]})
    pools = build_table(doc, None)
    legend = Legend("l", (LegendClass(2, "grass"), LegendClass(1, "forest")))
    np.testing.assert_array_equal(pools.per_class(legend, "c_above"), [1, 100])
    with pytest.raises(CoefficientTableError, match=r"no row for class\(es\) 3"):
        pools.resolve(Legend("l", (LegendClass(3, "x"),)))


def test_code_table_with_other_nodata_than_the_legend_is_refused(tmp_path):
    from lucr.parameters import PARAMETER_DIR

    assert load_table("clcd", path=PARAMETER_DIR / "example_user_table.csv").nodata == (0,)  # same nodata: fine
    table = tmp_path / "t.csv"
    table.write_text((PARAMETER_DIR / "example_user_table.csv").read_text().replace("# nodata: 0", "# nodata: 255"))
    with pytest.raises(CoefficientTableError, match=r"nodata codes \[255\] differ from those of legend 'clcd' \[0\]"):
        load_table("clcd", path=table)
