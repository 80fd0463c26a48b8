"""One declaration of every output of a run (as InVEST's model spec declares its files): the
output's id, file pattern, formats, when it is written, what it holds, and its columns with
units and descriptions.

Read by: the column metadata written into the files (:mod:`lucr.table_meta`: GeoPackage
``gpkg_data_columns``, Parquet field metadata, the xlsx header rows), ``lucr validate --outputs``
(:func:`check_folder`: every file of a folder is declared, every column of every table too),
the report's file list (:func:`describe_files`), and the generated documentation
(``docs/output_columns.md``, the file list in ``docs/outputs.md`` and the zonal schema in the
README; :func:`markdown`; a test keeps them in sync), and the writers of the risk tables, the
report, ``run.json``, the manifest and the workbook, which take their names from :func:`stem`.
A new output is one registration here; the tests that validate the sample runs' folders fail
until it is made.

Patterns: ``{level}`` the plural file word of a zone level (``provinces``; ``grid`` for the
whole raster in change tables; ``inventory...`` for the statistics route's risk), ``{year}``,
``{t1}``/``{t2}`` four-digit years, ``[...]`` optional. Carbon columns are declared in t C
(``net_tc``); runs in t CO2 write them renamed (``net_tco2``, :func:`lucr.units.renamed`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

TABLE_FORMATS = ("gpkg", "csv", "parquet")


@dataclass(frozen=True)
class Column:
    name: str  # a name, or a pattern with <code> / <category> / <n> placeholders
    unit: str
    description: str

    def regex(self) -> re.Pattern:
        body = re.escape(self.name)
        for key, value in (("code", r"-?\d+"), ("category", r"[a-z_]+"), ("n", r"\d+")):
            body = body.replace(re.escape(f"<{key}>"), f"(?P<{key}>{value})")
        return re.compile(body)

    def filled(self, name: str) -> "Column | None":
        """This column's declaration for the concrete ``name`` (placeholders filled in), or None."""
        m = self.regex().fullmatch(name)
        if m is None:
            return None
        description = self.description
        for key, value in m.groupdict().items():
            description = description.replace(f"<{key}>", value)
        return Column(name, self.unit, description)


@dataclass(frozen=True)
class Output:
    id: str
    pattern: str  # without extension
    formats: tuple[str, ...]
    when: str
    description: str
    columns: tuple[Column, ...] = ()
    geometry: str = ""  # what the GeoPackage / GeoParquet geometry holds ("" none)

    def regex(self) -> re.Pattern:
        body = re.escape(self.pattern).replace(r"\[", "(?:").replace(r"\]", ")?")
        for key, value in (("level", r"[A-Za-z0-9_]+?"), ("year", r"\d{4}"), ("t1", r"\d{4}"), ("t2", r"\d{4}")):
            body = body.replace(re.escape("{" + key + "}"), value)
        return re.compile(body)

    def matches(self, filename: str) -> bool:
        stem, _, ext = filename.partition(".")
        return ext in self.formats and bool(self.regex().fullmatch(stem))

    def column(self, name: str) -> Column | None:
        """The declared column ``name`` is (also in t CO2, renamed)."""
        plain = re.sub(r"tco2", "tc", name)
        return next((f for c in self.columns for f in (c.filled(name) or c.filled(plain),) if f is not None), None)


def _cols(text: str) -> tuple[Column, ...]:
    """Columns from ``name | unit | description`` lines."""
    out = []
    for line in filter(str.strip, text.splitlines()):
        name, unit, description = (part.strip() for part in line.split("|", 2))
        out.append(Column(name, unit, description))
    return tuple(out)


T = TABLE_FORMATS
UNIT = """
unit_id | | id of the admin unit (from the polygon layer's id column, as text)
name | | name of the unit (the id where the layer has no names)
"""
INTERVAL = """
year_from | | first date of the interval
year_to | | second date of the interval
"""

