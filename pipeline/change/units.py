"""The rows of change tables: the whole grid, then each level of admin units.

Transitions are accumulated per zone of the finest level (zone 0 = outside every unit);
each level maps zones to its rows (a parent's row gathers its children's zones), and the
``grid`` level maps every zone, the area outside the units included, to one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_ID = "grid"


@dataclass(frozen=True)
class UnitSet:
    """One level of change-table rows.

    Attributes
    ----------
    level : ``grid`` or the zone level's name (``province``)
    label : output label (``grid``, ``provinces``)
    ids, names : unit ids and names, one per row
    row_of_zone : (n_zones + 1,) row of each zone index, -1 where the zone is not in a row
    """

    level: str
    label: str
    ids: np.ndarray
    names: np.ndarray
    row_of_zone: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ids)

    def sum_zones(self, per_zone: np.ndarray) -> np.ndarray:
        """Rows of this level summed from per-zone rows ``(n_zones + 1, ...)``."""
        out = np.zeros((self.n, *per_zone.shape[1:]), per_zone.dtype)
        keep = self.row_of_zone >= 0
        np.add.at(out, self.row_of_zone[keep], per_zone[keep])
        return out

    def gather(self, zone: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """Rows of the zone entries that belong to this level, and the entries' other arrays."""
        rows = self.row_of_zone[zone]
        keep = rows >= 0
        return (rows[keep], *(a[keep] for a in arrays))


def unit_sets(layers, plural_of) -> list[UnitSet]:
    """The ``grid`` level, then every zone level coarsest first (``layers`` as read by the run)."""
    n_zones = len(layers[-1].frame) if layers else 0
    sets = [UnitSet("grid", "grid", np.array([GRID_ID], object), np.array(["whole raster"], object), np.zeros(n_zones + 1, np.int64))]
    if not layers:
        return sets
    finest = layers[-1]
    rows = {finest.level: np.concatenate([[-1], np.arange(n_zones)])}
    for coarse, fine in zip(reversed(layers[:-1]), reversed(layers[1:])):
        index = {pid: i for i, pid in enumerate(coarse.frame["unit_id"])}
        parent_row = np.array([index[p] for p in fine.frame["parent_id"]], np.int64)
        child = rows[fine.level]
        rows[coarse.level] = np.where(child >= 0, parent_row[np.maximum(child, 0)], -1)
    for layer in layers:
        sets.append(UnitSet(layer.level, plural_of(layer.level), layer.frame["unit_id"].to_numpy(object), layer.frame["name"].to_numpy(object), rows[layer.level]))
    return sets
