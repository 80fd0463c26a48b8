"""Long unit-year tables -> panels: missing-year policy, id matching, table checks."""

import numpy as np
import pandas as pd
import pytest

from lucr.errors import AnalysisError, InputFileError
from lucr.analysis.panel import check_unique, equally_spaced, match_ids, normalise_ids, read_unit_table, to_panel


def _long(rows):
    return pd.DataFrame(rows, columns=["unit", "year", "x"])


def test_complete_table_pivots_unchanged():
    frame = _long([("a", 2000, 1.0), ("a", 2001, 2.0), ("b", 2000, 3.0), ("b", 2001, 4.0)])
    panel, report = to_panel(frame, "unit", "year", "x")
    assert list(panel.columns) == [2000, 2001] and list(panel.index) == ["a", "b"]
    np.testing.assert_array_equal(panel.to_numpy(), [[1, 2], [3, 4]])
    assert not report.dropped and not report.interpolated


def test_interpolate_fills_interior_gaps_linearly_in_the_year_and_drops_open_ends():
    # unit a misses 2005 between 2000 (10) and 2010 (30); years step unevenly (2000, 2005, 2010, 2020),
    # so the fill is linear in the year: 10 + (30 - 10) * 5 / 10 = 20. Unit b lacks its last year.
    frame = _long([
        ("a", 2000, 10.0), ("a", 2010, 30.0), ("a", 2020, 50.0),
        ("b", 2000, 1.0), ("b", 2005, 2.0), ("b", 2010, 3.0),
        ("c", 2000, 1.0), ("c", 2005, np.nan), ("c", 2010, 3.0), ("c", 2020, 7.0),
        ("d", 2005, 0.0), ("d", 2000, 0.0), ("d", 2010, 0.0), ("d", 2020, 0.0),
    ])
    panel, report = to_panel(frame, "unit", "year", "x", missing="interpolate")
    assert list(panel.index) == ["a", "c", "d"]
    assert panel.loc["a", 2005] == pytest.approx(20.0)
    assert panel.loc["c", 2005] == pytest.approx(2.0)  # a NaN value is a missing year too
    assert report.interpolated == {"a": [2005], "c": [2005]}
    assert report.dropped == {"b": "no value in 2020"}


def test_drop_policy_drops_every_unit_with_a_gap():
    frame = _long([("a", 2000, 1.0), ("a", 2001, 2.0), ("b", 2000, 3.0), ("c", 2000, 1.0), ("c", 2001, np.nan)])
    panel, report = to_panel(frame, "unit", "year", "x", missing="drop")
    assert list(panel.index) == ["a"]
    assert set(report.dropped) == {"b", "c"}
    assert report.as_dict()["dropped"] == {"b": "no value in 2001", "c": "no value in 2001"}


def test_years_selection_and_unknown_years():
    frame = _long([("a", y, float(y)) for y in (2000, 2001, 2002)])
    panel, _ = to_panel(frame, "unit", "year", "x", years=[2000, 2002])
    assert list(panel.columns) == [2000, 2002]
    with pytest.raises(AnalysisError, match=r"years \[1999\] are not in the table"):
        to_panel(frame, "unit", "year", "x", years=[1999, 2000])


def test_undated_table_is_one_period():
    frame = pd.DataFrame({"unit": ["a", "b"], "x": [1.0, 2.0]})
    panel, _ = to_panel(frame, "unit", None, "x")
    assert panel.shape == (2, 1)


def test_unknown_and_non_numeric_columns_are_named_with_a_suggestion():
    frame = pd.DataFrame({"unit": ["a"], "year": [2000], "net_tc": [1.0], "label": ["x"]})
    with pytest.raises(AnalysisError, match=r"'net_t' is not a column \(did you mean 'net_tc'\?\)"):
        to_panel(frame, "unit", "year", "net_t")
    with pytest.raises(AnalysisError, match=r"'label' is not numeric"):
        to_panel(frame, "unit", "year", "label")


def test_duplicate_unit_years_are_listed(tmp_path):
    frame = _long([("a", 2000, 1.0), ("a", 2000, 2.0), ("b", 2000, 1.0)])
    with pytest.raises(InputFileError, match=r"2 rows repeat a unit and year: \('a', 2000\)"):
        check_unique(frame, "unit", "year", source=tmp_path / "t.csv")


def test_ids_match_as_text_or_numbers_and_mismatches_are_listed(caplog):
    table_ids, polygon_ids = normalise_ids(pd.Index(["110000", "120000"]), pd.Series([110000, 120000, 130000]))
    match_ids(table_ids, polygon_ids, table="t.csv", polygons="p.gpkg")  # 130000 has no row: a warning
    assert "130000" in caplog.text
    with pytest.raises(AnalysisError, match=r"1 unit id\(s\) of the table t.csv have no polygon in p.gpkg: 999"):
        match_ids(pd.Index(["110000", "999"]), pd.Series(["110000"]), table="t.csv", polygons="p.gpkg")


def test_read_unit_table_formats_and_errors(tmp_path):
    frame = _long([("a", 2000, 1.0)])
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(read_unit_table(tmp_path / "t.csv"), frame)
    pd.testing.assert_frame_equal(read_unit_table(tmp_path / "t.parquet"), frame)
    with pytest.raises(InputFileError, match="table not found"):
        read_unit_table(tmp_path / "missing.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputFileError, match="cannot read the table"):
        read_unit_table(tmp_path / "bad.parquet")


def test_equally_spaced():
    assert equally_spaced([2000, 2005, 2010]) and equally_spaced([2019])
    assert not equally_spaced([1990, 2000, 2005])
