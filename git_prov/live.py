"""Metric histories while a run is going: logged in memory, flushed to a live file.

A run being recorded (``git prov run`` or a ``with git_prov.run()`` block) has a live
directory, ``<git common dir>/prov/live/<run id>/``, until its record is written:

* ``run.json`` — ``{"id", "command", "started", "pid", "host", "boot", "pid_start",
  "files"}``: the run, the process recording it (its pid, the host name, the kernel's boot
  id and the process's start time in clock ticks since boot, so that a pid reused by
  another process is not mistaken for it; the last two only where ``/proc`` gives them),
  and the metrics files it declared (read as they grow); for ``git prov run``, also
  ``attach``: what a ``with git_prov.run()`` block in its command attaches to;
* ``points-<pid>.bin`` — what each logging process flushed: frames of ``GPLF``, a 4-byte
  little-endian length, then a metric-history blob (model/history.py) of the points
  logged since the previous frame. A reader takes every complete frame and ignores a
  last one still being written;
* ``attached-<pid>.json``, ``inputs-<pid>.toml``, ``outputs-<pid>.toml`` — what the
  ``with git_prov.run()`` blocks of a process of the command add to the run (params,
  tags, data, …: git_prov/attach.py).

``git prov metrics RUN --follow`` and ``git prov report --serve`` read it; the record
writer reads it once at the end and removes it. It is local, rebuildable state: never
pushed, never the truth (the record's ``history`` blob is).

Logging costs no system call per point: :class:`MetricLog` appends to ``array('d')``
columns; a daemon thread writes the points not yet written as one frame every
:data:`FLUSH_SECONDS` (so a run that logs and then computes for an hour shows its points
within a second), and :meth:`MetricLog.close` writes the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import threading
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from git_prov.errors import UsageProblem
from git_prov.model.history import Series, decode_history, encode_history
from git_prov.model.values import Scalar

LIVE_DIR = "live"
RUN_FILE = "run.json"
FRAME_MAGIC = b"GPLF"
FLUSH_SECONDS = 1.0
# Set by `git prov run` for the command: the live directory its metrics go to.
LIVE_ENV = "GIT_PROV_LIVE"
RUN_ENV = "GIT_PROV_RUN"
_LENGTH = struct.Struct("<I")
_MAX_FRAME = (1 << 32) - 1
_now = time.time


class _Points:
    """One metric's columns, the step its next point gets, and its last value as given."""

    __slots__ = ("flushed", "last", "next_step", "steps", "times", "values")

    def __init__(self) -> None:
        # Integer steps (all the fast path takes) until a fractional one comes.
        self.steps: array[Any] = array("q")
        self.times: array[float] = array("d")
        self.values: array[float] = array("d")
        self.next_step = 0
        self.flushed = 0
        self.last: Scalar = 0.0


