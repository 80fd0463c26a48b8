"""Numba kernels of lucr: pure functions on numpy arrays (no I/O, no dask, no pipeline imports).

Each kernel is compiled with ``nogil=True`` so dask threads run them in parallel, and
``cache=True`` so a run does not pay the JIT cost twice.
"""

from .crosstab import accumulate_zone_class_area
from .lookup import flux_density_bands

__all__ = ["accumulate_zone_class_area", "flux_density_bands"]
