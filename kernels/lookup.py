"""Class -> carbon flux coefficient lookup (methods.md section 1).

The coefficient method assigns each land-cover class ``c`` a flux density ``coef[c]``
(t C / ha / yr; sources positive, sinks negative; seed 001, Table 2). A cell's flux is
``coef[class] * area_ha``; the maps written by lucr hold the density itself, so they are
independent of cell area and can be summed with any area weighting downstream.

Codes are looked up through dense tables indexed by ``code - code_offset``; the
pipeline builds them (``lucr.coefficients``) so that nodata and unknown codes
hold NaN in ``coef_lut`` and are told apart by ``class_of_code``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def flux_density_bands(codes, coef_lut, code_offset, out):
    """Fill ``out[0] = source``, ``out[1] = sink``, ``out[2] = net`` flux density.

    Parameters
    ----------
    codes : 2-D integer array (rows, cols)
        Land-cover class codes.
    coef_lut : 1-D float32 array
        ``coef_lut[code - code_offset]`` = coefficient in t C / ha / yr, NaN for
        nodata and for codes missing from the coefficient table.
    code_offset : int
        Smallest code the table covers (0 for unsigned rasters, -128 / -32768 for
        signed ones).
    out : 3-D float32 array (3, rows, cols)
        ``source`` is ``max(coef, 0)``, ``sink`` is ``min(coef, 0)`` and ``net`` is
        ``coef``; all three are NaN where the code has no coefficient.

    Examples
    --------
    >>> lut = np.array([np.nan, -0.644, 55.8], np.float32)
    >>> out = np.empty((3, 1, 3), np.float32)
    >>> flux_density_bands(np.array([[0, 1, 2]], np.uint8), lut, 0, out)
    >>> out[:, 0, 1].tolist()  # a forest cell: no source, a sink of 0.644 t C/ha/yr
    [0.0, -0.6439999938011169, -0.6439999938011169]
    """
    n_codes = coef_lut.shape[0]
    rows, cols = codes.shape
    for i in range(rows):
        for j in range(cols):
            k = np.int64(codes[i, j]) - code_offset
            c = coef_lut[k] if 0 <= k < n_codes else np.float32(np.nan)
            out[2, i, j] = c
            if c > 0:
                out[0, i, j] = c
                out[1, i, j] = 0.0
            elif c <= 0:
                out[0, i, j] = 0.0
                out[1, i, j] = c
            else:  # NaN: nodata or unknown code
                out[0, i, j] = c
                out[1, i, j] = c


@njit(nogil=True, cache=True)
def lookup_difference(codes_a, lut_a, offset_a, codes_b, lut_b, offset_b, out):
    """``out = lut_b[codes_b] - lut_a[codes_a]`` per cell (NaN where either code is outside its table or NaN).

    One pass, no temporaries: the stock change between two dates (t C / ha) from the
    total stock density of each date's classes.

    Examples
    --------
    >>> lut = np.array([np.nan, 200.0, 51.0], np.float32)
    >>> out = np.empty((1, 3), np.float32)
    >>> lookup_difference(np.array([[1, 1, 0]], np.uint8), lut, 0, np.array([[2, 1, 1]], np.uint8), lut, 0, out)
    >>> out.tolist()
    [[-149.0, 0.0, nan]]
    """
    na, nb = lut_a.shape[0], lut_b.shape[0]
    rows, cols = codes_a.shape
    for i in range(rows):
        for j in range(cols):
            ka = np.int64(codes_a[i, j]) - offset_a
            kb = np.int64(codes_b[i, j]) - offset_b
            a = lut_a[ka] if 0 <= ka < na else np.float32(np.nan)
            b = lut_b[kb] if 0 <= kb < nb else np.float32(np.nan)
            out[i, j] = b - a
