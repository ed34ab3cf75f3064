"""The peers' side of the benchmarks, each run in a process of its own
(its own interpreter and thread settings, which a library reads once at
import), by the benchmark that needs it:

  python3 scripts/bench_child.py blas-probe
      (bench-peers) which BLAS numpy runs on and its sgemm GFLOP/s, as JSON
  python3 scripts/bench_child.py numpy-forward '[WIDTHS, HIDDEN, OUTPUT, ROWS]'
      (bench-dense) a random network's numpy forward pass in several
      chunk sizes, and the sgemm rate, as JSON
  python3 scripts/bench_child.py lightgbm FEATS MODEL ROWS TREES THREADS...
      (bench-trees) LightGBM's predict of FEATS:/features at each thread
      count (MODEL trained from /train first if missing): lines
      "THREADS SECONDS VERSION"

numpy, lightgbm and threadpoolctl are imported by the job that needs them."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, List, Sequence


def blas_probe() -> Dict[str, Any]:
    """numpy's version, the BLAS it is linked to (from the libraries this
    process mapped) and OpenBLAS's kernels, and a 1024^3 sgemm's rate."""
    import ctypes

    import numpy as np
    a = np.ones((1024, 1024), dtype=np.float32)
    a @ a
    t = time.perf_counter()
    for _ in range(4):
        a @ a
    info: Dict[str, Any] = {
        "numpy": np.__version__, "gflops": 4 * 2 * 1024 ** 3 / (time.perf_counter() - t) / 1e9,
        "blas": "an unknown BLAS", "core": ""}
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if ".so" in line})
    for p in libs:
        real = os.path.realpath(p).lower()
        if "openblas" in real:
            info["blas"] = "OpenBLAS"
            try:
                lib = ctypes.CDLL(p)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                lib.openblas_get_config.restype = ctypes.c_char_p
                info["core"] = lib.openblas_get_corename().decode()
                info["blas"] = " ".join(lib.openblas_get_config().decode().split()[:2])
            except (OSError, AttributeError):
                pass
            break
        for key, label in (("mkl", "MKL"), ("blis", "BLIS"), ("atlas", "ATLAS"),
                           ("/blas/libblas", "the reference BLAS (libblas3)")):
            if key in real:
                info["blas"] = label
    return info


def numpy_forward(widths: List[int], hidden: str, output: str, rows: int) -> Dict[str, Any]:
    """A random network (relu inside; `hidden` is recorded by the caller)
    through numpy in chunks of all, 16384, 4096 and 1024 rows, the best of
    three timed passes each; and a 2048^3 sgemm's GFLOP/s."""
    import numpy as np
    from threadpoolctl import threadpool_info

    del hidden  # the caller's label; numpy's hidden layers are relu
    rng = np.random.default_rng(2024)
    Ws = [(rng.uniform(-1, 1, (a, b)) * 2 / np.sqrt(a)).astype(np.float32)
          for a, b in zip(widths, widths[1:])]
    bs = [rng.uniform(-0.5, 0.5, b).astype(np.float32) for b in widths[1:]]
    x = rng.uniform(-1, 1, (rows, widths[0])).astype(np.float32)

    def forward(x: Any) -> Any:
        h = x
        for i, (W, b) in enumerate(zip(Ws, bs)):
            h = h @ W
            h += b
            if i < len(Ws) - 1:
                np.maximum(h, 0, out=h)
        if output == "sigmoid":
            return 1 / (1 + np.exp(-h))
        e = np.exp(h - h.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    best = {}
    for chunk in (rows, 16384, 4096, 1024):
        t_best = 1e30
        for rep in range(4):
            t = time.perf_counter()
            for r0 in range(0, rows, chunk):
                forward(x[r0:r0 + chunk])
            t = time.perf_counter() - t
            if rep > 0:
                t_best = min(t_best, t)
        best[chunk] = t_best
    n = 2048
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    a @ b
    sg = 1e30
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        sg = min(sg, time.perf_counter() - t)
    info = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for i in threadpool_info()]
    return {"chunks": best, "sgemm_gflops": 2 * n ** 3 / sg / 1e9,
            "numpy": np.__version__, "blas": info}


def lightgbm_predict(feats: str, model: str, trees: int, threads: Sequence[str]) -> None:
    """Prints "THREADS SECONDS VERSION" for LightGBM's predict of every row
    at each thread count (after a warm-up); trains MODEL first if missing."""
    import h5py
    import lightgbm as lgb
    import numpy as np

    if not os.path.exists(model):
        with h5py.File(feats, "r") as f:
            Xt, yt = f["/train"][...], f["/train_label"][...]
        b = lgb.train({"objective": "binary", "num_leaves": 255, "max_depth": 8,
                       "learning_rate": 0.1, "verbose": -1, "seed": 1, "deterministic": True},
                      lgb.Dataset(Xt, yt), num_boost_round=trees)
        b.save_model(model)
    b = lgb.Booster(model_file=model)
    with h5py.File(feats, "r") as f:
        X = f["/features"][...].astype(np.float64)
    for t in threads:
        b.predict(X[:1000], num_threads=int(t))
        t0 = time.perf_counter()
        b.predict(X, num_threads=int(t))
        print(t, time.perf_counter() - t0, lgb.__version__, flush=True)


def main(argv: List[str]) -> int:
    job = argv[0] if argv else ""
    if job == "blas-probe" and len(argv) == 1:
        print(json.dumps(blas_probe()))
    elif job == "numpy-forward" and len(argv) == 2:
        widths, hidden, output, rows = json.loads(argv[1])
        print(json.dumps(numpy_forward(widths, hidden, output, rows)))
    elif job == "lightgbm" and len(argv) >= 6:
        # ROWS (argv[3]) names the rows the caller generated; the file has them.
        lightgbm_predict(argv[1], argv[2], int(argv[4]), argv[5:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