ZONAL = _cols(UNIT + """
parent_id | | id of the enclosing unit one level up (empty on the coarsest level)
level | | zone level name from the config
year | | land-cover year (by-year table only)
area_ha | ha | area of the unit: its coverage-weighted cells on the grid, with or without data, plus its polygon's part outside the raster
valid_fraction | 1 | share of area_ha with a land-cover class
area_ha_class_<code> | ha | area of the class <code> (a column for every class of the legend, also absent ones)
source_tc | t C / yr | carbon released by the source classes (>= 0)
sink_tc | t C / yr | carbon fixed by the sink classes (<= 0)
net_tc | t C / yr | source + sink (positive: the unit is a net source)
net_tc_per_ha | t C / ha / yr | net carbon emission per ha with data
cbc_landcover | 1 | land-cover carbon balance coefficient source / abs(sink) (> 1: emits more than its land fixes); empty without sink land; not seed 003's CBC (see inventory)
polygon_area_ha | ha | geodesic (geographic CRS) or planar area of the unit's polygon
flux_raster_area_ha | ha | with flux_raster: area where the raster replaced the class coefficient
builtup_statistics_tc | t C / yr | with statistics.builtup: statistics: the unit's built-up flux from the statistics (its share of its unit's built-up energy emissions); empty where the coefficient stands
""")

RISK = _cols(UNIT + """
year | | year of the land cover (or of the statistics)
source | t C / yr | source S: land-cover sources, or the statistics route's human release
sink | t C / yr | sink magnitude K (>= 0): land-cover sinks, or the statistics route's ecosystem fixation
net | t C / yr | N = S - K
cbc | 1 | CBC = S / K (inf: a source without sink land, graded highest); the graded indicator by default
obc | 1 | statistics route: oxygen balance coefficient, O2 consumed / O2 released
net_per_ha | t C / ha / yr | net per ha with data (land-cover route)
sink_share | 1 | K / (S + K)
builtup_share | 1 | share of the valid area that is built-up (land-cover route)
grade | | 1 (strong sink) .. 5 (severe risk) by the breaks of risk_*_breaks; 0 no data
grade_label | | the grade's label (risk.labels)
balance_type | | source-type (S rises significantly), sink-type (K falls), source-sink dual (both), stable; n/a with fewer than 3 years
temporal_type | | long-term (significant rising trend, or over the threshold >= long_term_years in a row), short-term, none
spatial_type | | from LISA: aggregated risk (HH), aggregated low risk (LL), transitional (HL/LH), dispersed; n/a without LISA
driver_type | | urban expansion, industry/mining, agricultural, natural background or restoration, from the transitions of the first -> last date; n/a with one date or statistics
driver_transition | | the single transition releasing most carbon, with its area and effect
driver_share | 1 | share of the released carbon carried by the driver's category
dynamic_degree_pct_per_yr | % / yr | comprehensive land-use dynamic degree of the interval ending this year (multi-date runs)
change_carbon | t C | stock change of the changed transitions of the interval ending this year (< 0: lost; with pools)
net_trend_rel_per_yr | 1 / yr | Sen's slope of N over its mean abs(N) (>= 3 years)
net_trend_p | 1 | Mann-Kendall two-sided p of the N series
builtup_expansion_per_yr | 1 / yr | Sen's slope of the built-up share
exposure | 1 | min-max normalised log CBC
sensitivity_net_trend | 1 | min-max normalised net trend
sensitivity_dynamic_degree | 1 | min-max normalised mean dynamic degree of the unit
sensitivity_builtup_expansion | 1 | min-max normalised built-up expansion
sensitivity | 1 | mean of the sensitivity components that are known
adaptive_capacity | 1 | min-max normalised sink share
risk_index_equal | 1 | mean of exposure, sensitivity and 1 - adaptive capacity
risk_index_entropy | 1 | the same with entropy weights (run_summary / risk summary give the weights)
warning | | none, blue (weak sink near the threshold), yellow, orange, red (grades 3-5)
threshold_margin | | the graded indicator minus the risk threshold (> 0: over it)
crossing_year | | year the ensemble forecast crosses the risk threshold (units below it now; >= 4 equally spaced years)
forecast_grade | | GM(1,1) fit grade of the unit's indicator series: good, qualified, barely, unqualified
low_confidence | | true when the GM(1,1) fit is barely or unqualified
assessment | | seed 000's grade - type - effect line
source_p5 | t C / yr | Monte Carlo 5 % of S (also _p50, _p95)
source_p50 | t C / yr | Monte Carlo median of S
source_p95 | t C / yr | Monte Carlo 95 % of S
sink_p5 | t C / yr | Monte Carlo 5 % of K
sink_p50 | t C / yr | Monte Carlo median of K
sink_p95 | t C / yr | Monte Carlo 95 % of K
net_p5 | t C / yr | Monte Carlo 5 % of N
net_p50 | t C / yr | Monte Carlo median of N
net_p95 | t C / yr | Monte Carlo 95 % of N
cbc_p5 | 1 | Monte Carlo 5 % of CBC
cbc_p50 | 1 | Monte Carlo median of CBC
cbc_p95 | 1 | Monte Carlo 95 % of CBC
p_grade_<n> | 1 | probability of grade <n> under the coefficients' uncertainty
p_cbc_ge_1 | 1 | probability that CBC >= 1 (a net source)
p_cbc_ge_3 | 1 | probability that CBC >= 3 (ecosystems fix less than a third)
""")

