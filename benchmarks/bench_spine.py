#!/usr/bin/env python
"""Benchmark of the lucr spine: land-cover raster -> carbon-flux COG + zonal tables.

One run times, each in its own subprocess (so peak RSS is per method):

  lucr          ``lucr run CONFIG --out DIR --overwrite`` (COG + province/city tables),
                the console script of the venv running this file
  io_floor      rasterio 512-row strip read -> numpy LUT (uint8 -> float32 coefficient)
                -> write float32 GeoTIFF (DEFLATE, 512x512 tiles), GDAL_NUM_THREADS=2
                (decode/encode threads): the cost of touching every cell once
  exactextract  ``exactextract.exact_extract(carbon_map, cities, ["sum"])`` on the map
                written by io_floor: the zonal step alone

and prints wall seconds, cells/s, peak RSS and ratios to the I/O floor and to
exactextract, plus the targets: lucr <= 1.3x I/O floor, lucr faster than
exactextract's zonal step, lucr peak RSS <= 1 GiB.  Results go to JSON in the
work directory.

Inputs are synthetic and cached by parameters (``<workdir>/inputs/<key>/``):

  landcover.tif  uint8 CLCD classes 1-9 (0 = nodata outside an irregular
                 "country"), China Albers equal-area, 30 m, 512x512 tiles, DEFLATE.
                 Classes are ordered thresholds on smooth random fields (relief,
                 moisture, drainage, urbanisation, vegetation), each a band-limited
                 power-law (fBm-like) field: large scales are FFT-synthesised on a
                 coarse grid and bilinearly upsampled strip by strip, small scales
                 come from two periodic FFT textures of co-prime sizes.  Strips of
                 512 rows are made by 2 worker processes in bounded memory.
  polys.gpkg     layers ``provinces`` (prov_id, name) and ``cities`` (city_id, name,
                 prov_id): nested Voronoi cells (cities denser in the east) that
                 tile the extent exactly, with borders made irregular by a smooth,
                 injective domain warp.
  coefs.csv      the coefficient table (t C/ha/yr; sources > 0, sinks < 0).

Usage:
  python benchmarks/bench_spine.py                      # 1e8 cells, all methods
  python benchmarks/bench_spine.py --cells 4e6 --methods io_floor,exactextract
  python benchmarks/bench_spine.py --generate-only --preview /tmp/lc.png
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GEN_VERSION = 5          # bump when the generator's output changes (invalidates the cache)
TILE = 512
CRS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=WGS84 +units=m"
PIXEL = 30.0
# upper-left corner of the extent's centre region (east China, in the Albers metres)
CENTER_XY = (900_000.0, 3_500_000.0)

# CLCD legend: code -> (name, coefficient t C/ha/yr, RGB)
CLASSES = {
    1: ("cropland", 0.422, (250, 227, 156)),
    2: ("forest", -0.644, (68, 111, 51)),
    3: ("shrub", -0.644, (51, 160, 44)),
    4: ("grassland", -0.021, (171, 211, 123)),
    5: ("water", -0.218, (30, 105, 180)),
    6: ("snow/ice", -0.005, (200, 235, 250)),
    7: ("barren", -0.005, (228, 218, 178)),
    8: ("impervious", 55.8, (220, 20, 60)),
    9: ("wetland", -0.218, (101, 163, 246)),
}
TARGETS = {  # I/O floor and targets quoted in the issue (1e8 cells, 2 cores)
    "lucr_vs_floor_max": 1.3,
    "lucr_peak_rss_max_mib": 1024.0,
}
PEERS_1E8 = {"io_floor_s": "1.8-2.5", "exactextract_sum_s": "~3.6", "invest_carbon_s": "~21"}
#: Cells of China's 30 m CLCD grid (the national run the projection is for).
CLCD_CELLS = 1.07e10
ALL_METHODS = ("io_floor", "exactextract", "lucr", "lucr_exact")  # lucr: --engine (fast); lucr_exact: engine exact


# ===========================================================================
# synthetic land cover
# ===========================================================================
# Smooth fields, in pixel units: largest wavelength, Hurst-like roughness (amplitude
# spectrum ~ k^-(h+1)), weight of the fine-scale texture (which texture, weight).
FIELDS = (
    #  name  lam_max  h     texture
    ("E", 5000.0, 0.9, (0, 0.12)),   # relief
    ("M", 2500.0, 0.6, (1, 0.20)),   # moisture
    ("R", 700.0, 0.4, None),         # drainage: rivers on its zero lines
    ("U", 900.0, 0.3, (1, 0.30)),    # urbanisation
    ("V", 1200.0, 0.3, (1, 0.55)),   # vegetation vigour
    ("C", None, 1.0, (1, 0.03)),     # country outline (nodata mask); None: extent / 1.5
)
R_LAM_MIN = 90.0        # drainage field is band-passed: no wiggles below ~90 px
TEX_SIZES = ((509, 509), (521, 523))   # co-prime periodic textures: no visible repeat
TEX_LAM = (2.2, 40.0)                  # texture band (px)

# Ordered class rules: (class, score, fraction of the valid cells).  Each rule takes
# the highest-scoring cells still unassigned; the rest is grassland.  Scores use the
# unit-variance fields E M R U V and the two textures T0 T1 ("parcels").
RULES = (
    (6, lambda f: f["E"] + 0.15 * f["T1"], 0.008),                  # snow/ice on the peaks
    (5, lambda f: -np.abs(f["R"]) - 0.25 * f["E"], 0.010),          # rivers in the valleys
    (5, lambda f: f["M"] - 0.8 * f["E"] + 0.10 * f["T0"], 0.016),   # lakes in wet lowlands
    (9, lambda f: f["M"] - 0.8 * f["E"] + 0.10 * f["T0"], 0.018),   # wetland rims of lakes
    (7, lambda f: f["E"] - 0.9 * f["M"] + 0.35 * f["T0"], 0.140),   # barren: high and dry
    (8, lambda f: f["U"] - 0.4 * f["E"] + 0.25 * f["T0"], 0.040),   # built-up clusters
    (1, lambda f: 0.7 * f["U"] - 0.9 * f["E"] + 0.6 * f["T0"] + 0.2 * f["M"], 0.220),  # cropland
    (2, lambda f: f["V"] + 0.5 * f["E"] + 0.2 * f["M"], 0.250),     # forest: slopes, vigour
    (3, lambda f: f["V"] + 0.5 * f["E"] + 0.2 * f["M"], 0.045),     # shrub: forest fringe
)
REMAINDER_CLASS = 4


def _dims(cells: float) -> tuple[int, int]:
    """(height, width) with ~cells cells and a 5:4 landscape aspect."""
    n = max(int(cells), 64 * 64)
    width = int(round(math.sqrt(n * 1.25)))
    height = int(round(n / width))
    return height, width


def _band_field(shape, rng, cell_px, lam_min, lam_max, h, periodic=False):
    """Unit-variance random field with a power-law amplitude spectrum ~ k^-(h+1)
    between wavelengths lam_min and lam_max (pixels), synthesised with an FFT on a grid
    whose cells are cell_px pixels.  Non-periodic fields are made on a padded grid and
    cropped so opposite edges are not correlated."""
    if periodic:
        pshape = shape
    else:
        pad = int(min(lam_max / cell_px, max(shape)) * 0.5) + 4
        pshape = (shape[0] + pad, shape[1] + pad)
    ky = np.fft.fftfreq(pshape[0]).astype(np.float32) / cell_px
    kx = np.fft.rfftfreq(pshape[1]).astype(np.float32) / cell_px
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    kmin, kmax = 1.0 / lam_max, 1.0 / lam_min
    amp = (k2 + kmin * kmin) ** (-(h + 1.0) / 2.0) * np.exp(-k2 / (kmax * kmax))
    amp[0, 0] = 0.0
    spec = np.fft.rfft2(rng.standard_normal(pshape, dtype=np.float32))
    spec *= amp
    del amp, k2
    f = np.fft.irfft2(spec, s=pshape)[: shape[0], : shape[1]].astype(np.float32)
    f -= f.mean()
    f /= f.std()
    return f


class Landscape:
    """Deterministic land-cover model; any block of the raster can be computed alone."""

    def __init__(self, height, width, seed=1, nodata_frac=0.04, speckle=0.004):
        self.H, self.W = height, width
        self.seed, self.nodata_frac, self.speckle = seed, nodata_frac, speckle
        rng = np.random.default_rng([seed, 11])
        # coarse grid: cell of g px, <= ~6e6 cells, one spare cell on every side
        g = 8
        while (height / g) * (width / g) > 6e6:
            g *= 2
        self.g = g
        self.Hc, self.Wc = -(-height // g) + 2, -(-width // g) + 2
        coarse = []
        for name, lam_max, h, _tex in FIELDS:
            lam_min = R_LAM_MIN if name == "R" else 2.5 * g
            lam_max = lam_max or max(height, width) / 1.5
            coarse.append(_band_field((self.Hc, self.Wc), rng, g, lam_min, lam_max, h))
        self.coarse = np.stack(coarse)                        # (nf, Hc, Wc) float32
        self.tex = [_band_field(s, rng, 1.0, TEX_LAM[0], TEX_LAM[1], 0.3, periodic=True)
                    for s in TEX_SIZES]
        self.tex_off = rng.integers(0, 500, size=(2, 2, 2))  # texture k, part, (dy, dx)
        self.norm = np.ones(len(FIELDS), np.float32)
        self.mask_thr = -np.inf
        self.thresholds = [np.inf] * len(RULES)
        self._calibrate(rng)

    # -- field evaluation ---------------------------------------------------
    def _texture(self, k, rows, cols, grid):
        """texture k on the grid rows x cols (grid=True) or at the points (rows, cols)."""
        (a, b), o, (ta, tb) = TEX_SIZES, self.tex_off[k], self.tex
        ia, ja = (rows + o[0, 0]) % a[0], (cols + o[0, 1]) % a[1]
        ib, jb = (rows + o[1, 0]) % b[0], (cols + o[1, 1]) % b[1]
        if grid:
            v = ta[np.ix_(ia, ja)] + tb[np.ix_(ib, jb)]
        else:
            v = ta[ia, ja] + tb[ib, jb]
        v *= np.float32(1 / math.sqrt(2))
        return v

    def _coarse_pos(self, idx):
        u = (idx.astype(np.float64) + 0.5) / self.g + 0.5     # +1 spare cell, -0.5 centre
        i = np.floor(u).astype(np.int64)
        return i, (u - i).astype(np.float32)

    def fields_block(self, r0, h, c0, w):
        """dict of unit-variance fields (+ textures T0, T1) on the block rows r0:r0+h,
        cols c0:c0+w; separable bilinear upsampling of the coarse grid."""
        rows = np.arange(r0, r0 + h)
        cols = np.arange(c0, c0 + w)
        iy, ty = self._coarse_pos(rows)
        ix, tx = self._coarse_pos(cols)
        base_y, base_x = iy[0], ix[0]
        sub = self.coarse[:, base_y: iy[-1] + 2, base_x: ix[-1] + 2]
        iy -= base_y
        ix -= base_x
        v = sub[:, iy, :] * (1 - ty)[None, :, None] + sub[:, iy + 1, :] * ty[None, :, None]
        f = v[:, :, ix] * (1 - tx) + v[:, :, ix + 1] * tx       # (nf, h, w)
        tex = [self._texture(0, rows, cols, True), self._texture(1, rows, cols, True)]
        return self._combine(f, tex)

    def fields_points(self, rows, cols):
        """same fields at individual cells (1-D arrays of row / column indices)."""
        iy, ty = self._coarse_pos(rows)
        ix, tx = self._coarse_pos(cols)
        c = self.coarse
        a = c[:, iy, ix] * (1 - ty) + c[:, iy + 1, ix] * ty
        b = c[:, iy, ix + 1] * (1 - ty) + c[:, iy + 1, ix + 1] * ty
        f = a * (1 - tx) + b * tx
        tex = [self._texture(0, rows, cols, False), self._texture(1, rows, cols, False)]
        return self._combine(f, tex)

    def _combine(self, f, tex):
        out = {"T0": tex[0], "T1": tex[1]}
        for i, (name, _lm, _h, texw) in enumerate(FIELDS):
            x = f[i]
            if texw is not None:
                x = x + np.float32(texw[1]) * tex[texw[0]]
            out[name] = x * self.norm[i]
        return out

    def _country(self, f, rows, cols, grid):
        """score whose lowest values are outside the 'country': distance to the extent
        edge (as a fraction of the half-size) plus the low-frequency outline field."""
        dy = np.minimum(rows + 0.5, self.H - rows - 0.5) / (self.H / 2)
        dx = np.minimum(cols + 0.5, self.W - cols - 0.5) / (self.W / 2)
        edge = (np.minimum(dy[:, None], dx[None, :]) if grid else np.minimum(dy, dx))
        edge = edge.astype(np.float32)
        # irregular coast near the edges; the damping keeps the interior free of holes
        return edge + np.float32(0.3) * f["C"] * (1 - edge) ** 3

    def classify(self, f, valid):
        shape = f["E"].shape
        cls = np.zeros(shape, np.uint8)
        free = valid.copy()
        for (c, score, _frac), thr in zip(RULES, self.thresholds):
            m = score(f) >= thr
            m &= free
            cls[m] = c
            free &= ~m
        cls[free] = REMAINDER_CLASS
        return cls

    def _calibrate(self, rng, n=600_000):
        rows = rng.integers(0, self.H, n)
        cols = rng.integers(0, self.W, n)
        f = self.fields_points(rows, cols)
        for i, (name, *_r) in enumerate(FIELDS):
            self.norm[i] = 1.0 / float(f[name].std())
        f = self.fields_points(rows, cols)
        if self.nodata_frac > 0:
            cs = self._country(f, rows, cols, False)
            self.mask_thr = float(np.quantile(cs, self.nodata_frac))
            valid = cs >= self.mask_thr
        else:
            valid = np.ones(n, bool)
        free = valid.copy()
        nvalid = int(valid.sum())
        for j, (_c, score, frac) in enumerate(RULES):
            s = score(f)
            sf = s[free]
            take = min(int(round(frac * nvalid)), sf.size - 1)
            thr = float(np.partition(sf, sf.size - take)[sf.size - take]) if take > 0 else np.inf
            self.thresholds[j] = thr
            free &= ~(s >= thr)

    def strip(self, r0, h, col_block=512):
        out = np.empty((h, self.W), np.uint8)
        rows = np.arange(r0, r0 + h)
        for c0 in range(0, self.W, col_block):
            w = min(col_block, self.W - c0)
            f = self.fields_block(r0, h, c0, w)
            cols = np.arange(c0, c0 + w)
            if np.isfinite(self.mask_thr):
                valid = self._country(f, rows, cols, True) >= self.mask_thr
            else:
                valid = np.ones((h, w), bool)
            out[:, c0:c0 + w] = self.classify(f, valid)
        if self.speckle > 0:   # i.i.d. misclassified cells, like a real classifier
            rng = np.random.default_rng([self.seed, 7, r0])
            m = (rng.random(out.shape, dtype=np.float32) < self.speckle) & (out > 0)
            out[m] = rng.integers(1, 10, int(m.sum()), dtype=np.uint8)
        return out


_MODEL: Landscape | None = None


def _strip_job(r0):
    h = min(TILE, _MODEL.H - r0)
    return r0, _MODEL.strip(r0, h)


def generate_raster(path: Path, height, width, seed, nodata_frac, speckle, workers=2,
                    log=print):
    import multiprocessing as mp
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    global _MODEL
    t0 = time.perf_counter()
    _MODEL = Landscape(height, width, seed, nodata_frac, speckle)
    log(f"  model: coarse grid {_MODEL.Hc}x{_MODEL.Wc} (cell {_MODEL.g} px), "
        f"calibrated in {time.perf_counter() - t0:.1f}s")
    x0 = CENTER_XY[0] - width * PIXEL / 2
    y0 = CENTER_XY[1] + height * PIXEL / 2
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint8",
                   crs=CRS, transform=from_origin(x0, y0, PIXEL, PIXEL), nodata=0,
                   tiled=True, blockxsize=TILE, blockysize=TILE, compress="DEFLATE",
                   BIGTIFF="IF_SAFER")
    tmp = path.with_suffix(f".tmp{os.getpid()}.tif")
    counts = np.zeros(256, np.int64)
    starts = list(range(0, height, TILE))
    ctx = mp.get_context("fork")
    pool = ctx.Pool(workers) if workers > 1 else None
    try:
        it = pool.imap(_strip_job, starts) if pool else map(_strip_job, starts)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write_colormap(1, {0: (0, 0, 0, 0), **{c: (*v[2], 255) for c, v in CLASSES.items()}})
            dst.update_tags(1, **{f"class_{c}": v[0] for c, v in CLASSES.items()})
            for r0, arr in it:
                dst.write(arr, 1, window=Window(0, r0, width, arr.shape[0]))
                counts += np.bincount(arr.ravel(), minlength=256)
    finally:
        if pool:
            pool.close()
            pool.join()
    os.replace(tmp, path)
    _MODEL = None
    return counts, time.perf_counter() - t0


# ---------------------------------------------------------------------------
# polygons: nested Voronoi provinces / cities with warped borders
# ---------------------------------------------------------------------------
def _sample_points(rng, n, bounds, east_bias=0.0, spacing=0.0):
    """n random points in bounds, density ~ exp(east_bias * x'), x' in [0, 1];
    spacing > 0: best-of-k candidates (mild repulsion, fewer tiny cells)."""
    xmin, ymin, xmax, ymax = bounds
    pts = []
    while len(pts) < n:
        k = 6 if spacing > 0 else 1
        cand = []
        while len(cand) < k:
            x, y = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
            if rng.uniform() < math.exp(east_bias * ((x - xmin) / (xmax - xmin) - 1)):
                cand.append((x, y))
        if pts and k > 1:
            p = np.array(pts)
            d = [np.min(np.hypot(p[:, 0] - cx, p[:, 1] - cy)) for cx, cy in cand]
            pts.append(cand[int(np.argmax(d))])
        else:
            pts.append(cand[0])
    return np.array(pts)


class _Warp:
    """smooth displacement field (a sum of random plane waves, amplitude ~ wavelength^0.6)
    tapered to zero normal displacement on the extent's edges, so the extent maps onto
    itself.  `scale` sets the rms gradient; the caller checks the warped coverage
    stays valid (no folds) and lowers `scale` otherwise."""

    def __init__(self, rng, bounds, n_modes=64, lam_min=1200.0, scale=0.35):
        xmin, ymin, xmax, ymax = bounds
        self.b = bounds
        ext = max(xmax - xmin, ymax - ymin)
        lams = np.exp(rng.uniform(math.log(lam_min), math.log(ext / 3), (2, n_modes)))
        ang = rng.uniform(0, 2 * math.pi, (2, n_modes))
        self.kx = 2 * math.pi / lams * np.cos(ang)
        self.ky = 2 * math.pi / lams * np.sin(ang)
        self.ph = rng.uniform(0, 2 * math.pi, (2, n_modes))
        amp = lams ** 0.6
        rms_grad = np.sqrt(((amp * 2 * math.pi / lams) ** 2).sum(axis=1, keepdims=True) / 2)
        self.unit = amp / rms_grad
        self.ramp = 0.05 * ext
        self.set_scale(scale)

    def set_scale(self, scale):
        self.amp = self.unit * scale

    def _taper(self, v, lo, hi):
        return np.clip(np.minimum(v - lo, hi - v) / self.ramp, 0.0, 1.0)

    def __call__(self, xy):
        x, y = xy[:, 0], xy[:, 1]
        xmin, ymin, xmax, ymax = self.b
        d = [(self.amp[i][None, :] * np.sin(x[:, None] * self.kx[i] + y[:, None] * self.ky[i]
                                            + self.ph[i])).sum(axis=1) for i in (0, 1)]
        nx = x + d[0] * self._taper(x, xmin, xmax)
        ny = y + d[1] * self._taper(y, ymin, ymax)
        return np.column_stack([nx, ny])


def generate_polygons(path: Path, bounds, seed, n_prov=30, n_city=300, log=print):
    import geopandas as gpd
    import shapely

    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 23])
    xmin, ymin, xmax, ymax = bounds
    box = shapely.box(*bounds)
    ext = max(xmax - xmin, ymax - ymin)

    def voronoi(pts, clip):
        cells = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=clip, ordered=True)
        return shapely.intersection(shapely.get_parts(cells), clip)

    prov_seeds = _sample_points(rng, n_prov, bounds, east_bias=0.8, spacing=1)
    provs = voronoi(prov_seeds, box)
    city_seeds = _sample_points(rng, n_city, bounds, east_bias=1.6, spacing=1)
    tree = shapely.STRtree(provs)
    pt_idx, prov_idx = tree.query(shapely.points(city_seeds), predicate="within")
    owner = np.full(len(city_seeds), -1)
    owner[pt_idx] = prov_idx
    keep = owner >= 0
    city_seeds, owner = city_seeds[keep], owner[keep]
    for p in range(n_prov):           # every province gets at least one city
        if not np.any(owner == p):
            city_seeds = np.vstack([city_seeds, prov_seeds[p]])
            owner = np.append(owner, p)
    cities, city_prov = [], []
    for p in range(n_prov):
        sel = np.nonzero(owner == p)[0]
        if len(sel) == 1:
            cells = [provs[p]]
        else:
            cells = list(voronoi(city_seeds[sel], provs[p]))
        cities += cells
        city_prov += [p] * len(cells)
    cities = np.array(cities, dtype=object)
    city_prov = np.array(city_prov)
    # node all borders once (union of boundaries), densify each edge once, rebuild the
    # faces: neighbours share identical vertices, so the warp keeps an exact tiling
    seg = ext / 2500.0
    lines = shapely.union_all(shapely.boundary(cities))
    lines = shapely.segmentize(lines, seg)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    rep = shapely.point_on_surface(faces)
    fi, ci = shapely.STRtree(cities).query(rep, predicate="within")
    face_city = np.full(len(faces), -1)
    face_city[fi] = ci
    assert (face_city >= 0).all() and len(np.unique(face_city)) == len(cities), \
        "city faces do not match the Voronoi cells"
    warp = _Warp(rng, bounds)
    for scale in (0.35, 0.25, 0.15, 0.08, 0.0):
        warp.set_scale(scale)
        warped = shapely.transform(faces, warp)
        if shapely.is_valid(warped).all() and shapely.coverage_is_valid(warped):
            break
    faces = warped
    geoms = np.empty(len(cities), dtype=object)
    for f, c in zip(faces, face_city):
        geoms[c] = f if geoms[c] is None else shapely.union_all([geoms[c], f])
    order = np.lexsort((np.arange(len(cities)), city_prov))   # ids grouped by province
    geoms, city_prov = geoms[order], city_prov[order]
    city_df = gpd.GeoDataFrame({
        "city_id": np.arange(1, len(geoms) + 1, dtype=np.int32),
        "name": [f"City {i:03d}" for i in range(1, len(geoms) + 1)],
        "prov_id": (city_prov + 1).astype(np.int32),
    }, geometry=list(geoms), crs=CRS)
    pgeoms = [shapely.coverage_union_all(geoms[city_prov == p]) for p in range(n_prov)]
    prov_df = gpd.GeoDataFrame({
        "prov_id": np.arange(1, n_prov + 1, dtype=np.int32),
        "name": [f"Province {p:02d}" for p in range(1, n_prov + 1)],
    }, geometry=pgeoms, crs=CRS)
    tmp = path.with_suffix(f".tmp{os.getpid()}.gpkg")
    if tmp.exists():
        tmp.unlink()
    prov_df.to_file(tmp, layer="provinces", driver="GPKG")
    city_df.to_file(tmp, layer="cities", driver="GPKG")
    os.replace(tmp, path)
    area = float(city_df.area.sum())
    info = dict(
        provinces=len(prov_df), cities=len(city_df),
        city_vertices=int(shapely.get_num_coordinates(geoms).sum()),
        cover_fraction=area / box.area,
        prov_cover_fraction=float(prov_df.area.sum()) / box.area,
        coverage_valid=bool(shapely.coverage_is_valid(geoms)),
        warp_scale=scale,
        cities_per_province=[int(x) for x in np.bincount(city_prov, minlength=n_prov)],
        seconds=time.perf_counter() - t0)
    log(f"  polygons: {info['provinces']} provinces, {info['cities']} cities, "
        f"{info['city_vertices']} city vertices, cover {info['cover_fraction']:.9f}, "
        f"coverage valid {info['coverage_valid']}, {info['seconds']:.1f}s")
    return info


def write_coefs(path: Path):
    lines = ["# nodata: 0", "code,name,coef,ref,status"]
    lines += [f"{c},{n},{v},benchmark,literature_default" for c, (n, v, _rgb) in CLASSES.items()]
    path.write_text("\n".join(lines) + "\n")


def lut_float32(nodata=np.nan):
    lut = np.full(256, nodata, np.float32)
    for c, (_n, v, _rgb) in CLASSES.items():
        lut[c] = v
    return lut


def ensure_inputs(args, log=print):
    """make (or reuse) the synthetic inputs; returns the input dict (paths + info)."""
    height, width = _dims(args.cells)
    params = dict(v=GEN_VERSION, h=height, w=width, seed=args.seed,
                  nodata=args.nodata_frac, speckle=args.speckle,
                  prov=args.provinces, city=args.cities)
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    d = Path(args.workdir) / "inputs" / f"lc_{height}x{width}_{key}"
    meta_path = d / "meta.json"
    if meta_path.exists() and not args.regenerate:
        meta = json.loads(meta_path.read_text())
        if all(Path(meta[k]).exists() for k in ("landcover", "polygons", "coefficients")):
            log(f"reusing synthetic inputs in {d}")
            return meta
    d.mkdir(parents=True, exist_ok=True)
    log(f"generating synthetic inputs ({height}x{width} = {height * width:.3g} cells) in {d}")
    tif, gpkg, csv = d / "landcover.tif", d / "polys.gpkg", d / "coefs.csv"
    counts, t_r = generate_raster(tif, height, width, args.seed, args.nodata_frac,
                                  args.speckle, workers=args.gen_workers, log=log)
    n = int(counts.sum())
    size = tif.stat().st_size
    log(f"  raster written in {t_r:.1f}s: {size / 1e6:.1f} MB, {8 * size / n:.2f} bits/cell")
    log("  class fractions: " + ", ".join(
        f"{c}:{CLASSES[c][0] if c else 'nodata'}={counts[c] / n:.3f}" for c in range(10)))
    x0 = CENTER_XY[0] - width * PIXEL / 2
    y1 = CENTER_XY[1] + height * PIXEL / 2
    bounds = (x0, y1 - height * PIXEL, x0 + width * PIXEL, y1)
    poly_info = generate_polygons(gpkg, bounds, args.seed, args.provinces, args.cities, log=log)
    write_coefs(csv)
    meta = dict(params=params, landcover=str(tif), polygons=str(gpkg), coefficients=str(csv),
                height=height, width=width, cells=height * width, bounds=bounds,
                raster_bytes=size, bits_per_cell=8 * size / n, raster_seconds=t_r,
                class_fractions={int(c): counts[c] / n for c in range(10)},
                polygons_info=poly_info)
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def write_preview(tif, gpkg, png, max_side=1400):
    """downsampled RGB PNG of the classes with city (grey) / province (black) borders."""
    import geopandas as gpd
    import rasterio
    import rasterio.features
    from rasterio.enums import Resampling
    from rasterio.transform import from_bounds

    with rasterio.open(tif) as src:
        s = max(src.width, src.height) / max_side
        oh, ow = max(1, int(src.height / s)), max(1, int(src.width / s))
        cls = src.read(1, out_shape=(oh, ow), resampling=Resampling.nearest)
        b = src.bounds
    pal = np.zeros((256, 3), np.uint8)
    for c, (_n, _v, rgb) in CLASSES.items():
        pal[c] = rgb
    rgb = pal[cls]
    tr = from_bounds(*b, ow, oh)
    for layer, colour in (("cities", (110, 110, 110)), ("provinces", (0, 0, 0))):
        df = gpd.read_file(gpkg, layer=layer)
        lines = rasterio.features.rasterize(((g, 1) for g in df.geometry.boundary),
                                            out_shape=(oh, ow), transform=tr, dtype="uint8")
        rgb[lines > 0] = colour
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # a PNG has no georeferencing: fine here
        with rasterio.open(png, "w", driver="PNG", width=ow, height=oh, count=3,
                           dtype="uint8") as dst:
            dst.write(np.moveaxis(rgb, -1, 0))
    aux = Path(str(png) + ".aux.xml")
    if aux.exists():
        aux.unlink()


# ===========================================================================
# timed methods (run in subprocesses: `bench_spine.py --_worker NAME --_job JSON`)
# ===========================================================================
def w_io_floor(job):
    import rasterio
    from rasterio.windows import Window

    lut = lut_float32()
    threads = str(job["threads"])
    t0 = time.perf_counter()
    with rasterio.Env(GDAL_NUM_THREADS=threads), rasterio.open(job["landcover"]) as src:
        prof = src.profile.copy()
        prof.update(dtype="float32", nodata=float("nan"), tiled=True, blockxsize=TILE,
                    blockysize=TILE, compress="DEFLATE", BIGTIFF="IF_SAFER",
                    NUM_THREADS=threads)   # upper case: rasterio passes it on verbatim
        H, W = src.height, src.width
        with rasterio.open(job["carbon_map"], "w", **prof) as dst:
            for r0 in range(0, H, TILE):
                win = Window(0, r0, W, min(TILE, H - r0))
                dst.write(lut[src.read(1, window=win)], 1, window=win)
    return {"core_s": time.perf_counter() - t0}


def w_exactextract(job):
    import geopandas as gpd
    from exactextract import exact_extract

    t0 = time.perf_counter()
    cities = gpd.read_file(job["polygons"], layer="cities")
    t1 = time.perf_counter()
    df = exact_extract(job["carbon_map"], cities, job.get("ee_ops", ["sum"]),
                       include_cols=["city_id"], output="pandas")
    t2 = time.perf_counter()
    df.to_csv(job["zonal_csv"], index=False)
    return {"core_s": t2 - t0, "read_vector_s": t1 - t0, "exact_extract_s": t2 - t1,
            "n_rows": len(df), "sum_total": float(df["sum"].sum())}


WORKERS = {"io_floor": w_io_floor, "exactextract": w_exactextract}


def worker_main(name, job_path):
    import resource
    job = json.loads(Path(job_path).read_text())
    t0 = time.perf_counter()
    res = WORKERS[name](job)
    res["worker_s"] = time.perf_counter() - t0
    res["ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(job["result_json"]).write_text(json.dumps(res, default=str))
    return 0


# ===========================================================================
# orchestration
# ===========================================================================
def _tree_sampler(pid, interval, stop, out):
    """poll the summed RSS (and process count) of pid and its descendants."""
    try:
        import psutil
    except ImportError:
        return
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            break
        tot, n = 0, 0
        for p in procs:
            try:
                tot += p.memory_info().rss
                n += 1
            except psutil.Error:
                pass
        out["tree_rss_mib"] = max(out.get("tree_rss_mib", 0.0), tot / 2**20)
        out["max_procs"] = max(out.get("max_procs", 0), n)
        stop.wait(interval)


def _parse_time_v(txt):
    out = {}
    pats = {"maxrss_kib": r"Maximum resident set size \(kbytes\): (\d+)",
            "user_s": r"User time \(seconds\): ([\d.]+)",
            "sys_s": r"System time \(seconds\): ([\d.]+)",
            "cpu_pct": r"Percent of CPU this job got: (\d+)%"}
    for k, pat in pats.items():
        m = re.search(pat, txt)
        if m:
            out[k] = float(m.group(1))
    return out


def _busy_cpu_s():
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait, threshold=0.1, window=3):
    """wait (up to max_wait s) until other processes have used less than `threshold` of a
    core for `window` consecutive seconds; returns whether the machine was quiet."""
    t_end = time.monotonic() + max_wait
    calm = 0
    while True:
        b0 = _busy_cpu_s()
        time.sleep(1.0)
        calm = calm + 1 if _busy_cpu_s() - b0 < threshold else 0
        if calm >= window:
            return True
        if time.monotonic() >= t_end:
            return False


def run_measured(cmd, log_path, env=None, sample_interval=0.1, timeout=None):
    """run cmd; wall time, peak RSS (largest process, GNU time -v or wait4) and the
    sampled peak RSS of the whole process tree."""
    use_time = Path("/usr/bin/time").exists()
    tfile = Path(str(log_path) + ".time")
    full = ["/usr/bin/time", "-v", "-o", str(tfile)] + cmd if use_time else cmd
    with open(log_path, "w") as logf:
        busy0 = _busy_cpu_s()
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=logf, stderr=subprocess.STDOUT, env=env)
        stop, tree = threading.Event(), {}
        th = None
        if sample_interval > 0:
            th = threading.Thread(target=_tree_sampler, args=(p.pid, sample_interval, stop, tree),
                                  daemon=True)
            th.start()
        killer = None
        if timeout:
            killer = threading.Timer(timeout, p.kill)
            killer.start()
        _, status, ru = os.wait4(p.pid, 0)     # rusage of the child (and its waited children)
        wall = time.perf_counter() - t0
        busy = _busy_cpu_s() - busy0
        if killer:
            killer.cancel()
        stop.set()
        if th:
            th.join()
    rc = os.waitstatus_to_exitcode(status)
    p.returncode = rc
    rec = {"rc": rc, "wall_s": wall}
    if use_time and tfile.exists():
        tv = _parse_time_v(tfile.read_text())
        rec.update({k: v for k, v in tv.items() if k != "maxrss_kib"})
        if "maxrss_kib" in tv:
            rec["maxrss_mib"] = tv["maxrss_kib"] / 1024
        tfile.unlink()
    elif ru is not None:
        rec.update(maxrss_mib=ru.ru_maxrss / 1024, user_s=ru.ru_utime, sys_s=ru.ru_stime)
    rec.update(tree)
    if "user_s" in rec:
        # CPU time used by OTHER processes meanwhile (anything well above a few % of
        # the wall time means the machine was not quiet and the timing is disturbed)
        rec["other_cpu_s"] = max(0.0, busy - rec["user_s"] - rec.get("sys_s", 0.0))
    if use_time and "max_procs" in rec:
        rec["max_procs"] -= 1               # the /usr/bin/time wrapper itself
    rec["peak_rss_mib"] = max(rec.get("maxrss_mib", 0.0), rec.get("tree_rss_mib", 0.0))
    return rec


def lucr_executable(args):
    if args.lucr:
        return Path(args.lucr)
    return Path(sys.executable).parent / "lucr"


def write_lucr_config(path: Path, inputs, args, engine: str | None = None):
    lines = [
        "# written by benchmarks/bench_spine.py",
        "landcover:",
        f"  path: {inputs['landcover']}",
        f"coefficients: {inputs['coefficients']}",
        "unknown_classes: error",
        "zones:",
        "  - level: province",
        f"    path: {inputs['polygons']}",
        "    layer: provinces",
        "    id: prov_id",
        "    name: name",
        "  - level: city",
        f"    path: {inputs['polygons']}",
        "    layer: cities",
        "    id: city_id",
        "    name: name",
        "    parent: prov_id",
        f"engine: {engine or args.engine}",
        f"chunks: {args.chunks}",
    ]
    # the spine only: risk and the report are timed apart (they read the tables, not the raster)
    lines += ["risk: null", "output:", "  report: false"]
    if args.compress != "default":
        lines += [f"  compress: {args.compress}"]
    lines += list(args.config_line or [])
    path.write_text("\n".join(lines) + "\n")


def _fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) and v == v else "-"


def print_table(res, cells, out=print):
    recs = {m: r for m, r in res.items() if r.get("ok")}
    floor = recs.get("io_floor", {}).get("wall_s")
    ee = recs.get("exactextract", {}).get("wall_s")
    hdr = ("| method | wall s | cells/s | peak RSS MiB | CPU % | x I/O floor | x exactextract |"
           " in-process s | other-proc CPU s |")
    out(hdr)
    out("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in ALL_METHODS:
        r = res.get(m)
        if r is None:
            continue
        if not r.get("ok"):
            out(f"| {m} | failed/skipped: {r.get('error', '?')[:60]} | | | | | | | |")
            continue
        w = r["wall_s"]
        out(f"| {m} | {w:.2f} | {cells / w:.3g} | {r['peak_rss_mib']:.0f} | "
            f"{_fmt(r.get('cpu_pct'), '.0f')} | {_fmt(w / floor if floor else None, '.2f')} | "
            f"{_fmt(w / ee if ee else None, '.2f')} | {_fmt(r.get('core_s'), '.2f')} | "
            f"{_fmt(r.get('other_cpu_s'), '.1f')} |")


def target_checks(res):
    checks = []
    lu, fl, ee = (res.get(m, {}) for m in ("lucr", "io_floor", "exactextract"))
    if lu.get("ok") and fl.get("ok"):
        ratio = lu["wall_s"] / fl["wall_s"]
        checks.append(("lucr <= 1.3x I/O floor", ratio <= TARGETS["lucr_vs_floor_max"],
                       f"{lu['wall_s']:.2f}s / {fl['wall_s']:.2f}s = {ratio:.2f}x"))
    if lu.get("ok") and ee.get("ok"):
        checks.append(("lucr faster than exactextract zonal step", lu["wall_s"] < ee["wall_s"],
                       f"{lu['wall_s']:.2f}s vs {ee['wall_s']:.2f}s"))
    lx = res.get("lucr_exact", {})
    if lu.get("ok") and lx.get("ok"):
        ratio = lx["wall_s"] / lu["wall_s"]
        checks.append(("exact engine <= 1.2x fast (then the default)", ratio <= 1.2,
                       f"{lx['wall_s']:.2f}s / {lu['wall_s']:.2f}s = {ratio:.2f}x"))
    if lu.get("ok"):
        checks.append(("lucr peak RSS <= 1 GiB",
                       lu["peak_rss_mib"] <= TARGETS["lucr_peak_rss_max_mib"],
                       f"{lu['peak_rss_mib']:.0f} MiB"
                       + (f" ({lu['max_procs']} processes)" if lu.get("max_procs", 1) > 1 else "")))
    return checks


def _ensure_carbon_map(inputs, run_dir, args):
    """the float map exactextract reads: io_floor's output, else make it (untimed)."""
    cmap = run_dir / "carbon_io_floor.tif"
    if not cmap.exists():
        print("  (making the carbon map for exactextract, untimed)", flush=True)
        job = _job(inputs, run_dir, args, "io_floor_untimed")
        job["carbon_map"] = str(cmap)
        w_io_floor(job)
    return cmap


def _job(inputs, run_dir, args, tag):
    return {"landcover": inputs["landcover"], "polygons": inputs["polygons"],
            "coefficients": inputs["coefficients"], "threads": args.threads,
            "carbon_map": str(run_dir / "carbon_io_floor.tif"), "ee_ops": args.ee_ops.split(","),
            "zonal_csv": str(run_dir / "zonal_exactextract.csv"),
            "result_json": str(run_dir / f".result_{tag}.json")}


def run_method(method, inputs, run_dir, args):
    """best-of-repeat record for one method."""
    reps, failures = [], []
    for rep in range(args.repeat):
        log_path = run_dir / f"log_{method}_{rep}.txt"
        env = dict(os.environ)
        if method.startswith("lucr"):
            exe = lucr_executable(args)
            if not exe.exists():
                return {"ok": False, "error": f"{exe} not found"}
            cfg = run_dir / f"{method}_config.yaml"
            write_lucr_config(cfg, inputs, args, engine="exact" if method == "lucr_exact" else None)
            out_dir = run_dir / f"{method}_out"
            cmd = [str(exe), "run", str(cfg), "--out", str(out_dir), "--overwrite"]
            cmd += list(args.lucr_arg or [])
        else:
            if method == "exactextract":
                _ensure_carbon_map(inputs, run_dir, args)
            job = _job(inputs, run_dir, args, f"{method}_{rep}")
            job_path = run_dir / f".job_{method}_{rep}.json"
            job_path.write_text(json.dumps(job))
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", method,
                   "--_job", str(job_path)]
            for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env.setdefault(v, str(args.threads))
        if args.wait_quiet > 0 and not wait_quiet(args.wait_quiet):
            print(f"  (machine still busy after waiting {args.wait_quiet:.0f}s; timing anyway)",
                  flush=True)
        rec = run_measured(cmd, log_path, env=env, sample_interval=args.sample_interval,
                           timeout=args.timeout)
        rec["rep"] = rep
        rec["cmd"] = cmd
        if not method.startswith("lucr"):
            rj = Path(_job(inputs, run_dir, args, f"{method}_{rep}")["result_json"])
            if rj.exists():
                rec.update(json.loads(rj.read_text()))
                rj.unlink()
        if rec["rc"] != 0:
            tail = log_path.read_text()[-3000:]
            rec.update(ok=False, error=f"exit {rec['rc']}", log_tail=tail)
            print(f"  {method} rep {rep}: FAILED (exit {rec['rc']}), log {log_path}\n{tail}",
                  flush=True)
            failures.append(rec)
            continue
        rec["ok"] = True
        if method.startswith("lucr"):
            summ = run_dir / f"{method}_out" / "run_summary.json"
            if summ.exists():
                rec["core_s"] = json.loads(summ.read_text()).get("seconds")
        other = rec.get("other_cpu_s", 0.0)
        print(f"  {method} rep {rep}: wall {rec['wall_s']:.2f}s, peak RSS "
              f"{rec['peak_rss_mib']:.0f} MiB, CPU {rec.get('cpu_pct', float('nan')):.0f}%, "
              f"other processes {other:.1f} CPU s"
              + ("  << machine busy: timing disturbed" if other > 0.1 * rec["wall_s"] + 0.2 else ""),
              flush=True)
        reps.append(rec)
    if not reps:
        return failures[-1]
    best = dict(min(reps, key=lambda r: r["wall_s"]))
    best["all_wall_s"] = [r["wall_s"] for r in reps]
    if failures:
        best["failed_reps"] = [{"rep": f["rep"], "error": f["error"], "log_tail": f["log_tail"]}
                               for f in failures]
    if method.startswith("lucr"):
        out_dir = run_dir / f"{method}_out"
        if out_dir.exists():
            best["outputs"] = {str(p.relative_to(out_dir)): p.stat().st_size
                               for p in sorted(out_dir.rglob("*")) if p.is_file()}
    return best


