"""Map product: the transition of each cell between two dates (uint16, paletted COG).

Encoding: ``0`` no data (or a code the legend lacks) at either date; otherwise
``1 + i * K + j`` for class index ``i`` at the first date and ``j`` at the second (indices
in legend order, K classes; ``lucr_classes`` tag lists the codes). Unchanged cells
(``i == j``) are grey; changed cells take the colour of their class at the second date.
Declared when ``transitions`` is in ``change.maps`` (at most 255 classes).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from lucr.chunk import Chunk
from lucr.products.base import MapProduct, RunContext
from lucr.products.transitions import intervals

#: Colours of destination classes (tab20-like), cycled for legends of more classes.
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194),
    (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
)


def _block(chunk: Chunk, first, last, index_first: np.ndarray, offset_first: int, index_last: np.ndarray, offset_last: int, k: int) -> np.ndarray:
    i = index_first[chunk.codes[first].astype(np.int64) - offset_first].astype(np.int64)
    j = index_last[chunk.codes[last].astype(np.int64) - offset_last].astype(np.int64)
    out = np.where((i < k) & (j < k), 1 + i * k + j, 0)
    return out.astype(np.uint16)[None]


def colormap(k: int) -> dict[int, tuple[int, int, int, int]]:
    cmap = {0: (0, 0, 0, 0)}
    for i in range(k):
        for j in range(k):
            cmap[1 + i * k + j] = (200, 200, 200, 255) if i == j else (*PALETTE[j % len(PALETTE)], 255)
    return cmap


def declare(ctx: RunContext) -> list[MapProduct]:
    change = ctx.config.change
    if change is None or "transitions" not in change.maps or not ctx.multi_date:
        return []
    k = ctx.table.n_classes
    if k > 255:
        raise ValueError("the transition map encodes at most 255 classes")  # config validation reports it first
    codes = ",".join(str(c) for c in ctx.table.codes)
    products = []
    for a, b in intervals([lc.year for lc in ctx.dates]):
        ca, cb = ctx.columns[a], ctx.columns[b]
        products.append(MapProduct(
            name=f"transitions_{a}_{b}", bands=("transition",), dtype="uint16", nodata=0, units="1 + i*K + j",
            block=partial(_block, first=a, last=b, index_first=ca.class_of_code, offset_first=ca.offset, index_last=cb.class_of_code, offset_last=cb.offset, k=k),
            description=f"class transition {a} -> {b}", colormap=colormap(k),
            tags={"lucr_encoding": "0 no data; 1 + i*K + j for class index i (first date), j (second date)", "lucr_classes": codes, "lucr_K": str(k)},
        ))
    return products