CHANGE_COMMON = UNIT


OUTPUTS: tuple[Output, ...] = (
    Output("carbon_balance", "carbon_balance[_{year}]", ("tif",), "output.map (default)",
           "COG, bands source, sink, net: carbon flux density, t C / ha / yr (t CO2 with output.units)"),
    Output("carbon_balance_style", "carbon_balance[_{year}]", ("qml",), "with the map", "QGIS style of the map's net band"),
    Output("risk_grade", "risk_grade[_{year}]", ("tif",), "risk and the map", "uint8 paletted COG: each cell's risk grade on its net flux density; 0 no data; legend and breaks in the tags"),
    Output("risk_grade_probability", "risk_grade_probability[_{year}]", ("tif",), "risk with uncertainty and the map", "uint8 COG: probability (%) that the cell keeps its grade under its class coefficient's uncertainty"),
    Output("carbon_stock_map", "carbon_stock[_{year}]", ("tif",), "change.maps: stock", "COG, bands c_above, c_below, c_soil, c_dead, total: t C / ha"),
    Output("sequestration_map", "sequestration_{t1}_{t2}", ("tif",), "change.maps: sequestration", "COG: total stock at t2 minus t1, t C / ha"),
    Output("transitions_map", "transitions_{t1}_{t2}", ("tif",), "change.maps: transitions", "uint16 paletted COG: 1 + i K + j for class index i at t1, j at t2"),
    Output("inventory_allocated", "inventory_allocated[_{year}]", ("tif",), "statistics.allocate", "COG, float64: the statistics route's totals spread over each unit's cells of the category, t C / ha / yr"),
    Output("zonal_by_year", "zonal_{level}_by_year", T, "several dates", "one row per unit and date, no geometry (the input of lucr analyze)", ZONAL),
    Output("zonal", "zonal_{level}[_{year}]", T, "per zone level", "one row per unit: class areas, fluxes, CBC", ZONAL, geometry="unit polygons"),
    Output("legend", "legend", T, "always", "the classes with their coefficient, status and source", _cols("""
code | | land-cover class code
name | | class name
coef_tc_per_ha | t C / ha / yr | carbon flux density of the class (sources positive)
status | | provenance of the value: paper, literature_default, unverified or user
ref | | source of the value
coef_low_tc_per_ha | t C / ha / yr | low end of the range the risk Monte Carlo draws the coefficient from
coef_high_tc_per_ha | t C / ha / yr | high end of that range (coef +/- 1.645 sd for a normal draw)
coef_sd_tc_per_ha | t C / ha / yr | standard deviation of a normal draw (empty: triangular low - coef - high)
range_source | | where the range comes from: the config, the coefficient table (with its source) or an assumed share by status
""")),
    Output("risk_breaks", "risk_{level}_breaks", T, "risk", "class bounds of the grades per year, their scheme and the year they were fitted on", _cols("""
year | | year the breaks grade
scheme | | fixed, jenks, quantiles or equal
indicator | | the graded indicator (cbc or net_per_ha)
break_<n> | | inner bound <n> (a value on a bound takes the higher grade)
fitted_on | | config (fixed breaks) or the year data-driven breaks were fitted on
""")),
    Output("risk_forecast", "risk_{level}_forecast", T, "risk, >= 4 equally spaced years", "the graded indicator's series per unit: observed, fitted and forecast to risk.warning_year by method", _cols("""
unit_id | | id of the unit
indicator | | the graded indicator
method | | observed, gm11, linear, growth or ensemble (mean of the three)
kind | | observed, fitted or forecast
year | | year
value | | the indicator's value
""")),
    Output("risk", "risk_{level}", T, "risk (default on, with zones or statistics)", "per unit and year: indicators, grade, types, warning, forecast crossing and Monte Carlo intervals", RISK, geometry="unit polygons"),
    Output("analysis_forecast_fit", "analysis_{level}_forecast_fit", T, "analysis, >= 4 equally spaced years", "fit statistics per unit, variable and method", _cols("""
unit_id | | id of the unit
variable | | analysed column
method | | gm11, linear, growth or ensemble
a | 1 / step | GM(1,1) development coefficient
b | | GM(1,1) grey input (unit of the variable)
C | 1 | GM(1,1) posterior variance ratio
P | 1 | GM(1,1) small-error probability
grade | | GM(1,1) grade: good, qualified, barely, unqualified
ratio_test_passed | | every class ratio inside (e^(-2/(n+1)), e^(2/(n+1)))
slope | / yr | linear trend (unit of the variable per year)
intercept | | linear: value at year 0
r2 | 1 | linear R squared
p_value | 1 | linear: two-sided p of the slope
rate | 1 / yr | growth: average annual growth rate
rmse | | root-mean-square error (unit of the variable)
mape | % | mean absolute percentage error
status | | ok, or why the unit was not modelled
""")),
    Output("analysis_forecast", "analysis_{level}_forecast", T, "analysis, >= 4 equally spaced years", "fitted and forecast values per unit, variable, method and year", _cols("""
unit_id | | id of the unit
variable | | analysed column
method | | gm11, linear, growth or ensemble
year | | observed years, then the forecast years
kind | | fitted or forecast
observed | | the input value (empty for forecasts)
value | | fitted or forecast value (unit of the variable)
""")),
    Output("analysis_grey_relational", "analysis_{level}_grey_relational", T, "analysis, >= 3 years", "Deng's grey relational degree of each comparison series to the reference, per unit", _cols("""
unit_id | | id of the unit
reference | | reference column
comparison | | comparison column
degree | 1 | grey relational degree (0, 1]
rank | | 1 = strongest tie within the unit
status | | ok, or why the series could not be normalised
""")),
    Output("analysis_moran", "analysis_{level}_moran", T, "analysis with polygons", "global Moran's I per variable and year", _cols("""
variable | | analysed column
year | | year
I | 1 | Moran's I
expected_I | 1 | -1 / (n - 1)
z_sim | 1 | z of I under permutation
p_sim | 1 | permutation p
z_norm | 1 | z under the normal approximation
p_norm | 1 | p under the normal approximation
n | | units
status | | ok, or why not computed
weights | | kind of spatial weights
permutations | | number of permutations
seed | | permutation seed
""")),
    Output("analysis_lisa", "analysis_{level}_lisa", T, "analysis with polygons", "local Moran (LISA) per unit, variable and year", _cols(UNIT + """
variable | | analysed column
year | | year
value | | the unit's value
z | 1 | standardised value
lag_z | 1 | spatial lag of z
local_i | 1 | local Moran's I
p_sim | 1 | permutation p
quadrant | | HH, LH, LL, HL
cluster | | the quadrant if p_sim < alpha, else not significant; excluded (island)
spatial_type | | aggregated, transitional, dispersed
status | | ok, or why not computed
"""), geometry="unit polygons"),
    Output("analysis_gravity_ellipses", "analysis_{level}_gravity_ellipses", T, "analysis with polygons", "standard deviational ellipse per variable and year", _cols("""
variable | | weighting column
weight | | value, or magnitude for a negative variable
year | | year
x | m | centre, equal-area CRS
y | m | centre, equal-area CRS
lon | degree | centre longitude
lat | degree | centre latitude
major_km | km | one weighted standard deviation along the major axis
minor_km | km | along the minor axis
rotation_deg | degree | major axis, clockwise from north, [0, 180)
flattening | 1 | 1 - minor / major
"""), geometry="ellipse polygons, EPSG:4326"),
    Output("analysis_gravity_track", "analysis_{level}_gravity_track", T, "analysis with polygons, >= 2 years", "the centre of gravity's moves between years", _cols("""
variable | | weighting column
weight | | value or magnitude
from_year | | start of the move
to_year | | end of the move
distance_km | km | geodesic distance
bearing_deg | degree | bearing of the move
direction | | N, NE, ... or none
speed_km_per_year | km / yr | distance per year
cumulative_km | km | distance since the first year
"""), geometry="line strings, EPSG:4326"),
    Output("analysis_gravity", "analysis_{level}_gravity", T, "analysis with polygons", "centre of gravity per variable and year", _cols("""
variable | | weighting column
weight | | value, or magnitude for a negative variable such as sink_tc
year | | year
x | m | equal-area CRS
y | m | equal-area CRS
lon | degree | longitude
lat | degree | latitude
total_weight | | sum of the weights
n_units | | units with positive weight
"""), geometry="points, EPSG:4326"),
    Output("analysis_summary", "analysis_{level}_summary", ("json",), "analysis", "years, sections run and skipped, panels, forecast grades, weights, Moran's I"),
    Output("transitions", "transitions_{level}", T, "change, >= 2 dates", "transition areas per unit and interval (non-zero entries, persistence included)", _cols(UNIT + INTERVAL + """
class_from | | class code at year_from
class_to | | class code at year_to
name_from | | class name at year_from
name_to | | class name at year_to
area_ha | ha | area that moved from class_from to class_to
""")),
    Output("transition_matrix", "transition_matrix_{level}", T, "change, >= 2 dates", "the transition matrix per unit: one row per class at t1", _cols(UNIT + INTERVAL + """
class_from | | class code at year_from
name_from | | class name at year_from
area_ha_to_<code> | ha | area that went to class <code> at year_to
area_ha_from | ha | row sum
""")),
    Output("land_use_structure", "land_use_structure_{level}", T, "change", "structure of the land use per unit and date", _cols(UNIT + """
year | | date
area_ha | ha | area with a class
classes_present | | classes with area
gibbs_martin | 1 | Gibbs-Martin diversification index
""")),
    Output("dynamic_degree", "dynamic_degree_{level}", T, "change, >= 2 dates", "single and comprehensive dynamic degree per class", _cols(UNIT + INTERVAL + """
class_code | | class code
class_name | | class name
area_ha_from | ha | area at year_from
area_ha_to | ha | area at year_to
net_change_ha | ha | area_ha_to - area_ha_from
single_dynamic_degree_pct_per_yr | % / yr | single land-use dynamic degree
comprehensive_dynamic_degree_pct_per_yr | % / yr | comprehensive dynamic degree of the unit
""")),
    Output("intensity_interval", "intensity_interval_{level}", T, "change, >= 2 dates", "Aldwaik-Pontius intensity analysis, interval level", _cols(UNIT + INTERVAL + """
years | yr | length of the interval
extent_ha | ha | area with a class at both dates
change_ha | ha | changed area
interval_intensity_pct | % / yr | annual change intensity of the interval
uniform_intensity_pct | % / yr | the uniform intensity over all intervals
speed | | fast, slow or uniform
""")),
    Output("intensity_category", "intensity_category_{level}", T, "change, >= 2 dates", "intensity analysis, category level", _cols(UNIT + INTERVAL + """
class_code | | class code
class_name | | class name
gross_gain_ha | ha | gross gain
gross_loss_ha | ha | gross loss
gain_intensity_pct | % / yr | gain intensity
loss_intensity_pct | % / yr | loss intensity
interval_intensity_pct | % / yr | the interval's uniform intensity
gain_state | | active or dormant
loss_state | | active or dormant
""")),
    Output("intensity_transition", "intensity_transition_{level}", T, "change, >= 2 dates", "intensity analysis, transition level", _cols(UNIT + INTERVAL + """
kind | | gain or loss
category | | the category analysed
category_name | | its name
other_class | | the class it gained from or lost to
other_name | | its name
area_ha | ha | transition area
transition_intensity_pct | % / yr | transition intensity
uniform_intensity_pct | % / yr | uniform transition intensity
state | | targeted or avoided
""")),
    Output("carbon_stock", "carbon_stock_{level}", T, "change.pools", "carbon stocks per unit and date (InVEST-compatible pools)", _cols(UNIT + """
year | | date
area_ha | ha | area with a class
c_above_tc | t C | above-ground stock
c_below_tc | t C | below-ground stock
c_soil_tc | t C | soil stock
c_dead_tc | t C | dead-matter stock
stock_raster_tc | t C | with stock_raster: stock from the raster
stock_raster_area_ha | ha | area the stock raster covered
total_tc | t C | total stock
total_tc_per_ha | t C / ha | total stock per ha
""")),
    Output("sequestration", "sequestration_{level}", T, "change.pools, >= 2 dates", "stock change per unit and interval, and its value", _cols(UNIT + INTERVAL + """
stock_from_tc | t C | stock at year_from
stock_to_tc | t C | stock at year_to
sequestration_tc | t C | stock_to - stock_from
sequestration_tc_per_yr | t C / yr | per year of the interval
npv | currency | with valuation: net present value (price per t C)
""")),
    Output("change_carbon", "change_carbon_{level}", T, "change.pools, >= 2 dates", "stock change of each changed transition", _cols(UNIT + INTERVAL + """
class_from | | class code at year_from
class_to | | class code at year_to
name_from | | class name at year_from
name_to | | class name at year_to
transition_type | | categories, e.g. forest -> built_up
area_ha | ha | transition area
stock_change_tc_per_ha | t C / ha | density at t2 minus t1
carbon_tc | t C | stock change (< 0: carbon lost)
direction | | loss, gain or none
rank | | by magnitude within unit and interval
""")),
    Output("scenarios", "scenarios_{level}", T, "change.scenarios", "class areas, fluxes and stocks of the base date and every scenario", _cols(UNIT + """
scenario | | baseline, or the scenario's name
year | | scenario year
base_year | | date the scenario starts from
area_ha_class_<code> | ha | area of class <code>
source_tc | t C / yr | sources
sink_tc | t C / yr | sinks
net_tc | t C / yr | net
d_net_tc | t C / yr | net minus the base date's
stock_tc | t C | with pools: stock
d_stock_tc | t C | with pools: stock minus the base date's
""")),
    Output("inventory_demand", "inventory[_{level}]_eco_land_demand", T, "statistics.demand", "ecological-land demand per unit for the target year (seed 003 Table 5)", _cols("""
unit_id | | id of the unit
target_year | | year of the demand
share | 1 | share of the release ecosystems should fix (seed 003: 1/3)
human_release_tc | t C / yr | forecast release in the target year (ensemble, >= 4 years)
o2_consumed_t | t O2 / yr | forecast oxygen consumption
cbc_target | 1 | target-year release over today's fixation
obc_target | 1 | target-year oxygen consumption over today's release
increase_carbon_pct | % | increase of ecological land needed for the carbon share
increase_oxygen_pct | % | the same for oxygen
required_standard_land_ha | ha | forest-equivalent land fixing the share of the release
""")),
    Output("inventory", "inventory[_{level}]", T, "statistics", "the statistics route per unit and year: components, seed 001 sums, seed 003 carbon-oxygen balance", _cols(UNIT + """
year | | statistics year
farm_input_emission_tc | t C / yr | fertiliser, sown area, machinery, irrigation, film (seed 001 Table 1)
builtup_emission_tc | t C / yr | energy: H K (GDP2 + GDP3) or energy use x K
crop_uptake_tc | t C / yr | crop carbon uptake (seed 001 Table 3)
sink_<category>_tc | t C / yr | sink of a category, as given in the statistics
sink_tc | t C / yr | crop uptake + given sinks (magnitude, seed 001 Table 5)
source_tc | t C / yr | farm inputs + built-up energy (seed 001)
net_tc | t C / yr | source - sink
human_release_tc | t C / yr | fuels + cement + respiration (seed 003), or seed 001's source
o2_consumed_t | t O2 / yr | oxygen consumed by fuels and respiration
ecosystem_fixation_tc | t C / yr | carbon fixed by ecosystems
o2_released_t | t O2 / yr | fixation x 32/12
cbc | 1 | seed 003 CBC: human release / ecosystem fixation
obc | 1 | seed 003 OBC: O2 consumed / O2 released
standard_ecological_land_ha | ha | forest-equivalent ecological land: the fixation over forest's fixation rate
release_tc_per_10k_yuan | t C / 10^4 yuan | human release per GDP (basis in gdp_basis)
gdp_basis | | total (gdp given) or secondary + tertiary GDP
release_tc_per_capita | t C / person / yr | human release per person
tier | | where the figures come from: statistics x factors, given totals, or land-cover areas x class rates
builtup_coef_tc_per_ha | t C / ha / yr | with a raster and statistics.level: built-up emissions over the unit's built-up area (compare the raster route's built-up coefficient)
"""), geometry="unit polygons (with statistics.level)"),
    Output("workbook", "lucr_tables", ("xlsx",), "xlsx in output.tables", "one workbook of the tables, a sheet per table, with titles and units"),
    Output("run_summary", "run_summary[_{year}]", ("json",), "land cover", "totals inside the units, whole raster, outside, per level"),
    Output("run_record", "run", ("json",), "always", "provenance: resolved config, inputs with checksums, packages, outputs"),
    Output("manifest", "lucr_outputs", ("json",), "always", "the files the last run published into the folder"),
    Output("report", "report", ("html",), "output.report (default)", "the self-contained report (lucr report DIR rebuilds it)"),
)


