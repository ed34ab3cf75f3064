"""Pinned interpreter for the fixture generators (make-xgb-fixtures,
make-lgb-fixtures, make-nn-fixtures with its own pins): `--venv DIR` makes
(once) a virtual environment in DIR with Python 3.12 (xgboost 3.4 needs it)
and the pinned packages below, and runs the generator again inside it. Standard library only, so that it runs
before the generator imports anything.

Python 3.12 is taken from $PYTHON312, else `python3.12` on PATH, else a
pyenv install (~/.pyenv/versions/3.12.*). The same pins give byte-identical
fixtures.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from typing import Sequence

PINS = [
    "xgboost-cpu==3.4.1",  # the xgboost library without the CUDA wheels
    "lightgbm==4.7.0",
    "numpy==2.5.5",
    "scipy==1.18.1",
    "scikit-learn==1.9.1",
    "h5py==3.16.0",
    "pandas==3.1.1",
]
# make-onnx-fixtures and bench-onnx: the ONNX tools (onnxruntime is the
# oracle only), with the pins above but pandas.
ONNX_PINS = [p for p in PINS if not p.startswith("pandas")] + [
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "skl2onnx==1.20.0",
    "onnxmltools==1.16.0",
]
# make-forest-fixtures and make-onnx-fixtures' cb_* fixtures only (CatBoost
# and its dependencies).
CATBOOST_PINS = ["catboost==1.2.10"]
# make-onnx-fixtures' torch.onnx.export fixtures only: torch (Linux wheels bring
# the CUDA libraries it loads at import) and the exporter it runs.
TORCH_PINS = ["torch==2.15.0", "onnxscript==0.7.2"]


def _venv_arg(argv: Sequence[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--venv" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--venv="):
            return a.split("=", 1)[1]
    return None


def _python312() -> str:
    cands = [os.environ.get("PYTHON312"), shutil.which("python3.12")]
    cands += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python")))
    for c in cands:
        # A pyenv shim may exist without a 3.12 behind it: ask it.
        if c and os.access(c, os.X_OK):
            p = subprocess.run([c, "--version"], capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.startswith("Python 3.12."):
                return c
    sys.exit("fixture_venv: no Python 3.12 found (set PYTHON312)")


def reexec(script: str, pins: Sequence[str] | None = None, extra: Sequence[str] = ()) -> None:
    """If the command line says --venv DIR and this is not DIR's Python,
    set DIR up with `pins` (default PINS) and `extra`, and run `script` with
    the same arguments there."""
    venv = _venv_arg(sys.argv[1:])
    if not venv:
        return
    venv = os.path.abspath(venv)
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        print("fixture_venv: creating %s" % venv, file=sys.stderr, flush=True)
        subprocess.run([_python312(), "-m", "venv", venv], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
                   + list(PINS if pins is None else pins) + list(extra), check=True)
    os.execv(py, [py, os.path.abspath(script)] + sys.argv[1:])
