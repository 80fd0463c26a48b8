"""The products every run declares: one ``declare(context)`` per kind, in output order.

Adding a product is one module in this package plus one line here.
"""

from __future__ import annotations

from lucr.products import carbon_balance, carbon_stock, raster_sums, risk_map, transition_map, transitions, zone_class_area
from lucr.products.base import MapProduct, Reduction, RunContext

#: Map products: each ``declare(ctx) -> list[MapProduct]``.
MAP_PRODUCTS = [carbon_balance.declare, carbon_stock.declare, transition_map.declare, risk_map.declare]
#: Reductions: each ``declare(ctx) -> list[Reduction]``.
REDUCTIONS = [zone_class_area.declare, transitions.declare, raster_sums.declare]


def declared_maps(ctx: RunContext) -> list[MapProduct]:
    maps = [p for declare in MAP_PRODUCTS for p in declare(ctx)]
    _unique([p.name for p in maps], "map product")
    return maps


def declared_reductions(ctx: RunContext) -> list[Reduction]:
    reductions = [r for declare in REDUCTIONS for r in declare(ctx)]
    _unique([r.name for r in reductions], "reduction")
    return reductions


def _unique(names: list[str], what: str) -> None:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what} names declared twice: {dup}")
