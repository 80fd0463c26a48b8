"""Run config validation and coefficient tables (every value with its source)."""

import numpy as np
import pytest

from lucr.coefficients import STATUSES, builtin_legends, load_table
from lucr.config import load_config, parse_config
from lucr.errors import CoefficientTableError, ConfigError


def test_builtin_tables_cover_their_legends_with_sources():
    tables = builtin_legends()
    assert {"igbp", "clcd", "worldcover", "cas_lucc"} <= set(tables)
    expected_codes = {"igbp": range(18),  # 17: MCD12Q1 water (MCD12C1 codes it 0)
                       "clcd": range(1, 10), "worldcover": [10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100], "cas_lucc": range(1, 7),
                       "cas_lucc_l2": [11, 12, 21, 22, 23, 24, 31, 32, 33, 41, 42, 43, 44, 45, 46, 51, 52, 53, 61, 62, 63, 64, 65, 66, 67]}
    for legend, codes in expected_codes.items():
        t = load_table(legend)
        assert sorted(t.codes.tolist()) == list(codes), legend
        for c in t.classes:
            assert c.status in STATUSES and c.ref in t.references, (legend, c)
            if c.status == "paper":  # seed 001, Table 2 values
                assert c.coef in (-0.644, -0.021, -0.005, -0.218), (legend, c)


def test_cas_second_level_maps_glaciers_to_unused_and_swamp_to_water():
    """As snow/ice and wetlands in the other legends (the first level cannot separate them)."""
    t = {c.code: c for c in load_table("cas_lucc_l2").classes}
    unused, water = {c.coef for c in load_table("igbp").classes if c.code == 15}, {c.coef for c in load_table("igbp").classes if c.code == 11}
    assert {t[44].coef} == unused and t[44].category == "unused"
    assert {t[64].coef} == water and t[64].category == "water"


def test_flux_table_names_no_project_brief_as_a_source():
    from lucr.config import CONFIG_DIR

    text = (CONFIG_DIR / "parameters" / "flux_seed001.yaml").read_text(encoding="utf-8")
    assert "project brief" not in text and "fang2007" in text


def test_igbp_mapping_decisions():
    t = {c.code: c for c in load_table("igbp").classes}
    assert all(t[k].coef == -0.644 for k in (1, 2, 3, 4, 5, 6, 8, 9))  # forests, closed shrub, savannas
    assert t[10].coef == -0.021 and t[7].coef == -0.021
    assert t[0].coef == -0.218 and t[11].coef == -0.218
    assert t[13].coef > 0 and t[13].status != "paper"
    assert load_table("igbp").nodata == (255,)


def test_user_csv_in_t_co2_is_converted(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("# unit: t CO2 / ha / yr\n# nodata: 0, 255\ncode,name,coef,ref,status\n1,forest,-44,my survey,user\n2,city,11,,\n")
    t = load_table(path=path)
    np.testing.assert_allclose(t.coefs, [-12.0, 3.0])
    assert t.nodata == (0, 255)


def test_example_user_table_matches_clcd():
    from lucr.coefficients import TABLE_DIR

    user = load_table(path=TABLE_DIR / "example_user_table.csv")
    np.testing.assert_allclose(user.coefs, load_table("clcd").coefs)


def test_nodata_code_clash_and_unknown_legend(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("# nodata: 1\ncode,name,coef\n1,forest,-0.6\n")
    with pytest.raises(CoefficientTableError, match=r"codes \[1\] are both classes and nodata"):
        load_table(path=path)
    with pytest.raises(CoefficientTableError, match="no built-in coefficient table for legend 'modis'"):
        load_table("modis")


def test_sample_config_paths_resolve():
    cfg = load_config()
    assert cfg.landcover.path.exists() and all(z.path.exists() for z in cfg.zones)
    assert [z.output_stem() for z in cfg.zones] == ["zonal_provinces", "zonal_cities"]


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="give exactly one of 'legend'"):
        parse_config({"landcover": {"path": "x.tif"}}, tmp_path)
    with pytest.raises(ConfigError, match="needs 'parent'"):
        parse_config({"landcover": {"path": "x.tif"}, "legend": "igbp", "zones": [{"level": "a", "path": "a", "id": "i"}, {"level": "b", "path": "b", "id": "i"}]}, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("landcover: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_every_config_key_is_documented():
    """docs/configuration.md names every key of the run config (by its alias where it has one)."""
    import inspect
    import re
    import typing
    from pathlib import Path

    from pydantic import BaseModel

    from lucr.config import RunConfig

    text = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    seen, missing = set(), []

    def walk(model, prefix):
        if model in seen:
            return
        seen.add(model)
        for name, f in model.model_fields.items():
            if f.exclude:
                continue
            key = f.alias or name
            if not re.search(rf"[`.]{re.escape(key)}[`:.\s]", text) and f"{key}:" not in text:
                missing.append(prefix + key)
            for t in (f.annotation, *typing.get_args(f.annotation)):
                for inner in typing.get_args(t) or (t,):
                    if inspect.isclass(inner) and issubclass(inner, BaseModel):
                        walk(inner, f"{prefix}{key}.")

    walk(RunConfig, "")
    assert not missing, f"keys not in docs/configuration.md: {missing}"
