"""``lucr.run``: one run from Python, as ``lucr run`` does from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lucr.config import RunConfig, load_config, parse_config
from lucr.runner import RunResult
from lucr.runner import run as _run


def run(config: RunConfig | str | Path | dict[str, Any] | None = None, **overrides: Any) -> RunResult:
    """Run lucr on a config and return its tables, maps and summaries.

    Parameters
    ----------
    config : a YAML path, a mapping (paths relative to the working directory), a
        :class:`lucr.config.RunConfig`, or None for the bundled China 2019 sample
    **overrides : ``out_dir``, ``overwrite``, ``scheduler_address``, ``chunks``,
        ``engine`` and ``progress``, as the options of ``lucr run``

    Returns
    -------
    RunResult : ``tables`` (GeoDataFrames by level, first date), ``by_year`` (tables and
        summary per date), ``maps`` (COG paths by product name), ``analyses``, ``outputs``
    """
    if isinstance(config, RunConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = parse_config(config, Path.cwd())
    else:
        cfg = load_config(config)
    return _run(cfg, **overrides)


__all__ = ["run"]
