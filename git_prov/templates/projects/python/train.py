"""Fit y = a*x + b to data/train.csv; write models/model.json and metrics.json.

Record a run of it with:   git prov run -- python train.py
(.gitprov.toml declares its inputs, outputs, params and metrics files.)
Then compare with earlier runs: git prov log, git prov diff RUN1 RUN2.

At the end it uses git-prov's Python API to read the runs recorded so far.
"""

import csv
import json
import random
import tomllib
from pathlib import Path

import git_prov

params = tomllib.loads(Path("params.toml").read_text())
random.seed(params["seed"])
with open("data/train.csv", newline="") as f:
    rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]

a, b = random.uniform(-1, 1), 0.0
for _ in range(params["epochs"]):
    grad_a = sum(2 * (a * x + b - y) * x for x, y in rows) / len(rows)
    grad_b = sum(2 * (a * x + b - y) for x, y in rows) / len(rows)
    a -= params["learning_rate"] * grad_a
    b -= params["learning_rate"] * grad_b
mse = sum((a * x + b - y) ** 2 for x, y in rows) / len(rows)

Path("models").mkdir(exist_ok=True)
Path("models/model.json").write_text(json.dumps({"a": a, "b": b}) + "\n")
Path("metrics.json").write_text(json.dumps({"mse": round(mse, 6)}) + "\n")
print(f"mse = {mse:.6f}")

# The runs recorded before this one (this one is recorded when the script ends).
earlier = [r for r in git_prov.Ledger(".").runs(status="ok") if "mse" in r.metrics]
if earlier:
    best = min(earlier, key=lambda r: float(r.metrics["mse"]))
    print(f"best earlier run: {best.short_id} mse = {best.metrics['mse']} {dict(best.params)}")
