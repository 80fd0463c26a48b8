"""Map products: the per-cell carbon risk grade and, with uncertainty on, its probability.

A cell's risk is graded on its net flux density (t C / ha / yr, the value of the carbon map:
a cell is a source or a sink, its CBC is not defined) by the ``risk`` breaks for net per ha
(default -0.5, 0, 0.5, 2: strong sink ... severe risk), so ``risk_grade.tif`` (uint8, a
paletted COG, 0 no data) shows where in a unit the risk lies. ``risk_grade_probability.tif``
(uint8, percent) is the probability that the cell keeps that grade under the Monte Carlo of
its class's coefficient (:mod:`lucr.analysis.risk`). Both are lookups per class: a product of
the single pass, like the carbon map.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from lucr.chunk import Chunk
from lucr.products.base import MapProduct, RunContext
from lucr.products.carbon_balance import inside_units
from lucr.units import factor

COLOURS = ((166, 166, 166, 0), (26, 152, 80, 255), (145, 207, 96, 255), (254, 224, 139, 255), (252, 141, 89, 255), (215, 48, 39, 255))


def class_grades(ctx: RunContext) -> tuple[np.ndarray, np.ndarray | None, tuple[float, ...]]:
    """Grade (1..5) of each class's net density and, with uncertainty, the probability (0-100 %) of keeping it."""
    from lucr.analysis import risk

    cfg = ctx.config.risk
    to_units = factor(ctx.config.output.units)
    breaks = tuple(cfg.breaks) if (cfg.breaks and cfg.indicator == "net_per_ha") else tuple(b * to_units for b in risk.NET_BREAKS)
    coefs = np.array([c.coef for c in ctx.table.classes]) * to_units
    grades = risk.grade(coefs, breaks)
    if cfg.uncertainty is None:
        return grades, None, breaks
    u = cfg.uncertainty
    rng = np.random.default_rng(u.seed)
    r = risk.coefficient_ranges(ctx.table, u, to_units)  # the same distributions as the units' Monte Carlo
    draws = risk.draw_coefficients(r["coef"].to_numpy(), r["low"].to_numpy(), r["high"].to_numpy(), r["sd"].to_numpy(), u.draws, rng)
    keep = (risk.grade(draws, breaks) == grades[:, None]).mean(axis=1)
    return grades, np.round(100 * keep).astype(np.uint8), breaks


def _block(chunk: Chunk, date, lut: np.ndarray, class_of_code: np.ndarray, offset: int, units_only: bool) -> np.ndarray:
    out = lut[class_of_code[chunk.codes[date].astype(np.int64) - offset]]
    if units_only:
        out = np.where(inside_units(chunk), out, 0).astype(np.uint8)
    return out[None]


def declare(ctx: RunContext) -> list[MapProduct]:
    cfg = ctx.config
    if cfg.risk is None or not cfg.output.map:
        return []
    grades, probability, breaks = class_grades(ctx)
    labels = cfg.risk.labels
    units_only = (cfg.output.map_extent or ("units" if ctx.layers else "raster")) == "units" and bool(ctx.layers)
    legend = "; ".join(f"{g} {lbl}" for g, lbl in enumerate(labels, start=1))
    tags = {"lucr_legend": f"0 no data; {legend}", "lucr_breaks": ", ".join(f"{b:g}" for b in breaks), "lucr_indicator": f"net flux density, {cfg.output.units} / ha / yr"}
    products = []
    for lc in ctx.dates:
        cols = ctx.columns[lc.year]
        grade_lut = np.zeros(cols.n_columns, np.uint8)
        grade_lut[: len(grades)] = grades
        block = partial(_block, date=lc.year, class_of_code=cols.class_of_code, offset=cols.offset, units_only=units_only)
        products.append(MapProduct(
            name=f"risk_grade{ctx.suffix(lc.year)}", bands=("grade",), dtype="uint8", nodata=0, units="grade",
            block=partial(block, lut=grade_lut), description="carbon risk grade of each cell (its net flux density)",
            colormap={g: COLOURS[g] for g in range(len(labels) + 1)}, tags=tags,
        ))
        if probability is not None:
            p_lut = np.zeros(cols.n_columns, np.uint8)
            p_lut[: len(probability)] = np.maximum(probability, 1)  # 0 is no data: a grade kept in under 0.5 % of draws shows 1 %
            products.append(MapProduct(
                name=f"risk_grade_probability{ctx.suffix(lc.year)}", bands=("probability",), dtype="uint8", nodata=0, units="%",
                block=partial(block, lut=p_lut), description="probability (%) that the cell keeps its grade under the coefficients' uncertainty",
                tags={"lucr_draws": str(cfg.risk.uncertainty.draws), "lucr_seed": str(cfg.risk.uncertainty.seed)},
            ))
    return products
