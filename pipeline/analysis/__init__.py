"""Time-series and spatial analysis of per-unit tables (methods.md §5-7), one concept per module.

- :mod:`lucr.analysis.panel` unit x year panels, missing-year policies, id matching;
- :mod:`lucr.analysis.forecast` GM(1,1), linear, growth-rate and ensemble forecasts;
- :mod:`lucr.analysis.grey_relational` Deng's grey relational analysis;
- :mod:`lucr.analysis.weights` spatial weights (queen, rook, knn, distance; islands);
- :mod:`lucr.analysis.autocorrelation` global Moran's I and LISA (esda);
- :mod:`lucr.analysis.gravity` centres of gravity, trajectories, deviational ellipses;
- :mod:`lucr.analysis.runner` the section runner behind ``lucr run`` and ``lucr analyze``.

Only the runner's names are imported here; the numerical modules (esda, scipy) load when used.
"""

from lucr.analysis.runner import (
    MIN_YEARS, SECTION_TABLES, AnalysisResult, UnitTable, analyse, analyse_file, output_names, plan, table_stems, write,
)

__all__ = [
    "MIN_YEARS", "SECTION_TABLES", "AnalysisResult", "UnitTable", "analyse", "analyse_file", "output_names", "plan", "table_stems", "write",
]