def zonal_agreement(run_dir: Path, inputs):
    """lucr's city net flux (t C/yr) vs exactextract's sum of the density map x cell
    area: coverage-fraction vs cell-centre rules differ only along borders."""
    import pandas as pd
    lp, ep = run_dir / "lucr_out" / "zonal_cities.csv", run_dir / "zonal_exactextract.csv"
    if not (lp.exists() and ep.exists()):
        return None
    lu = pd.read_csv(lp)
    ee = pd.read_csv(ep)
    if "net_tc" not in lu.columns or "sum" not in ee.columns:
        return None
    cell_ha = PIXEL * PIXEL / 1e4
    j = lu.assign(city_id=lu["unit_id"].astype(int)).merge(ee, on="city_id")
    ref = j["sum"] * cell_ha
    # |difference of net| relative to the unit's gross flux (net can be ~0)
    gross = (j["source_tc"] - j["sink_tc"]).clip(lower=1e-9) if "source_tc" in j else ref.abs()
    rel = (j["net_tc"] - ref).abs() / gross
    return {"units": int(len(j)), "lucr_total_tc": float(j["net_tc"].sum()),
            "exactextract_total_tc": float(ref.sum()),
            "total_rel_diff": float(j["net_tc"].sum() / ref.sum() - 1),
            "median_unit_rel_diff_of_gross": float(rel.median()),
            "max_unit_rel_diff_of_gross": float(rel.max())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=float, default=1e8, help="raster cells (default 1e8)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per method; the best is kept")
    ap.add_argument("--chunks", type=int, default=2048, help="lucr config `chunks`")
    ap.add_argument("--engine", default="fast", help="lucr config `engine`")
    ap.add_argument("--compress", default="default", choices=("default", "zstd", "deflate"),
                    help="lucr config `output.compress` (default: lucr's own default)")
    ap.add_argument("--ee-ops", default="sum",
                    help="exactextract operations, comma list (default: sum)")
    ap.add_argument("--methods", default=",".join(ALL_METHODS),
                    help=f"comma list out of {','.join(ALL_METHODS)}")
    ap.add_argument("--keep", action="store_true",
                    help="keep the method outputs (carbon maps, lucr out dir, logs)")
    ap.add_argument("--workdir", default=str(HERE / ".cache"),
                    help="cache of synthetic inputs, run outputs and results JSON")
    ap.add_argument("--threads", type=int, default=2, help="GDAL threads of the I/O floor")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nodata-frac", type=float, default=0.04,
                    help="fraction of cells outside the irregular country (nodata 0)")
    ap.add_argument("--speckle", type=float, default=0.004,
                    help="fraction of i.i.d. misclassified cells")
    ap.add_argument("--provinces", type=int, default=30)
    ap.add_argument("--cities", type=int, default=300)
    ap.add_argument("--gen-workers", type=int, default=2, help="generator processes")
    ap.add_argument("--regenerate", action="store_true", help="ignore cached inputs")
    ap.add_argument("--generate-only", action="store_true", help="make the inputs and stop")
    ap.add_argument("--preview", metavar="PNG", help="write a PNG preview of the inputs")
    ap.add_argument("--lucr", help="path of the lucr executable (default: next to python)")
    ap.add_argument("--lucr-arg", action="append", metavar="ARG",
                    help="extra argument for `lucr run` (repeatable)")
    ap.add_argument("--config-line", action="append", metavar="YAML",
                    help="extra top-level line for the lucr config (repeatable)")
    ap.add_argument("--sample-interval", type=float, default=0.1,
                    help="seconds between process-tree RSS samples (0: off)")
    ap.add_argument("--timeout", type=float, default=None, help="per-run timeout (s)")
    ap.add_argument("--wait-quiet", type=float, default=60.0, metavar="S",
                    help="before each timed run wait up to S seconds for the other processes "
                         "of the machine to go idle (0: do not wait)")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_job", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        return worker_main(args._worker, args._job)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        ap.error(f"unknown method(s) {bad}; choose from {ALL_METHODS}")
    workdir = Path(args.workdir).resolve()
    args.workdir = str(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    inputs = ensure_inputs(args)
    if args.preview:
        write_preview(inputs["landcover"], inputs["polygons"], args.preview)
        print(f"preview: {args.preview}")
    if args.generate_only:
        return 0
    cells = inputs["cells"]
    # one folder per run: concurrent runs on the same inputs must not clobber each other
    tag = f"{Path(inputs['landcover']).parent.name}_{time.strftime('%Y%m%d-%H%M%S')}_{os.getpid()}"
    run_dir = workdir / f"run_{tag}"
    run_dir.mkdir(parents=True)
    # warm the page cache with the input so the first method is not penalised
    for p in (inputs["landcover"], inputs["polygons"]):
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass
    order = [m for m in ALL_METHODS if m in methods]   # exactextract needs io_floor's map
    print(f"timing {order} on {cells:.3g} cells ({inputs['height']}x{inputs['width']}), "
          f"repeat {args.repeat}, run dir {run_dir}", flush=True)
    res = {}
    for m in order:
        res[m] = run_method(m, inputs, run_dir, args)

    agreement = zonal_agreement(run_dir, inputs)
    print()
    print(f"## lucr spine benchmark: {cells:.3g} cells, {os.cpu_count()} CPUs, "
          f"best of {args.repeat}")
    print()
    print_table(res, cells)
    print()
    checks = target_checks(res)
    for name, ok, detail in checks:
        print(f"- [{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    if not checks:
        print("- (no target checks: lucr not timed)")
    for m in ("lucr_exact", "lucr"):
        r = res.get(m, {})
        if r.get("ok"):  # the national run, from the measured per-cell rate (start-up amortised at scale)
            rate = cells / r["wall_s"]
            print(f"- projection: China's 30 m CLCD ({CLCD_CELLS:.3g} cells) at {m}'s {rate:.3g} cells/s: "
                  f"{CLCD_CELLS / rate / 60:.1f} min (goal: under 10 min on this machine; measured at "
                  f"{cells:.3g} cells with start-up included: run at >= 1e9 cells for the projection)")
            break
    if agreement:
        print(f"- lucr vs exactextract city net flux: total {agreement['total_rel_diff']:+.2e}, "
              f"per city |diff|/gross flux median {agreement['median_unit_rel_diff_of_gross']:.1e}, "
              f"max {agreement['max_unit_rel_diff_of_gross']:.1e} ({agreement['units']} cities; "
              "cell-centre vs coverage-fraction rule)")
    print(f"\npeers (1e8 cells, this 2-core machine): I/O floor {PEERS_1E8['io_floor_s']} s, "
          f"exactextract zonal sum {PEERS_1E8['exactextract_sum_s']} s, "
          f"InVEST carbon {PEERS_1E8['invest_carbon_s']} s")

    summary = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                 "platform": platform.platform()},
        "cells": cells, "inputs": inputs,
        "options": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "results": res,
        "zonal_agreement": agreement,
        "checks": [{"name": n, "pass": ok, "detail": d} for n, ok, d in checks],
        "peers_1e8": PEERS_1E8,
    }
    out_json = workdir / f"results_{tag}.json"
    out_json.write_text(json.dumps(summary, indent=1, default=str))
    print(f"\nresults: {out_json}")
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        print(f"outputs kept in {run_dir}")
    failed = [m for m in order if not res[m].get("ok")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
