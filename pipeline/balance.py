"""Carbon-balance density maps (methods.md section 1), built lazily from the land cover.

Bands: ``source`` (>= 0), ``sink`` (<= 0) and ``net`` (= source + sink), each the flux
density ``coef[class]`` in t C / ha / yr of the coefficient table (seed 001, Table 2 and
the literature defaults named in ``configs/coefficients``); NaN where there is no
data or no coefficient. A cell's flux in t C / yr is the density times its area
(``lucr.area``).
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from lucr.kernels.lookup import flux_density_bands

BANDS = ("source", "sink", "net")
UNIT = "t C / ha / yr"


def flux_density_block(codes: np.ndarray, coef_lut: np.ndarray, code_offset: int) -> np.ndarray:
    """``(3, rows, cols)`` float32 source/sink/net density of one block of class codes."""
    out = np.empty((3,) + codes.shape, dtype=np.float32)
    flux_density_bands(codes, coef_lut, code_offset, out)
    return out


def flux_density(codes: da.Array, coef_lut: np.ndarray, code_offset: int) -> da.Array:
    """Lazy ``(band, y, x)`` float32 array of source, sink and net flux density.

    Parameters
    ----------
    codes : dask array (y, x) of integer class codes
    coef_lut, code_offset : dense lookup table of the coefficients (t C / ha / yr,
        sources positive; NaN for nodata and unknown codes), from
        ``CoefficientTable.dense_luts``
    """
    return da.map_blocks(
        flux_density_block, codes, coef_lut, code_offset,
        dtype=np.float32, new_axis=0, chunks=((3,),) + codes.chunks, name="lucr-flux-density",
        meta=np.empty((0, 0, 0), np.float32),  # no meta inference: it would JIT the kernel for a new type
    )
