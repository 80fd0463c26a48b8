"""report.html in a real browser: headless Chromium loads it from disk (no network), every
image loads, no NaN/None text, the page is not blank; `lucr report` rebuilds it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    found = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if found is None:
        reason = "no headless Chromium (Debian: `make browser` installs chromium and fonts-noto-cjk)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _chromium(browser: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files", "--virtual-time-budget=10000"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=180)


def test_report_renders_in_a_browser(exact_run, tmp_path):
    browser = _browser()
    report = exact_run.out_dir / "report.html"
    assert report.exists() and report.stat().st_size > 100_000
    dom = _chromium(browser, "--dump-dom", report.as_uri()).stdout
    images = re.search(r'data-images="(\d+) (loaded|broken)"', dom)
    assert images is not None, "the page's load handler did not run"
    assert images.group(2) == "loaded" and int(images.group(1)) >= 5, images.group(0)
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>|data:image/png;base64,[A-Za-z0-9+/=]+", " ", dom, flags=re.S)
    for bad in ("NaN", "None", "nan", "undefined"):
        assert not re.search(rf"\b{bad}\b", text), (bad, re.search(rf".{{60}}\b{bad}\b.{{60}}", text, flags=re.S))
    for expected in ("Inside the 34 provinces", "Risk of the provinces", "上海市", "Coefficients and their sources", "unverified", "Methods and defaults"):
        assert expected in text, expected
    png = tmp_path / "report.png"
    _chromium(browser, "--window-size=1100,3000", f"--screenshot={png}", report.as_uri())
    from matplotlib.image import imread

    pixels = imread(png)[..., :3]
    assert pixels.shape[0] >= 2000 and pixels.std() > 0.05  # not blank
    assert (pixels.mean(axis=2) < 0.9).mean() > 0.05  # a good share of the page is drawn (text, maps)


def test_figures_have_a_cjk_font():
    from lucr.figures import cjk_font

    if cjk_font() is None:
        reason = "no CJK font: Chinese names would show as boxes (`make browser` installs fonts-noto-cjk)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def test_lucr_report_rebuilds_from_the_outputs(exact_run, tmp_path):
    out = tmp_path / "again.html"
    proc = subprocess.run([str(Path(sys.executable).parent / "lucr"), "report", str(exact_run.out_dir), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert "Risk of the cities" in text and text.count("<img") == (exact_run.out_dir / "report.html").read_text(encoding="utf-8").count("<img")
    assert np.isfinite(len(text))


def test_report_in_chinese(exact_run):
    from lucr.report_html import build

    page = build(exact_run.out_dir, ["provinces", "cities"], lang="zh")
    assert '<html lang="zh-CN">' in page and "<h2>主要结果</h2>" in page and "provinces 碳风险" in page
    assert "34 个province单元内" in page and "碳排放系数及其来源" in page


def test_console_lines_break_between_items_only():
    """Grade counts and warned names wrap at 80 columns between items, never between a label and its
    count (CJK counted double); a broken line keeps its separator and the continuation is indented."""
    from rich.cells import cell_len

    from lucr.report import _packed

    items = ["extreme source 3", "strong source 5", "source 7", "weak sink 9", "sink 10", "strong sink 80", "no data 2"]
    lines = _packed(items, " · ", indent="  ")
    assert lines == ["  extreme source 3 · strong source 5 · source 7 · weak sink 9 · sink 10 ·", "    strong sink 80 · no data 2"]
    zh = _packed(["强汇 80", "弱源 3"] * 8, " · ", indent="  ")
    assert all(cell_len(line) <= 80 for line in zh) and len(zh) == 2
    assert [i.strip() for line in zh for i in line.split("·") if i.strip()] == ["强汇 80", "弱源 3"] * 8
    names = ["red warning: Inner Mongolia", "Xinjiang Uygur Autonomous Region", "Guangxi Zhuang Autonomous Region", "Tibet"]
    assert _packed(names, ", ", indent="  ") == [
        "  red warning: Inner Mongolia, Xinjiang Uygur Autonomous Region,",  # 97 columns with the next name: broken, comma kept
        "    Guangxi Zhuang Autonomous Region, Tibet",
    ]
    assert _packed(["a", "b"], ", ", indent="  ") == ["  a, b"]
    assert _packed(["a" * 37, "b" * 38], " · ", indent="  ") == ["  " + "a" * 37 + " · " + "b" * 38]  # 80 columns: one line
