"""What the benchmarks (scripts/bench-*) share: logging, the environment
mpirun needs, batchscore's command line and its --stats, the machine's
name, waiting for an idle machine, and the generated XGBoost model and
rows of scripts/bench-trees that other benchmarks reuse.

Standard library only at import time, so that every interpreter the
benchmarks run under (Debian's /usr/bin/python3, a pinned virtual
environment) can import it; h5py, numpy, xgboost and scikit-learn are
imported by the functions that need them. The pure parts are tested by
tests/bench-lib.sh (tests/bench/test_benchlib.py)."""
from __future__ import annotations

import importlib
import io
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
BATCHSCORE = os.path.join(TOP, "build", "batchscore")
MPIRUN = os.environ.get("MPIRUN", "mpirun")

Stats = Dict[str, Any]


class RunFailed(RuntimeError):
    """A batchscore run failed; the message has its command and output."""


def log(*a: object) -> None:
    """A progress line on stderr (stdout holds the results)."""
    print(*a, file=sys.stderr, flush=True)


def line_buffered() -> None:
    """Standard output line by line, also into a pipe or a log file."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)


def need(modules: Sequence[str], install: str) -> None:
    """Imports the modules or exits with the line that installs them."""
    missing = []
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError:
            missing.append(m)
    if missing:
        sys.exit("%s: missing Python modules %s for %s; install them with:\n  %s"
                 % (os.path.basename(sys.argv[0]), ", ".join(missing), sys.executable,
                    install))


def int_list(text: str) -> List[int]:
    """"1,2,4" as [1, 2, 4]: positive integers (an argparse type)."""
    import argparse
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected a comma-separated list of integers: %r" % text) from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError("expected positive integers: %r" % text)
    return vals


def split_spec(spec: str, default: str = "/features") -> Tuple[str, str]:
    """FILE[:DATASET], the last colon separating the dataset, as batchscore."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail.startswith("/") and head:
        return head, tail
    return spec, default


