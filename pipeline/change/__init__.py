"""Land-use change between the dates of a run (methods.md §3-4).

- :mod:`lucr.change.units` the rows of change tables: the whole grid and each zone level;
- :mod:`lucr.change.transitions` transition matrices per unit (long and wide tables);
- :mod:`lucr.change.structure` Gibbs-Martin diversity, single and comprehensive dynamic degree;
- :mod:`lucr.change.intensity` intensity analysis (Aldwaik & Pontius 2012);
- :mod:`lucr.change.stocks` carbon pools, stocks, sequestration, valuation, change carbon;
- :mod:`lucr.change.stage` the stage behind ``lucr run`` that writes them all.
"""
