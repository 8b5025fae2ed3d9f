"""What does putting a file into the local git-LFS store cost, next to hashing it?

``git_prov.store.lfs.store_in_lfs`` brings a file's bytes into ``.git/lfs/objects`` and
verifies them against the object id the caller recorded. Timed here for one file of
``--size`` MiB (default 1024), each step in a fresh store, medians of ``--repeat``:

* hash: SHA-256 of the file alone (what recording costs without keeping);
* cp: ``cp`` of the file (the floor of any copy);
* store (copy): a writable file — copied while hashed, one read pass (a reflink instead
  where the file system can make one: btrfs, XFS);
* store (read-only link): a file without write bits — hard-linked, then read back;
* store (present): the object is already there — a stat.

    python bench/bench_lfs_store.py [--size 1024] [--repeat 3]

Interleaved, so a busy machine slows every row alike; the page cache holds the file
(as right after the run that wrote it). Writing 1 GiB is bounded by the disk's write-back
on a small VM: the copy row varies most.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from git_prov.store.lfs import lfs_object_path, store_in_lfs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="MiB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lfs-", dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        source = root / "model.bin"
        with open(source, "wb") as f:
            for _ in range(args.size):
                f.write(os.urandom(1 << 20))
        frozen = root / "frozen.bin"
        shutil.copyfile(source, frozen)
        frozen.chmod(0o444)
        oid = hashlib.sha256(source.read_bytes()).hexdigest()
        size = source.stat().st_size
        common = root / "git"

        def fresh() -> None:
            shutil.rmtree(common, ignore_errors=True)
            common.mkdir()
            subprocess.run(["sync"], check=False)  # (write-back of the last row, not this one's)

        def hash_only() -> None:
            digest = hashlib.sha256()
            with open(source, "rb", buffering=0) as f:
                while chunk := f.read(8 << 20):
                    digest.update(chunk)

        def cp() -> None:
            subprocess.run(["cp", str(source), str(common / "copy")], check=True)

        def store_copy() -> None:
            store_in_lfs(common, source, oid, size)

        def store_link() -> None:
            store_in_lfs(common, frozen, oid, size)

        def store_present() -> None:
            store_in_lfs(common, source, oid, size)

        rows: list[tuple[str, Callable[[], None], bool]] = [
            ("hash", hash_only, True),
            ("cp", cp, True),
            ("store (copy)", store_copy, True),
            ("store (read-only link)", store_link, True),
            ("store (present)", store_present, False),
        ]
        times: dict[str, list[float]] = {name: [] for name, _, _ in rows}
        for _ in range(args.repeat):
            for name, step, clean in rows:
                if clean:
                    fresh()
                else:
                    store_copy()
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
        assert lfs_object_path(common, oid).stat().st_size == size
        base = statistics.median(times["hash"])
        print(f"{args.size} MiB, medians of {args.repeat}")
        print("| step | seconds | × hash |")
        print("|---|---:|---:|")
        for name, _, _ in rows:
            t = statistics.median(times[name])
            print(f"| {name} | {t:.3f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
