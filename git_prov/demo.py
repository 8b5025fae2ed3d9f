"""``git prov demo``: a tiny three-stage experiment (prepare → train → evaluate) recorded
in a throw-away repository, driving the real ``git prov`` commands a user would type."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from git_prov.errors import ProvError

PREPARE = '''\
"""Clean the raw measurements: drop rows with missing values, scale x to [0, 1]."""
import csv

rows = [r for r in csv.DictReader(open("data/raw.csv")) if r["x"] and r["y"]]
xs = [float(r["x"]) for r in rows]
lo, hi = min(xs), max(xs)
with open("data/clean.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["x", "y"])
    for r in rows:
        w.writerow([round((float(r["x"]) - lo) / (hi - lo), 6), r["y"]])
print(f"prepare: kept {len(rows)} rows")
'''

TRAIN = '''\
"""Fit y = a*x + b by gradient descent."""
import argparse, csv, json

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=100)
args = p.parse_args()
data = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(open("data/clean.csv"))]
a = b = 0.0
for epoch in range(args.epochs):
    ga = sum((a * x + b - y) * x for x, y in data) * 2 / len(data)
    gb = sum((a * x + b - y) for x, y in data) * 2 / len(data)
    a, b = a - args.lr * ga, b - args.lr * gb
mse = sum((a * x + b - y) ** 2 for x, y in data) / len(data)
json.dump({"a": a, "b": b}, open("model.json", "w"), indent=2)
json.dump({"train_mse": round(mse, 4)}, open("metrics.json", "w"))
print(f"train: a={a:.3f} b={b:.3f} mse={mse:.4f}")
'''

EVALUATE = '''\
"""Score the model on the clean data."""
import csv, json

m = json.load(open("model.json"))
data = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(open("data/clean.csv"))]
mean = sum(y for _, y in data) / len(data)
ss_res = sum((m["a"] * x + m["b"] - y) ** 2 for x, y in data)
ss_tot = sum((y - mean) ** 2 for _, y in data)
json.dump({"r2": round(1 - ss_res / ss_tot, 4)}, open("eval.json", "w"))
print(f"evaluate: r2={1 - ss_res / ss_tot:.4f}")
'''


def _raw_data() -> str:
    lines = ["x,y"]
    seed = 12345
    for i in range(200):
        seed = (1103515245 * seed + 12345) % 2**31
        noise = (seed / 2**31 - 0.5) * 4
        lines.append(f"{i},{3 * i / 199 * 10 + 5 + noise:.4f}" if i % 37 else f"{i},")
    return "\n".join(lines) + "\n"


def run_demo(directory: Path | None, *, say: Callable[[str], None], color: bool = False) -> Path:
    """Build the demo repository, record runs in it and show them; returns its path."""
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="git-prov-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise ProvError(f"{root} is not empty", "give --dir an empty or new directory", exit_code=2)
    env = dict(os.environ)
    # The commands below say `python`: make that the interpreter running this demo. Its
    # own bin directory goes first on PATH when it has a `python` (a venv always does), so
    # the interpreter still finds its pyvenv.cfg and the venv's packages are recorded.
    own_bin = Path(sys.executable).parent
    if (own_bin / "python").exists():
        env["PATH"] = f"{own_bin}{os.pathsep}{env.get('PATH', '')}"
    else:
        bin_dir = root / ".demo-bin"
        bin_dir.mkdir()
        (bin_dir / "python").symlink_to(sys.executable)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "Demo Scientist")
    env.setdefault("GIT_AUTHOR_EMAIL", "demo@example.com")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    env["GIT_PAGER"] = "cat"
    prov = [sys.executable, "-m", "git_prov"] + (["--color=always"] if color else [])

    def sh(*args: str, show: str | None = None) -> None:
        say(f"$ {show or ' '.join(args)}")
        proc = subprocess.run(
            args,
            cwd=root,
            env=env,
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if proc.stdout.strip():
            say(proc.stdout.rstrip("\n"))
        if proc.returncode != 0:
            raise ProvError(f"demo step failed: {show or ' '.join(args)}")

    def prov_cmd(*args: str) -> None:
        sh(*prov, *args, show="git prov " + " ".join(args))

    say(f"# A throw-away repository at {root}")
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text(_raw_data())
    (root / "prepare.py").write_text(PREPARE)
    (root / "train.py").write_text(TRAIN)
    (root / "evaluate.py").write_text(EVALUATE)
    (root / ".gitignore").write_text(".demo-bin/\ndata/clean.csv\nmodel.json\n*.json\n")
    sh("git", "init", "-q", "-b", "main")
    sh("git", "add", ".")
    sh("git", "commit", "-q", "-m", "A tiny regression experiment")
    prov_cmd("init")
    sh("git", "add", ".gitprov.toml")
    sh("git", "commit", "-q", "-m", "Share git-prov settings")
    say("\n# Three stages, each recorded with its data, params and environment:")
    prov_cmd("run", "-i", "data/raw.csv", "-o", "data/clean.csv", "--", "python", "prepare.py")
    prov_cmd(
        "run",
        "-i",
        "data/clean.csv",
        "-o",
        "model.json",
        "--metrics-file",
        "metrics.json",
        "-p",
        "lr=0.1",
        "-p",
        "epochs=100",
        "--",
        "python",
        "train.py",
        "--lr",
        "0.1",
        "--epochs",
        "100",
    )
    prov_cmd(
        "run",
        "-i",
        "model.json",
        "-i",
        "data/clean.csv",
        "-o",
        "eval.json",
        "--metrics-file",
        "eval.json",
        "-t",
        "baseline",
        "--",
        "python",
        "evaluate.py",
    )
    say("\n# An uncommitted change to train.py: the run keeps an exact snapshot of it.")
    (root / "train.py").write_text(TRAIN.replace("a = b = 0.0", "a = b = 1.0  # warm start"))
    prov_cmd(
        "run",
        "-i",
        "data/clean.csv",
        "-o",
        "model.json",
        "--metrics-file",
        "metrics.json",
        "-p",
        "lr=0.5",
        "-p",
        "epochs=300",
        "--",
        "python",
        "train.py",
        "--lr",
        "0.5",
        "--epochs",
        "300",
    )
    say("\n# The runs, next to the commits they ran on:")
    prov_cmd("log")
    say("\n# Everything about the latest run:")
    last = subprocess.run(
        [*prov[:3], "log", "--json"], cwd=root, env=env, check=True, capture_output=True, text=True
    ).stdout
    import json

    runs = json.loads(last)[0]["runs"]
    prov_cmd("show", runs[-1]["short_id"])
    say("\n# Plain git log shows the runs too (git prov init turned that on):")
    sh("git", "log", "-1")
    say("# The full records are plain git notes: git notes --ref=prov show HEAD")
    say(f"\nThe demo repository stays at {root}: try `cd {root} && git prov log`.")
    return root
