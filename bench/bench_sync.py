"""How much does ``git prov sync`` cost next to the plain git it rides on?

For ledgers of 1k, 10k and 100k runs, pushes ONE new run with ``git prov sync`` (the CLI,
Python start-up included) and, on the same repository, one small commit with a plain
``git fetch`` + ``git push``; over a local path (file) and over git:// (``git daemon``).
Prints the median time of each, the bytes on the wire, and the ratio to the target:
``git prov sync`` within 3x of the plain fetch+push pair at every size. Also timed: the
same one-run sync in-process (``git_prov.sync.sync``), which leaves out the interpreter
start-up and imports, a fixed cost that a local path does not hide; that start-up alone,
both for the quick path push, fetch and sync take (git_prov/entry.py: the imports it
makes before the work, ``QUICK_IMPORTS``) and for any other command (click and
git_prov.cli: ``git prov --version``); and ``git prov fetch`` when there is nothing new,
next to a plain ``git fetch``. The CLI is run as ``python -m git_prov``, which takes the
same path through git_prov/entry.py as ``git prov`` (git running ``git-prov``). Python
byte-code caching is on (in a scratch ``PYTHONPYCACHEPREFIX``), as after a normal install,
even when the caller set ``PYTHONDONTWRITEBYTECODE``. Timings are interleaved, so a busy
machine slows both sides of a ratio alike (though not equally: the CLI needs more CPU than
git).

Bytes are counted by a small TCP proxy between git and ``git daemon`` (both directions,
everything git says: ref advertisement, negotiation, pack), so they are exact for git://;
a local path speaks the same protocol over pipes, so only its time is shown.

    python bench/bench_sync.py                   # 1k, 10k, 100k runs
    python bench/bench_sync.py --sizes 1000 --repeat 3
    python bench/bench_sync.py --contention 1,8,32 --rounds 2

``--contention`` measures instead W writers (clones of one git:// remote) that each record
a run and share it, ROUNDS times, all at once: with ``git prov sync`` (retrying every race
until its time bound) beside a plain git retry loop of the notes ref (``git push --atomic``;
on rejection ``git fetch`` + ``git notes merge -s cat_sort_uniq`` + the same full-jitter
wait). syncs/s is pushes over the wall time of the whole burst (writers' start-up
included); median and worst are the seconds from starting a push to its landing.

Last results (2026-12-03, git://, 2 shared cores under other people's test suites: load
8-11 for 1 and 8 writers, 18-23 for 32; --rounds 2, and 1 for 32 writers):

| writers | pushing with  | syncs | failed | syncs/s | median s | worst s | max attempts |
|--------:|---------------|------:|-------:|--------:|---------:|--------:|-------------:|
|       1 | git prov sync |     2 |      0 |    0.35 |     0.80 |    0.92 |            1 |
|       1 | git push loop |     2 |      0 |    1.48 |     0.13 |    0.15 |            1 |
|       8 | git prov sync |    16 |      0 |    0.42 |    11.28 |   28.96 |           12 |
|       8 | git push loop |    16 |      0 |    1.19 |     0.60 |    7.79 |            8 |
|      32 | git prov sync |    32 |     25 |    0.23 |    80.59 |   88.41 |            5 |
|      32 | git push loop |    32 |     10 |    0.38 |    50.59 |   62.64 |           19 |
|  32 (a) | git prov sync |    32 |      0 |    0.15 |   102.84 |   172.61 |          31 |
|  32 (a) | git push loop |    32 |      0 |    0.26 |    54.35 |    94.21 |          28 |

(a) with ``--timeout 600``. 32 writers are 64 Python processes on 2 cores already loaded
~10x: each attempt waited seconds for a CPU, so the default 60 s bound ran out for most of
them — for the plain git loop as for git prov — after 5 attempts; given the time, all
landed. A git prov attempt does more than the plain loop's push + fetch + notes merge
(both ledger refs, the union merge in pygit2, run counts, its own start-up): about 2-3x
its cost per attempt here, and so 0.35-0.6x its syncs/s.

Last results, in ms (medians of 9; 2 shared cores, load 0.8-1.7 from other jobs; git 2.39,
Python 3.11, non-editable install). "before" is the same run of the code before the quick
path (everything through click), measured in the same session; "start-up" is quick / click:

| runs | transport | fetch+push | git prov sync | ratio |      before | in-process | start-up |
|-----:|-----------|-----------:|--------------:|------:|------------:|-----------:|---------:|
|   1k | file      |         35 |            86 | 2.46x | 143 (4.04x) |         29 |  44 / 93 |
|   1k | git://    |        126 |           140 | 1.11x | 198 (1.65x) |         83 |  50 / 88 |
|  10k | file      |         44 |           106 | 2.43x | 137 (3.52x) |         42 |  64 / 97 |
|  10k | git://    |        142 |           159 | 1.12x | 236 (1.47x) |         87 |  51 / 96 |
| 100k | file      |         34 |            96 | 2.80x | 170 (3.23x) |         40 |  43 / 86 |
| 100k | git://    |        136 |           160 | 1.17x | 246 (1.54x) |         87 |  45 / 84 |

With the editable install (the dev venv) the sync took 84-137 ms, 2.40-2.42x over a local
path; its path finder adds ~13 ms to every interpreter start (``python -c pass``: 27 against
13 ms at best), which these medians hardly showed. ``git prov fetch`` with nothing new:
66-89 ms (file) and 121-143 ms (git://), before 122-125 and 167-202, next to 12-14 and
59-62 ms for a plain ``git fetch``. The quick start-up is Python itself (~13 ms) and, at
~30 ms, mostly what ``subprocess`` needs (enum, re, locale, signal, threading, selectors:
~15 ms in-process) plus typing and git_prov's six modules (~6 ms); the rest of a sync is
its own work, about one plain fetch+push pair (in-process column). ``git prov sync``
through git (``git-prov`` on PATH) adds git's start-up: 100 ms median for 1k runs against
82-92 ms for ``python -m git_prov``, in a separate interleaved run.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_factory import make_ledger, make_run

from git_prov import sync
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.repo import open_repo
from git_prov.sync.races import _backoff

TARGET_RATIO = 3.0
# What the quick path (git_prov/entry.py) imports before it runs push, fetch or sync.
QUICK_IMPORTS = "import git_prov.entry, git_prov.sync.commands"


class CountingProxy:
    """A TCP forwarder to ``port`` that counts the bytes each way."""

    def __init__(self, port: int):
        self.target = port
        self.up = 0
        self.down = 0
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = int(self.server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for sock in (client, upstream):  # add no latency of our own (Nagle)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
                with self.lock:
                    if up:
                        self.up += len(data)
                    else:
                        self.down += len(data)
        except OSError:
            pass
        finally:
            for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
                with suppress(OSError):
                    sock.shutdown(how)

    def take(self) -> tuple[int, int]:
        """Bytes (client→server, server→client) since the last call."""
        time.sleep(0.05)  # let the pumps drain
        with self.lock:
            counts = (self.up, self.down)
            self.up = self.down = 0
        return counts

    def close(self) -> None:
        self.server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def git_daemon(base: Path) -> Iterator[int]:
    """``git daemon`` serving ``base`` (pushes allowed); yields its port."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--enable=receive-pack",
            "--export-all",
            f"--base-path={base}",
            "--reuseaddr",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("git daemon did not start") from None
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _timed(cwd: Path, *commands: list[str]) -> float:
    began = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return time.perf_counter() - began


