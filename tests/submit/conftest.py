"""pytest setup for the helper's unit tests: the package is imported from
scripts/, the fake az's canned answers are at hand, and options are built
the way the command line builds them."""

import json
import sys
from pathlib import Path
from typing import Any, Callable, List

import pytest

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE.parents[1] / "scripts"))

from batchscore_submit.cli import parse_command_line  # noqa: E402
from batchscore_submit.validate import validate  # noqa: E402


@pytest.fixture
def answer() -> Callable[[str], Any]:
    """A canned answer of the fake az (tests/submit/answers/NAME)."""
    def load(name: str) -> Any:
        return json.loads((HERE / "answers" / name).read_text(encoding="utf-8"))
    return load


@pytest.fixture
def opts(tmp_path: Path) -> Callable[..., Any]:
    """Validated options: the base request (workspace rg/ws, cluster bs-cpu,
    a model and an input file), then ARGS; fails on validation errors."""
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "features.h5").write_text("")

    def make(*args: str, check: bool = True) -> Any:
        argv: List[str] = ["-g", "rg", "-w", "ws", "--cluster", "bs-cpu", "--model", str(tmp_path / "model.json"),
                           "--input", str(tmp_path / "features.h5"), "--run-name", "t1"] + list(args)
        o = parse_command_line(argv)
        errors, _ = validate(o)
        if check:
            assert errors == []
        o.errors = errors
        return o
    return make
