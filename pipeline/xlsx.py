"""One Excel workbook of a run's tables (``output.tables: [..., xlsx]``): ``lucr_tables.xlsx``.

A sheet per table (zonal tables of each level and date, the change tables, the legend);
each sheet starts with three header rows: the machine column name (as in the CSV), its
human-readable title (``output.lang``; class names beside the class codes) and its unit.
Panes are frozen below them. Geometry is left out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lucr.errors import OutputError
from lucr.table_meta import describe
from lucr.outputs_spec import filename

#: The workbook's file name.
WORKBOOK = filename("workbook")  # lucr_tables.xlsx (lucr.outputs_spec)
#: Excel's row limit less the three header rows.
MAX_ROWS = 1_048_576 - 3


def sheet_name(stem: str, taken: set[str]) -> str:
    """A unique sheet name of at most 31 characters (Excel's limit) without []:*?/\\."""
    base = "".join("_" if ch in "[]:*?/\\" else ch for ch in stem)[:31]
    name, i = base, 2
    while name.lower() in taken:
        suffix = f"~{i}"
        name, i = base[: 31 - len(suffix)] + suffix, i + 1
    taken.add(name.lower())
    return name


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame], *, classes=None, lang: str = "en") -> None:
    """Write ``sheets`` (stem -> table) into one workbook at ``path``."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    too_long = [stem for stem, frame in sheets.items() if len(frame) > MAX_ROWS]
    if too_long:
        raise OutputError(
            f"table(s) {too_long} have more rows than an Excel sheet holds ({MAX_ROWS:,})", path=path,
            fix="drop xlsx from output.tables (CSV, Parquet and GeoPackage have no such limit)",
        )
    book = Workbook(write_only=True)
    taken: set[str] = set()
    bold, grey = Font(bold=True), Font(italic=True, color="666666")
    from openpyxl.cell import WriteOnlyCell

    for stem, frame in sheets.items():
        frame = pd.DataFrame(frame.drop(columns=[c for c in frame.columns if c == "geometry"]))
        info = describe(frame.columns, classes=classes, lang=lang, stem=stem)
        sheet = book.create_sheet(sheet_name(stem, taken))
        sheet.freeze_panes = "A4"
        for row, font in (([str(c) for c in frame.columns], bold), ([info[c].title if c in info else c for c in frame.columns], None),
                          ([info[c].unit if c in info else "" for c in frame.columns], grey)):
            cells = []
            for value in row:
                cell = WriteOnlyCell(sheet, value=value)
                if font is not None:
                    cell.font = font
                cells.append(cell)
            sheet.append(cells)
        for values in frame.itertuples(index=False, name=None):
            sheet.append([None if (isinstance(v, float) and v != v) else (v.item() if hasattr(v, "item") else v) for v in values])
    book.save(path)
