"""The per-chunk bundle of the single pass: every layer of one window, read or built once.

The sweep (:mod:`lucr.sweep`) reads each chunk of every land-cover date (and of any other
per-cell raster of the run) once, builds the layers every consumer shares (the zone
raster, rasterised once per chunk; the true cell area of each row) and hands the bundle, a
:class:`Chunk`, to every reduction and every map product. A consumer never reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from lucr.area import row_cell_area_ha, to_fixed_point
from lucr.grid import Grid

#: Key of a land-cover date: its year, or None for a single undated raster.
DateKey = int | None


@dataclass(frozen=True)
class EdgeCells:
    """The exact engine's corrections to the cell-centre zones of one chunk, for the cells unit boundaries cross.

    Entry ``i`` changes zone ``zones[i]``'s share of cell ``(rows[i], cols[i])`` (window
    rows and columns) by ``share[i]`` (a fraction of the cell, -1 to 1) and its int64
    fixed-point area by ``area_fx[i]``. A consumer accumulates the chunk by its zone raster,
    then adds these entries: the cell-centre zone's whole cell is replaced by the exact
    coverage fraction of every unit whose boundary crosses the cell (:mod:`lucr.kernels.coverage`).
    """

    rows: np.ndarray
    cols: np.ndarray
    zones: np.ndarray
    share: np.ndarray
    area_fx: np.ndarray

    @classmethod
    def empty(cls) -> "EdgeCells":
        index = np.zeros(0, np.int32)
        return cls(index, index, index, np.zeros(0), np.zeros(0, np.int64))  # the dtypes of the kernel's output

    def __len__(self) -> int:
        return int(self.rows.shape[0])


@dataclass(frozen=True)
class Chunk:
    """Every layer of one window of the grid, for one step of the single pass.

    Attributes
    ----------
    index : (i, j) position in the chunk grid
    window : the window in the full grid (rows, columns)
    grid : the window's own grid (transform, CRS)
    codes : land-cover class codes of every date of the run, ``{date: (rows, cols)}``, in date order
    rasters : other per-cell rasters of the run on the same grid, by name
    zones : zone index of every cell (0 outside every unit; all 0 without a cell-centre zone layer)
    edges : exact engine only: corrections of ``zones`` where unit boundaries cross cells (else None)
    row_area_ha : true area (ha) of one cell of each row of the window
    row_area_fx : the same in the int64 fixed point of the cross-tabs (:mod:`lucr.area`)
    """

    index: tuple[int, int]
    window: Window
    grid: Grid
    codes: dict[DateKey, np.ndarray]
    rasters: dict[str, np.ndarray]
    zones: np.ndarray
    row_area_ha: np.ndarray
    row_area_fx: np.ndarray
    edges: EdgeCells | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape


class ChunkLayers:
    """What the shared layers of every chunk are built from: made once per run, shipped once per worker.

    Parameters
    ----------
    grid : the land-cover grid
    zones : polygons rasterised onto each chunk (cell-centre rule), or None
    scale_bits : fixed-point scale of the cross-tabs (:func:`lucr.area.fixed_point_scale_bits`)
    exact : also compute the exact coverage of the cells unit boundaries cross (``Chunk.edges``)
    """

    def __init__(self, grid: Grid, zones, scale_bits: int, exact: bool = False):
        self.grid = grid
        self.zones = zones
        self.scale_bits = scale_bits
        self.exact = exact and zones is not None
        self.row_area_ha = row_cell_area_ha(grid)
        self.row_area_fx = to_fixed_point(self.row_area_ha, scale_bits)

    @property
    def zone_dtype(self) -> str:
        return "uint16" if self.zones is None else self.zones.dtype

    def build(self, index: tuple[int, int], window: Window, dates: tuple, date_blocks: list, raster_names: tuple, raster_blocks: list) -> Chunk:
        """The bundle of one window from the blocks read for it."""
        grid = self.grid.window_grid(window)
        rows = slice(int(window.row_off), int(window.row_off) + grid.height)
        row_area_fx = self.row_area_fx[rows]
        if self.zones is None:
            zones, edges = np.zeros(grid.shape, dtype=self.zone_dtype), None
        else:
            zones, edges = self.zones.chunk_layers(self.grid, window, row_area_fx, self.exact)
        return Chunk(
            index=index, window=window, grid=grid, codes=dict(zip(dates, date_blocks)), rasters=dict(zip(raster_names, raster_blocks)),
            zones=zones, row_area_ha=self.row_area_ha[rows], row_area_fx=row_area_fx, edges=edges,
        )
