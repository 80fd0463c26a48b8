"""The statistics route (methods.md §2, §5): per-unit accounting from farm inputs, energy,
crop yields, fuels, cement and population, the carbon-oxygen balance (CBC, OBC) and the
ecological-land demand. Reads a statistics table (:mod:`.statistics`), applies factor
tables (:mod:`.factors`), computes (:mod:`.accounting`); :mod:`.stage` runs it for
``lucr run`` (with or without a land-cover raster).
"""

from lucr.inventory.accounting import account, demand_increase_pct, required_standard_land_ha
from lucr.inventory.factors import load_carbon_oxygen_factors, load_inventory_factors
from lucr.inventory.statistics import VARIABLES, read_statistics

__all__ = ["VARIABLES", "account", "demand_increase_pct", "load_carbon_oxygen_factors", "load_inventory_factors", "read_statistics", "required_standard_land_ha"]