class MetricLog:
    """Every point of every metric a run logs, kept in columns, flushed in chunks to
    ``points-<pid>.bin`` of a live directory (none: kept in memory only)."""

    def __init__(self, directory: Path | None, interval: float = FLUSH_SECONDS):
        self._points: dict[str, _Points] = {}
        self.plain: dict[str, Scalar] = {}  # values that are not numbers: the last is kept
        self._directory = directory
        self._interval = interval
        self._fd: int | None = None
        self._lock = threading.Lock()  # one flush at a time (the thread's, close's)
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if directory is not None:
            self._flusher = threading.Thread(
                target=self._flush_every, name="git-prov metrics flush", daemon=True
            )
            self._flusher.start()

    def _flush_every(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def log(self, key: str, value: Any, step: int | None = None) -> None:
        """Keep one point. ``step`` None: one more than the metric's previous step (0
        first). A value that is not a number is kept as the metric's value, without a
        history (the last one logged wins)."""
        points = self._points.get(key)
        if (
            points is None
            or type(value) is not float
            or (step is not None and type(step) is not int)
        ):
            self._log_checked(key, value, step)
            return
        now = _now()
        if step is None:
            step = points.next_step
        points.next_step = step + 1
        try:
            points.steps.append(step)
        except OverflowError:  # (past 64 bits: the steps become floats)
            points.steps = array("d", points.steps)
            points.steps.append(step)
        points.times.append(now)
        points.values.append(value)  # (last: a flush takes as many points as values)
        points.last = value

    def _log_checked(self, key: str, value: Any, step: Any) -> None:
        if not isinstance(key, str) or not key:
            raise UsageProblem(f"metric name {key!r} is not a non-empty string")
        step = _as_step(key, step)
        if isinstance(value, str | bool):
            self.plain[key] = value
            return
        last: Scalar
        if isinstance(value, int | float):
            last = value if type(value) in (int, float) else float(value)
            try:
                number = float(value)
            except OverflowError:
                number = float("inf") if value > 0 else float("-inf")
        else:  # numpy and torch scalars, Decimal, Fraction: anything float() takes
            try:
                number = last = float(value)
            except (TypeError, ValueError):
                raise UsageProblem(
                    f"metric {key} = {value!r} is not a number, string or boolean"
                ) from None
        points = self._points.get(key)
        if points is None:
            points = self._points[key] = _Points()
        self.plain.pop(key, None)
        now = _now()
        if step is None:
            step = points.next_step
        points.next_step = int(step) + 1
        integral = isinstance(step, int) and -(1 << 63) <= step < (1 << 63)
        if not integral and points.steps.typecode == "q":
            points.steps = array("d", points.steps)
        points.steps.append(step if integral else float(step))
        points.times.append(now)
        points.values.append(number)
        points.last = last

    def histories(self) -> dict[str, Series]:
        """Every point logged so far, by metric."""
        return {k: Series(p.steps, p.times, p.values) for k, p in self._points.items()}

    def last_values(self) -> dict[str, Scalar]:
        """The last value logged per metric (as given), and the non-numeric values."""
        out: dict[str, Scalar] = {k: p.last for k, p in self._points.items()}
        out.update(self.plain)
        return out

    def flush(self) -> None:
        """Write the points not yet written to the live file (one frame). Safe beside a
        thread that logs: a metric's values are appended after its step and time, so the
        first ``len(values)`` points of its three columns are complete."""
        with self._lock:
            if self._directory is None:
                return
            chunk: dict[str, Series] = {}
            for key, points in list(self._points.items()):
                start, end = points.flushed, len(points.values)
                if start < end:
                    chunk[key] = Series(
                        points.steps[start:end], points.times[start:end], points.values[start:end]
                    )
                    points.flushed = end
            if not chunk:
                return
            try:
                self._write_frames(chunk)
            except OSError:
                self._directory = None  # the live view is a convenience: the run goes on

    def _write_frames(self, chunk: dict[str, Series]) -> None:
        if self._fd is None:
            assert self._directory is not None
            path = self._directory / f"points-{os.getpid()}.bin"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        blob = encode_history(chunk)
        if len(blob) > _MAX_FRAME:  # (four billion bytes in a second: split it)
            half = {k: Series(s.steps[: len(s) // 2], s.times[: len(s) // 2],
                              s.values[: len(s) // 2]) for k, s in chunk.items()}  # fmt: skip
            rest = {k: Series(s.steps[len(s) // 2 :], s.times[len(s) // 2 :],
                              s.values[len(s) // 2 :]) for k, s in chunk.items()}  # fmt: skip
            self._write_frames(half)
            self._write_frames(rest)
            return
        frame = FRAME_MAGIC + _LENGTH.pack(len(blob)) + blob
        view = memoryview(frame)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        """Stop the flushing thread, write what is left and close the live file."""
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _as_step(key: str, step: Any) -> int | float | None:
    """A step as given, or as the int/float it stands for (numpy integers); UsageProblem
    for anything else."""
    if step is None or type(step) is int or type(step) is float:
        return step
    if not isinstance(step, bool) and hasattr(step, "__index__"):
        return int(step.__index__())
    if not isinstance(step, bool | str) and isinstance(step, int | float):
        return float(step)
    raise UsageProblem(f"step {step!r} of metric {key!r} is not a number")


# ---- the live directory ----------------------------------------------------------------------


@dataclass(frozen=True)
class LiveRun:
    """A run whose record is not written yet, as its live directory describes it."""

    id: str
    command: str
    started: str
    pid: int
    directory: Path
    files: tuple[str, ...] = ()

    host: str = ""  # "" in a directory written before the host was recorded
    boot: str = ""
    pid_start: str = ""

    @property
    def alive(self) -> bool:
        """Whether the process recording it may still run (else the directory is stale)."""
        if not self.host:
            return pid_alive(self.pid)
        return recorder_state(self)[0] != GONE


RUNNING, GONE, UNKNOWN = "running", "gone", "unknown"


def recorder_state(run: LiveRun) -> tuple[str, str]:
    """Whether the process recording ``run`` still runs: (``RUNNING``, ``GONE`` or
    ``UNKNOWN``, why). ``GONE`` only when provable on this host: same host name, and the
    kernel rebooted since, or no process has the pid, or the process with the pid started
    at another time (a reused pid). Another host, or a directory that does not say its host
    (an older git-prov wrote it): ``UNKNOWN``."""
    if not run.host:
        return UNKNOWN, "its directory does not name the recorder's host"
    if run.host != socket.gethostname():
        return UNKNOWN, f"recorded on host {run.host}"
    if run.boot and _boot_id() and run.boot != _boot_id():
        return GONE, "the machine restarted since"
    if not pid_alive(run.pid):
        return GONE, f"no process {run.pid}"
    start = _process_start(run.pid)
    if run.pid_start and start and run.pid_start != start:
        return GONE, f"process {run.pid} is another process (the pid was reused)"
    return RUNNING, f"process {run.pid} runs"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot (``/proc/<pid>/stat``
    field 22); "" where there is no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2 :].split()  # (the command name may hold spaces)
    return fields[19] if len(fields) > 19 else ""


def live_root(prov_dir: Path) -> Path:
    return prov_dir / LIVE_DIR


def start_live(
    prov_dir: Path,
    run_id: str,
    command: str,
    started: str,
    files: Sequence[Path] = (),
    attach: Mapping[str, Any] | None = None,
) -> Path | None:
    """Create the live directory of a run about to start; None when it cannot be made
    (the run goes on without a live view). ``attach``: what a ``git_prov.run()`` block in
    the command attaches to (git_prov/attach.py)."""
    directory = live_root(prov_dir) / run_id
    try:
        directory.mkdir(parents=True, exist_ok=True)
        info = {
            "id": run_id,
            "command": command,
            "started": started,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "boot": _boot_id(),
            "pid_start": _process_start(os.getpid()),
            "files": [str(f) for f in files],
        }
        if attach is not None:
            info["attach"] = dict(attach)
        temporary = directory / (RUN_FILE + ".tmp")
        temporary.write_text(json.dumps(info), encoding="utf-8")
        os.replace(temporary, directory / RUN_FILE)
    except OSError:
        return None
    return directory


def end_live(directory: Path | None) -> None:
    """Remove a run's live directory (its record holds the history now)."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def live_runs(prov_dir: Path) -> list[LiveRun]:
    """The runs with a live directory, oldest first."""
    root = live_root(prov_dir)
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    found = []
    for name in names:
        run = read_live_run(root / name)
        if run is not None:
            found.append(run)
    return found


def read_live_run(directory: Path) -> LiveRun | None:
    try:
        info = json.loads((directory / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    files = info.get("files")
    pid = info.get("pid")
    host, boot, start = (info.get(k) for k in ("host", "boot", "pid_start"))
    return LiveRun(
        id=str(info.get("id", directory.name)),
        command=str(info.get("command", "")),
        started=str(info.get("started", "")),
        pid=pid if type(pid) is int else 0,
        directory=directory,
        files=tuple(str(f) for f in files) if isinstance(files, list) else (),
        host=host if isinstance(host, str) else "",
        boot=boot if isinstance(boot, str) else "",
        pid_start=start if isinstance(start, str) else "",
    )


def stale_live_runs(prov_dir: Path) -> tuple[list[tuple[LiveRun, str]], list[tuple[LiveRun, str]]]:
    """The live directories ``git prov gc`` removes — those whose recorder is provably gone
    — and those it leaves because it cannot tell (another host), each with why. Those of
    running recorders are in neither."""
    gone: list[tuple[LiveRun, str]] = []
    unknown: list[tuple[LiveRun, str]] = []
    for run in live_runs(prov_dir):
        state, why = recorder_state(run)
        if state == GONE:
            gone.append((run, why))
        elif state == UNKNOWN:
            unknown.append((run, why))
    return gone, unknown


def remove_live(run: LiveRun) -> bool:
    """Remove the live directory of a run whose recorder is gone, checking again just
    before (the pid may have been checked a while ago); whether it was removed."""
    fresh = read_live_run(run.directory)
    if fresh is None or recorder_state(fresh)[0] != GONE:
        return False
    shutil.rmtree(run.directory, ignore_errors=True)
    return not run.directory.exists()


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_points(directory: Path) -> dict[str, Series]:
    """Every complete frame of every ``points-*.bin`` of a live directory (processes in
    the order of their pids, frames in the order written)."""
    parts: list[Mapping[str, Series]] = []
    try:
        names = sorted(
            (n for n in os.listdir(directory) if n.startswith("points-") and n.endswith(".bin")),
            key=lambda n: (len(n), n),
        )
    except OSError:
        return {}
    for name in names:
        try:
            data = (directory / name).read_bytes()
        except OSError:
            continue
        parts.extend(_frames(data))
    from git_prov.model.history import merge_histories

    return merge_histories(parts)


def _frames(data: bytes) -> list[dict[str, Series]]:
    out = []
    at = 0
    while at + 8 <= len(data) and data[at : at + 4] == FRAME_MAGIC:
        (length,) = _LENGTH.unpack_from(data, at + 4)
        end = at + 8 + length
        if end > len(data):
            break  # being written
        try:
            out.append(decode_history(data[at + 8 : end]))
        except ValueError:
            break
        at = end
    return out


def read_live(run: LiveRun) -> dict[str, Series]:
    """A live run's histories so far: its logged points, then its metrics files' (as
    far as they are written)."""
    from git_prov.capture.histories import read_history_path
    from git_prov.model.history import merge_histories

    parts: list[Mapping[str, Series]] = [read_points(run.directory)]
    for name in run.files:
        try:
            parts.append(read_history_path(Path(name), partial=True).histories)
        except Exception:  # a file half-written, or not there yet: next time
            continue
    return merge_histories(parts)


def child_log() -> MetricLog | None:
    """The metric log of a process started by ``git prov run`` (None elsewhere): its
    points go to the run's live directory, and ``git prov run`` collects them."""
    global _CHILD
    if _CHILD is None:
        directory = os.environ.get(LIVE_ENV)
        if not directory or not os.path.isdir(directory):
            return None
        import atexit

        _CHILD = MetricLog(Path(directory))
        atexit.register(_CHILD.close)
    return _CHILD


_CHILD: MetricLog | None = None
