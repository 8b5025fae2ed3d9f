"""Running the user's command: exit status, tee and capped logs, ptys, signals, errors.

Every test runs real processes. Scenarios that need our process to own stdin, a terminal or
a process group of its own run in a small harness script (a separate Python process), so
pytest itself is never signalled and its own streams are never inherited.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import tracemalloc
from datetime import UTC
from pathlib import Path

import pytest
from conftest import signals_as_from_a_terminal

from git_prov.capture.process import (
    DRAIN_GRACE_SECONDS,
    LOG_HEAD_BYTES,
    ProcessResult,
    run_command,
)
from git_prov.errors import EXIT_COMMAND_NOT_FOUND, CommandNotFound

PY = sys.executable

# Runs one command through run_command and reports the result as the last line of stdout.
# argv[1]: the command as JSON; argv[2]: "1" to capture logs, "0" not to.
HARNESS = """
import json, os, signal, sys
from pathlib import Path
from git_prov.capture.process import run_command

before = signal.getsignal(signal.SIGINT)
result = run_command(json.loads(sys.argv[1]), cwd=Path.cwd(), capture_logs=sys.argv[2] == "1")
report = {
    "exit_code": result.exit_code,
    "signal": result.signal,
    "shell_status": result.shell_status,
    "interrupted": result.interrupted,
    "output_abandoned": result.output_abandoned,
    "stdout": None if result.stdout is None else result.stdout.data.decode(),
    "stderr": None if result.stderr is None else result.stderr.data.decode(),
    "handler_restored": signal.getsignal(signal.SIGINT) is before,
    "stdout_inode": os.fstat(1).st_ino,
}
print("RESULT " + json.dumps(report), flush=True)
"""


def harness_argv(command: list[str], *, capture_logs: bool = True) -> list[str]:
    return [PY, "-c", HARNESS, json.dumps(command), "1" if capture_logs else "0"]


def harness_report(output: bytes) -> dict[str, object]:
    last = output.decode().replace("\r\n", "\n").rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("RESULT "), output
    report: dict[str, object] = json.loads(last.removeprefix("RESULT "))
    return report


def python(code: str) -> list[str]:
    return [PY, "-c", code]


def run_quietly(argv: list[str], cwd: Path, **options: object) -> ProcessResult:
    """run_command with the tee going to throwaway buffers instead of pytest's streams."""
    options.setdefault("stdout", io.BytesIO())
    options.setdefault("stderr", io.BytesIO())
    return run_command(argv, cwd=cwd, **options)  # type: ignore[arg-type]


class CountingSink(io.BytesIO):
    """A destination that counts bytes and keeps none."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


class TimedSink(io.BytesIO):
    """A destination that notes when each chunk arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, bytes]] = []

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.arrivals.append((time.monotonic(), bytes(data)))
        return super().write(data)


# --- exit status ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_code_is_passed_through(tmp_path: Path, code: int) -> None:
    result = run_quietly(python(f"import sys; sys.exit({code})"), tmp_path)
    assert result.exit_code == code
    assert result.signal is None
    assert result.shell_status == code
    assert not result.interrupted
    assert not result.output_abandoned


def test_killed_by_signal_reports_the_signal(tmp_path: Path) -> None:
    result = run_quietly(
        python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), tmp_path
    )
    assert result.exit_code is None
    assert result.signal == signal.SIGKILL
    assert result.shell_status == 137
    assert not result.interrupted


def test_times_are_utc_milliseconds_and_duration_is_measured(tmp_path: Path) -> None:
    result = run_quietly(python("import time; time.sleep(0.3)"), tmp_path)
    assert result.started.tzinfo is UTC and result.ended.tzinfo is UTC
    assert result.started.microsecond % 1000 == 0 and result.ended.microsecond % 1000 == 0
    assert 0.3 <= result.duration < 5
    assert 0.25 <= (result.ended - result.started).total_seconds() < 5


# --- tee and logs --------------------------------------------------------------------------


