#!/usr/bin/env python
"""Benchmark: many zones. lucr (exact and fast engine) with 300 / 3,000 / 30,000 / 300,000 units.

The 300 cities of ``bench_spine.py``'s synthetic 1e8-cell land cover are subdivided by a
regular grid of squares (each city cut into ~1, 10, 100, 1000 pieces), so every layer tiles
the same area and nests in the provinces. Each run is its own process (wall s, peak RSS);
the ratio to the 300-zone run of the same engine is printed. Targets (issue 9): 300,000
zones within 2x the time of 300, peak RSS <= 1 GiB.

With ``--repeat N`` every run is made N times, in rounds over all of them (so that a noisy
spell of a shared machine touches every configuration alike): wall time is the best of N,
peak RSS the highest of N.

Usage:  python benchmarks/bench_zones.py [--zones 300,3000,30000,300000] [--engines exact,fast] [--repeat N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_spine as spine  # noqa: E402  (the synthetic inputs and the measuring harness)

TARGET_TIME_RATIO, TARGET_RSS_MIB = 2.0, 1024.0


def subdivided_layer(polygons: Path, n_zones: int, out: Path) -> int:
    """Cut the cities by squares so that there are about ``n_zones`` pieces; returns the count."""
    import geopandas as gpd
    import shapely

    cities = gpd.read_file(polygons, layer="cities")
    if n_zones <= len(cities):
        cities.to_file(out, layer="cities")
        return len(cities)
    left, bottom, right, top = cities.total_bounds
    side = float(np.sqrt((right - left) * (top - bottom) / n_zones))
    xs, ys = np.arange(left, right, side), np.arange(bottom, top, side)
    gx, gy = np.meshgrid(xs, ys)
    squares = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + side, gy.ravel() + side)
    city_idx, square_idx = shapely.STRtree(squares).query(cities.geometry.values, predicate="intersects")
    pieces = shapely.intersection(cities.geometry.values[city_idx], squares[square_idx])
    keep = shapely.area(pieces) > 0
    frame = gpd.GeoDataFrame(
        {"city_id": np.arange(int(keep.sum()), dtype=np.int64) + 1, "prov_id": cities["prov_id"].to_numpy()[city_idx[keep]]},
        geometry=pieces[keep], crs=cities.crs,
    )
    frame["name"] = frame["city_id"].astype(str)
    frame.to_file(out, layer="cities")
    return len(frame)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=float, default=1e8)
    ap.add_argument("--zones", default="300,3000,30000,300000")
    ap.add_argument("--engines", default="exact,fast")
    ap.add_argument("--workdir", default=str(HERE / ".cache"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wait-quiet", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each configuration: best wall time, highest peak RSS")
    args = ap.parse_args(argv)
    for name, value in dict(nodata_frac=0.04, speckle=0.004, provinces=30, cities=300, gen_workers=2, regenerate=False).items():
        setattr(args, name, value)
    args.workdir = str(Path(args.workdir).resolve())
    inputs = spine.ensure_inputs(args)
    d = Path(inputs["landcover"]).parent
    run_dir = Path(args.workdir) / f"zones_{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    layers = {}
    for n in [int(z) for z in args.zones.split(",")]:
        path = d / f"cities_{n}.gpkg"
        if not path.exists():
            t0 = time.perf_counter()
            count = subdivided_layer(Path(inputs["polygons"]), n, path)
            print(f"layer of ~{n} zones: {count} polygons, made in {time.perf_counter() - t0:.1f}s")
        layers[n] = path
    exe = Path(sys.executable).parent / "lucr"
    results = {}
    for rep in range(args.repeat):
        for engine in args.engines.split(","):
            for n, path in layers.items():
                out = run_dir / f"{engine}_{n}"
                cfg = run_dir / f"{engine}_{n}.yaml"
                cfg.write_text("\n".join([
                    "landcover:", f"  path: {inputs['landcover']}", f"coefficients: {inputs['coefficients']}",
                    "zones:",
                    "  - {level: province, path: " + inputs["polygons"] + ", layer: provinces, id: prov_id, name: name}",
                    "  - {level: city, path: " + str(path) + ", layer: cities, id: city_id, name: name, parent: prov_id}",
                    f"engine: {engine}", "risk: null", "output:", "  tables: [parquet]", "  report: false",
                ]) + "\n")
                os.sync()
                if args.wait_quiet:
                    spine.wait_quiet(args.wait_quiet)
                log = run_dir / f"{engine}_{n}.log"
                rec = spine.run_measured([str(exe), "run", str(cfg), "--out", str(out), "--quiet", "--overwrite"], log)
                rec["ok"] = rec["rc"] == 0
                print(f"  {engine} {n} zones, run {rep + 1}: " + (f"wall {rec['wall_s']:.2f}s, peak RSS {rec['peak_rss_mib']:.0f} MiB" if rec["ok"] else "FAILED: " + log.read_text()[-800:]), flush=True)
                best = results.get((engine, n))
                if best is None or not rec["ok"]:
                    results[(engine, n)] = rec
                elif best["ok"]:
                    results[(engine, n)] = {**best, "wall_s": min(best["wall_s"], rec["wall_s"]), "peak_rss_mib": max(best["peak_rss_mib"], rec["peak_rss_mib"])}
    print(f"\n## many zones: {inputs['cells']:.3g} cells, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}"
          + (f", best wall of {args.repeat} runs, highest peak RSS" if args.repeat > 1 else "") + "\n")
    print("| engine | zones | wall s | peak RSS MiB | x 300 zones |")
    print("|---|---:|---:|---:|---:|")
    for (engine, n), r in results.items():
        base = results.get((engine, min(layers)), {})
        if r.get("ok"):
            ratio = r["wall_s"] / base["wall_s"] if base.get("ok") else float("nan")
            print(f"| {engine} | {n:,} | {r['wall_s']:.2f} | {r['peak_rss_mib']:.0f} | {ratio:.2f} |")
    big = max(layers)
    for engine in args.engines.split(","):
        r, base = results.get((engine, big), {}), results.get((engine, min(layers)), {})
        if r.get("ok") and base.get("ok"):
            ratio = r["wall_s"] / base["wall_s"]
            print(f"- [{'PASS' if ratio <= TARGET_TIME_RATIO else 'FAIL'}] {engine}: {big:,} zones within 2x of {min(layers)}: {ratio:.2f}x")
            print(f"- [{'PASS' if r['peak_rss_mib'] <= TARGET_RSS_MIB else 'FAIL'}] {engine}: {big:,} zones peak RSS <= 1 GiB: {r['peak_rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