@dataclass
class Row:
    """One line of the table."""

    runs: int
    transport: str
    plain_seconds: float
    prov_seconds: float
    library_seconds: float
    plain_fetch_seconds: float
    prov_fetch_seconds: float
    startup_seconds: float
    quick_startup_seconds: float
    plain_bytes: tuple[int, int] | None
    prov_bytes: tuple[int, int] | None

    @property
    def ratio(self) -> float:
        return self.prov_seconds / self.plain_seconds

    @property
    def library_ratio(self) -> float:
        return self.library_seconds / self.plain_seconds

    @property
    def fetch_ratio(self) -> float:
        return self.prov_fetch_seconds / self.plain_fetch_seconds


def measure(work: Path, runs: int, repeat: int, transports: list[str]) -> list[Row]:
    """Build a ledger of ``runs`` runs, serve it, and time one-run syncs against plain git."""
    src = work / "src"
    began = time.perf_counter()
    make_ledger(src, runs, max(10, runs // 10))
    built = time.perf_counter() - began
    served = work / "served"
    served.mkdir()
    _git(work, "clone", "-q", "--bare", str(src), str(served / "remote.git"))
    _git(src, "push", "-q", str(served / "remote.git"), NOTES_REF, OBJECTS_REF)
    print(f"# {runs} runs: ledger built in {built:.1f}s", file=sys.stderr)
    rows = []
    with git_daemon(served) as port:
        proxy = CountingProxy(port)
        try:
            for transport in transports:
                url = (
                    str(served / "remote.git")
                    if transport == "file"
                    else f"git://127.0.0.1:{proxy.port}/remote.git"
                )
                rows.append(
                    _measure_clone(
                        work / f"clone-{transport}",
                        url,
                        runs,
                        repeat,
                        transport,
                        proxy if transport == "git" else None,
                    )
                )
        finally:
            proxy.close()
    return rows


def _measure_clone(
    clone: Path, url: str, runs: int, repeat: int, transport: str, proxy: CountingProxy | None
) -> Row:
    _git(clone.parent, "clone", "-q", url, str(clone))
    prov = [sys.executable, "-m", "git_prov", "sync"]
    subprocess.run(prov, cwd=clone, check=True, capture_output=True)  # first fetch
    if proxy:
        proxy.take()
    plain_times, prov_times, library_times = [], [], []
    plain_fetch_times, prov_fetch_times, startup_times = [], [], []
    quick_startup_times = []
    plain_bytes, prov_bytes = [], []
    for i in range(repeat):
        repo = open_repo(clone)
        head = str(repo.head_commit().id)
        Ledger(repo).write([(head, make_run(head, 2 * (runs + i)))], keep=[head])
        began = time.perf_counter()
        done = subprocess.run(prov, cwd=clone, capture_output=True, text=True, check=False)
        prov_times.append(time.perf_counter() - began)
        if "1 run pushed" not in done.stdout:
            raise RuntimeError(f"git prov sync: {done.stdout.strip()} {done.stderr.strip()}")
        if proxy:
            prov_bytes.append(proxy.take())
        # Nothing new on either side: a fetch that brings nothing.
        prov_fetch_times.append(_timed(clone, [sys.executable, "-m", "git_prov", "fetch"]))
        plain_fetch_times.append(_timed(clone, ["git", "fetch", "-q", "origin"]))
        startup_times.append(_timed(clone, [sys.executable, "-m", "git_prov", "--version"]))
        quick_startup_times.append(_timed(clone, [sys.executable, "-c", QUICK_IMPORTS]))
        Ledger(repo).write([(head, make_run(head, 2 * (runs + i) + 1))], keep=[head])
        began = time.perf_counter()
        result = sync.sync(open_repo(clone))
        library_times.append(time.perf_counter() - began)
        assert result.runs_pushed == 1, result
        if proxy:
            proxy.take()
        (clone / "bench.txt").write_text(f"{i}\n")
        _git(clone, "add", "bench.txt")
        _git(clone, "commit", "-q", "-m", f"bench {i}")
        plain_times.append(
            _timed(clone, ["git", "fetch", "-q", "origin"], ["git", "push", "-q", "origin", "main"])
        )
        if proxy:
            plain_bytes.append(proxy.take())
    return Row(
        runs,
        transport,
        statistics.median(plain_times),
        statistics.median(prov_times),
        statistics.median(library_times),
        statistics.median(plain_fetch_times),
        statistics.median(prov_fetch_times),
        statistics.median(startup_times),
        statistics.median(quick_startup_times),
        _median_pair(plain_bytes) if proxy else None,
        _median_pair(prov_bytes) if proxy else None,
    )


def _median_pair(pairs: list[tuple[int, int]]) -> tuple[int, int]:
    return (
        int(statistics.median(p[0] for p in pairs)),
        int(statistics.median(p[1] for p in pairs)),
    )


def _bytes(pair: tuple[int, int] | None) -> str:
    return f"{pair[0]:>7,} / {pair[1]:>7,}" if pair else f"{'(same protocol)':>17}"


def render(rows: list[Row]) -> str:
    """The table, as Markdown."""
    lines = [
        "| runs | transport | git fetch+push (ms) | git prov sync CLI (ms) | ratio "
        "| sync in-process (ms) | ratio | start-up, quick (ms) | start-up, click (ms) "
        "| git fetch, nothing new (ms) "
        "| git prov fetch CLI (ms) | ratio | fetch+push bytes up/down "
        "| prov sync bytes up/down |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def verdict(ratio: float) -> str:
        return f"{ratio:.2f}×" + ("" if ratio <= TARGET_RATIO else " (over 3×)")

    for row in rows:
        lines.append(
            f"| {row.runs:,} | {row.transport} | {row.plain_seconds * 1000:.0f} | "
            f"{row.prov_seconds * 1000:.0f} | {verdict(row.ratio)} | "
            f"{row.library_seconds * 1000:.0f} | {verdict(row.library_ratio)} | "
            f"{row.quick_startup_seconds * 1000:.0f} | {row.startup_seconds * 1000:.0f} | "
            f"{row.plain_fetch_seconds * 1000:.0f} | "
            f"{row.prov_fetch_seconds * 1000:.0f} | "
            f"{row.fetch_ratio:.1f}× | "
            f"{_bytes(row.plain_bytes)} | {_bytes(row.prov_bytes)} |"
        )
    return "\n".join(lines)


# ---- contention: many writers syncing after every record -------------------------------------

# One writer, run as `python bench_sync.py --writer DIR KIND ROUNDS INDEX`: ROUNDS times,
# record a run, then push it (KIND "prov": `git prov sync`; KIND "git": the plain git retry
# loop below); prints one JSON line per push: seconds, exit status, attempts.


def _plain_git_push(clone: Path, bound: float) -> tuple[int, int]:
    """The plain-git way of sharing the notes ref under contention: ``git push --atomic``
    of refs/notes/prov; on rejection fetch it into a tracking ref, ``git notes merge -s
    cat_sort_uniq``, wait as git prov does (full jitter), push again, for as long as git
    prov would. Returns (exit status, attempts)."""
    tracking = "refs/notes/remotes/origin/prov"
    started, attempt = time.monotonic(), 0
    while True:
        attempt += 1
        pushed = subprocess.run(
            ["git", "push", "-q", "--atomic", "--no-verify", "origin", f"{NOTES_REF}:{NOTES_REF}"],
            cwd=clone,
            capture_output=True,
        )
        if pushed.returncode == 0:
            return 0, attempt
        delay = _backoff(attempt)
        if time.monotonic() - started + delay >= bound:
            return pushed.returncode, attempt
        time.sleep(delay)
        subprocess.run(
            ["git", "fetch", "-q", "origin", f"+{NOTES_REF}:{tracking}"], cwd=clone, check=False
        )
        subprocess.run(
            ["git", "notes", "--ref=prov", "merge", "-q", "-s", "cat_sort_uniq", tracking],
            cwd=clone,
            check=False,
            capture_output=True,
        )


def _writer(clone: Path, kind: str, rounds: int, index: int) -> None:
    import json

    head = _git(clone, "rev-parse", "HEAD")
    for n in range(rounds):
        if kind == "prov":
            Ledger(open_repo(clone)).write([(head, make_run(head, index * 1000 + n))], keep=[head])
        else:
            _git(clone, "notes", "--ref=prov", "append", "-m", f"run {index}.{n}", head)
        began = time.monotonic()
        if kind == "prov":
            done = subprocess.run(
                [sys.executable, "-m", "git_prov", "sync", "--json", "--no-remap"],
                cwd=clone,
                capture_output=True,
                text=True,
            )
            code = done.returncode
            attempts = json.loads(done.stdout)["attempts"] if code == 0 else 0
        else:
            code, attempts = _plain_git_push(clone, sync.sync_timeout(str(clone)))
        seconds = time.monotonic() - began
        print(json.dumps({"s": seconds, "code": code, "attempts": attempts}), flush=True)


@dataclass(frozen=True)
class ContentionRow:
    writers: int
    kind: str
    pushes: int
    failed: int
    wall: float
    worst: float
    median: float
    attempts: int


def measure_contention(
    work: Path, writers: int, rounds: int, kind: str, timeout: int | None = None
) -> ContentionRow:
    """``writers`` clones of one git:// remote, each recording and pushing ``rounds``
    times at once (giving up after ``timeout`` seconds: prov.syncTimeout)."""
    import json

    served = work / f"served-{kind}-{writers}"
    served.mkdir(parents=True)
    seed = work / f"seed-{kind}-{writers}"
    seed.mkdir()
    _git(seed, "init", "-q", "-b", "main")
    (seed / "README").write_text("bench\n")
    _git(seed, "add", "README")
    _git(seed, "commit", "-q", "-m", "seed")
    _git(served, "init", "-q", "--bare", "-b", "main", "remote.git")
    _git(seed, "push", "-q", str(served / "remote.git"), "main")
    with git_daemon(served) as port:
        url = f"git://127.0.0.1:{port}/remote.git"
        clones = []
        for i in range(writers):
            clone = work / f"{kind}-{writers}-{i}"
            _git(work, "clone", "-q", url, str(clone))
            if timeout is not None:
                _git(clone, "config", "prov.syncTimeout", str(timeout))
            clones.append(clone)
        began = time.monotonic()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--writer", str(c), kind, str(rounds), str(i)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, c in enumerate(clones)
        ]
        results: list[dict[str, Any]] = []
        for proc in procs:
            out, _ = proc.communicate()
            results.extend(json.loads(line) for line in out.splitlines())
        wall = time.monotonic() - began
    times = [r["s"] for r in results]
    return ContentionRow(
        writers=writers,
        kind=kind,
        pushes=len(results),
        failed=sum(1 for r in results if r["code"] != 0) + writers * rounds - len(results),
        wall=wall,
        worst=max(times),
        median=statistics.median(times),
        attempts=max(r["attempts"] for r in results),
    )


def render_contention(rows: list[ContentionRow]) -> str:
    lines = [
        "| writers | pushing with | syncs | failed | syncs/s | median s | worst s | max attempts |",
        "|--------:|--------------|------:|-------:|--------:|---------:|--------:|-------------:|",
    ]
    for r in rows:
        label = "git prov sync" if r.kind == "prov" else "git push loop"
        lines.append(
            f"| {r.writers:7} | {label:12} | {r.pushes:5} | {r.failed:6} | "
            f"{r.pushes / r.wall:7.2f} | {r.median:8.2f} | {r.worst:7.2f} | {r.attempts:12} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--writer"]:
        _writer(Path(argv[1]), argv[2], int(argv[3]), int(argv[4]))
        return 0
    parser = argparse.ArgumentParser(description="git prov sync vs plain git fetch+push")
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="comma-separated ledger sizes in runs (default: %(default)s)",
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per cell")
    parser.add_argument("--transports", default="file,git", help="file and/or git")
    parser.add_argument(
        "--contention",
        default="",
        metavar="W,W,…",
        help="instead: W writers (e.g. 1,8,32) each syncing after every record, over git://",
    )
    parser.add_argument("--rounds", type=int, default=2, help="records per writer (--contention)")
    parser.add_argument(
        "--timeout", type=int, default=None, help="prov.syncTimeout of the writers (--contention)"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    transports = [t for t in args.transports.split(",") if t]
    with tempfile.TemporaryDirectory(prefix="git-prov-bench-") as scratch:
        home = Path(scratch) / "home"
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = b@example.com\n")
        os.environ.update(
            HOME=str(home),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
            PYTHONPYCACHEPREFIX=str(Path(scratch) / "pycache"),
        )
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        if args.contention:
            table = []
            for writers in (int(w) for w in args.contention.split(",") if w):
                for kind in ("prov", "git"):
                    table.append(
                        measure_contention(Path(scratch), writers, args.rounds, kind, args.timeout)
                    )
                    print(render_contention(table[-1:]).splitlines()[-1], file=sys.stderr)
            print(render_contention(table))
            return 1 if any(r.failed and r.kind == "prov" for r in table) else 0
        rows = []
        for size in sizes:
            work = Path(scratch) / str(size)
            work.mkdir()
            rows.extend(measure(work, size, args.repeat, transports))
    print(render(rows))
    missed = [r for r in rows if r.ratio > TARGET_RATIO]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
