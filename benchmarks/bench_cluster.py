#!/usr/bin/env python
"""Benchmark: the same run on local threads and on a dask.distributed LocalCluster.

``bench_spine.py``'s synthetic land cover (default 1e8 cells) with provinces and cities,
exact engine, chunks 2048. Each setting runs in its own process; the time is that of
``lucr.run`` alone (a cluster is started and its workers have imported lucr before the
clock starts, as a cluster in use would have), plus peak RSS of the process tree.

  threads      local threads (2), lucr's default
  cluster-1x2  LocalCluster, 1 worker process with 2 threads
  cluster-2x1  LocalCluster, 2 worker processes with 1 thread each

Each setting's process runs lucr twice: the first run pays what a process pays once (numba
loading its compiled kernels from the cache, GDAL's drivers: in every worker process on a
cluster); the second is a run on a process (a cluster) already in use. The settings run in
turn, ``--repeat`` rounds of them (interleaved, so a noisy period of a shared machine hits
every setting alike); the table gives each setting's best and median of both runs, and the
ratios of the bests.

Usage:  python benchmarks/bench_cluster.py [--cells 1e8] [--repeat 3] [--settings threads,cluster-1x2,cluster-2x1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_spine as spine  # noqa: E402  (the synthetic inputs and the measuring harness)

SETTINGS = {"threads": None, "cluster-1x2": (1, 2), "cluster-2x1": (2, 1)}


def worker(setting: str, config: str, out: str, result: str) -> int:
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    from lucr.config import load_config
    from lucr.runner import run

    cfg = load_config(config)
    shape = SETTINGS[setting]

    def timed_runs(**kwargs) -> list[float]:
        seconds = []
        for _ in range(2):  # the first run of the process (or cluster), then a second one
            t0 = time.perf_counter()
            run(cfg, out_dir=Path(out), overwrite=True, **kwargs)
            seconds.append(time.perf_counter() - t0)
        return seconds

    if shape is None:
        seconds = timed_runs()
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=shape[0], threads_per_worker=shape[1], processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:  # workers as a started cluster has them: lucr imported once per worker
                client.run(lambda: __import__("lucr.runner") and __import__("lucr.kernels.coverage") and None)
            seconds = timed_runs(scheduler_address=cluster.scheduler_address)
    Path(result).write_text(json.dumps({"run_s": seconds[0], "again_s": seconds[1], "map_bytes": (Path(out) / "carbon_balance.tif").stat().st_size}))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=float, default=1e8)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--workdir", default=str(HERE / ".cache"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="rounds of every setting, interleaved")
    ap.add_argument("--wait-quiet", type=float, default=30.0)
    ap.add_argument("--_worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        return worker(*args._worker)
    for name, value in dict(nodata_frac=0.04, speckle=0.004, provinces=30, cities=300, gen_workers=2, regenerate=False).items():
        setattr(args, name, value)
    args.workdir = str(Path(args.workdir).resolve())
    inputs = spine.ensure_inputs(args)
    run_dir = Path(args.workdir) / f"cluster_{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    config = run_dir / "lucr.yaml"
    config.write_text("\n".join([
        "landcover:", f"  path: {inputs['landcover']}", f"coefficients: {inputs['coefficients']}",
        "zones:",
        "  - {level: province, path: " + inputs["polygons"] + ", layer: provinces, id: prov_id, name: name}",
        "  - {level: city, path: " + inputs["polygons"] + ", layer: cities, id: city_id, name: name, parent: prov_id}",
        "risk: null", "output:", "  tables: [parquet]", "  report: false",
    ]) + "\n")
    settings = args.settings.split(",")
    runs: dict[str, list[dict]] = {s: [] for s in settings}
    for round_ in range(1, args.repeat + 1):
        for setting in settings:
            out, res = run_dir / setting, run_dir / f"{setting}.json"
            os.sync()
            if args.wait_quiet:
                spine.wait_quiet(args.wait_quiet)
            rec = spine.run_measured([sys.executable, __file__, "--_worker", setting, str(config), str(out), str(res)], run_dir / f"{setting}.log")
            if rec["rc"] == 0:
                rec.update(json.loads(res.read_text()))
                runs[setting].append(rec)
            print(f"  round {round_} {setting}: " + (f"first run {rec['run_s']:.2f}s, second {rec['again_s']:.2f}s, peak RSS (tree) {rec['peak_rss_mib']:.0f} MiB" if rec["rc"] == 0 else "FAILED: " + (run_dir / f"{setting}.log").read_text()[-1500:]), flush=True)
    print(f"\n## local threads vs LocalCluster: {inputs['cells']:.3g} cells, {os.cpu_count()} CPUs, {args.repeat} round(s), {time.strftime('%Y-%m-%d')}\n")
    print("| setting | rounds | first run s, best | median | x threads | second run s, best | median | x threads | peak RSS MiB (highest) | map bytes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = {k: min((r[k] for r in runs.get("threads", [])), default=None) for k in ("run_s", "again_s")}
    for setting, rs in runs.items():
        if rs:
            cells = []
            for k in ("run_s", "again_s"):
                times = sorted(r[k] for r in rs)
                cells += [f"{times[0]:.2f}", f"{statistics.median(times):.2f}", f"{times[0] / base[k]:.2f}" if base[k] else "n/a"]
            print(f"| {setting} | {len(rs)} | " + " | ".join(cells) + f" | {max(r['peak_rss_mib'] for r in rs):.0f} | {rs[-1]['map_bytes']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