def stem(output_id: str, **fields) -> str:
    """The file stem of a declared output: its pattern with ``fields`` filled in (``level``,
    ``year``, ``t1``, ``t2``); an optional ``[...]`` part is kept when its fields are given
    (and not None), dropped otherwise. ``stem("risk_breaks", level="provinces")`` ->
    ``risk_provinces_breaks``; ``stem("run_summary", year=None)`` -> ``run_summary``."""
    out = next((o for o in OUTPUTS if o.id == output_id), None)
    if out is None:
        raise KeyError(f"no declared output {output_id!r} (lucr.outputs_spec.OUTPUTS)")

    def optional(m: re.Match) -> str:
        keys = re.findall(r"\{(\w+)\}", m.group(1))
        return m.group(1) if all(fields.get(k) is not None for k in keys) else ""

    text = re.sub(r"\[([^\]]*)\]", optional, out.pattern)
    return text.format(**{k: v for k, v in fields.items() if v is not None})


def filename(output_id: str, fmt: str | None = None, **fields) -> str:
    """``stem(...)`` with the output's extension (``fmt``, or its only format)."""
    out = next(o for o in OUTPUTS if o.id == output_id)
    return f"{stem(output_id, **fields)}.{fmt or out.formats[0]}"


def output_of(filename: str) -> Output | None:
    """The declared output a file name belongs to (first match in declaration order)."""
    return next((o for o in OUTPUTS if o.matches(filename)), None)


