"""Do the levels of admin units nest? Checked on the polygons before the pass.

Coarse levels are computed as exact sums of their children (by parent id), so a child
that lies in another unit than its parent id says, or a parent its children do not
cover, gives wrong coarse figures without a word. This module measures, per pair of
levels, the share of each child's area inside its named parent and the share of each
parent's area covered by its children (the sum of their areas inside it: units of one
level do not overlap); shares below ``1 - tolerance`` are problems.
Policy (``zones[].nesting`` on the finer level): ``error`` (default) stops the run and
lists them; ``warn`` names them in a warning and goes on (coarse figures stay the sums
of the children).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from lucr.errors import InputFileError
from lucr.geos_bulk import threaded
from lucr.io import ZoneLayer

log = logging.getLogger("lucr")


@dataclass(frozen=True)
class NestingReport:
    """Children outside their parent and parents their children leave uncovered (shares of area)."""

    outside: list[tuple[str, str, float, str | None]]  # child, its parent id, share outside, the unit holding most of it
    uncovered: list[tuple[str, float, int]]  # parent, share not covered by its children, number of children

    def __bool__(self) -> bool:
        return bool(self.outside or self.uncovered)

    def describe(self, coarse: str, fine: str, limit: int = 8) -> str:
        parts = []
        if self.outside:
            items = [f"{c} is {100 * s:.1f} % outside {p}" + (f" (mostly in {w})" if w and w != p else "") for c, p, s, w in self.outside[:limit]]
            parts.append(f"{len(self.outside)} {fine} unit(s) lie outside the {coarse} their parent id names: " + "; ".join(items) + (" ..." if len(self.outside) > limit else ""))
        if self.uncovered:
            items = [f"{p} ({100 * s:.1f} % uncovered" + (", no units" if n == 0 else "") + ")" for p, s, n in self.uncovered[:limit]]
            parts.append(f"{len(self.uncovered)} {coarse} unit(s) are not covered by their {fine} units: " + "; ".join(items) + (" ..." if len(self.uncovered) > limit else ""))
        return ". ".join(parts)


def measure(coarse: ZoneLayer, fine: ZoneLayer, tolerance: float) -> NestingReport:
    """Shares of area (in the grid CRS) of each child inside its parent and of each parent covered by its children."""
    parents = np.asarray(coarse.geometry_grid_crs.values, dtype=object)
    children = np.asarray(fine.geometry_grid_crs.values, dtype=object)
    parent_ids = coarse.frame["unit_id"].to_numpy()
    parent_of = pd.Index(parent_ids).get_indexer(fine.frame["parent_id"].to_numpy()).astype(np.int64)  # ids checked before
    child_area = shapely.area(children)
    # a child its parent covers is inside whole; the overlay only for the others. A child on its
    # parent's border shares the border's vertices only to rounding: the parent grown by 1e-9 of
    # the level's extent (a third of a millimetre across 335 km) covers it (at 324,523 units,
    # 9,516 overlays, 0.6 s, avoided); what that ignores is far below any tolerance
    xmin, ymin, xmax, ymax = shapely.total_bounds(parents)
    grown = shapely.buffer(parents, 1e-9 * max(xmax - xmin, ymax - ymin), join_style="mitre")
    shapely.prepare(grown)
    inside = child_area.copy()
    by_parent = np.argsort(parent_of, kind="stable")  # a prepared parent in one thread only (lucr.geos_bulk)
    covered_whole = np.empty(len(children), bool)
    covered_whole[by_parent] = threaded(shapely.covers, grown[parent_of[by_parent]], children[by_parent], groups=parent_of[by_parent])
    partial = np.flatnonzero(~covered_whole)
    inside[partial] = shapely.area(shapely.intersection(children[partial], parents[parent_of[partial]]))
    share_out = np.where(child_area > 0, 1.0 - inside / np.where(child_area > 0, child_area, 1.0), 0.0)
    outside = []
    if (share_out > tolerance).any():
        tree = shapely.STRtree(parents)
        for k in np.flatnonzero(share_out > tolerance):
            hits = tree.query(children[k], predicate="intersects")
            overlap = shapely.area(shapely.intersection(children[k], parents[hits])) if hits.size else np.zeros(0)
            where = parent_ids[hits[np.argmax(overlap)]] if hits.size and overlap.max() > 0 else None
            outside.append((fine.frame["unit_id"].iloc[k], parent_ids[parent_of[k]], float(share_out[k]), where))
    # children of one level do not overlap (lucr validate warns when they do): their areas inside
    # the parent add up to the covered area, with no union of polygons
    counts = np.bincount(parent_of, minlength=len(parents))
    parent_area = shapely.area(parents)
    covered = np.bincount(parent_of, weights=inside, minlength=len(parents)) / np.where(parent_area > 0, parent_area, 1.0)
    uncovered = [(parent_ids[i], float(1.0 - covered[i]), int(counts[i])) for i in np.flatnonzero((parent_area > 0) & (1.0 - covered > tolerance))]
    return NestingReport(outside, uncovered)


def check(layers: list[ZoneLayer], policies: list[tuple[str, float]]) -> None:
    """Check every pair of consecutive levels; ``policies[k]`` is ``(nesting, tolerance)`` of level ``k + 1``."""
    for coarse, fine, (policy, tolerance) in zip(layers[:-1], layers[1:], policies):
        report = measure(coarse, fine, tolerance)
        if not report:
            continue
        text = report.describe(coarse.level, fine.level)
        fix = (
            f"correct the parent ids or the polygons, or set 'nesting: warn' on level '{fine.level}' to go on "
            f"({coarse.level} figures are then the sums of their {fine.level} units); tolerance: {100 * tolerance:g} % of the area"
        )
        if policy == "error":
            raise InputFileError(text, path=fine.path, fix=fix)
        log.warning("%s: %s (the %s figures are the sums of their %s units)", fine.path, text, coarse.level, fine.level)
