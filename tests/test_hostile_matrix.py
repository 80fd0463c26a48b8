"""The hostile-input matrix: every refused input, by category, checked the same way.

Each case builds its bad input in a fresh folder next to an output folder that holds a
previous run's files, then runs ``lucr run CONFIG --overwrite`` (and, where the case
says so, ``lucr validate``) in-process. Every case asserts: exit code 2; a one-paragraph
message that starts with ``lucr: error:``, names the file, states the problem and says
``Fix:``; no traceback; and the output folder byte-identical to before (no new, partial
or removed file). Inputs lucr accepts with a warning are tested in test_bad_inputs.py.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point

from tests.conftest import SAMPLE_CITIES, SAMPLE_PROVINCES, SAMPLE_RASTER
from tests.test_bad_inputs import base_config, run_cli

PREVIOUS = {"carbon_balance.tif": b"previous map", "zonal_provinces.csv": b"previous,table\n", "lucr_outputs.json": b"{}"}


@dataclass(frozen=True)
class Case:
    """One hostile input: ``build(tmp)`` writes it and returns the run config (dict) or a config file."""

    id: str
    category: str
    build: Callable[[Path], dict | Path]
    fragments: tuple[str, ...]
    validate: bool = True  # lucr validate must refuse it as well


# ---- builders ------------------------------------------------------------------------


def _raster(tmp: Path, name: str, data=None, **profile) -> Path:
    """A copy of the sample raster under ``name`` with profile changes and optional data."""
    with rasterio.open(SAMPLE_RASTER) as src:
        prof, arr = src.profile | profile, src.read() if data is None else data
    with rasterio.open(tmp / name, "w", **prof) as dst:
        dst.write(arr)
    return tmp / name


def _with_raster(path_of: Callable[[Path], Path]) -> Callable[[Path], dict]:
    return lambda tmp: base_config(tmp, landcover={"path": str(path_of(tmp))})


def _sample_codes() -> np.ndarray:
    with rasterio.open(SAMPLE_RASTER) as src:
        return src.read()


def _zero_byte(tmp):
    (tmp / "empty.tif").write_bytes(b"")
    return tmp / "empty.tif"


def _truncated(tmp):
    data = Path(SAMPLE_RASTER).read_bytes()
    (tmp / "cut.tif").write_bytes(data[: len(data) // 2])
    return tmp / "cut.tif"


def _not_a_raster(tmp):
    (tmp / "notes.tif").write_text("land cover of 2019, see the shared drive\n")
    return tmp / "notes.tif"


def _rotated(tmp):
    with rasterio.open(SAMPLE_RASTER) as src:
        t = src.transform
    return _raster(tmp, "rotated.tif", transform=t @ Affine.rotation(10))


def _signed(tmp):
    codes = _sample_codes().astype("int16")
    codes[0, :5, :5] = -3
    return _raster(tmp, "signed.tif", codes, dtype="int16", nodata=-1)


def _codes16(tmp):
    codes = _sample_codes().astype("uint16")
    codes[0, 100:110, 300:310] = 1042  # a 16-bit code the IGBP legend lacks
    return _raster(tmp, "codes16.tif", codes, dtype="uint16", nodata=65535)


def _two_bands(tmp):
    codes = _sample_codes()
    return _raster(tmp, "two_bands.tif", np.concatenate([codes, codes]), count=2)


def _all_nodata(tmp):
    with rasterio.open(SAMPLE_RASTER) as src:
        nodata = int(src.nodata)
    return _raster(tmp, "blank.tif", np.full_like(_sample_codes(), nodata))


def _vrt_missing_source(tmp):
    from tests.test_bad_inputs import _vrt_with_a_missing_source

    return _vrt_with_a_missing_source(tmp)


def _zones_cfg(tmp: Path, frame: gpd.GeoDataFrame | None = None, *, name="units.gpkg", layer="provinces", path=None, **zone) -> dict:
    """A province-only config over ``frame`` written to ``name`` (or over ``path``)."""
    if path is None:
        path = tmp / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pyogrio: writing a layer without a CRS
            frame.to_file(path, layer=layer, driver="GPKG")
    entry = {"level": "province", "path": str(path), "layer": layer, "id": "adcode", "name": "name", **zone}
    return base_config(tmp, zones=[entry])


def _provinces() -> gpd.GeoDataFrame:
    return gpd.read_file(SAMPLE_PROVINCES)


def _cities_cfg(tmp: Path, change: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]) -> dict:
    cities = change(gpd.read_file(SAMPLE_CITIES, layer="cities"))
    cities.to_file(tmp / "cities.gpkg", layer="cities", driver="GPKG")
    cfg = base_config(tmp)
    cfg["zones"][1]["path"] = str(tmp / "cities.gpkg")
    return cfg


def _set_rows(frame, rows, column, value):
    frame.loc[frame.index[rows], column] = value
    return frame


def _points(tmp):
    frame = _provinces()
    frame["geometry"] = frame.geometry.representative_point()
    return _zones_cfg(tmp, frame)


def _mixed_points(tmp):
    frame = _provinces()
    frame.loc[frame.index[3], "geometry"] = Point(100, 30)
    return _zones_cfg(tmp, frame)


def _duplicate_ids(tmp):
    frame = _provinces()
    frame.loc[frame.index[5], "adcode"] = frame["adcode"].iloc[4]
    return _zones_cfg(tmp, frame)


def _two_layers_none_named(tmp):
    path = tmp / "both.gpkg"
    _provinces().to_file(path, layer="provinces", driver="GPKG")
    _provinces().to_file(path, layer="provinces_2015", driver="GPKG")
    cfg = _zones_cfg(tmp, path=path)
    del cfg["zones"][0]["layer"]
    return cfg


def _bowtie(tmp):
    from shapely.geometry import Polygon

    frame = gpd.GeoDataFrame(
        {"adcode": ["bow", "sq"], "name": ["bowtie", "square"]},
        geometry=[Polygon([(110, 30), (112, 32), (112, 30), (110, 32)]), Polygon([(113, 30), (115, 30), (115, 32), (113, 32)])], crs=4326,
    )
    return _zones_cfg(tmp, frame, invalid="error")


def _not_a_vector(tmp):
    (tmp / "units.gpkg").write_text("province boundaries: ask the survey office\n")
    return _zones_cfg(tmp, path=tmp / "units.gpkg")


def _table(tmp: Path, text: str | bytes, name="table.csv") -> dict:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    cfg = base_config(tmp, coefficients=str(path))
    del cfg["legend"]
    return cfg


IGBP_ROWS = "\n".join(f"{c},class {c},-0.1" for c in range(17))


def _config_text(tmp: Path, body: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(body.replace("RASTER", str(SAMPLE_RASTER)).replace("OUT", str(tmp / "out")), encoding="utf-8")
    return path


BILLION_LAUGHS = "\n".join(
    ["landcover: {path: RASTER}", "output: {dir: OUT}", 'l0: &l0 ["lol"]']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["zones: *l9"]
)


# ---- the matrix ----------------------------------------------------------------------

CASES = [
    # rasters
    Case("raster-missing", "raster", _with_raster(lambda t: t / "lc2019.tif"), ("lc2019.tif", "not found")),
    Case("raster-zero-byte", "raster", _with_raster(_zero_byte), ("empty.tif", "empty file (0 bytes)")),
    Case("raster-truncated", "raster", _with_raster(_truncated), ("cut.tif", "damaged or incomplete")),
    Case("raster-not-a-raster", "raster", _with_raster(_not_a_raster), ("notes.tif", "not a raster GDAL can read")),
    Case("raster-a-folder", "raster", _with_raster(lambda t: t), ("is a folder",)),
    Case("raster-no-crs", "raster", _with_raster(lambda t: _raster(t, "nocrs.tif", crs=None)), ("nocrs.tif", "no coordinate reference system")),
    Case("raster-rotated", "raster", _with_raster(_rotated), ("rotated.tif", "rotated")),
    Case("raster-float", "raster", _with_raster(lambda t: _raster(t, "float.tif", _sample_codes().astype("float32"), dtype="float32", nodata=None)),
         ("float.tif", "8- or 16-bit integers")),
    Case("raster-signed-negative-codes", "raster", _with_raster(_signed), ("signed.tif", "-3 (25 cells)")),
    Case("raster-16bit-unknown-code", "raster", _with_raster(_codes16), ("codes16.tif", "1042 (100 cells)")),
    Case("raster-multi-band", "raster", _with_raster(_two_bands), ("two_bands.tif", "2 bands", "landcover.band")),
    Case("raster-all-nodata", "raster", _with_raster(_all_nodata), ("blank.tif", "the raster holds no data")),
    Case("raster-vrt-missing-source", "raster", _with_raster(_vrt_missing_source), ("mosaic.vrt", "part1.tif", "do not exist")),
    # polygons
    Case("zones-missing", "polygons", lambda t: _zones_cfg(t, path=t / "provinces.gpkg"), ("provinces.gpkg", "not found")),
    Case("zones-not-a-vector", "polygons", _not_a_vector, ("units.gpkg", "not a vector layer GDAL can read")),
    Case("zones-no-crs", "polygons", lambda t: _zones_cfg(t, _provinces().set_crs(None, allow_override=True)), ("units.gpkg", "no coordinate reference system")),
    Case("zones-invalid-refused", "polygons", _bowtie, ("units.gpkg", "invalid polygon(s)", "bow (Self-intersection")),
    Case("zones-empty-layer", "polygons", lambda t: _zones_cfg(t, _provinces().iloc[:0]), ("units.gpkg", "the polygon layer is empty")),
    Case("zones-null-geometry", "polygons", lambda t: _zones_cfg(t, _set_rows(_provinces(), [2], "geometry", None)), ("units.gpkg", "have no geometry")),
    Case("zones-points", "polygons", _points, ("units.gpkg", "non-polygon geometries")),
    Case("zones-one-point-among-polygons", "polygons", _mixed_points, ("units.gpkg", "non-polygon geometries", "(Point)")),
    Case("zones-duplicate-ids", "polygons", _duplicate_ids, ("units.gpkg", "duplicate")),
    Case("zones-null-ids", "polygons", lambda t: _zones_cfg(t, _set_rows(_provinces(), [1, 4], "adcode", None)), ("units.gpkg", "have no id in column 'adcode'")),
    Case("zones-null-parent-ids", "polygons", lambda t: _cities_cfg(t, lambda c: _set_rows(c, [0, 1], "province_adcode", None)),
         ("cities.gpkg", "have no parent id")),
    Case("zones-parent-id-unknown", "polygons", lambda t: _cities_cfg(t, lambda c: _set_rows(c, [0], "province_adcode", "999999")),
         ("cities.gpkg", "are not ids of level 'province'", "999999")),
    Case("zones-child-outside-parent", "polygons",
         lambda t: _cities_cfg(t, lambda c: _set_rows(c, c["adcode"].astype(str) == "520100", "province_adcode", "530000")),
         ("cities.gpkg", "outside the province their parent id names")),
    Case("zones-parent-without-children", "polygons", lambda t: _cities_cfg(t, lambda c: c[c["province_adcode"].astype(str) != "520000"]),
         ("not covered by their city units", "520000")),
    Case("zones-layer-missing", "polygons", lambda t: _zones_cfg(t, path=SAMPLE_PROVINCES, layer="provincez"), ("provincez", "provinces")),
    Case("zones-several-layers-none-named", "polygons", _two_layers_none_named, ("both.gpkg", "2 layers", "provinces_2015", "layer: <name>")),
    Case("zones-outside-raster", "polygons", lambda t: _zones_cfg(t, _provinces().translate(xoff=-150).to_frame("geometry").join(_provinces().drop(columns="geometry"))),
         ("units.gpkg", "do not overlap the land-cover raster")),
    Case("zones-id-column-missing", "polygons", lambda t: _zones_cfg(t, path=SAMPLE_PROVINCES, id="code"), ("column(s) ['code'] not found",)),
    # tables and configs
    Case("table-missing", "tables", lambda t: base_config(t, legend=None, coefficients=str(t / "coefs.csv")), ("coefs.csv", "not found")),
    Case("table-duplicate-codes", "tables", lambda t: _table(t, f"code,name,coef\n{IGBP_ROWS}\n1,forest again,-0.5\n"), ("table.csv", "duplicate class code 1")),
    Case("table-non-numeric-code", "tables", lambda t: _table(t, "code,name,coef\nforest,forest,-0.644\n"), ("table.csv", "is not a number")),
    Case("table-non-numeric-value", "tables", lambda t: _table(t, f"code,name,coef\n{IGBP_ROWS}\n17,x,minus half\n"), ("table.csv", "coef of class 17 is not a number")),
    Case("table-wrong-unit", "tables", lambda t: _table(t, f"# unit: kg C/m2/day\ncode,name,coef\n{IGBP_ROWS}\n"), ("table.csv", "unknown unit 'kg C/m2/day'")),
    Case("table-missing-column", "tables", lambda t: _table(t, "code,name\n1,forest\n"), ("table.csv", "coef")),
    Case("table-tab-separated", "tables", lambda t: _table(t, "code\tname\tcoef\n" + IGBP_ROWS.replace(",", "\t") + "\n"), ("table.csv", "tab")),
    Case("table-undecodable", "tables", lambda t: _table(t, b"code,name,coef\n1,for\xeat,-0.6\n" + b"\xff\xfe\x00" * 3), ("table.csv", "neither UTF-8 nor GB18030")),
    Case("table-nan-value", "tables", lambda t: _table(t, f"code,name,coef\n{IGBP_ROWS}\n17,x,nan\n"), ("table.csv", "coef of class 17")),
    Case("config-duplicate-key", "configs", lambda t: _config_text(t, "landcover: {path: RASTER}\noutput: {dir: OUT}\nengine: fast\nengine: exact\n"),
         ("config.yaml", "duplicate key 'engine'", "line 4")),
    Case("config-unsafe-tag", "configs", lambda t: _config_text(t, "landcover: !!python/object/apply:os.system ['echo pwned']\noutput: {dir: OUT}\n"),
         ("config.yaml", "not valid YAML")),
    Case("config-billion-laughs", "configs", lambda t: _config_text(t, BILLION_LAUGHS), ("config.yaml", "aliases")),
    Case("config-tabs", "configs", lambda t: _config_text(t, "landcover:\n\tpath: RASTER\noutput: {dir: OUT}\n"), ("config.yaml", "not valid YAML", "tab")),
    Case("config-wrong-type", "configs", lambda t: base_config(t, chunks="big"), ("config.yaml", "chunks")),
    Case("config-not-a-mapping", "configs", lambda t: _config_text(t, "- landcover\n- zones\n"), ("config.yaml", "mapping")),
    Case("config-unknown-key", "configs", lambda t: base_config(t, chunk=1024), ("config.yaml", "unknown key 'chunk'", "did you mean 'chunks'?")),
    Case("config-unknown-legend", "configs", lambda t: base_config(t, legend="igpb"), ("igpb", "igbp")),
    Case("config-not-utf8", "configs", lambda t: (t / "config.yaml").write_bytes("landcover: {path: 土地.tif}\n".encode("gb18030")) and t / "config.yaml",
         ("config.yaml", "is not UTF-8 text")),
    # outputs (read-only, full disk and concurrent runs: test_output_faults.py)
    Case("output-is-a-file", "outputs", lambda t: (t / "afile").write_text("x") and base_config(t, output={"dir": str(t / "afile")}),
         ("afile", "cannot create the output folder"), validate=False),
]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir" for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused(case: Case, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for name, data in PREVIOUS.items():
        (out / name).write_bytes(data)
    before = _snapshot(out)
    built = case.build(tmp_path)
    config = built if isinstance(built, Path) else None
    for command in ("run", "validate") if case.validate else ("run",):
        extra = ["--overwrite"] if command == "run" else []
        code, shown = run_cli(tmp_path, None if config else built, *extra, capsys=capsys, command=command, path=config)
        assert code == 2, f"{command}: exit {code}: {shown}"
        assert "lucr: error:" in shown and "Traceback" not in shown, shown
        for fragment in (*case.fragments, "Fix:"):
            assert fragment in shown, f"{command}: {fragment!r} not in: {shown}"
        assert _snapshot(out) == before, f"{command} changed the output folder"


def test_matrix_covers_every_category():
    by_category: dict[str, int] = {}
    for case in CASES:
        by_category[case.category] = by_category.get(case.category, 0) + 1
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    assert set(by_category) == {"raster", "polygons", "tables", "configs", "outputs"}, by_category
