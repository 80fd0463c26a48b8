"""Run configuration: a YAML file validated with pydantic v2.

Input paths in a config file are relative to the file; ``output.dir`` is relative to
the working directory (like ``--out``). Unknown keys are rejected with the
key's name and the nearest valid one. ``lucr run`` without a config uses
``configs/sample_china_2019.yaml`` (the bundled MODIS sample).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lucr.errors import ConfigError
from lucr.yaml_strict import load_yaml

from lucr.configs import CONFIG_DIR
SAMPLE_CONFIG = CONFIG_DIR / "sample_china_2019.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LandCoverConfig(_Strict):
    """The land-cover raster(s): one ``path``, or ``years: {year: path}`` for a series."""

    path: Path | None = None
    year: int | None = None
    years: dict[int, Path] | None = None
    band: int | None = Field(None, ge=1, description="1-based band index; required when the raster has several bands")

    @model_validator(mode="after")
    def _one_source(self) -> "LandCoverConfig":
        if (self.path is None) == (self.years is None):
            raise ValueError("give exactly one of 'path' or 'years'")
        if self.years is not None and list(self.years) != sorted(self.years):
            raise ValueError(f"list the land-cover dates from the earliest to the latest (got {list(self.years)}): a later date before an earlier one is ambiguous")
        return self

    def series(self) -> dict[int | None, Path]:
        """``{year: path}`` in year order (year ``None`` for a single undated raster)."""
        if self.years is not None:
            return dict(sorted(self.years.items()))
        return {self.year: self.path}


class ZoneLevelConfig(_Strict):
    """One level of admin units (e.g. provinces), coarsest first in ``zones``."""

    level: str = Field(description="name of the level, e.g. 'province' or 'city'")
    path: Path
    layer: str | None = None
    id: str = Field(description="column holding the unit id (e.g. adcode)")
    name: str | None = Field(None, description="column holding the unit name")
    parent: str | None = Field(None, description="column holding the id of the enclosing unit one level up")
    output: str | None = Field(None, description="stem of the output tables (default zonal_<level>s)")
    nesting: Literal["error", "warn"] = Field(
        "error", description="a unit outside the parent its id names, or a parent its units leave uncovered: stop, or warn and go on",
    )
    nesting_tolerance: float = Field(0.01, ge=0, lt=1, description="share of a unit's area that may lie outside its parent (and of a parent left uncovered)")
    invalid: Literal["repair", "error"] = Field(
        "repair", description="invalid polygons (e.g. self-intersecting): repair them with a warning naming each unit and its area change, or stop",
    )
    keep: list[str] = Field([], description="columns of the polygon layer copied to the output tables (e.g. a name in another script, a region code)")

    @model_validator(mode="after")
    def _ascii_file_names(self) -> "ZoneLevelConfig":
        if self.output is not None and not (self.output.isascii() and self.output.replace("_", "").replace("-", "").isalnum()):
            raise ValueError(f"output {self.output!r} must be an ASCII file stem (letters, digits, '_' or '-'), e.g. zonal_provinces")
        if not self.level.isascii() and self.level not in LEVEL_NAMES and self.output is None:
            raise ValueError(
                f"level {self.level!r} is not an ASCII word and not one of {', '.join(LEVEL_NAMES)}: "
                "give the file stem of its tables, e.g. 'output: zonal_townships'"
            )
        return self

    def output_stem(self) -> str:
        return self.output or f"zonal_{self.plural}"

    @property
    def plural(self) -> str:
        """The level's plural in file names (``analysis_provinces_*``): from the level if ASCII, from
        :data:`LEVEL_NAMES` for the Chinese level names, else from ``output`` (its part after ``zonal_``)."""
        if self.level.isascii():
            return _plural(self.level)
        if self.level in LEVEL_NAMES:
            return _plural(LEVEL_NAMES[self.level])
        return self.output.removeprefix("zonal_")


#: Chinese names of admin levels and the English words that name their files (zonal_provinces.csv).
LEVEL_NAMES = {"省": "province", "省份": "province", "省级": "province", "市": "city", "地级市": "city", "市级": "city",
               "县": "county", "区县": "county", "县区": "county", "县级": "county", "乡镇": "township", "乡": "township", "镇": "township",
               "街道": "township", "村": "village"}


def _plural(word: str) -> str:
    """English plural of a level name: province -> provinces, city -> cities, county -> counties."""
    if word.endswith("s"):
        return word
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return word[:-1] + "ies"
    return word + "s"


class OutputConfig(_Strict):
    """What to write and how."""

    dir: Path = Path("lucr-output")
    map: bool = Field(True, description="write carbon_balance.tif")
    compress: Literal["zstd", "deflate"] = "zstd"
    tables: list[Literal["gpkg", "csv", "parquet", "xlsx"]] = ["gpkg", "csv", "parquet"]
    units: Literal["t C", "t CO2"] = Field("t C", description="carbon mass unit of maps and tables: t C, or t CO2 (x 44/12); columns say it (net_tc, net_tco2)")
    csv_bom: bool = Field(True, description="start CSVs with a UTF-8 byte-order mark, so that Excel (also on Chinese Windows) reads them as UTF-8")
    lang: Literal["en", "zh"] = Field("en", description="language of the console summary and of human-readable headers (column names stay English)")
    map_extent: Literal["units", "raster"] | None = Field(
        None, description="cells the map holds: inside the finest level's units (default when zones are given) or the whole raster",
    )
    report: bool = Field(True, description="write report.html: the headline, risk maps and tables, coefficients and their sources, methods")
    input_hashes: Literal["sha256", "size"] = Field(
        "sha256", description="run.json records each input's SHA-256 (read in the background during the pass), or only its size and time",
    )


class ClusterConfig(_Strict):
    """Where the dask graph runs: local threads (default) or a distributed scheduler."""

    address: str | None = Field(None, description="dask.distributed scheduler address, e.g. tcp://host:8786")
    threads: int | None = Field(None, ge=1, description="local threads (default: all cores)")
    reuse_freed_memory: bool = Field(
        True, description="during the run, workers started by dask's nanny (MALLOC_TRIM_THRESHOLD_=65536) reuse freed "
        "memory up to 32 MiB per array instead of faulting in fresh pages (1e9 cells, 2 workers: pass 17.4-17.8 s against 19.9-25.1 s); restored after the run",
    )
    pause_worker_profiler: bool = Field(
        True, description="during the run, the workers' statistical profiler (the dashboard's profile page; every 10 ms it walks "
        "the stacks of the threads running tasks, under the GIL) is paused (1e9 cells, 2 workers, 2 runs each: 18.8-19.3 s against "
        "20.3-21.4 s, 1.5 CPU-s less per worker); restarted after the run. The run then has no data in client.profile() or a performance report",
    )


class ForecastConfig(_Strict):
    """Trend forecasts per unit (methods.md §6): GM(1,1), linear, growth rate and their mean."""

    methods: list[Literal["gm11", "linear", "growth", "ensemble"]] = ["gm11", "linear", "growth", "ensemble"]
    horizon: int | None = Field(None, ge=1, description="steps (of the table's year spacing) to forecast")
    until: int | None = Field(None, description="forecast up to this year (e.g. 2030); default: 5 steps")

    @model_validator(mode="after")
    def _one_horizon(self) -> "ForecastConfig":
        if self.horizon is not None and self.until is not None:
            raise ValueError("give 'horizon' (steps) or 'until' (a year), not both")
        return self


class RelationalConfig(_Strict):
    """Grey relational analysis (Deng) of comparison columns against a reference column, per unit."""

    reference: str = "net_tc"
    compare: list[str] | Literal["classes"] = Field("classes", description="columns, or 'classes' for every area_ha_class_<code> column")
    normalise: Literal["initial", "mean", "minmax"] = "initial"
    rho: float = Field(0.5, gt=0, le=1, description="distinguishing coefficient")


class SpatialConfig(_Strict):
    """Spatial weights and permutation inference of Moran's I and LISA (methods.md §5)."""

    weights: Literal["queen", "rook", "knn", "distance"] = "queen"
    k: int = Field(4, ge=1, description="neighbours for weights: knn")
    distance_km: float | None = Field(None, gt=0, description="band for weights: distance")
    islands: Literal["nearest", "exclude"] = Field("nearest", description="units without neighbours: join to their nearest units, or leave out")
    island_k: int = Field(1, ge=1)
    permutations: int = Field(999, ge=99)
    seed: int = 12345
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of LISA clusters")

    @model_validator(mode="after")
    def _band(self) -> "SpatialConfig":
        if self.weights == "distance" and self.distance_km is None:
            raise ValueError("weights: distance needs 'distance_km'")
        return self