def column_info(name: str, stem: str | None = None) -> Column | None:
    """The declaration of column ``name`` (of the table ``stem`` if given, else of any table)."""
    if stem is not None:
        out = next((o for o in OUTPUTS if o.columns and o.regex().fullmatch(stem)), None)
        found = out.column(name) if out is not None else None
        if found is not None:
            return found
    return next((c for o in OUTPUTS for c in [o.column(name)] if c is not None), None)


@dataclass
class FolderCheck:
    files: dict[str, str] = field(default_factory=dict)  # file -> output id
    undeclared_files: list[str] = field(default_factory=list)
    undeclared_columns: dict[str, list[str]] = field(default_factory=dict)  # file -> columns

    @property
    def ok(self) -> bool:
        return not self.undeclared_files and not self.undeclared_columns


def check_folder(folder: str | Path) -> FolderCheck:
    """Every file of an output folder against the declaration: is it declared, and (CSV and
    Parquet tables) is every column? Hidden files (staging, lock) are skipped."""
    import pyarrow.parquet as pq

    check = FolderCheck()
    custom = _statistics_stem(Path(folder))
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        name = path.name
        if custom and (name.startswith(custom) or name.startswith(f"risk_{custom}")):
            name = name.replace(custom, "inventory", 1)  # statistics.output renames the inventory tables
        out = output_of(name)
        if out is None:
            check.undeclared_files.append(path.name)
            continue
        check.files[path.name] = out.id
        if not out.columns or path.suffix not in (".csv", ".parquet"):
            continue
        if path.suffix == ".parquet":
            names = [n for n in pq.read_schema(path).names if n != "geometry"]
        else:
            import csv

            with path.open(encoding="utf-8-sig", newline="") as f:
                names = next(csv.reader(f), [])
        keep = _keep_columns(Path(folder))
        bad = [n for n in names if out.column(n) is None and n not in keep]
        if bad:
            check.undeclared_columns[path.name] = bad
    return check


