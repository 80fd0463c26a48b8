"""Provenance: run.json records what made the numbers, and is enough to make them again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import rasterio

import lucr
from lucr.coefficients import load_table
from lucr.config import SAMPLE_CONFIG, parse_config
from lucr.runner import run
from tests.conftest import SAMPLE_RASTER


def _record(result) -> dict:
    return json.loads((result.out_dir / "run.json").read_text(encoding="utf-8"))


def test_run_json_records_version_inputs_tables_packages_and_time(exact_run):
    record = _record(exact_run)
    assert record["lucr_version"] == lucr.__version__
    assert record["wall_seconds"] > 0
    base = SAMPLE_CONFIG.parent
    by_path = {(base / i["path"]).resolve(): i for i in record["inputs"]}
    raster = by_path[SAMPLE_RASTER.resolve()]
    assert raster["sha256"] == hashlib.sha256(SAMPLE_RASTER.read_bytes()).hexdigest()  # independently hashed
    assert raster["bytes"] == SAMPLE_RASTER.stat().st_size
    assert SAMPLE_CONFIG.resolve() in by_path  # the config itself
    assert not any(Path(i["path"]).is_absolute() for i in record["inputs"])  # relative to the config's folder
    flux = record["tables"][0]
    assert flux["kind"] == "flux" and flux["values_sha256"] == load_table("igbp").digest()
    for package in ("gdal", "rasterio", "numpy", "dask"):
        assert record["packages"][package]
    assert "run.json" in json.loads((exact_run.out_dir / "lucr_outputs.json").read_text())["files"]


def test_map_tags_carry_version_and_table_digest_not_paths(exact_run):
    record = _record(exact_run)
    with rasterio.open(exact_run.maps["carbon_balance"]) as src:
        tags = src.tags()
    assert tags["lucr_version"] == lucr.__version__
    assert tags["lucr_table_sha256"] == record["tables"][0]["values_sha256"]
    assert not [v for v in tags.values() if "/" in v or "\\" in v], tags  # no machine's absolute paths


def test_run_json_config_reproduces_the_tables(exact_run, tmp_path):
    """The resolved config in run.json, read back relative to the config's folder, gives identical tables."""
    config = _record(exact_run)["config"]
    config["output"]["dir"] = str(tmp_path / "again")
    config["analysis"] = None
    again = run(parse_config(config, SAMPLE_CONFIG.parent))
    for plural in ("provinces", "cities"):
        pd.testing.assert_frame_equal(
            pd.read_csv(again.out_dir / f"zonal_{plural}.csv", dtype={"unit_id": str, "parent_id": str}),
            pd.read_csv(exact_run.out_dir / f"zonal_{plural}.csv", dtype={"unit_id": str, "parent_id": str}),
        )


def test_table_digest_follows_values_not_formatting(tmp_path):
    rows = [(c, f"class {c}", -0.1 * c) for c in range(17)]
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_text("code,name,coef\n" + "\n".join(f"{k},{n},{v!r}" for k, n, v in rows) + "\n")
    b.write_text("# a comment\ncode , name , coef\n" + "\n".join(f" {k} , {n} , {v!r} " for k, n, v in reversed(rows)) + "\n")
    c.write_text("code,name,coef\n" + "\n".join(f"{k},{n},{v + (k == 3) * 1e-9!r}" for k, n, v in rows) + "\n")
    assert load_table(path=a).digest() == load_table(path=b).digest()
    assert load_table(path=a).digest() != load_table(path=c).digest()


def test_size_only_hashes_on_request(tmp_path):
    from lucr.config import load_config

    cfg = load_config(SAMPLE_CONFIG)
    cfg = cfg.model_copy(update={"analysis": None, "zones": [], "output": cfg.output.model_copy(update={"input_hashes": "size", "dir": tmp_path / "out"})})
    record = _record(run(cfg))
    assert record["inputs"] and all("sha256" not in i and i["bytes"] > 0 for i in record["inputs"])
