"""Unit tests of scripts/benchlib.py's pure parts: the input spec, the
list options, the machine's name from lscpu, batchscore's command line,
the environment for mpirun, the --stats summary and the tiling of inputs.

Run by tests/bench-lib.sh, under pytest where it is installed, else by
the plain runner at the end (every test_* function, no fixtures)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Type

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))

import benchlib as bl  # noqa: E402


def raises(exc: Type[BaseException], fn: Any, *args: Any) -> bool:
    try:
        fn(*args)
    except exc:
        return True
    return False


def test_split_spec() -> None:
    assert bl.split_spec("a.h5") == ("a.h5", "/features")
    assert bl.split_spec("a.h5:/x") == ("a.h5", "/x")
    assert bl.split_spec("a.h5:/g/x", "/y") == ("a.h5", "/g/x")
    # The last colon separates the dataset, and only a dataset path counts.
    assert bl.split_spec("c:/dir/a.h5:/x") == ("c:/dir/a.h5", "/x")
    assert bl.split_spec("host:file.h5") == ("host:file.h5", "/features")
    assert bl.split_spec(":/x") == (":/x", "/features")
    assert bl.split_spec("a.h5", "/y") == ("a.h5", "/y")


def test_int_list() -> None:
    assert bl.int_list("1,2,4") == [1, 2, 4]
    assert bl.int_list(" 8 ,16,") == [8, 16]
    for bad in ("", "0", "1,-2", "a", "1.5"):
        assert raises(argparse.ArgumentTypeError, bl.int_list, bad), bad


def test_cpu_model() -> None:
    text = ("Architecture:            x86_64\n"
            "  CPU op-mode(s):        32-bit, 64-bit\n"
            "Vendor ID:               GenuineIntel\n"
            "  Model name:            Intel(R) Xeon(R) Platinum 8480+\n"
            "    CPU family:          6\n")
    assert bl.cpu_model(text) == "Intel(R) Xeon(R) Platinum 8480+"
    assert bl.cpu_model("Architecture: aarch64\n") == ""
    assert bl.cpu_model("") == ""


def test_batchscore_cmd() -> None:
    cmd = bl.batchscore_cmd("m.json", "x.h5:/f", "o.h5", binary="/b/batchscore")
    assert cmd == [bl.MPIRUN, "--oversubscribe", "--bind-to", "none", "-np", "1",
                   "/b/batchscore", "--model", "m.json", "--input", "x.h5:/f",
                   "--output", "o.h5", "--force", "--quiet"]
    cmd = bl.batchscore_cmd("m.json", "x.h5", "o.h5", binary="bs", ranks=4, threads=2,
                            stats="s.json", kernel="ref", mpirun_args=["--hostfile", "h"],
                            args=["--chunk-rows", "100"])
    assert cmd[:8] == [bl.MPIRUN, "--oversubscribe", "--bind-to", "none", "-np", "4",
                       "--hostfile", "h"]
    assert cmd[8] == "bs"
    tail = cmd[cmd.index("--quiet") + 1:]
    assert tail == ["--threads", "2", "--stats", "s.json", "--kernel", "ref",
                    "--chunk-rows", "100"]


def test_mpi_env() -> None:
    env = bl.mpi_env(base={"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert env["OMPI_ALLOW_RUN_AS_ROOT"] == "1"
    assert env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    assert "OMPI_MCA_rmaps_base_oversubscribe" not in env
    env = bl.mpi_env({"OMP_NUM_THREADS": "3"}, oversubscribe=True, base={})
    assert env["OMPI_MCA_rmaps_base_oversubscribe"] == "1"
    assert env["OMP_NUM_THREADS"] == "3"
    # The caller's base is not changed.
    base = {"A": "1"}
    bl.mpi_env({"B": "2"}, base=base)
    assert base == {"A": "1"}


def rank(read: float, score: float, write: float, wait: float, **more: float) -> Dict[str, Any]:
    r = {"read_s": read, "score_s": score, "write_s": write, "wait_s": wait}
    r.update(more)
    return r


def test_rank_stats() -> None:
    doc = {"rows": 1000, "ranks": 2, "seconds": 2.0, "kernel": "tree-avx2",
           "per_rank": [rank(1.0, 1.5, 0.5, 0.0, setup_s=0.25, finish_s=0.25),
                        rank(0.5, 0.5, 0.25, 1.0, setup_s=0.75, finish_s=0.25)]}
    s = bl.rank_stats(doc)
    assert s["rows_per_s"] == 500.0
    assert (s["read_s"], s["score_s"], s["write_s"], s["wait_s"]) == (0.75, 1.0, 0.375, 0.5)
    assert s["other_s"] == 0.75
    assert s["score_max_s"] == 1.5
    assert s["kernel"] == "tree-avx2"
    assert s["per_rank"] == doc["per_rank"] and s["stats"] == doc


def test_rank_stats_old_and_empty() -> None:
    # Stats without setup_s: other is the wall time not accounted for.
    s = bl.rank_stats({"rows": 10, "ranks": 1, "seconds": 4.0,
                       "per_rank": [rank(1.0, 1.0, 0.5, 0.5)]})
    assert s["other_s"] == 1.0 and s["kernel"] == ""
    s = bl.rank_stats({"rows": 0, "ranks": 0, "seconds": 0.0, "per_rank": []})
    assert s["rows_per_s"] == 0.0 and s["score_max_s"] == 0.0 and s["other_s"] == 0.0


def test_tile_ranges() -> None:
    for rows, have, block in ((10, 10, 4), (10, 3, 4), (7, 10, 64), (100, 7, 16), (5, 1, 2)):
        runs = bl.tile_ranges(rows, have, block)
        got: List[int] = []
        for dst, src, n in runs:
            assert n > 0 and n <= block and src + n <= have, (rows, have, block, runs)
            assert dst == len(got)
            got += list(range(src, src + n))
        assert got == [r % have for r in range(rows)], (rows, have, block)


if __name__ == "__main__":
    tests = [(name, fn) for name, fn in sorted(globals().items())
             if name.startswith("test_") and callable(fn)]
    for name, fn in tests:
        fn()
        print("ok:", name)
    print("%d passed" % len(tests))