class AnalysisConfig(_Strict):
    """Time-series and spatial analysis of the per-unit tables, run after the zonal pass."""

    variables: list[str] = Field(["net_tc", "cbc_landcover"], min_length=1, description="columns of the zonal tables to analyse")
    levels: list[str] | None = Field(None, description="zone levels to analyse (default: all)")
    years: list[int] | None = Field(None, description="years to analyse (default: all)")
    missing_years: Literal["interpolate", "drop"] = "interpolate"
    forecast: ForecastConfig | None = ForecastConfig()
    relational: RelationalConfig | None = RelationalConfig()
    spatial: SpatialConfig | None = SpatialConfig()
    gravity: list[str] = Field(["source_tc", "sink_tc"], description="columns whose centre of gravity is tracked (one sign per column)")

    def columns(self, with_polygons: bool = True) -> list[str]:
        """Every table column the settings name (gravity only when there are polygons), once each."""
        named = list(self.variables) + (list(self.gravity) if with_polygons else [])
        if self.relational is not None:
            named += [self.relational.reference] + ([] if self.relational.compare == "classes" else list(self.relational.compare))
        return list(dict.fromkeys(named))


class FluxRasterConfig(_Strict):
    """A per-cell flux raster used in place of the class coefficient wherever it has a value (methods.md §8)."""

    path: Path = Field(description="raster on the land-cover grid, e.g. NEP; sources positive, sinks negative")
    band: int = Field(1, ge=1)
    unit: Literal["t C / ha / yr", "t CO2 / ha / yr"] = "t C / ha / yr"

    @property
    def factor(self) -> float:
        """To t C / ha / yr."""
        return 1.0 if self.unit == "t C / ha / yr" else 12.0 / 44.0


