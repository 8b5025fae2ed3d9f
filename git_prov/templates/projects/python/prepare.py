"""Make a toy dataset in data/ (replace this with fetching your real data).

data/ is not committed (.gitignore): git-prov records the hash of every file a run
reads, so a run names the exact data it used without the data being in git.
"""

import csv
import random
from pathlib import Path

rng = random.Random(42)
Path("data").mkdir(exist_ok=True)
with open("data/train.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["x", "y"])
    for _ in range(200):
        x = rng.uniform(-1, 1)
        writer.writerow([f"{x:.6f}", f"{3 * x + 0.5 + rng.gauss(0, 0.1):.6f}"])
print("wrote data/train.csv")