def _run_config(folder: Path) -> dict:
    import json

    record = folder / "run.json"
    return json.loads(record.read_text(encoding="utf-8")).get("config", {}) if record.exists() else {}


def _statistics_stem(folder: Path) -> str | None:
    """A ``statistics.output`` stem other than the declared ``inventory``, from the run's ``run.json``."""
    stem = (_run_config(folder).get("statistics") or {}).get("output")
    return stem if stem and stem != "inventory" else None


def _keep_columns(folder: Path) -> set[str]:
    """Columns a run copies from the polygon layers (``zones[].keep``), declared by the user's config."""
    zones = _run_config(folder).get("zones") or []
    return {c for z in zones for c in (z.get("keep") or [])}


def describe_files(names: list[str]) -> list[tuple[str, str, str]]:
    """(output id, description, files) per declared output present in ``names``, in declaration order."""
    grouped: dict[str, list[str]] = {}
    for n in names:
        out = output_of(n)
        if out is not None:
            grouped.setdefault(out.id, []).append(n)
    return [(o.id, o.description, ", ".join(sorted(grouped[o.id]))) for o in OUTPUTS if o.id in grouped]


def markdown(section: str) -> str:
    """Generated documentation: ``files`` (the file list of docs/outputs.md), ``columns`` (docs/output_columns.md)
    or ``zonal`` (the README's zonal schema)."""
    if section == "files":
        rows = [f"| `{o.pattern}.{{{','.join(o.formats)}}}` | {o.when} | {o.description} |" if len(o.formats) > 1 else f"| `{o.pattern}.{o.formats[0]}` | {o.when} | {o.description} |" for o in OUTPUTS]
        return "| file | when | content |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    if section == "zonal":
        z = next(o for o in OUTPUTS if o.id == "zonal")
        return "| column | unit | meaning |\n|---|---|---|\n" + "\n".join(f"| `{c.name}` | {c.unit} | {c.description} |" for c in z.columns) + "\n"
    if section == "columns":
        parts = ["# Output columns\n", "Generated from `pipeline/outputs_spec.py` (`python -m lucr.outputs_spec columns`); do not edit by hand.",
                 "Carbon columns are shown in t C (`_tc`); runs with `output.units: t CO2` write them as `_tco2`, values x 44/12.\n"]
        for o in OUTPUTS:
            if not o.columns:
                continue
            geometry = f" Geometry (GeoPackage, GeoParquet): {o.geometry}." if o.geometry else ""
            parts.append(f"## `{o.pattern}` ({o.id})\n\n{o.description}. Written: {o.when}.{geometry}\n\n| column | unit | meaning |\n|---|---|---|")
            parts.append("\n".join(f"| `{c.name}` | {c.unit} | {c.description} |" for c in o.columns) + "\n")
        return "\n".join(parts)
    raise ValueError(f"unknown section {section!r}")