def mpi_env(extra: Optional[Mapping[str, str]] = None, oversubscribe: bool = False,
            base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment (os.environ, or base) for mpirun: Open MPI refuses
    root unless told; oversubscribe lets more ranks than cores run."""
    env = dict(os.environ if base is None else base)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    if oversubscribe:
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
    env.update(extra or {})
    return env


def check_tools(batchscore: str) -> None:
    """Exits with what to install or build when batchscore or mpirun is missing."""
    if not os.access(batchscore, os.X_OK):
        sys.exit("%s: %s is missing: build it first with scripts/build"
                 % (os.path.basename(sys.argv[0]), batchscore))
    if shutil.which(MPIRUN) is None:
        sys.exit("%s: mpirun not found; install it with: apt-get install openmpi-bin"
                 % os.path.basename(sys.argv[0]))


def cpu_model(lscpu_text: str) -> str:
    """The "Model name" of lscpu's output, or ""."""
    for line in lscpu_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "Model name":
            return value.strip()
    return ""


def cpu_name() -> str:
    """This machine's CPU model, for the header of a result."""
    try:
        name = cpu_model(subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    except OSError:
        name = ""
    if not name:
        try:
            with open("/proc/cpuinfo") as f:
                name = next((l.split(":", 1)[1].strip() for l in f
                             if l.startswith("model name")), "")
        except OSError:
            pass
    return name or platform.processor() or "unknown CPU"


def wait_idle(pct: float, max_s: float = 900.0) -> Optional[float]:
    """Waits until the CPUs were at least pct % idle over 3 s (Linux
    /proc/stat), at most max_s; for a machine shared with other work.
    Returns the idle share seen last (None: not asked, or no /proc/stat)."""
    if pct <= 0 or not os.path.exists("/proc/stat"):
        return None

    def sample() -> Tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return v[3] + v[4], sum(v)  # idle + iowait, all

    t0 = time.monotonic()
    while True:
        i0, s0 = sample()
        time.sleep(3)
        i1, s1 = sample()
        idle = 100.0 * (i1 - i0) / max(1, s1 - s0)
        if idle >= pct:
            return idle
        if time.monotonic() - t0 > max_s:
            log("  (the CPUs stayed busy: %.0f%% idle after %.0f s; running anyway)"
                % (idle, max_s))
            return idle


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` calls of fn, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---- batchscore ---------------------------------------------------------------

def batchscore_cmd(model: str, inp: str, out: str, *, binary: str = BATCHSCORE,
                   ranks: int = 1, threads: Optional[int] = None,
                   stats: Optional[str] = None, kernel: Optional[str] = None,
                   mpirun_args: Sequence[str] = (), args: Sequence[str] = ()) -> List[str]:
    """The mpirun ($MPIRUN) command line of one batchscore run (--force --quiet):
    unbound ranks, `threads` OpenMP threads each, --stats to `stats`, then
    any further batchscore `args`."""
    cmd = [MPIRUN, "--oversubscribe", "--bind-to", "none", "-np", str(ranks)]
    cmd += list(mpirun_args)
    cmd += [binary, "--model", model, "--input", inp, "--output", out, "--force", "--quiet"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if stats:
        cmd += ["--stats", stats]
    if kernel:
        cmd += ["--kernel", kernel]
    return cmd + list(args)


def rank_stats(s: Mapping[str, Any]) -> Stats:
    """A batchscore --stats document summed up: seconds (the job's wall
    time), rows/s, the per-rank read/score/write/wait seconds averaged over
    the ranks, other_s (setup and finish, outside the chunk loop), the
    slowest rank's score seconds, the kernel; per_rank and the whole
    document (stats) as they were."""
    per = list(s["per_rank"])
    n = max(1, len(per))
    mean = {k: sum(r[k] for r in per) / n for k in ("read_s", "score_s", "write_s", "wait_s")}
    secs = s["seconds"]
    return {
        "rows": s["rows"], "ranks": s["ranks"], "seconds": secs,
        "rows_per_s": s["rows"] / secs if secs > 0 else 0.0,
        "read_s": mean["read_s"], "score_s": mean["score_s"], "write_s": mean["write_s"],
        "wait_s": mean["wait_s"],
        # Outside the chunk loop (older stats: the wall time not accounted for).
        "other_s": (sum(r["setup_s"] + r["finish_s"] for r in per) / n
                    if per and "setup_s" in per[0] else max(0.0, secs - sum(mean.values()))),
        "score_max_s": max((r["score_s"] for r in per), default=0.0),
        "kernel": s.get("kernel", ""),
        "per_rank": per,
        "stats": dict(s),
    }


def read_stats(path: str) -> Stats:
    """rank_stats of the --stats file at path."""
    with open(path) as f:
        return rank_stats(json.load(f))


def run_batchscore(cmd: Sequence[str], stats: str,
                   env: Optional[Mapping[str, str]] = None) -> Stats:
    """Runs one batchscore command line (batchscore_cmd, with --stats
    `stats`); its stats (read_stats) plus launch_s, mpirun's start to its
    exit. A failed run raises RunFailed."""
    if os.path.exists(stats):
        os.remove(stats)
    t0 = time.perf_counter()
    p = subprocess.run(list(cmd), env=dict(env) if env is not None else mpi_env(),
                       capture_output=True, text=True)
    launch = time.perf_counter() - t0
    if p.returncode != 0:
        raise RunFailed("batchscore failed (exit %d): %s\n%s"
                        % (p.returncode, shlex.join(cmd), (p.stderr or p.stdout).strip()))
    r = read_stats(stats)
    r["launch_s"] = launch
    return r


# ---- the benchmark model and rows -----------------------------------------------

def tree_data(d: str, rows: int, trees: int, depth: int) -> Tuple[str, str]:
    """The rows and XGBoost model of scripts/bench-trees, generated once in
    d: `rows` rows x 28 features (/features, plus /train and /train_label)
    and a binary:logistic model of `trees` trees of depth `depth`."""
    import h5py
    import numpy as np
    import xgboost as xgb
    from sklearn.datasets import make_classification

    os.makedirs(d, exist_ok=True)
    feats = os.path.join(d, "features.h5")
    model = os.path.join(d, "xgb-%dx%d.json" % (trees, depth))
    if not os.path.exists(feats):
        log("generating %d rows x 28 features ..." % rows)
        X, y = make_classification(n_samples=rows + 200000, n_features=28,
                                   n_informative=14, random_state=7)
        X = X.astype(np.float32)
        with h5py.File(feats, "w") as f:
            f["/features"] = X[:rows]
            f["/train"] = X[rows:]
            f["/train_label"] = y[rows:].astype(np.float32)
    if not os.path.exists(model):
        log("training %d trees of depth %d (xgboost %s) ..." % (trees, depth, xgb.__version__))
        with h5py.File(feats, "r") as f:
            Xt, yt = f["/train"][...], f["/train_label"][...]
        b = xgb.train({"objective": "binary:logistic", "max_depth": depth, "eta": 0.1,
                       "tree_method": "hist", "seed": 1, "nthread": os.cpu_count()},
                      xgb.DMatrix(Xt, label=yt), num_boost_round=trees)
        b.save_model(model)
    return feats, model


def input_rows(path: str, dset: str) -> int:
    import h5py
    with h5py.File(path, "r") as f:
        return int(f[dset].shape[0])


def tile_ranges(rows: int, have: int, block: int = 1 << 16) -> List[Tuple[int, int, int]]:
    """How `rows` rows are cut from a source of `have` rows, repeated as
    often as needed: (destination row, source row, count) runs of at most
    `block` rows, none across the source's end."""
    runs = []
    for r0 in range(0, rows, block):
        n = min(block, rows - r0)
        while n > 0:
            s0 = r0 % have
            k = min(n, have - s0)
            runs.append((r0, s0, k))
            r0 += k
            n -= k
    return runs


def sized_input(path: str, dset: str, rows: int, data_dir: str) -> Tuple[str, str]:
    """(file, dataset) holding exactly `rows` rows of path:dset: the input
    itself when it has that many, else its first rows, tiled if needed,
    written once into data_dir/inputs/."""
    import h5py
    have = input_rows(path, dset)
    if have == rows:
        return path, dset
    if have == 0:
        sys.exit("input %s:%s has no rows" % (path, dset))
    out_dir = os.path.join(data_dir, "inputs")
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    out = os.path.join(out_dir, "%s-%d.h5" % (stem, rows))
    st = os.stat(path)
    tag = "%s:%s:%d:%d" % (os.path.abspath(path), dset, st.st_size, int(st.st_mtime))
    if os.path.exists(out):
        with h5py.File(out, "r") as f:
            if f.attrs.get("source", "") == tag and f["/features"].shape[0] == rows:
                return out, "/features"
    log("writing %s (%d rows of %s:%s)" % (os.path.relpath(out), rows, path, dset))
    with h5py.File(path, "r") as src, h5py.File(out + ".tmp", "w") as dst:
        x = src[dset]
        d = dst.create_dataset("/features", (rows, x.shape[1]), dtype=x.dtype)
        for r0, s0, n in tile_ranges(rows, have):
            d[r0:r0 + n] = x[s0:s0 + n]
        dst.attrs["source"] = tag
    os.replace(out + ".tmp", out)
    return out, "/features"
