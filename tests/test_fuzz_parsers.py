"""Fuzzing the parsers of user files with hypothesis: whatever the bytes, a config,
coefficient table, pool table, parameter table or per-unit statistics table either parses
or raises lucr's own error (``LucrError``: a message naming the file and the fix) —
never a KeyError, TypeError, a pydantic or YAML exception, a hang or a crash.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucr.errors import LucrError

FUZZ = settings(max_examples=int(os.environ.get("LUCR_FUZZ_EXAMPLES", 150)), deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=not os.environ.get("LUCR_FUZZ_EXAMPLES"))

CONFIG_KEYS = [
    "landcover", "path", "years", "year", "band", "legend", "coefficients", "zones", "level", "id", "name", "parent", "layer",
    "nesting", "invalid", "output", "dir", "tables", "compress", "chunks", "engine", "unknown_classes", "analysis", "change",
    "pools", "scenarios", "cluster", "address", "threads", "flux_raster", "unit", "variables", "spatial", "forecast",
]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(["igbp", "exact", "fast", "error", "warn", "gpkg", "csv", "zstd", "t C / ha / yr", "/nonexistent.tif", "2019"]),
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.one_of(st.sampled_from(CONFIG_KEYS), st.integers(1990, 2030)), inner, max_size=5),
    max_leaves=25,
)


def _file(suffix: str, data: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    handle.write(data)
    handle.close()
    return Path(handle.name)


def _parses_or_lucr_error(call, path: Path) -> None:
    try:
        call(path)
    except LucrError as exc:
        assert str(exc), "an empty message"
    finally:
        path.unlink(missing_ok=True)


@FUZZ
@given(st.binary(max_size=400))
def test_config_from_any_bytes(data):
    from lucr.config import load_config

    _parses_or_lucr_error(load_config, _file(".yaml", data))


@FUZZ
@given(DOCS)
def test_config_from_any_yaml_document(doc):
    from lucr.config import load_config

    _parses_or_lucr_error(load_config, _file(".yaml", yaml.safe_dump(doc, allow_unicode=True).encode()))


@FUZZ
@given(st.dictionaries(st.sampled_from(CONFIG_KEYS), DOCS, max_size=6))
def test_config_with_a_valid_core_and_any_extras(extra):
    """Real inputs plus random sections: the validation must name what is wrong, whatever it is."""
    from lucr.config import load_config
    from tests.conftest import SAMPLE_RASTER

    doc = {"landcover": {"path": str(SAMPLE_RASTER)}, "legend": "igbp", "output": {"dir": "/tmp/lucr-fuzz-out"}, **extra}
    _parses_or_lucr_error(load_config, _file(".yaml", yaml.safe_dump(doc, allow_unicode=True).encode()))


CSV_CELLS = st.one_of(
    st.integers(-300, 70000).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8),
    st.sampled_from(["", "nan", "1e400", "-0", "0x10", "1,5", "森林", "paper", "user_default", "t CO2 / ha / yr"]),
)


def _csv(header: list[str], rows: list[list[str]], comments: list[str]) -> bytes:
    lines = [f"# {c}" for c in comments] + [",".join(header)] + [",".join(r) for r in rows]
    return "\n".join(lines).encode("utf-8")


CSV_TABLES = st.builds(
    _csv,
    st.lists(st.sampled_from(["code", "name", "coef", "ref", "status", "note", "lucode", "c_above", "c_below", "c_soil", "c_dead", "x"]), min_size=1, max_size=6),
    st.lists(st.lists(CSV_CELLS, max_size=7), max_size=6),
    st.lists(st.sampled_from(["unit: t C / ha / yr", "unit: kg", "nodata: 255", "nodata: x", "legend: igbp", "title: t"]), max_size=3),
)


@FUZZ
@given(st.one_of(st.binary(max_size=300), CSV_TABLES))
def test_coefficient_table(data):
    from lucr.coefficients import load_table

    _parses_or_lucr_error(lambda p: load_table(path=p), _file(".csv", data))


@FUZZ
@given(st.one_of(st.binary(max_size=300), CSV_TABLES))
def test_coefficient_table_applied_to_a_legend(data):
    from lucr.coefficients import load_table

    _parses_or_lucr_error(lambda p: load_table("igbp", path=p), _file(".csv", data))


@FUZZ
@given(st.one_of(st.binary(max_size=300), CSV_TABLES))
def test_pool_table(data):
    from lucr.change.stocks import read_pools

    _parses_or_lucr_error(read_pools, _file(".csv", data))


PARAMETER_DOCS = st.fixed_dictionaries(
    {},
    optional={
        "table": st.fixed_dictionaries({}, optional={"id": SCALARS, "kind": st.sampled_from(["flux", "pools", "other", 3]), "unit": SCALARS, "key": SCALARS, "title": SCALARS}),
        "references": DOCS, "rows": st.lists(st.dictionaries(st.sampled_from(["code", "category", "coef", "ref", "status", "c_above", "name"]), SCALARS, max_size=5), max_size=4),
        "classes": DOCS,
    },
)


@FUZZ
@given(st.one_of(PARAMETER_DOCS, DOCS))
def test_parameter_and_legend_yaml(doc):
    from lucr.coefficients import load_table

    _parses_or_lucr_error(lambda p: load_table(path=p), _file(".yaml", yaml.safe_dump(doc, allow_unicode=True).encode()))


@FUZZ
@given(st.one_of(st.binary(max_size=300), CSV_TABLES))
def test_per_unit_statistics_table(data):
    """The per-unit table ``lucr analyze`` reads (statistics by unit and year)."""
    from lucr.analysis.panel import read_unit_table

    _parses_or_lucr_error(read_unit_table, _file(".csv", data))
