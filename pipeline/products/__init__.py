"""Products of the single pass: map products and reductions (see :mod:`lucr.products.base`)."""

from lucr.products.base import MapProduct, Reduction, RunContext

__all__ = ["MapProduct", "Reduction", "RunContext"]
