#!/usr/bin/env python3
"""arq's champion fit against scikit-learn's, on the same 1 M x 20 rows, in one go.

    python3 benches/train_vs_sklearn.py        # ARQ_BENCH_TRAIN_ROWS=100000 for a quick run

1. installs scikit-learn and numpy from PyPI into target/bench-venv (once);
2. runs `cargo bench -p arq-models --bench model -- train/` with ARQ_BENCH_NPY set, so
   the bench writes the exact rows it times to target/bench-data/{x,y}.npy;
3. times scikit-learn on those rows with the same work: standardize, then
   LogisticRegression(solver="lbfgs", C=1/alpha, max_iter=200) — arq's alpha is the L2
   weight on the summed log-loss, scikit-learn's C the inverse of it;
4. prints both medians and the ratio arq / scikit-learn (goal: at most 2).
"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "bench-venv"
DATA = ROOT / "target" / "bench-data"
ALPHA = 1.0  # the bench's alpha (benches/model.rs)
MAX_ITER = 200  # TrainOptions::default().max_iterations


def venv_python():
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "scikit-learn", "numpy"], check=True)
    return python


SKLEARN = r"""
import json, sys, time, statistics
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
x = np.load(sys.argv[1]); y = np.load(sys.argv[2]).astype(bool)
times = []
for _ in range(5):
    start = time.perf_counter()
    z = StandardScaler().fit_transform(x)
    model = LogisticRegression(solver="lbfgs", C=1.0 / float(sys.argv[3]), max_iter=int(sys.argv[4])).fit(z, y)
    times.append(time.perf_counter() - start)
print(json.dumps({"median_s": statistics.median(times), "iterations": int(model.n_iter_[0]), "rows": len(y)}))
"""


def main():
    python = venv_python()
    env = dict(os.environ, ARQ_BENCH_NPY=str(DATA))
    subprocess.run(
        ["cargo", "bench", "-p", "arq-models", "--bench", "model", "--", "train/"],
        cwd=ROOT, env=env, check=True,
    )
    rows = int(os.environ.get("ARQ_BENCH_TRAIN_ROWS", "1000000"))
    estimates = ROOT / "target" / "criterion" / "train" / f"logistic_{rows}_rows_x20" / "new" / "estimates.json"
    arq_s = json.loads(estimates.read_text())["median"]["point_estimate"] / 1e9
    out = subprocess.run(
        [str(python), "-c", SKLEARN, str(DATA / "x.npy"), str(DATA / "y.npy"), str(ALPHA), str(MAX_ITER)],
        check=True, capture_output=True, text=True,
    )
    sk = json.loads(out.stdout)
    print(f"rows {sk['rows']} x 20 features, standardize + L-BFGS logistic regression")
    print(f"arq           median {arq_s:.3f} s")
    print(f"scikit-learn  median {sk['median_s']:.3f} s ({sk['iterations']} iterations)")
    print(f"ratio arq / scikit-learn = {arq_s / sk['median_s']:.2f}")


if __name__ == "__main__":
    main()