class ValuationConfig(_Strict):
    """Value of the sequestration between the first and the last date (InVEST's carbon valuation)."""

    price_per_tc: float = Field(gt=0, description="price of one t C (currency / t C) at the first date")
    discount_rate: float = Field(0.0, ge=0, description="market discount rate, % per year")
    rate_change: float = Field(0.0, description="annual change of the price of carbon, % per year")


class MarkovConfig(_Strict):
    """Markov projection of each unit's class areas from two observed dates to a target year."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_year: int = Field(alias="from", description="first observed date")
    to_year: int = Field(alias="to", description="second observed date (the projection starts here)")
    year: int = Field(description="target year: to + n * (to - from) for a whole n")


class ConversionRule(_Strict):
    """``share`` of class ``from`` becomes class ``to`` in the units named (all units by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    units: list[str] | Literal["all"] = "all"
    level: str | None = Field(None, description="zone level of the unit ids (default: the finest)")
    from_class: int = Field(alias="from", description="class code converted")
    to_class: int = Field(alias="to", description="class code it becomes")
    share: float = Field(gt=0, le=1, description="share of the class's area at the base date (0-1)")


class ScenarioConfig(_Strict):
    """A land-use scenario beside the baseline: a Markov projection and/or conversion rules."""

    name: str
    markov: MarkovConfig | None = None
    conversions: list[ConversionRule] = []
    base_year: int | None = Field(None, description="date the conversions apply to (default: the Markov target, else the last date)")

    @model_validator(mode="after")
    def _something(self) -> "ScenarioConfig":
        if self.markov is None and not self.conversions:
            raise ValueError(f"scenario '{self.name}' needs 'markov' or 'conversions'")
        return self


class ChangeConfig(_Strict):
    """Land-use change between the dates of the run: transitions, structure, intensity, stocks."""

    pools: Path | None = Field(None, description="carbon pools per class (t C/ha): InVEST biophysical CSV or a lucr pools YAML")
    valuation: ValuationConfig | None = None
    stock_raster: Path | dict[int, Path] | None = Field(None, description="total carbon density (t C/ha) per cell in place of the pools' total: one raster, or one per year")
    maps: list[Literal["stock", "sequestration", "transitions"]] = Field(["stock", "sequestration"], description="maps to write (stock and sequestration need pools)")
    scenarios: list[ScenarioConfig] = Field([], description="Markov projections and conversion rules beside the baseline")

    @field_validator("scenarios")
    @classmethod
    def _unique_names(cls, scenarios: list[ScenarioConfig]) -> list[ScenarioConfig]:
        names = [sc.name for sc in scenarios]
        if len(set(names)) != len(names):
            raise ValueError(f"scenario names must be distinct, got {names}")
        return scenarios


class DemandConfig(_Strict):
    """Ecological-land demand (seed 003 Table 5): ecosystems should fix at least ``share`` of the release in ``year``."""

    year: int = Field(2030, description="target year of the forecast release")
    share: float = Field(1 / 3, gt=0, le=1, description="share of the human release ecosystems should fix (seed 003: 1/3)")


class AllocationWeightsConfig(_Strict):
    """A covariate raster weighting the allocation of the statistical totals onto cells (methods.md §11)."""

    path: Path = Field(description="raster of relative weights per cell (population density, night-light radiance); any grid and CRS")
    band: int = Field(1, ge=1)
    resampling: Literal["average", "bilinear", "nearest", "cubic"] = Field(
        "average", description="how a raster on another grid is resampled onto the land-cover grid (GDAL warp; average keeps a density's mean)",
    )


class StatisticsConfig(_Strict):
    """The statistics route (methods.md §2, §5): a per-unit, per-year table of statistics or component totals."""

    path: Path = Field(description="CSV or xlsx, long or wide form (docs/configuration.md#statistics)")
    sheet: str | None = Field(None, description="sheet of an xlsx workbook (default: the first)")
    id: str = Field("unit_id", description="column of unit ids (joined to the ids of 'level')")
    year: str = Field("year", description="column of years")
    name: str | None = Field(None, description="column of unit names, copied to the outputs")
    level: str | None = Field(None, description="the zone level the ids belong to (joins its polygons and, with a raster, its land areas)")
    factors: str = Field("inventory_seed001", description="farm-input, energy and crop factors: a built-in table of configs/inventory or a YAML file")
    carbon_oxygen: str = Field("carbon_oxygen_literature", description="carbon-oxygen factors: a built-in table of configs/inventory or a YAML file")
    energy_factor: str = Field("seed001", description="K, t C per t standard coal, by name in the factor table (seed001 0.7476; ipcc_coal, ndrc_068, low_067, high_073)")
    demand: DemandConfig | None = Field(DemandConfig(), description="ecological-land demand for a target year (needs >= 4 years to forecast)")
    output: str = Field("inventory", description="stem of the output tables (inventory_<level>s or inventory)")
    allocate: bool = Field(True, description="with a raster and 'level': write the totals onto the cells of their category (inventory_allocated.tif, a second pass)")
    weights: AllocationWeightsConfig | None = Field(None, description="a covariate raster weighting the allocation; default: area-weighted")
    builtup: Literal["coefficient", "statistics"] = Field(
        "coefficient", description="built-up flux of the raster route: the class coefficient, or the statistics' built-up energy emissions allocated onto the built-up cells (tables, maps, risk)",
    )
    year_policy: Literal["nearest", "error"] = Field(
        "nearest", description="a statistics year that is not a land-cover year of the run: use the nearest land-cover year (said), or stop",
    )


class UncertaintyConfig(_Strict):
    """Monte Carlo over the class coefficients (docs/methods.md §12): the ranges of the config, else of the coefficient table, else coef x (1 -/+ r), r by status."""

    draws: int = Field(1000, ge=10, le=1_000_000)
    seed: int = 12345
    relative: dict[str, float] = Field(
        {"paper": 0.1, "literature_default": 0.3, "unverified": 0.5, "user": 0.3},
        description="half-width of a coefficient's range as a share of it, by status, where neither the config nor the coefficient table gives a range (assumed defaults)",
    )
    ranges: dict[int, tuple[float, float]] = Field({}, description="class code -> (low, high) coefficient, t C / ha / yr, before the table's range and the relative one")


class RiskConfig(_Strict):
    """Carbon risk per unit and year (docs/methods.md §12, seed 000: every number here is a documented default)."""

    indicator: Literal["cbc", "net_per_ha"] = Field("cbc", description="what is graded")
    scheme: Literal["fixed", "jenks", "quantiles", "equal"] = Field("fixed", description="class breaks: fixed thresholds or data-driven")
    breaks: list[float] | None = Field(None, description="fixed inner bounds (default CBC 0.5, 1, 3, 10; net per ha -0.5, 0, 0.5, 2)")
    labels: list[str] = Field(["strong sink", "weak sink", "moderate risk", "high risk", "severe risk"], min_length=2)
    base_year: int | None = Field(None, description="year data-driven breaks are fitted on (default: the first)")
    freeze: bool = Field(True, description="keep the base year's breaks for every year, so grades compare over time")
    risk_threshold: float = Field(1.0, description="the indicator value where risk starts (CBC 1: net zero)")
    warning_margin: float = Field(0.1, ge=0, description="a weak sink within this margin below the threshold gets a blue warning")
    warning_year: int = Field(2030, description="year by which a forecast crossing of the threshold is warned")
    trend_alpha: float = Field(0.05, gt=0, lt=1, description="Mann-Kendall significance of trends")
    long_term_years: int = Field(3, ge=2, description="consecutive years over the threshold that make a risk long-term")
    uncertainty: UncertaintyConfig | None = UncertaintyConfig()

    @model_validator(mode="after")
    def _breaks(self) -> "RiskConfig":
        if self.breaks is not None and (len(self.breaks) != len(self.labels) - 1 or sorted(self.breaks) != list(self.breaks)):
            raise ValueError(f"give {len(self.labels) - 1} increasing breaks for {len(self.labels)} labels")
        return self


class RunConfig(_Strict):
    """A whole lucr run."""

    landcover: LandCoverConfig | None = Field(None, description="required unless the run has only statistics")
    statistics: StatisticsConfig | None = Field(None, description="statistics-based accounting and the carbon-oxygen balance (methods.md §2, §5)")
    risk: RiskConfig | None = Field(RiskConfig(), description="carbon risk grades, types, warnings and uncertainty per unit (needs zones); null: off")
    legend: str | None = Field(None, description="built-in legend id (see `lucr legends`) or a legend YAML file")
    coefficients: Path | None = Field(None, description="flux table: a user CSV/YAML (by code or by category), or a built-in table id")
    unknown_classes: Literal["error", "nodata"] = "error"
    unverified_warning_share: float = Field(
        0.5, ge=0, le=1, description="warn when coefficients without a verified source carry more than this share of the source or sink inside the units",
    )
    zones: list[ZoneLevelConfig] = []
    engine: Literal["fast", "exact"] = Field("exact", description="exact: coverage fractions at unit boundaries (default); fast: cell centres")
    chunks: int = Field(2048, ge=64, description="chunk side in cells (rounded to the file's tiles)")
    output: OutputConfig = OutputConfig()
    cluster: ClusterConfig = ClusterConfig()
    flux_raster: FluxRasterConfig | None = Field(None, description="per-cell flux density in place of the class coefficients where it has a value")
    change: ChangeConfig | None = Field(None, description="land-use change between dates and carbon stocks (methods.md §3-4)")
    analysis: AnalysisConfig | None = Field(None, description="time-series and spatial analysis after the zonal pass")
    source: Path | None = Field(None, exclude=True, description="the config file itself")

    @model_validator(mode="after")
    def _one_table(self) -> "RunConfig":
        if self.landcover is None:
            if self.statistics is None:
                raise ValueError("give 'landcover' (a raster run), 'statistics' (a statistics-only run), or both")
            if self.risk is not None and self.risk.indicator != "cbc":
                raise ValueError(f"risk.indicator {self.risk.indicator!r} needs unit areas from land cover; a statistics-only run grades CBC (risk.indicator: cbc)")
            return self
        if self.legend is None and self.coefficients is None:
            raise ValueError(
                "give exactly one of 'legend' (a built-in legend with its default coefficients) or 'coefficients' "
                "(a table naming its classes by code), or both (a table applied to a legend)"
            )
        s = self.statistics
        if s is not None and s.builtup == "statistics":
            if s.level is None or not s.allocate:
                raise ValueError("statistics.builtup: statistics needs statistics.level (the units of the statistics) and statistics.allocate: true")
            if self.flux_raster is not None:
                raise ValueError("statistics.builtup: statistics and flux_raster both replace class coefficients: use one of them")
        return self

    @field_validator("zones")
    @classmethod
    def _parents_chain(cls, zones: list[ZoneLevelConfig]) -> list[ZoneLevelConfig]:
        names = [z.level for z in zones]
        if len(set(names)) != len(names):
            raise ValueError(f"zone levels must have distinct names, got {names}")
        for finer in zones[1:]:
            if finer.parent is None:
                raise ValueError(f"zone level '{finer.level}' needs 'parent': the column with the id of its enclosing unit")
        return zones

    @model_validator(mode="after")
    def _analysis_levels(self) -> "RunConfig":
        if self.analysis is not None:
            if not self.zones:
                raise ValueError("'analysis' needs 'zones' (the units to analyse)")
            names = [z.level for z in self.zones]
            unknown = [lv for lv in self.analysis.levels or [] if lv not in names]
            if unknown:
                raise ValueError(f"analysis.levels {unknown} are not zone levels ({names})")
        return self


def _field_names(model: type[BaseModel]) -> list[str]:
    return [n for n in model.model_fields if n != "source"]


def _model_at(loc: tuple[Any, ...], root: type[BaseModel] = None) -> type[BaseModel] | None:
    """The pydantic model that owns the field at error location ``loc`` (from ``root``, default RunConfig)."""
    model: type[BaseModel] = root or RunConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        sub = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if sub is None:
            for c in candidates:
                sub = next((a for a in getattr(c, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)), None)
                if sub:
                    break
        if sub is None:
            return None
        model = sub
    return model


def _explain(exc: ValidationError, root: type[BaseModel] | None = None, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in (prefix, *loc) if p != "") or "(top level)"
        if err["type"] == "extra_forbidden":
            model = _model_at(loc, root)
            valid = _field_names(model) if model else []
            near = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            lines.append(f"unknown key '{where}'{hint} (valid keys here: {', '.join(valid)})")
        else:
            lines.append(f"'{where}': {err['msg']}")
    return "; ".join(lines)


def _resolve(path: Path | None, base: Path) -> Path | None:
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def parse_config(data: dict[str, Any], base_dir: Path, source: Path | None = None) -> RunConfig:
    """Validate a config mapping; relative paths are taken from ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError("the config must be a YAML mapping of keys to values", path=source, fix="see configs/sample_china_2019.yaml for the layout")
    try:
        cfg = RunConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(_explain(exc), path=source, fix="correct the keys named above (see configs/sample_china_2019.yaml)") from None
    lc = cfg.landcover
    landcover = None if lc is None else lc.model_copy(
        update={
            "path": _resolve(lc.path, base_dir),
            "years": None if lc.years is None else {y: _resolve(p, base_dir) for y, p in lc.years.items()},
        }
    )
    statistics = None if cfg.statistics is None else cfg.statistics.model_copy(update={
        "path": _resolve(cfg.statistics.path, base_dir),
        "weights": None if cfg.statistics.weights is None else cfg.statistics.weights.model_copy(update={"path": _resolve(cfg.statistics.weights.path, base_dir)}),
        **{k: str(_resolve(Path(getattr(cfg.statistics, k)), base_dir)) for k in ("factors", "carbon_oxygen") if Path(getattr(cfg.statistics, k)).suffix},
    })
    zones = [z.model_copy(update={"path": _resolve(z.path, base_dir)}) for z in cfg.zones]
    change = None
    if cfg.change is not None:
        stock_raster = cfg.change.stock_raster
        stock_raster = {y: _resolve(p, base_dir) for y, p in stock_raster.items()} if isinstance(stock_raster, dict) else _resolve(stock_raster, base_dir)
        change = cfg.change.model_copy(update={"pools": _resolve(cfg.change.pools, base_dir), "stock_raster": stock_raster})
    flux_raster = None if cfg.flux_raster is None else cfg.flux_raster.model_copy(update={"path": _resolve(cfg.flux_raster.path, base_dir)})
    coefficients = _resolve(cfg.coefficients, base_dir)
    legend = str(_resolve(Path(cfg.legend), base_dir)) if cfg.legend and Path(cfg.legend).suffix else cfg.legend
    out_dir = cfg.output.dir if cfg.output.dir.is_absolute() else Path.cwd() / cfg.output.dir
    return cfg.model_copy(
        update={"landcover": landcover, "statistics": statistics, "zones": zones, "coefficients": coefficients, "legend": legend, "change": change, "flux_raster": flux_raster, "output": cfg.output.model_copy(update={"dir": out_dir})}
    )


def with_options(cfg: RunConfig, *, units: str | None = None, lang: str | None = None, levels: str | None = None, no_analysis: bool = False) -> RunConfig:
    """The config with command-line options applied (``--units``, ``--lang``, ``--levels``, ``--no-analysis``)."""
    output = {k: v for k, v in (("units", units), ("lang", lang)) if v is not None}
    update: dict[str, Any] = {}
    if output:
        try:
            update["output"] = OutputConfig.model_validate({**cfg.output.model_dump(), **output})
        except ValidationError as exc:
            raise ConfigError(_explain(exc, OutputConfig, prefix="--"), fix="use --units 't C' or 't CO2', --lang en or zh") from None
    if levels is not None:
        wanted = [w.strip() for w in levels.split(",") if w.strip()]
        known = [z.level for z in cfg.zones]
        unknown = [w for w in wanted if w not in known]
        if unknown or not wanted:
            raise ConfigError(f"--levels names unknown level(s) {unknown or wanted}", path=cfg.source, fix=f"use the config's levels: {', '.join(known)}")
        index = sorted(known.index(w) for w in set(wanted))
        if index != list(range(index[0], index[-1] + 1)):
            raise ConfigError(
                f"--levels {levels} leaves out a level between two it keeps: coarse totals are sums of the next level", path=cfg.source,
                fix=f"keep consecutive levels of {', '.join(known)}",
            )
        zones = cfg.zones[index[0] : index[-1] + 1]
        update["zones"] = [zones[0].model_copy(update={"parent": None}), *zones[1:]]  # the coarsest kept level is read on its own
    if no_analysis:
        update["analysis"] = None
    return cfg.model_copy(update=update) if update else cfg


def load_config(path: str | Path | None = None) -> RunConfig:
    """Read and validate a YAML run config (``None``: the bundled sample config)."""
    path = Path(path) if path is not None else SAMPLE_CONFIG
    if not path.is_file():
        problem = "is a folder, not a config file" if path.is_dir() else "config file not found"
        raise ConfigError(problem, path=path, fix="give the path of a YAML run config, or no config to run the bundled sample")
    data = load_yaml(path)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"the config must be a mapping of keys (landcover:, zones:, ...), this file holds a {type(data).__name__}", path=path,
            fix="start from configs/sample_china_2019.yaml: top-level 'key: value' lines, not a '- item' list",
        )
    return parse_config(data or {}, path.resolve().parent, source=path)


def analysis_settings(config: str | Path | None = None, **options: Any) -> AnalysisConfig:
    """Settings of ``lucr analyze``: the ``analysis`` section of a YAML file, overridden by options.

    Options left ``None`` keep the file's value (or the default). Without a file the
    grey relational analysis runs only when ``reference`` is given.
    """
    section: dict[str, Any] = {}
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError("config file not found", path=path, fix="give a YAML file with an 'analysis' section")
        data = load_yaml(path) or {}
        section = dict(data.get("analysis", data) if isinstance(data, dict) else {})
    elif options.get("reference") is None:
        section["relational"] = None
    set_ = {k: v for k, v in options.items() if v is not None}
    for key in ("variables", "missing_years", "gravity"):
        if key in set_:
            section[key] = set_.pop(key)
    if "gravity" not in section and config is None:
        section["gravity"] = []
    spatial = {k: set_.pop(k) for k in ("weights", "k", "distance_km", "islands", "permutations", "seed") if k in set_}
    if spatial:
        section["spatial"] = {**(section.get("spatial") or {}), **spatial}
    horizon = {k: set_.pop(k) for k in ("until", "horizon") if k in set_}
    if horizon:
        section["forecast"] = {**{k: v for k, v in (section.get("forecast") or {}).items() if k not in ("until", "horizon")}, **horizon}
    relational = {k: set_.pop(k) for k in ("reference", "compare") if k in set_}
    if relational:
        if "compare" not in relational and not (section.get("relational") or {}).get("compare"):
            raise ConfigError("--reference needs the comparison columns", fix="add --compare COL for each column to relate to the reference")
        section["relational"] = {**(section.get("relational") or {}), **relational}
    try:
        return AnalysisConfig.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, AnalysisConfig, prefix="analysis"), path=config, fix="correct the analysis options named above") from None