def test_output_is_teed_and_streams_stay_separate(tmp_path: Path) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    code = "import sys; print('to out'); print('to err', file=sys.stderr); print('more out')"
    result = run_command(python(code), cwd=tmp_path, stdout=out, stderr=err)
    assert out.getvalue() == b"to out\nmore out\n"
    assert err.getvalue() == b"to err\n"
    assert result.stdout is not None and result.stderr is not None
    assert result.stdout.data == b"to out\nmore out\n"
    assert result.stdout.total_bytes == len(b"to out\nmore out\n")
    assert not result.stdout.truncated
    assert result.stderr.data == b"to err\n"


@pytest.mark.parametrize("use_pty", [False, True], ids=["pipe", "pty"])
def test_binary_output_is_kept_byte_exact(tmp_path: Path, use_pty: bool) -> None:
    # Every byte value, \n and \r included, and sequences that are not UTF-8. In pty mode
    # this also checks that the pty does not turn \n into \r\n.
    payload = bytes(range(256)) * 64 + b"\xff\xfe\x00not utf-8\xc3\x28\n"
    code = (
        "import sys; data = bytes(range(256)) * 64 + b'\\xff\\xfe\\x00not utf-8\\xc3\\x28\\n'; "
        "sys.stdout.buffer.write(data); sys.stderr.buffer.write(data[::-1])"
    )
    out, err = io.BytesIO(), io.BytesIO()
    result = run_command(python(code), cwd=tmp_path, stdout=out, stderr=err, use_pty=use_pty)
    assert out.getvalue() == payload
    assert err.getvalue() == payload[::-1]
    assert result.stdout is not None and result.stderr is not None
    assert result.stdout.data == payload
    assert result.stderr.data == payload[::-1]


