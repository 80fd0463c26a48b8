"""Factor tables of the statistics route: seed 001's farm-input, energy and crop factors, and
the literature defaults of the carbon-oxygen balance (``configs/inventory/*.yaml``).

Every factor carries its ``ref`` and ``status`` (``paper``, ``literature_default``); a run
lists the ones not from a seed paper, as for the coefficient tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lucr.configs import CONFIG_DIR
from lucr.errors import ConfigError
from lucr.legend import ReferenceEntry, read_yaml_file

INVENTORY_DIR = CONFIG_DIR / "inventory"
Status = Literal["paper", "literature_default", "unverified", "user"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FarmInput(_Strict):
    factor: float = Field(ge=0)
    unit: Literal["kg C / t", "kg C / ha", "kg C / kW", "kg C / kg"]
    ref: str = ""
    status: Status = "user"


class Value(_Strict):
    value: float = Field(ge=0)
    ref: str = ""
    status: Status = "user"


class Crop(_Strict):
    h: float = Field(gt=0, le=1, description="economic coefficient: economic yield / total biomass")
    cd: float = Field(gt=0, le=1, description="carbon absorption rate: t C per t dry biomass")
    moisture: float = Field(0.0, ge=0, lt=1, description="water share of the economic yield")
    ref: str = ""
    status: Status = "user"


class InventoryFactors(_Strict):
    """``configs/inventory/inventory_seed001.yaml``: farm inputs (Table 1), K, crops (Table 3)."""

    table: str
    kind: Literal["inventory"]
    title: str = ""
    references: dict[str, ReferenceEntry] = {}
    farm_inputs: dict[Literal["fertiliser", "sown_area", "machinery_power", "irrigated_area", "plastic_film"], FarmInput]
    energy_factors: dict[str, Value] = Field(min_length=1, description="K, t C per t standard coal, by name")
    crops: dict[str, Crop] = Field(min_length=1)


class Fuel(_Strict):
    unit: Literal["t", "10^4 m3"]
    tce_per_unit: float = Field(gt=0)
    c_per_tce: float = Field(gt=0, lt=1)
    h_to_c: float = Field(ge=0, le=4, description="H/C molar ratio (oxygen of the hydrogen burned)")
    ref: str = ""
    status: Status = "user"

    @property
    def o2_per_c(self) -> float:
        """t O2 per t C burned: CH_x + (1 + x/4) O2 -> CO2 + (x/2) H2O."""
        return 32.0 / 12.0 * (1.0 + self.h_to_c / 4.0)


class Cement(_Strict):
    c_per_t: float = Field(ge=0)
    ref: str = ""
    status: Status = "user"


class Respiration(_Strict):
    c_per_person: float = Field(ge=0, description="t C per person and year")
    o2_per_person: float = Field(ge=0, description="t O2 per person and year")
    ref: str = ""
    status: Status = "user"


class CarbonOxygenFactors(_Strict):
    """``configs/inventory/carbon_oxygen_literature.yaml`` (seed 003's own table is missing)."""

    table: str
    kind: Literal["carbon_oxygen"]
    title: str = ""
    references: dict[str, ReferenceEntry] = {}
    fuels: dict[Literal["coal", "gasoline", "kerosene", "diesel", "fuel_oil", "natural_gas"], Fuel]
    cement: Cement
    respiration: Respiration
    o2_per_c_fixed: float = Field(gt=0, description="t O2 released per t C fixed (32/12)")
    fixation: dict[str, Value] = Field(description="ecosystem carbon fixation, t C / ha / yr, by land-use category")


def _find(name: str | Path, what: str) -> Path:
    path = Path(name)
    if path.suffix:
        if not path.is_file():
            raise ConfigError(f"{what} not found", path=path, fix=f"give a YAML file, or a built-in table of {INVENTORY_DIR.name}/")
        return path
    builtin = INVENTORY_DIR / f"{name}.yaml"
    if not builtin.is_file():
        known = ", ".join(sorted(p.stem for p in INVENTORY_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown {what} {name!r}", fix=f"use one of: {known}, or a YAML file")
    return builtin


def load_inventory_factors(name: str | Path = "inventory_seed001") -> InventoryFactors:
    return read_yaml_file(_find(name, "inventory factor table"), InventoryFactors, ConfigError)


def load_carbon_oxygen_factors(name: str | Path = "carbon_oxygen_literature") -> CarbonOxygenFactors:
    return read_yaml_file(_find(name, "carbon-oxygen factor table"), CarbonOxygenFactors, ConfigError)


def not_from_papers(factors: InventoryFactors | CarbonOxygenFactors) -> list[str]:
    """Names of the factors whose status is not ``paper`` (said in the run log and the summary)."""
    out = []
    for section in ("farm_inputs", "energy_factors", "crops", "fuels", "fixation"):
        for name, entry in (getattr(factors, section, None) or {}).items():
            if entry.status != "paper":
                out.append(f"{section}.{name}")
    for section in ("cement", "respiration"):
        entry = getattr(factors, section, None)
        if entry is not None and entry.status != "paper":
            out.append(section)
    return out
