"""lucr: land-use carbon risk — land-cover grids -> carbon-balance maps, zonal statistics, analysis.

The Python API (names load on first use, so ``import lucr`` stays fast)::

    import lucr

    result = lucr.run("configs/sample_china_2019.yaml", out_dir="lucr-output", overwrite=True)
    result.tables["province"]          # GeoDataFrame, one row per province
    result.maps["carbon_balance"]      # path of the published COG

- :func:`run` — one run from a config (path, mapping or :class:`RunConfig`) with overrides;
- :func:`load_config` — read and validate a YAML run config;
- :func:`open_landcover` — a land-cover raster as a lazy, chunked ``DataArray``;
- :func:`load_table`, :func:`load_legend`, :func:`load_parameters` — coefficients per
  class, legends, parameter tables (``configs/``).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lucr")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

_LAZY = {
    "run": "lucr.api",
    "RunResult": "lucr.runner",
    "RunConfig": "lucr.config",
    "load_config": "lucr.config",
    "open_landcover": "lucr.io",
    "load_table": "lucr.coefficients",
    "CoefficientTable": "lucr.coefficients",
    "load_legend": "lucr.legend",
    "Legend": "lucr.legend",
    "load_parameters": "lucr.parameters",
    "ParameterTable": "lucr.parameters",
    "LucrError": "lucr.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lucr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
