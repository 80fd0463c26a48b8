"""The land-cover grid as a value: shape + affine transform + CRS, and its chunk windows.

Shared by io, area, zonal rasterisation and export, in the manner of odc-geo's GeoBox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid.

    Attributes
    ----------
    height, width : int
        Rows and columns.
    transform : Affine
        Maps (col, row) of a cell corner to CRS coordinates.
    crs : rasterio.crs.CRS
        Coordinate reference system of the grid.
    """

    height: int
    width: int
    transform: Affine
    crs: CRS

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))

    def decimated(self, factor: int) -> "Grid":
        """The grid of every ``factor``-th cell (from the first), e.g. a 2x overview."""
        return Grid(
            height=-(-self.height // factor),
            width=-(-self.width // factor),
            transform=self.transform @ Affine.scale(factor),
            crs=self.crs,
        )

    def window_grid(self, window: Window) -> "Grid":
        """The sub-grid covered by ``window`` (row/col offsets in this grid)."""
        return Grid(
            height=int(window.height),
            width=int(window.width),
            transform=self.transform @ Affine.translation(window.col_off, window.row_off),
            crs=self.crs,
        )

    def windows(self, row_chunks: tuple[int, ...], col_chunks: tuple[int, ...]) -> Iterator[tuple[tuple[int, int], Window]]:
        """Yield ``((i, j), window)`` for the chunk grid given by dask-style chunk sizes."""
        row_off = 0
        for i, h in enumerate(row_chunks):
            col_off = 0
            for j, w in enumerate(col_chunks):
                yield (i, j), Window(col_off, row_off, w, h)
                col_off += w
            row_off += h
