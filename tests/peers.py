"""InVEST (natcap-invest 3.20.2) as a reference for parity tests. A helper, not a test file.

InVEST lives in its own venv, ``.venv-peers`` (``make peers``): its GDAL bindings are built
against the system libgdal and must not share a process with the GDAL bundled in the
rasterio/pyogrio wheels of the main venv. So the tests never import it; they run it in a
subprocess with ``.venv-peers/bin/python``::

    from peers import invest_python, run_invest_carbon

    def test_parity(tmp_path):
        invest_python()  # skip (locally) or fail (CI=true) if the peer venv is missing
        ws = run_invest_carbon({"lulc_bas_path": ..., "carbon_pools_path": ...}, tmp_path / "invest")
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PEERS_VENV = REPO / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
INVEST_TIMEOUT_S = 600

# Variables that would let the main venv (or its wheels' GDAL/PROJ data) leak into the peer
# interpreter; the peer's osgeo finds the system libgdal's data on its own.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "GDAL_DATA", "GDAL_DRIVER_PATH",
              "PROJ_LIB", "PROJ_DATA")

_DRIVER = '''\
"""Run InVEST carbon on the args in sys.argv[1] (written by tests/peers.py)."""
import json
import logging
import sys

logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                    format="%(levelname)s %(name)s: %(message)s")
from natcap.invest import carbon

with open(sys.argv[1]) as f:
    args = json.load(f)
report = sys.argv[2] == "1"
problems = carbon.validate(args)
if problems:
    sys.exit(f"InVEST carbon validation failed: {problems}")
# MODEL_SPEC.execute wraps carbon.execute(args) as the `invest run` CLI does: GDAL
# exceptions on, file_registry.json written, optionally carbon_report.html.
carbon.MODEL_SPEC.execute(args, save_file_registry=True, check_outputs=True,
                          generate_report=report)
'''


def _peer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env["PYTHONNOUSERSITE"] = "1"
    env["PATH"] = f"{PEERS_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@functools.lru_cache(maxsize=1)
def _why_unavailable() -> str | None:
    """None if ``import natcap.invest.carbon`` works in the peer venv, else the reason."""
    if not PEERS_PYTHON.exists():
        return f"{PEERS_PYTHON} does not exist"
    try:
        proc = subprocess.run([str(PEERS_PYTHON), "-c", "import natcap.invest.carbon"],
                              capture_output=True, text=True, timeout=120, env=_peer_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{PEERS_PYTHON}: {exc}"
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return f"`import natcap.invest.carbon` fails in {PEERS_VENV.name}: {tail[0]}"
    return None


def invest_python() -> str:
    """Path of the peer venv's python, where ``natcap.invest.carbon`` imports.

    Otherwise skips the calling test, or fails it when ``CI=true`` (CI runs ``make peers``
    first, so a missing venv there is a broken set-up, not an optional extra).
    """
    reason = _why_unavailable()
    if reason is None:
        return str(PEERS_PYTHON)
    if os.environ.get("CI") == "true":
        pytest.fail(f"InVEST peer venv missing: run `make peers` before the tests ({reason})",
                    pytrace=False)
    pytest.skip("InVEST not installed: run `make peers` (needs apt libgdal-dev) "
                "to enable the InVEST parity test")


def run_invest_carbon(args: dict, workspace: Path, *, report: bool = False) -> Path:
    """Run ``natcap.invest.carbon.execute(args)`` in the peer venv; return the workspace.

    ``args["workspace_dir"]`` is set to ``workspace`` (created if needed); Path values are
    passed as strings. The args are validated by InVEST first, then run through
    ``carbon.MODEL_SPEC.execute`` (what ``invest run`` does: GDAL exceptions on,
    ``file_registry.json`` written; ``report=True`` also writes ``carbon_report.html``, slow).
    InVEST caches results in its workspace (taskgraph_cache/): give each run a fresh one.
    Raises RuntimeError with InVEST's stderr if the run fails or takes longer than
    INVEST_TIMEOUT_S.
    """
    python = invest_python()
    workspace = Path(workspace).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    given = args.get("workspace_dir")
    if given is not None and Path(given).resolve() != workspace:
        raise ValueError(f"args['workspace_dir'] {given!r} is not the workspace {workspace}")
    payload = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}
    payload["workspace_dir"] = str(workspace)

    args_file = workspace / "lucr_invest_args.json"
    driver = workspace / "lucr_invest_driver.py"
    args_file.write_text(json.dumps(payload, indent=1))
    driver.write_text(_DRIVER)
    try:
        proc = subprocess.run([python, str(driver), str(args_file), "1" if report else "0"],
                              cwd=workspace,
                              capture_output=True, text=True, timeout=INVEST_TIMEOUT_S,
                              env=_peer_env())
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise RuntimeError(f"InVEST carbon timed out after {INVEST_TIMEOUT_S} s\n"
                           f"{(err or '')[-4000:]}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"InVEST carbon failed (exit {proc.returncode}) in {workspace}\n"
                           f"{proc.stderr[-4000:]}")
    return workspace
