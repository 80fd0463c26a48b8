"""Transition (change) matrices per unit: the area (ha) that moved from class i at t1 to class j at t2.

From the sparse transition areas of the single pass (:mod:`lucr.products.transitions`),
summed exactly (int64 fixed point) into each unit of each level; methods.md §3. Cells
that are no data (or of an unknown code) at either date are left out of the matrices and
counted apart (``nodata_ha``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lucr.area import from_fixed_point
from lucr.change.units import UnitSet
from lucr.products.transitions import SparseTransitions


def unit_matrices(sparse: SparseTransitions, units: UnitSet, n_classes: int, scale_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n_units, K, K)`` transition areas (ha) between classes, and ``(n_units,)`` area (ha) with no class at a date.

    Sums are taken in fixed point, so a parent equals the exact sum of its children.
    """
    rows, c1, c2, area = units.gather(sparse.zone, sparse.col_from, sparse.col_to, sparse.area_fx)
    classes = (c1 < n_classes) & (c2 < n_classes)
    out = np.zeros((units.n, n_classes, n_classes), np.int64)
    np.add.at(out, (rows[classes], c1[classes], c2[classes]), area[classes])
    other = np.zeros(units.n, np.int64)
    np.add.at(other, rows[~classes], area[~classes])
    return from_fixed_point(out, scale_bits), from_fixed_point(other, scale_bits)


def long_table(matrices: np.ndarray, units: UnitSet, year_from, year_to, codes, names) -> pd.DataFrame:
    """``unit_id, name, year_from, year_to, class_from, class_to, name_from, name_to, area_ha`` (non-zero entries)."""
    u, i, j = np.nonzero(matrices)
    return pd.DataFrame({
        "unit_id": units.ids[u], "name": units.names[u], "year_from": year_from, "year_to": year_to,
        "class_from": np.asarray(codes)[i], "class_to": np.asarray(codes)[j],
        "name_from": np.asarray(names, object)[i], "name_to": np.asarray(names, object)[j], "area_ha": matrices[u, i, j],
    })


def wide_table(matrices: np.ndarray, units: UnitSet, year_from, year_to, codes, names) -> pd.DataFrame:
    """The matrix per unit: one row per (unit, class at t1), one ``area_ha_to_<code>`` column per class at t2."""
    n, k, _ = matrices.shape
    frame = pd.DataFrame({
        "unit_id": np.repeat(units.ids, k), "name": np.repeat(units.names, k), "year_from": year_from, "year_to": year_to,
        "class_from": np.tile(np.asarray(codes), n), "name_from": np.tile(np.asarray(names, object), n),
    })
    flat = matrices.reshape(n * k, k)
    for j, code in enumerate(codes):
        frame[f"area_ha_to_{code}"] = flat[:, j]
    frame["area_ha_from"] = flat.sum(axis=1)
    return frame
