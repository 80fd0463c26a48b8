#!/usr/bin/env python
"""Benchmark of a two-date land-use-change run against InVEST's carbon model and the I/O floor.

Inputs: the synthetic land cover of ``bench_spine.py`` (CLCD classes, China Albers, 30 m,
300 nested cities) as the first date, and a second date derived from it by realistic
conversion: cropland, forest and grassland cells next to built-up land become built-up
with a fixed probability (urban fringe growth), so the change is spatially clustered.
A pool table (InVEST's biophysical CSV; illustrative values) serves both tools.

Each method runs in its own process (wall s, peak RSS from ``/usr/bin/time -v``):

  io_floor  read both dates strip by strip, look up the flux coefficients of each date and
            the stock change, write the same maps lucr writes (two 3-band float32 carbon
            balance maps and a 1-band sequestration map, tiled, ZSTD level 1, 2 GDAL threads)
  invest    ``natcap.invest.carbon.execute`` with ``calc_sequestration`` (n_workers=2) in the
            InVEST venv (``make peers``); its workspace is wiped before the run
  lucr      ``lucr run``: class areas, transitions, stocks, sequestration, intensity and
            structure tables for the grid, provinces and cities, the carbon-balance maps of
            both dates and the sequestration map, in one pass

Usage:  python benchmarks/bench_change.py [--cells 1e8] [--methods io_floor,invest,lucr]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_spine as spine  # noqa: E402  (the synthetic inputs and the measuring harness)

REPO = HERE.parent
PEERS_PYTHON = REPO / ".venv-peers" / "bin" / "python"
ALL_METHODS = ("io_floor", "invest", "lucr")
GROWTH_FROM = (1, 2, 4)  # cropland, forest, grassland next to built-up land
BUILT = 8
GROWTH_P = 0.35
#: Pools (t C/ha) per CLCD class: ILLUSTRATIVE values of the order of IPCC 2006 Tier 1 defaults.
POOLS = {1: (5, 2, 60, 0), 2: (80, 16, 110, 8), 3: (25, 8, 70, 3), 4: (6, 10, 80, 1), 5: (0, 0, 0, 0),
         6: (0, 0, 0, 0), 7: (1, 0, 15, 0), 8: (4, 1, 40, 0), 9: (10, 5, 200, 2)}
TARGETS = {"lucr_vs_invest_min_speedup": 10.0, "lucr_vs_floor_max": 1.3}


def derive_second_date(src_path: Path, dst_path: Path, seed: int) -> float:
    """Write the second date: fringe cells turn built-up with probability GROWTH_P (strip by strip)."""
    import rasterio
    from rasterio.windows import Window

    t0 = time.perf_counter()
    with rasterio.open(src_path) as src:
        profile = src.profile.copy()
        h, w = src.height, src.width
        with rasterio.open(dst_path, "w", **profile) as dst:
            for r0 in range(0, h, spine.TILE):
                top, bottom = max(0, r0 - 1), min(h, r0 + spine.TILE + 1)
                block = src.read(1, window=Window(0, top, w, bottom - top))
                built = block == BUILT
                near = np.zeros_like(built)
                near[1:] |= built[:-1]
                near[:-1] |= built[1:]
                near[:, 1:] |= built[:, :-1]
                near[:, :-1] |= built[:, 1:]
                rows = slice(r0 - top, r0 - top + min(spine.TILE, h - r0))
                part = block[rows]
                rng = np.random.default_rng([seed, r0])
                grow = near[rows] & np.isin(part, GROWTH_FROM) & (rng.random(part.shape) < GROWTH_P)
                dst.write(np.where(grow, BUILT, part).astype(part.dtype), 1, window=Window(0, r0, w, part.shape[0]))
    return time.perf_counter() - t0


def ensure_inputs(args, log=print) -> dict:
    meta = spine.ensure_inputs(args, log=log)
    d = Path(meta["landcover"]).parent
    later = d / f"landcover_later_{args.seed}.tif"
    if not later.exists():
        log(f"deriving the second date (built-up fringe growth, p={GROWTH_P}) -> {later}")
        log(f"  written in {derive_second_date(Path(meta['landcover']), later, args.seed):.1f}s")
    pools = d / "pools_invest.csv"
    pools.write_text("lucode,LULC_name,c_above,c_below,c_soil,c_dead\n" + "".join(
        f"{c},{spine.CLASSES[c][0]},{a},{b},{s},{dd}\n" for c, (a, b, s, dd) in POOLS.items()))
    return {**meta, "later": str(later), "pools": str(pools)}


# -- the timed methods (subprocesses) ------------------------------------------------------

def w_io_floor(job):
    import rasterio
    from rasterio.windows import Window

    flux = spine.lut_float32()
    stock = np.full(256, np.nan, np.float32)
    for c, p in POOLS.items():
        stock[c] = sum(p)
    threads = str(job["threads"])
    t0 = time.perf_counter()
    with rasterio.Env(GDAL_NUM_THREADS=threads), rasterio.open(job["landcover"]) as a, rasterio.open(job["later"]) as b:
        prof = a.profile.copy()
        prof.update(dtype="float32", nodata=float("nan"), tiled=True, blockxsize=spine.TILE, blockysize=spine.TILE,
                    compress="ZSTD", ZSTD_LEVEL=1, interleave="pixel", BIGTIFF="IF_SAFER", NUM_THREADS=threads)
        out = Path(job["out_dir"])
        with rasterio.open(out / "cb_a.tif", "w", **{**prof, "count": 3}) as da_, rasterio.open(out / "cb_b.tif", "w", **{**prof, "count": 3}) as db_, \
                rasterio.open(out / "seq.tif", "w", **{**prof, "count": 1}) as ds_:
            for r0 in range(0, a.height, spine.TILE):
                win = Window(0, r0, a.width, min(spine.TILE, a.height - r0))
                ca, cb = a.read(1, window=win), b.read(1, window=win)
                for codes, dst in ((ca, da_), (cb, db_)):
                    net = flux[codes]
                    dst.write(np.stack([np.maximum(net, 0), np.minimum(net, 0), net]), window=win)
                ds_.write(stock[cb] - stock[ca], 1, window=win)
    return {"core_s": time.perf_counter() - t0}


def w_invest(job):
    import logging

    logging.basicConfig(level=logging.WARNING)
    from natcap.invest import carbon

    t0 = time.perf_counter()
    carbon.execute({
        "workspace_dir": job["out_dir"], "lulc_bas_path": job["landcover"], "lulc_alt_path": job["later"],
        "carbon_pools_path": job["pools"], "calc_sequestration": True, "do_valuation": False, "n_workers": 2,
    })
    return {"core_s": time.perf_counter() - t0}


WORKERS = {"io_floor": w_io_floor, "invest": w_invest}


def worker_main(name, job_path):
    import resource

    job = json.loads(Path(job_path).read_text())
    res = WORKERS[name](job)
    res["ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(job["result_json"]).write_text(json.dumps(res))
    return 0


def lucr_config(path: Path, inputs: dict) -> None:
    path.write_text("\n".join([
        "# written by benchmarks/bench_change.py",
        "landcover:", "  years:", f"    2020: {inputs['landcover']}", f"    2030: {inputs['later']}",
        f"coefficients: {inputs['coefficients']}",
        "zones:",
        "  - {level: province, path: " + inputs["polygons"] + ", layer: provinces, id: prov_id, name: name}",
        "  - {level: city, path: " + inputs["polygons"] + ", layer: cities, id: city_id, name: name, parent: prov_id}",
        "change:", f"  pools: {inputs['pools']}", "  maps: [sequestration]",
        "risk: null", "output:", "  tables: [parquet]", "  report: false",
    ]) + "\n")


def run_method(method, inputs, run_dir: Path, args) -> dict:
    out = run_dir / method
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    job = {**inputs, "out_dir": str(out), "threads": args.threads, "result_json": str(out / "result.json")}
    (out / "job.json").write_text(json.dumps(job))
    if method == "lucr":
        cfg = out / "lucr.yaml"
        lucr_config(cfg, inputs)
        cmd = [str(Path(sys.executable).parent / "lucr"), "run", str(cfg), "--out", str(out / "o"), "--quiet"]
    elif method == "invest":
        if not PEERS_PYTHON.exists():
            return {"ok": False, "error": "InVEST venv missing: run `make peers`"}
        cmd = [str(PEERS_PYTHON), __file__, "--_worker", "invest", "--_job", str(out / "job.json")]
    else:
        cmd = [sys.executable, __file__, "--_worker", method, "--_job", str(out / "job.json")]
    os.sync()  # the previous method's written pages are flushed before this one starts
    if args.wait_quiet:
        spine.wait_quiet(args.wait_quiet)
    rec = spine.run_measured(cmd, out / "log.txt", env={**os.environ, "PYTHONPATH": str(HERE)})
    rec["ok"] = rec["rc"] == 0
    if (out / "result.json").exists():
        rec.update(json.loads((out / "result.json").read_text()))
    if not rec["ok"]:
        rec["error"] = (out / "log.txt").read_text()[-2000:]
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=float, default=1e8)
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--workdir", default=str(HERE / ".cache"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wait-quiet", type=float, default=30.0)
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_job", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        return worker_main(args._worker, args._job)
    # the synthetic generator's own parameters, at bench_spine's defaults
    for name, value in dict(nodata_frac=0.04, speckle=0.004, provinces=30, cities=300, gen_workers=2, regenerate=False).items():
        setattr(args, name, value)
    args.workdir = str(Path(args.workdir).resolve())
    inputs = ensure_inputs(args)
    run_dir = Path(args.workdir) / f"change_{time.strftime('%Y%m%d-%H%M%S')}"
    results = {}
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        results[method] = rec = run_method(method, inputs, run_dir, args)
        print(f"  {method}: " + (f"wall {rec['wall_s']:.2f}s, peak RSS {rec['peak_rss_mib']:.0f} MiB, other processes {rec.get('other_cpu_s', 0):.1f} CPU s"
                                 if rec.get("ok") else f"FAILED: {rec.get('error', '')[-400:]}"))
    floor = results.get("io_floor", {}).get("wall_s")
    print(f"\n## two-date change benchmark: {inputs['cells']:.3g} cells, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}\n")
    print("| method | wall s | peak RSS MiB | x I/O floor |")
    print("|---|---:|---:|---:|")
    for m, r in results.items():
        if r.get("ok"):
            print(f"| {m} | {r['wall_s']:.2f} | {r['peak_rss_mib']:.0f} | {r['wall_s'] / floor:.2f} |" if floor else f"| {m} | {r['wall_s']:.2f} | {r['peak_rss_mib']:.0f} | - |")
    lu, iv = results.get("lucr", {}), results.get("invest", {})
    if lu.get("ok") and iv.get("ok"):
        speed = iv["wall_s"] / lu["wall_s"]
        print(f"\n- [{'PASS' if speed >= TARGETS['lucr_vs_invest_min_speedup'] else 'FAIL'}] lucr >= 10x faster than InVEST: {speed:.1f}x")
        print(f"- [{'PASS' if lu['peak_rss_mib'] < iv['peak_rss_mib'] else 'FAIL'}] lucr peak RSS below InVEST's: {lu['peak_rss_mib']:.0f} vs {iv['peak_rss_mib']:.0f} MiB")
    if lu.get("ok") and floor:
        ratio = lu["wall_s"] / floor
        print(f"- [{'PASS' if ratio <= TARGETS['lucr_vs_floor_max'] else 'FAIL'}] lucr within 1.3x of the I/O floor: {ratio:.2f}x")
    (Path(args.workdir) / f"results_change_{run_dir.name}.json").write_text(json.dumps({"inputs": inputs, "results": results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