def test_default_destinations_are_our_own_streams(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    result = run_command(
        python("import sys; print('hello'); print('oops', file=sys.stderr)"), cwd=tmp_path
    )
    captured = capsysbinary.readouterr()
    assert captured.out == b"hello\n"
    assert captured.err == b"oops\n"
    assert result.stdout is not None and result.stdout.data == b"hello\n"


def test_large_output_keeps_head_and_tail_with_exact_total(tmp_path: Path) -> None:
    limit = 256 * 1024
    lines = 500_000  # 10 bytes each: 5 MB
    code = f"import sys; sys.stdout.buffer.write(b''.join(b'%09d\\n' % i for i in range({lines})))"
    out = io.BytesIO()
    result = run_command(
        python(code), cwd=tmp_path, log_limit=limit, stdout=out, stderr=io.BytesIO()
    )
    full = b"".join(b"%09d\n" % i for i in range(lines))
    assert out.getvalue() == full  # the tee is never capped
    log = result.stdout
    assert log is not None
    assert log.truncated
    assert log.total_bytes == len(full) == 5_000_000
    marker = f"\n[git-prov: {len(full) - limit} bytes omitted]\n".encode()
    assert log.data == full[:LOG_HEAD_BYTES] + marker + full[-(limit - LOG_HEAD_BYTES) :]
    assert len(log.data) <= limit + len(marker)


@pytest.mark.parametrize(("extra", "omitted"), [(0, 0), (1, 1)])
def test_output_of_exactly_the_limit_is_not_truncated(
    tmp_path: Path, extra: int, omitted: int
) -> None:
    limit = LOG_HEAD_BYTES + 1000
    size = limit + extra
    code = f"import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range({size})))"
    result = run_quietly(python(code), tmp_path, log_limit=limit)
    full = bytes(i % 251 for i in range(size))
    assert result.stdout is not None
    assert result.stdout.total_bytes == size
    assert result.stdout.truncated == bool(omitted)
    if omitted:
        marker = f"\n[git-prov: {omitted} bytes omitted]\n".encode()
        expected = full[:LOG_HEAD_BYTES] + marker + full[LOG_HEAD_BYTES + omitted :]
        assert result.stdout.data == expected
    else:
        assert result.stdout.data == full


def test_limit_below_the_head_size_keeps_only_the_start(tmp_path: Path) -> None:
    result = run_quietly(python("print('x' * 999)"), tmp_path, log_limit=10)
    assert result.stdout is not None
    assert result.stdout.data == b"x" * 10 + b"\n[git-prov: 990 bytes omitted]\n"
    assert result.stdout.total_bytes == 1000


def test_memory_stays_bounded_for_huge_output(tmp_path: Path) -> None:
    size = 40_000_000
    code = f"import sys; sys.stdout.buffer.write(b'y' * {size})"
    sink = CountingSink()
    tracemalloc.start()
    try:
        result = run_command(
            python(code), cwd=tmp_path, log_limit=256 * 1024, stdout=sink, stderr=io.BytesIO()
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.count == size
    assert result.stdout is not None and result.stdout.total_bytes == size
    assert peak < 4_000_000


class BrokenPipeSink(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise BrokenPipeError


def test_broken_destination_pipe_reaches_the_command(tmp_path: Path) -> None:
    # As with `git prov run -- yes | head -1`: once the reader is gone, the command gets
    # SIGPIPE, as it would have without us in between, instead of writing on forever.
    size = 200_000_000
    result = run_quietly(["head", "-c", str(size), "/dev/zero"], tmp_path, stdout=BrokenPipeSink())
    assert result.signal == signal.SIGPIPE
    assert result.stdout is not None and 0 < result.stdout.total_bytes < size
    assert not result.output_abandoned


# --- terminals -----------------------------------------------------------------------------

ISATTY = "import sys; print(sys.stdout.isatty(), sys.stderr.isatty())"


def test_pty_mode_gives_the_command_a_terminal(tmp_path: Path) -> None:
    result = run_quietly(python(ISATTY), tmp_path, use_pty=True)
    assert result.stdout is not None and result.stdout.data == b"True True\n"


def test_pty_without_a_terminal_to_copy_has_a_usable_size(tmp_path: Path) -> None:
    result = run_quietly(
        python("import os; print(*os.get_terminal_size())"), tmp_path, use_pty=True
    )
    assert result.stdout is not None and result.stdout.data == b"80 24\n"


def test_pipe_mode_gives_the_command_a_pipe(tmp_path: Path) -> None:
    result = run_quietly(python(ISATTY), tmp_path, use_pty=False)
    assert result.stdout is not None and result.stdout.data == b"False False\n"


def test_automatic_mode_without_a_terminal_uses_pipes(tmp_path: Path) -> None:
    result = run_quietly(python(ISATTY), tmp_path)
    assert result.stdout is not None and result.stdout.data == b"False False\n"


def test_pty_mode_delivers_lines_as_they_are_printed(tmp_path: Path) -> None:
    # On a pipe Python block-buffers and both lines would arrive together at exit.
    sink = TimedSink()
    code = "import time; print('first'); time.sleep(0.6); print('second')"
    run_command(python(code), cwd=tmp_path, stdout=sink, stderr=io.BytesIO(), use_pty=True)
    first = next(t for t, data in sink.arrivals if b"first" in data)
    second = next(t for t, data in sink.arrivals if b"second" in data)
    assert second - first >= 0.4
    assert sink.getvalue() == b"first\nsecond\n"


def test_terminal_destination_gets_a_pty_of_the_same_size(tmp_path: Path) -> None:
    # The harness's stdout is a terminal (a pty we own), its stderr is not.
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 97, 0, 0))
    code = "import os, sys; print(sys.stdout.isatty(), sys.stderr.isatty(), os.get_terminal_size())"
    proc = subprocess.Popen(
        harness_argv(python(code)),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the harness has exited
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(timeout=10) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = harness_report(bytes(output))
    assert report["stdout"] == "True False os.terminal_size(columns=97, lines=33)\n"


# --- processes that linger -----------------------------------------------------------------


def test_background_process_holding_the_output_does_not_hang_us(tmp_path: Path) -> None:
    clock = time.monotonic()
    result = run_quietly(["sh", "-c", "sleep 30 & echo $!"], tmp_path)
    elapsed = time.monotonic() - clock
    assert result.stdout is not None
    os.kill(int(result.stdout.data), signal.SIGKILL)
    assert result.exit_code == 0
    assert result.output_abandoned
    assert DRAIN_GRACE_SECONDS - 0.5 <= elapsed < DRAIN_GRACE_SECONDS + 2


# --- what is inherited ---------------------------------------------------------------------


def test_stdin_passes_through(tmp_path: Path) -> None:
    command = python("import sys; sys.stdout.write(sys.stdin.read().upper())")
    proc = subprocess.run(
        harness_argv(command),
        cwd=tmp_path,
        input=b"hello stdin\n",
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert proc.stdout.startswith(b"HELLO STDIN\n")
    assert harness_report(proc.stdout)["stdout"] == "HELLO STDIN\n"


def test_without_capture_the_command_writes_to_our_fds(tmp_path: Path) -> None:
    code = "import os, sys; print(os.fstat(1).st_ino); print('to err', file=sys.stderr)"
    proc = subprocess.run(
        harness_argv(python(code), capture_logs=False),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=True,
    )
    report = harness_report(proc.stdout)
    assert report["stdout"] is None and report["stderr"] is None
    child_inode = int(proc.stdout.split(b"\n", 1)[0])
    assert child_inode == report["stdout_inode"]  # the very same pipe, not a copy of ours
    assert proc.stderr == b"to err\n"


def test_cwd_is_honoured(tmp_path: Path) -> None:
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    result = run_quietly(python("import os; print(os.getcwd())"), workdir)
    assert result.stdout is not None
    assert Path(result.stdout.data.decode().strip()).resolve() == workdir.resolve()


def test_env_is_honoured_and_replaces_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_PROV_ONLY_IN_PARENT", "1")
    code = "import os; print(os.environ.get('PROBE'), os.environ.get('GIT_PROV_ONLY_IN_PARENT'))"
    env = {"PATH": os.environ["PATH"], "PROBE": "from env"}
    result = run_quietly(python(code), tmp_path, env=env)
    assert result.stdout is not None and result.stdout.data == b"from env None\n"


def test_env_none_inherits_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_PROV_PROBE", "inherited")
    result = run_quietly(python("import os; print(os.environ['GIT_PROV_PROBE'])"), tmp_path)
    assert result.stdout is not None and result.stdout.data == b"inherited\n"


# --- commands that cannot start ------------------------------------------------------------


@pytest.mark.parametrize("name", ["git-prov-no-such-command", "./no-such-script"])
def test_missing_command_raises_command_not_found(tmp_path: Path, name: str) -> None:
    with pytest.raises(CommandNotFound, match=f"command not found: {name}") as info:
        run_quietly([name], tmp_path)
    assert info.value.exit_code == EXIT_COMMAND_NOT_FOUND
    assert info.value.hint


def test_non_executable_file_raises_command_not_found(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\ntouch ran\n")
    script.chmod(0o644)
    with pytest.raises(CommandNotFound, match="permission denied") as info:
        run_quietly(["./script.sh"], tmp_path)
    assert info.value.exit_code == EXIT_COMMAND_NOT_FOUND
    assert not (tmp_path / "ran").exists()


def test_directory_raises_command_not_found(tmp_path: Path) -> None:
    (tmp_path / "subdir").mkdir()
    with pytest.raises(CommandNotFound, match="directory"):
        run_quietly(["./subdir"], tmp_path)


def test_failure_to_start_restores_signal_handlers(tmp_path: Path) -> None:
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]
    with pytest.raises(CommandNotFound):
        run_quietly(["git-prov-no-such-command"], tmp_path)
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == before


# --- signals -------------------------------------------------------------------------------


def start_harness(tmp_path: Path, command: list[str]) -> subprocess.Popen[bytes]:
    """Start the harness in its own session and wait until the command says it is running."""
    proc = subprocess.Popen(
        harness_argv(command),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # As from a terminal, whatever ours are (under nohup SIGHUP is ignored, and an
        # ignored signal is rightly left ignored for the command: nothing to forward).
        preexec_fn=signals_as_from_a_terminal,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    assert ready, "the command did not start"
    assert proc.stdout.readline() == b"running\n"
    return proc


def finish_harness(proc: subprocess.Popen[bytes]) -> tuple[int, dict[str, object]]:
    with proc:  # (closes its pipes however this ends)
        try:
            out, _ = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return proc.returncode, harness_report(b"running\n" + out)


SLEEPER = "import time; print('running', flush=True); time.sleep(30)"
CLEANER = (
    "import sys, time\n"
    "try:\n"
    "    # Inside the try: the test sends ^C only after seeing this line, so the\n"
    "    # KeyboardInterrupt can never land before the handler is in place.\n"
    "    print('running', flush=True)\n"
    "    time.sleep(30)\n"
    "except KeyboardInterrupt:\n"
    "    time.sleep(0.2)  # a second SIGINT from us would land here\n"
    "    print('cleaned up')\n"
    "    sys.exit(5)\n"
)


def test_ctrl_c_interrupts_the_command_and_we_report_it(tmp_path: Path) -> None:
    # ^C at a terminal goes to the whole foreground process group: harness and command.
    proc = start_harness(tmp_path, python(CLEANER))
    os.killpg(proc.pid, signal.SIGINT)
    status, report = finish_harness(proc)
    assert status == 0  # the harness survived to print its report
    assert report["interrupted"] is True
    assert report["exit_code"] == 5 and report["signal"] is None
    assert report["stdout"] == "running\ncleaned up\n"
    assert report["handler_restored"] is True


def test_ctrl_c_that_kills_the_command_gives_status_130(tmp_path: Path) -> None:
    proc = start_harness(tmp_path, python(SLEEPER))
    os.killpg(proc.pid, signal.SIGINT)
    status, report = finish_harness(proc)
    assert status == 0
    assert report["interrupted"] is True
    assert report["exit_code"] is None and report["signal"] == signal.SIGINT
    assert report["shell_status"] == 130


def test_sigint_to_us_alone_is_left_to_the_terminal(tmp_path: Path) -> None:
    # Like a shell, we do not pass SIGINT on: from a terminal the command got it already, and
    # a second one would interrupt its cleanup. So the command carries on to its end.
    proc = start_harness(
        tmp_path, python("import time; print('running', flush=True); time.sleep(1)")
    )
    os.kill(proc.pid, signal.SIGINT)
    status, report = finish_harness(proc)
    assert status == 0
    assert report["interrupted"] is True
    assert report["exit_code"] == 0


def test_ctrl_c_after_the_command_ended_stops_waiting_for_lingering_output(
    tmp_path: Path,
) -> None:
    clock = time.monotonic()
    proc = start_harness(tmp_path, ["sh", "-c", "sleep 5 & echo running"])
    try:
        time.sleep(0.3)  # the command has ended; the harness waits on the background sleep
        os.killpg(proc.pid, signal.SIGINT)
        status, report = finish_harness(proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the sleep, still in the harness's group
    assert time.monotonic() - clock < DRAIN_GRACE_SECONDS
    assert status == 0
    assert report["exit_code"] == 0
    assert report["output_abandoned"] is True
    assert report["interrupted"] is False  # the command itself was not interrupted


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signals_are_forwarded_to_the_command(tmp_path: Path, signum: int) -> None:
    proc = start_harness(tmp_path, python(SLEEPER))
    os.kill(proc.pid, signum)  # to us only: the command learns of it from us
    status, report = finish_harness(proc)
    assert status == 0
    assert report["interrupted"] is True
    assert report["signal"] == signum
    assert report["shell_status"] == 128 + signum


def test_handlers_are_restored_and_not_inherited(tmp_path: Path) -> None:
    def custom(signum: int, frame: object) -> None:
        pass

    previous_term = signal.signal(signal.SIGTERM, custom)
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        code = (
            "import signal as s; "
            "print(s.getsignal(s.SIGTERM) == s.SIG_DFL, s.getsignal(s.SIGHUP) == s.SIG_IGN)"
        )
        result = run_quietly(python(code), tmp_path)
        assert signal.getsignal(signal.SIGTERM) is custom
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGHUP, previous_hup)
    # Our handlers do not survive exec; an ignored signal stays ignored, as under nohup.
    assert result.stdout is not None
    assert result.stdout.data == b"True True\n"


def test_works_from_a_thread_without_touching_signals(tmp_path: Path) -> None:
    results: list[ProcessResult] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(run_quietly(python("print('from a thread')"), tmp_path))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not errors
    assert results[0].exit_code == 0
    assert results[0].stdout is not None and results[0].stdout.data == b"from a thread\n"
