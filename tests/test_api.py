"""The Python API exactly as the README shows it, and ``lucr --version``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import lucr

REPO = Path(__file__).resolve().parent.parent


def readme_api_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its API example (marked <!-- api-example -->)"
    return match.group(1)


def test_readme_api_example_runs_as_written(tmp_path):
    # a user's working folder holding the repository's configs/ and data/ (the paths the example names)
    for name in ("configs", "data"):
        (tmp_path / name).symlink_to(REPO / name)
    script = tmp_path / "example.py"
    script.write_text(readme_api_block() + "\nimport json\nprint('RESULT', json.dumps({'n': len(provinces), 'map': str(result.maps['carbon_balance']), 'classes': table.n_classes, 'legend': legend.id, 'shape': list(lc.codes.shape)}))\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    import json

    got = json.loads(line[len("RESULT "):])
    assert got["n"] == 34 and got["classes"] == 18 and got["legend"] == "igbp" and got["shape"] == [1016, 1253]
    assert Path(got["map"]) == tmp_path / "lucr-output" / "carbon_balance.tif" and Path(got["map"]).is_file()
    assert lucr.__version__ in proc.stdout  # the example prints the version


def test_api_names_and_version_flag():
    assert set(lucr.__all__) >= {"run", "load_config", "open_landcover", "load_table", "load_legend", "load_parameters", "RunResult"}
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", lucr.__version__)
    proc = subprocess.run([str(Path(sys.executable).parent / "lucr"), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"lucr {lucr.__version__}"


def test_run_accepts_a_mapping_with_overrides(tmp_path, fast_run):
    """``lucr.run`` takes a mapping too; overrides are the CLI's options. Same numbers as the fixture run."""
    from tests.conftest import SAMPLE_RASTER

    cfg = {"landcover": {"path": str(SAMPLE_RASTER), "year": 2019}, "legend": "igbp", "output": {"tables": ["csv"]}}
    result = lucr.run(cfg, out_dir=tmp_path / "o", chunks=256)
    assert result.summary["whole_raster"]["net_tc"] == fast_run.summary["whole_raster"]["net_tc"]
    assert result.maps == {n: tmp_path / "o" / f"{n}.tif" for n in ("carbon_balance", "risk_grade", "risk_grade_probability")}