#: Generated blocks of the repository's documentation: file -> section (between the markers).
DOC_BLOCKS = {"docs/outputs.md": "files", "README.md": "zonal"}
COLUMNS_DOC = "docs/output_columns.md"


def marker(section: str) -> tuple[str, str]:
    return f"<!-- generated: outputs_spec {section} -->\n", f"<!-- end: outputs_spec {section} -->"


def synced(text: str, section: str) -> str:
    """``text`` with its generated block of ``section`` rewritten from the declaration."""
    begin, end = marker(section)
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return head + begin + markdown(section) + end + tail


def write_docs(root: str | Path) -> list[Path]:
    """Rewrite the generated documentation under the repository ``root``."""
    root = Path(root)
    written = []
    for name, section in DOC_BLOCKS.items():
        path = root / name
        path.write_text(synced(path.read_text(encoding="utf-8"), section), encoding="utf-8")
        written.append(path)
    (root / COLUMNS_DOC).write_text(markdown("columns"), encoding="utf-8")
    return written + [root / COLUMNS_DOC]


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["write-docs"]:
        for path in write_docs(Path(__file__).resolve().parent.parent):
            print(f"wrote {path}")
    else:
        print(markdown(sys.argv[1] if len(sys.argv) > 1 else "columns"), end="")
