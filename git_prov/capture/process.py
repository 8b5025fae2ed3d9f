"""Run the user's command: pass its output through, keep a size-capped copy, time it.

``git prov run -- CMD`` must not change how ``CMD`` behaves. So stdin is inherited untouched,
stdout and stderr are teed (everything still reaches the terminal, promptly), and when our
own stdout or stderr is a terminal the child gets a pseudo-terminal for that stream: it keeps
its colours, progress bars and line buffering instead of turning block-buffered on a pipe.
The child stays in our process group, so ^C at the terminal reaches it directly; we survive
the ^C, wait for the child and report that the run was interrupted.

POSIX only (ptys, process groups, ``SIGHUP``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pty
import selectors
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from git_prov.errors import BadPath, CommandNotFound, UsageProblem

# The first bytes of a log say how the run started (arguments echoed, configuration
# printed); the last say how it ended (the traceback, the final metrics). Both are kept.
LOG_HEAD_BYTES = 64 * 1024
# After the command exits, a process it left in the background may still hold the output
# open; we read on for this long, then stop rather than wait for it.
DRAIN_GRACE_SECONDS = 2.0
_READ_SIZE = 64 * 1024
_DEFAULT_WINDOW_SIZE = struct.pack("HHHH", 24, 80, 0, 0)  # rows, columns, pixels unused
_FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_WATCHED_WITH_RESIZE = (*_FORWARDED_SIGNALS, signal.SIGWINCH)

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers


@dataclass(frozen=True)
class CapturedLog:
    """What one output stream of the command wrote, as kept.

    ``data`` holds the bytes exactly as written, except that when more than the limit was
    written the middle is replaced by one marker line ``\\n[git-prov: N bytes omitted]\\n``.
    """

    data: bytes
    total_bytes: int
    truncated: bool


@dataclass(frozen=True)
class ProcessResult:
    """How a command ended, when, and what it wrote (when logs were captured)."""

    exit_code: int | None
    signal: int | None
    started: datetime
    ended: datetime
    duration: float
    stdout: CapturedLog | None
    stderr: CapturedLog | None
    interrupted: bool
    # A process the command left running still held stdout or stderr open after the command
    # exited; we stopped reading after DRAIN_GRACE_SECONDS, so the logs may lack its output.
    output_abandoned: bool = False

    @property
    def shell_status(self) -> int:
        """The status a shell would report: the exit code, or 128 + N when killed by signal N."""
        if self.exit_code is not None:
            return self.exit_code
        assert self.signal is not None
        return 128 + self.signal


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    capture_logs: bool = True,
    log_limit: int = 1 << 20,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    use_pty: bool | None = None,
) -> ProcessResult:
    """Run ``argv`` (no shell) in ``cwd`` and wait for it, passing its I/O through.

    ``env=None`` inherits our environment; the program is looked up on the ``PATH`` of the
    environment it runs with. stdin is always inherited.

    With ``capture_logs`` everything the command writes is copied to ``stdout``/``stderr``
    (default: our own ``sys.stdout.buffer``/``sys.stderr.buffer``) as it arrives, and kept up
    to ``log_limit`` bytes per stream: the first 64 KiB and the last ``log_limit - 64 KiB``.
    ``use_pty=None`` gives the command a pseudo-terminal for each stream whose destination is
    a terminal and a pipe otherwise; ``True``/``False`` force one or the other. The pty does
    not translate ``\\n`` to ``\\r\\n`` (we switch that off), so logs hold the bytes as written
    in both modes. Without ``capture_logs`` the command writes straight to our fds 1 and 2 and
    ``stdout``, ``stderr``, ``use_pty`` are ignored.

    If a destination stops accepting output (a closed pipe), the copy to it stops; on a broken
    pipe we also stop reading that stream, so the command meets the broken pipe it would have
    met without us.

    While the command runs (in the main thread only — signal handlers cannot be installed
    elsewhere) SIGINT does not kill us: the terminal delivers it to the command too, and we
    wait for the command. SIGTERM and SIGHUP are forwarded to the command. Either way the
    result says ``interrupted``. Signals we found ignored stay ignored (and so are ignored by
    the command, as the shell would have it). All handlers are restored before returning.

    Raises :class:`CommandNotFound` if the command cannot be started (nothing ran),
    :class:`BadPath` if ``cwd`` is not a directory.
    """
    args = [os.fspath(arg) for arg in argv]
    if not args:
        raise UsageProblem("no command given", "put the command to run after `--`")
    if log_limit < 0:
        raise ValueError(f"log_limit must not be negative, got {log_limit}")
    if not cwd.is_dir():
        raise BadPath(f"cannot run in {cwd}: not a directory")

    # Output already buffered in our own streams must come out before the command's.
    for stream in (sys.stdout, sys.stderr, stdout, stderr):
        _flush_quietly(stream)

    streams: list[_Stream] = []
    pump: _Pump | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        if capture_logs:
            out_sink = stdout if stdout is not None else _buffer_of(sys.stdout)
            err_sink = stderr if stderr is not None else _buffer_of(sys.stderr)
            streams.append(_Stream.open("stdout", out_sink, use_pty, log_limit))
            streams.append(_Stream.open("stderr", err_sink, use_pty, log_limit))
        resizable = any(s.terminal_fd is not None for s in streams)
        guard = _SignalGuard(on_resize=(lambda: _copy_window_sizes(streams)) if resizable else None)
        with guard:
            started = _utc_now()
            clock = time.monotonic()
            proc = _start(
                args,
                cwd=cwd,
                env=env,
                stdout_fd=streams[0].child_fd if streams else None,
                stderr_fd=streams[1].child_fd if streams else None,
            )
            guard.attach(proc.pid)
            for stream in streams:
                stream.close_child_end()
            if streams:
                pump = _Pump(streams)
                pump.start()
            _wait_until_exited(proc)
            duration = time.monotonic() - clock
            ended = _utc_now()
            # A signal from here on only cuts short the wait for lingering output.
            interrupted = guard.interrupted
            # Stop forwarding before reaping: once reaped, the pid may belong to another process.
            guard.detach()
            returncode = proc.wait()
            output_abandoned = False
            if pump is not None:
                guard.on_late_signal = pump.stop
                output_abandoned = pump.finish(DRAIN_GRACE_SECONDS)
    finally:
        if proc is not None and proc.returncode is None:
            # Only reached when something went wrong on our side: leave no orphan behind.
            proc.kill()
            proc.wait()
        if pump is not None:
            pump.stop()
            pump.join()
            pump.close()
        for stream in streams:
            stream.close()

    return ProcessResult(
        exit_code=returncode if returncode >= 0 else None,
        signal=-returncode if returncode < 0 else None,
        started=started,
        ended=ended,
        duration=duration,
        stdout=streams[0].log.result() if streams else None,
        stderr=streams[1].log.result() if streams else None,
        interrupted=interrupted,
        output_abandoned=output_abandoned,
    )


def _start(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None,
    stdout_fd: int | None,
    stderr_fd: int | None,
) -> subprocess.Popen[bytes]:
    """Start the child, turning "cannot be executed" into :class:`CommandNotFound`."""
    program = args[0]
    where = "check the path" if os.sep in program else "check the spelling and that it is on PATH"
    try:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=stdout_fd, stderr=stderr_fd)
    except FileNotFoundError as exc:
        raise CommandNotFound(f"command not found: {program}", where) from exc
    except PermissionError as exc:
        if os.sep in program and Path(cwd, program).is_dir():
            raise CommandNotFound(f"cannot execute {program}: it is a directory", where) from exc
        raise CommandNotFound(
            f"cannot execute {program}: permission denied",
            f"make it executable (chmod +x) or run it through its interpreter; {where}",
        ) from exc
    except OSError as exc:
        if exc.errno != errno.ENOEXEC:
            raise
        raise CommandNotFound(
            f"cannot execute {program}: not a program the system can run",
            "give a script a #! line, or run it through its interpreter",
        ) from exc


def _wait_until_exited(proc: subprocess.Popen[bytes]) -> None:
    """Block until the child has exited, without reaping it (its pid stays ours)."""
    waitid = getattr(os, "waitid", None)
    nowait = getattr(os, "WNOWAIT", None)
    if waitid is None or nowait is None:
        # Without waitid a signal forwarded at the very end could hit a reused pid; the
        # window is a few instructions wide.
        proc.wait()
        return
    try:
        # Retried by Python after our signal handlers run (PEP 475).
        waitid(os.P_PID, proc.pid, os.WEXITED | nowait)
    except ChildProcessError:
        # Reaped behind our back (SIGCHLD ignored): Popen knows how to cope.
        proc.wait()


def _utc_now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _buffer_of(stream: object) -> BinaryIO | None:
    buffer: BinaryIO | None = getattr(stream, "buffer", None)
    return buffer


def _flush_quietly(stream: object) -> None:
    flush = getattr(stream, "flush", None)
    if flush is not None:
        with contextlib.suppress(OSError, ValueError):
            flush()


def _terminal_fd(sink: BinaryIO | None) -> int | None:
    """The fd behind ``sink`` if it is a terminal."""
    if sink is None:
        return None
    try:
        fd = sink.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if os.isatty(fd) else None


def _copy_window_sizes(streams: Sequence[_Stream]) -> None:
    for stream in streams:
        if stream.terminal_fd is not None:
            _copy_window_size(stream.terminal_fd, stream.read_fd)


def _copy_window_size(source_fd: int, pty_fd: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(source_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(pty_fd, termios.TIOCSWINSZ, size)


class _LogBuffer:
    """The first ``head_limit`` bytes and the last ``tail_limit`` bytes of a stream.

    Memory stays below ``head_limit + tail_limit`` plus one read, however much is fed.
    """

    def __init__(self, limit: int) -> None:
        self._head_limit = min(LOG_HEAD_BYTES, limit)
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data or self._tail_limit == 0:
            return
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size - len(self._tail[0]) >= self._tail_limit:
            self._tail_size -= len(self._tail.popleft())

    def result(self) -> CapturedLog:
        tail = b"".join(self._tail)
        if len(tail) > self._tail_limit:
            tail = tail[len(tail) - self._tail_limit :]
        omitted = self.total - len(self._head) - len(tail)
        if omitted == 0:
            return CapturedLog(bytes(self._head) + tail, self.total, truncated=False)
        marker = f"\n[git-prov: {omitted} bytes omitted]\n".encode()
        return CapturedLog(bytes(self._head) + marker + tail, self.total, truncated=True)


class _Stream:
    """One output stream of the child: the fd we read, where it goes, what we keep."""

    def __init__(
        self,
        name: str,
        read_fd: int,
        child_fd: int,
        sink: BinaryIO | None,
        terminal_fd: int | None,
        log_limit: int,
    ) -> None:
        self.name = name
        self.read_fd = read_fd
        self.child_fd: int | None = child_fd
        self.sink = sink
        # Set when the child writes to a pty copying the size of this terminal.
        self.terminal_fd = terminal_fd
        self.log = _LogBuffer(log_limit)
        # Set once we stopped reading for good: at end of file, or when the sink broke.
        self.finished = False
        self._closed = False

    @classmethod
    def open(
        cls, name: str, sink: BinaryIO | None, use_pty: bool | None, log_limit: int
    ) -> _Stream:
        terminal_fd = _terminal_fd(sink)
        if use_pty is True or (use_pty is None and terminal_fd is not None):
            try:
                master, slave = pty.openpty()
            except OSError:
                if use_pty:
                    raise
            else:
                try:
                    # A pty turns every \n into \r\n by default; the terminal we copy to
                    # already does that on its own, and the log should hold what was written.
                    attrs = termios.tcgetattr(slave)
                    attrs[1] &= ~termios.ONLCR
                    termios.tcsetattr(slave, termios.TCSANOW, attrs)
                    if terminal_fd is not None:
                        _copy_window_size(terminal_fd, master)
                    else:
                        # A 0x0 terminal confuses programs that lay out their output.
                        fcntl.ioctl(master, termios.TIOCSWINSZ, _DEFAULT_WINDOW_SIZE)
                except BaseException:
                    os.close(master)
                    os.close(slave)
                    raise
                return cls(name, master, slave, sink, terminal_fd, log_limit)
        read_fd, write_fd = os.pipe()
        return cls(name, read_fd, write_fd, sink, None, log_limit)

    def close_child_end(self) -> None:
        if self.child_fd is not None:
            os.close(self.child_fd)
            self.child_fd = None

    def close(self) -> None:
        self.close_child_end()
        # No more window-size updates to an fd number that may soon be reused.
        self.terminal_fd = None
        if not self._closed:
            self._closed = True
            os.close(self.read_fd)

    def echo(self, data: bytes) -> bool:
        """Copy ``data`` to the sink; False if the sink is a broken pipe."""
        if self.sink is None:
            return True
        try:
            self.sink.write(data)
            self.sink.flush()
        except BrokenPipeError:
            self.sink = None
            return False
        except (OSError, ValueError):
            # Closed or failing destination: keep capturing, stop copying.
            self.sink = None
        return True


class _Pump(threading.Thread):
    """Reads every stream until EOF, copying and keeping what arrives."""

    def __init__(self, streams: Sequence[_Stream]) -> None:
        super().__init__(name="git-prov-output", daemon=True)
        self._streams = streams
        self._stop_requested = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._pump()
        except BaseException as exc:
            self._error = exc

    def _pump(self) -> None:
        with selectors.DefaultSelector() as selector:
            for stream in self._streams:
                selector.register(stream.read_fd, selectors.EVENT_READ, stream)
            selector.register(self._wake_read, selectors.EVENT_READ, None)
            open_streams = len(self._streams)
            while open_streams and not self._stop_requested.is_set():
                for key, _ in selector.select():
                    stream = key.data
                    if stream is None:
                        os.read(self._wake_read, 64)
                        continue
                    try:
                        data = os.read(stream.read_fd, _READ_SIZE)
                    except OSError as exc:
                        # Linux reports the end of a pty whose other side is closed as EIO.
                        if exc.errno != errno.EIO:
                            raise
                        data = b""
                    if not data:
                        stream.finished = True
                        selector.unregister(stream.read_fd)
                        open_streams -= 1
                        continue
                    stream.log.feed(data)
                    if not stream.echo(data):
                        # Our destination is a broken pipe: close our end, so the command
                        # meets the broken pipe too rather than writing forever into nothing.
                        stream.finished = True
                        selector.unregister(stream.read_fd)
                        open_streams -= 1
                        stream.close()

    def stop(self) -> None:
        """Ask the pump to stop reading soon; safe from any thread and signal handlers."""
        if not self._stop_requested.is_set():
            self._stop_requested.set()
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"x")

    def finish(self, grace: float) -> bool:
        """Wait up to ``grace`` seconds for every stream to end; True if we gave up on one."""
        self.join(grace)
        self.stop()
        self.join()
        if self._error is not None:
            raise self._error
        return not all(stream.finished for stream in self._streams)

    def close(self) -> None:
        """Release the wake-up pipe; only once the thread has ended."""
        if self._wake_read >= 0:
            os.close(self._wake_read)
            os.close(self._wake_write)
            self._wake_read = self._wake_write = -1


class _SignalGuard:
    """Keeps SIGINT/SIGTERM/SIGHUP from killing us while the child runs, forwarding as needed.

    Installs nothing outside the main thread, where :func:`signal.signal` is not allowed.
    """

    def __init__(self, on_resize: Callable[[], None] | None) -> None:
        self._on_resize = on_resize
        self._previous: dict[int, _Handler] = {}
        self._pid: int | None = None
        self._received: list[int] = []
        self.on_late_signal: Callable[[], None] | None = None

    @property
    def interrupted(self) -> bool:
        return bool(self._received)

    def __enter__(self) -> _SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        watched = _FORWARDED_SIGNALS if self._on_resize is None else _WATCHED_WITH_RESIZE
        for signum in watched:
            previous = signal.getsignal(signum)
            # An ignored signal stays ignored, so the child inherits that (nohup, `cmd &`);
            # a handler installed outside Python (None) could not be put back.
            if previous is None or previous == signal.SIG_IGN:
                continue
            handler = self._resize if signum == signal.SIGWINCH else self._handle
            signal.signal(signum, handler)
            self._previous[signum] = previous
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.detach()
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def attach(self, pid: int) -> None:
        """Start forwarding to ``pid``; signals that came before it existed are sent now."""
        self._pid = pid
        for signum in self._received:
            self._forward(signum)

    def detach(self) -> None:
        self._pid = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._received.append(signum)
        if self._pid is not None:
            # A ^C at the terminal already reached the child, which shares our process group;
            # sending SIGINT again would interrupt its cleanup.
            if signum != signal.SIGINT:
                self._forward(signum)
        elif self.on_late_signal is not None:
            self.on_late_signal()

    def _resize(self, signum: int, frame: FrameType | None) -> None:
        if self._on_resize is not None:
            self._on_resize()
        # The child got SIGWINCH from the terminal, perhaps before its pty had the new size.
        if self._pid is not None:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signum)
