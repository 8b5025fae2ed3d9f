"""A hostile ledger on a terminal: every field of every kind of ledger entry carries every
terminal payload (screen clear, clipboard write, hyperlink, window title, C1 CSI, bare CR,
LF and U+2028 line forgers), and every command of the CLI — found by walking the click
group, so a new command is covered the day it is added — runs on a real pty. Nothing but
git-prov's own colours may reach the terminal, and no payload may start a line."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import commit_file, git
from factories import make_record

from git_prov.model.ids import new_run_id
from git_prov.model.manifest import DataEntry, DataManifest, EnvironmentManifest
from git_prov.model.record import Attachment, Tombstone
from git_prov.store.ledger import KIND_DATA, KIND_ENV, KIND_LOG, Ledger
from git_prov.store.repo import open_repo

# Every payload, each followed by a word that must never begin a line of output.
PAYLOAD = (
    "\x1b[2J"  # clear the screen
    "\x1b]52;c;cHduZWQ=\x07"  # OSC 52: write the clipboard
    "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"  # OSC 8 hyperlink
    "\x1b]0;owned title\x07"  # window title
    "\x1b[30;40m"  # black on black (not one of git-prov's colours)
    "\x9b31m"  # C1 CSI
    "\u202e"  # bidi override
    "\rFORGED"  # bare CR: overwrite the line
    "\nFORGED"  # LF: a forged line
    "\u2028FORGED"  # Unicode line separator
)
FORGED = "FORGED"
# What git-prov itself may send: its colours (click.style: fg, bold, dim, resets), the
# progress bar's carriage return and erase-line.
OWN_SGR = re.compile(r"\x1b\[(?:0|1|2|22|39|3[0-7]|9[0-7])m")
OWN_PROGRESS = re.compile(r"\r(?:\x1b\[K|(?=git-prov: ))")
CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udc9f]"
)


def _commands() -> Iterator[tuple[str, ...]]:
    """Every leaf command of the click group, as its path of names."""
    import click

    from git_prov.cli import cli

    def walk(group: click.Group, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            if isinstance(command, click.Group):
                yield from walk(command, (*path, name))
            else:
                yield (*path, name)

    yield from walk(cli, ())


# How each command runs against the hostile ledger. {A}, {B}: hostile runs; {T}: a removed
# run (its tombstone's reason is hostile); {D}: a scratch directory; {URL}: the remote.
ARGS: dict[tuple[str, ...], list[list[str]]] = {
    ("check",): [["check", "{A}"], ["check", "{T}"]],
    ("compare",): [["compare", "{A}", "{B}"], ["compare", "--csv", "{A}", "{B}"]],
    ("completion",): [["completion", "bash"]],
    ("demo",): [["demo", "--dir", "{D}/demo"]],
    ("diff",): [["diff", "{A}", "{B}"], ["diff", "{A}", "{T}"]],
    ("env", "show"): [["env", "show", "{A}"]],
    ("env", "tag"): [["env", "tag", "fine-name", "{A}"]],
    ("env", "tags"): [["env", "tags", "--all"]],
    ("export",): [
        ["export", "--all", "-f", "csv"],
        ["export", "--all", "-f", "prov-json"],
        ["export", "--all", "-f", "ro-crate", "-o", "{D}/crate"],
        ["export", "--all", "-f", "mlflow", "-o", "{D}/mlruns"],
    ],
    ("fetch",): [["fetch", "origin"]],
    ("find",): [
        ["find"],
        ["find", "--csv"],
        ["find", "--json"],
        ["find", "--format", "{command} {message} {tags} {host}"],
    ],
    ("fsck",): [["fsck"], ["fsck", "--data"]],
    ("gc",): [["gc", "--keep-last", "0", "--dry-run"]],
    ("get",): [["get", "{A}", "-o", "{D}/got"]],
    ("hook", "pre-push"): [["hook", "pre-push", "origin", "{URL}"]],
    ("hook", "post-rewrite"): [["hook", "post-rewrite", "amend"]],
    ("hooks", "install"): [["hooks", "install"]],
    ("hooks", "uninstall"): [["hooks", "uninstall"]],
    ("init",): [["init"]],
    ("lineage",): [
        ["lineage", "{A}"],
        ["lineage", "{B}"],
        ["lineage", "--dot", "{B}"],
        ["lineage", "--mermaid", "{B}"],
    ],
    ("log",): [["log"], ["log", "--oneline"], ["log", "--all-commits", "--all-runs"]],
    ("metrics",): [["metrics", "{A}"], ["metrics", "--table", "{A}"]],
    ("push",): [["push", "origin"]],
    ("record",): [["record", "--command", "true"]],
    ("remap",): [["remap", "--dry-run"]],
    ("report",): [["report", "-o", "{D}/report.html"]],
    ("reproduce",): [["reproduce", "--dry-run", "{A}"]],
    ("run",): [["run", "--no-log", "--", "true"]],
    ("runs",): [["runs"]],
    ("show",): [
        ["show", "{A}"],
        ["show", "--env", "--all-files", "{A}"],
        ["show", "HEAD"],
        ["show", "--log", "stdout", "{A}"],
        ["show", "--log", "stderr", "{A}"],
        ["show", "{T}"],
    ],
    ("sweep",): [["sweep", "--no-log", "-p", "n=1", "--", "true"]],
    ("sync",): [["sync", "origin"]],
    ("verify",): [["verify"], ["verify", "{A}"]],
}


def test_every_command_has_hostile_ledger_arguments() -> None:
    """A new command must say here how it runs against the hostile ledger."""
    missing = sorted(set(_commands()) - ARGS.keys())
    assert not missing, f"add arguments for {missing} to ARGS in {__file__}"


def _hostile_ledger(repo: Path, tmp: Path) -> dict[str, str]:
    """Write runs, manifests, logs, an attachment, a tombstone and an environment tag
    with PAYLOAD in every text field; return the placeholders of :data:`ARGS`."""
    p = PAYLOAD
    (repo / "data").mkdir()
    (repo / "data" / "in.csv").write_text("a,b\n1,2\n")
    commit_file(repo, "train.py", "print('hi')\n", f"train{p}\n\nbody{p}")
    ledger = Ledger(open_repo(repo))
    head = git(repo, "rev-parse", "HEAD")
    first = git(repo, "rev-parse", "HEAD~1")
    entry = DataEntry(path=f"data/{p}.csv", size=1, hash="sha256:" + "0" * 64, source=p, link=p)
    data = ledger.store_object(
        DataManifest.build([p, "data"], [entry], missing=[f"gone{p}"]).to_toml()
    )
    env = ledger.store_object(
        EnvironmentManifest(
            python={"executable": p, "version": p, "implementation": p},
            packages={f"pkg{p}": p},
            lockfiles={p: p},
            system={"os": p, "distro": p, "release": p, "machine": p},
            cpu={"model": p, "count": p},
            memory={"total": p},
            gpus=({"name": p, "driver": p},),
            accelerator={p: p},
            container={"kind": p},
            variables={f"VAR{p}": p},
        ).to_toml()
    )
    log = ledger.store_object(f"step 1{p}\n".encode() + b"raw \x9b byte\n")
    text = {
        "command": f"python train.py {p}",
        "argv": ("python", p),
        "cwd": p,
        "branch": p,
        "host": p,
        "user": p,
        "tags": (p, f"t2{p}"),
        "message": p,
        "params": {p: p, "lr": p},
        "metrics": {p: p, "acc": 0.5},
        "omitted": (p,),
        "tool": p,
        "extra": {p: p},
    }
    a = make_record(
        head, inputs=data, outputs=data, env=env, stdout=log, stderr=log, status=p, **text
    )
    b = make_record(head, inputs=data, outputs=data, env=env, reproduces=p, **text)
    removed = make_record(head, **text)
    ledger.write(
        [
            (head, a),
            (head, b),
            (head, removed),
            (first, Attachment(b.id, first, head, p, p)),
            (first, replace(a, message=f"another copy {p}", host=None)),  # a conflict
            (head, Tombstone(removed.id, p, p)),
            (head, Tombstone(new_run_id(), p, p)),
        ],
        objects={KIND_DATA: [data], KIND_ENV: [env], KIND_LOG: [log]},
        keep=[head],
    )
    from git_prov.query.envtags import TagEntry, entry_path
    from git_prov.store.objects_tree import add_entries

    tags = {}
    for name in ("good-tag", f"bad{p}".replace("/", "_")):
        tag = TagEntry(name, env, p, p).to_toml()
        tags[entry_path(name, ledger.store_object(tag))] = tag
    add_entries(ledger, tags, "hostile tags")
    remote = tmp / "remote.git"
    git(tmp, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return {"A": a.short_id, "B": b.short_id, "T": removed.id, "D": str(tmp), "URL": str(remote)}


def _fill(arg: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


# One pty session for many cases: a driver (stdin /dev/null; stdout and stderr the pty, as
# for `git prov` typed on a terminal) imports git-prov once, then forks a child per case
# that runs the executable's entry point (git_prov.entry.main, what `python -m git_prov`
# runs) on that case's arguments. The driver writes a marker line with the child's exit
# code after each, and the bytes between markers are that case's. Each case still runs
# alone, in a process of its own, from the same state; fifty cases cost one interpreter
# start and import instead of fifty.
_DRIVER = r"""
import atexit, json, os, pkgutil, sys, traceback
import git_prov, git_prov.entry
for module in pkgutil.walk_packages(git_prov.__path__, "git_prov."):
    if not module.name.endswith("__main__") and ".integrations." not in module.name:
        __import__(module.name)  # (not the integrations: optional third-party packages)
marker, cases = sys.argv[1], json.loads(sys.argv[2])
for args in cases:
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        sys.argv = [git_prov.entry.__file__, *args]
        try:
            git_prov.entry.main(args)
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    os.write(1, f"\n{marker} {code}\n".encode())
"""


def _on_pty_session(cwd: Path, cases: list[list[str]]) -> list[tuple[int, bytes]]:
    """Run ``git prov ARGS`` for each of ``cases`` on one pty (stdout and stderr), each in a
    process of its own (see :data:`_DRIVER`); each case's exit code and bytes."""
    marker = f"=== case done {os.urandom(8).hex()}"
    import json

    command = [sys.executable, "-c", _DRIVER, marker, json.dumps(cases)]
    code, raw = _read_pty(cwd, command)
    assert code == 0, f"the pty driver failed ({code}): {raw[-2000:]!r}"
    parts = re.split(rb"\r?\n" + re.escape(marker.encode()) + rb" (-?\d+)\r?\n", raw)
    assert len(parts) == 2 * len(cases) + 1 and parts[-1] == b"", raw[-2000:]
    return [(int(parts[i + 1]), parts[i]) for i in range(0, 2 * len(cases), 2)]


def _on_pty(cwd: Path, args: list[str]) -> tuple[int, bytes]:
    """Run ``git prov ARGS`` with stdout and stderr on one pty; its exit code and bytes."""
    return _read_pty(cwd, [sys.executable, "-m", "git_prov", *args])


def _read_pty(cwd: Path, command: list[str]) -> tuple[int, bytes]:
    """Run ``command`` with stdout and stderr on one pty until every writer closed it."""
    main, child = os.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
    env.pop("NO_COLOR", None)
    try:
        proc = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=env
        )
    finally:
        os.close(child)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 120)
            if not ready:
                proc.kill()
                raise AssertionError(f"{command[-1][:200]} hung: {bytes(out[-600:])!r}")
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: every writer closed the pty
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
    return proc.wait(), bytes(out)


def _offences(raw: bytes, *, lines_are_data: bool = False) -> list[str]:
    """What in ``raw`` is not git-prov's own: control characters, forged lines (unless the
    output's lines are the ledger's own, as a kept log's are)."""
    text = raw.decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    text = OWN_PROGRESS.sub("", OWN_SGR.sub("", text))
    found = [repr(m.group()) + " in " + repr(text[max(0, m.start() - 30) : m.end() + 30])
             for m in CONTROL.finditer(text)]  # fmt: skip
    if not lines_are_data:
        found += [f"forged line {line!r}" for line in text.split("\n") if line.startswith(FORGED)]
    return found


@pytest.mark.slow
def test_no_command_lets_a_hostile_ledger_drive_the_terminal(repo: Path, tmp_path: Path) -> None:
    values = _hostile_ledger(repo, tmp_path)
    templates = [template for name in sorted(_commands()) for template in ARGS[name]]
    cases = [["--no-pager", *(_fill(a, values) for a in t)] for t in templates]
    failures = []
    for template, (code, raw) in zip(templates, _on_pty_session(repo, cases), strict=True):
        if b"Traceback" in raw or b"internal error" in raw:
            failures.append(f"git prov {' '.join(template)} crashed ({code}): {raw[-600:]!r}")
        for offence in _offences(raw, lines_are_data="--log" in template):
            failures.append(f"git prov {' '.join(template)}: {offence}")
    assert not failures, "\n".join(failures)


def test_the_checker_sees_what_a_terminal_would_obey() -> None:
    assert _offences(b"\x1b[32mok\x1b[0m\r\n\x1b[1mbold\x1b[22m\n") == []
    assert _offences(b"\rgit-prov: hashing 10%\r\x1b[K") == []
    for bad in (b"\x1b[2J", b"\x1b]0;t\x07", b"\xc2\x9b", b"\x9b", b"a\rb", b"\x1b[8m"):
        assert _offences(bad), bad
    assert _offences(b"x\nFORGED y") and _offences("x\u2028y".encode())


# ---- one output path ------------------------------------------------------------------------

# Writes to our own stdout/stderr that do not go through git_prov.terminal, and why.
ALLOWED_WRITERS = {
    "git_prov/terminal.py": "the one output path itself",
    "git_prov/capture/process.py": "tees the live output of the user's own command (run)",
    "git_prov/capture/environment/python_probe.py": "a script the command's interpreter runs; "
    "its output is read by git-prov, not shown",
}


def _direct_writes(path: Path) -> list[str]:
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        call = ast.unparse(node.func)
        if (
            call in ("print", "click.echo", "click.secho", "echo_via_pager", "click.echo_via_pager")
            or re.fullmatch(r"sys\.(stdout|stderr)(\.buffer)?\.write(lines)?", call)
            or call.endswith("_buffer_of")
        ):
            found.append(f"{path}:{node.lineno}: {call}(…)")
    return found


def test_text_reaches_the_terminal_only_through_the_one_output_path() -> None:
    """No module prints by itself: a new command cannot forget to escape."""
    root = Path(__file__).resolve().parent.parent
    offenders = []
    for path in sorted((root / "git_prov").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if not (path.parent / "__init__.py").is_file():
            continue  # package data (the project templates' example scripts), not git-prov
        if name not in ALLOWED_WRITERS:
            offenders += _direct_writes(path)
    assert not offenders, "print through git_prov.terminal.echo:\n" + "\n".join(offenders)


def test_one_line_text_cannot_forge_lines_and_views_keep_theirs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from git_prov import terminal

    terminal.echo(f"warning: {PAYLOAD}")
    terminal.echo(terminal.view(["first", f"second {PAYLOAD}"]), nl=False)
    terminal.echo(f"a,b\n{PAYLOAD}\n", data=True, nl=False)  # data into a pipe: exact
    out = capsys.readouterr().out
    lines = out.split("\n")
    assert lines[0].startswith("warning: \\x1b[2J") and lines[0].endswith("\\u2028FORGED")
    assert lines[1] == "first" and lines[2].startswith("second \\x1b[2J")
    assert out.endswith(f"a,b\n{PAYLOAD}\n")
    # Our own codes are marked, not trusted by their bytes: a record's copy of one is text.
    assert terminal.for_terminal(terminal.style("ok", fg="green") + "\x1b[32m") == (
        "\x1b[32mok\x1b[0m\\x1b[32m"
    )


def test_the_terminal_and_printable_escape_with_one_table() -> None:
    """Every control character is shown the same way by the output path and by a record's
    ``printable`` (model/controls.py); only which ones a view keeps differs: a view keeps
    its newlines and tabs, one line of it its tabs, ``printable`` neither."""
    from git_prov import terminal
    from git_prov.model.record import printable

    controls = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0x202E)]
    for char in controls:
        escaped = printable(char)
        assert escaped.startswith("\\") and escaped.isprintable()
        kept_by_view = char in "\t\n"
        assert terminal.for_terminal(char) == (char if kept_by_view else escaped)
        assert terminal.one_line(char) == (char if char == "\t" else escaped)
    assert printable("\t\n\r") == "\\t\\n\\r"


def test_controls_answer_as_their_pattern_without_compiling_it_for_printable_text() -> None:
    """model/controls.Controls skips its pattern for text ``str.isprintable`` passes (once
    the kept characters are set aside): over every code point of the Basic Multilingual
    Plane and beyond, alone and beside kept and printable text, its answer is the
    pattern's; and a printable line never compiles it."""
    from git_prov.model.controls import Controls, control_pattern, shown

    points = [*range(0x3000), *range(0xD800, 0xE000, 7), 0xFEFF, 0xFFFD, 0x1F600, 0xE0001]
    for keep in ("", "\t", "\t\n"):
        controls, pattern = Controls(keep), control_pattern(keep)
        for code in points:
            for text in (chr(code), f"a\t{chr(code)}\nb", f"{keep}é{chr(code)}"):
                assert (controls.search(text) is None) == (pattern.search(text) is None), (
                    keep,
                    hex(code),
                )
                assert controls.sub(shown, text) == pattern.sub(shown, text)
                assert type(controls.sub(" ", text)) is str
    fresh = Controls("\t")
    assert fresh.sub(" ", "git-prov: recorded run 1a2b3c4d — ok, 0ms, on e056871") is not None
    assert fresh.search("ünïcode\tand tabs") is None
    assert fresh._pattern is None  # (nothing needed it)


def test_kept_logs_are_escaped_on_a_terminal_and_exact_elsewhere(
    repo: Path, tmp_path: Path
) -> None:
    from conftest import prov

    values = _hostile_ledger(repo, tmp_path)
    piped = subprocess.run(
        [sys.executable, "-m", "git_prov", "show", "--log", "stdout", values["A"]],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    assert piped == f"step 1{PAYLOAD}\n".encode() + b"raw \x9b byte\n"  # byte for byte
    code, shown = _on_pty(repo, ["show", "--log", "stdout", values["A"]])
    assert code == 0 and _offences(shown, lines_are_data=True) == []
    assert b"step 1\\x1b[2J" in shown and b"raw \\x9b byte" in shown
    code, raw = _on_pty(repo, ["show", "--log", "stdout", "--raw", values["A"]])
    assert code == 0 and b"\x1b]52;c;" in raw and b"warning: --raw sends" in raw
    proc = prov(repo, "show", "--raw", values["A"], check=False)
    assert proc.returncode == 2 and "--raw goes with --log" in proc.stderr


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(repo: Path) -> None:
    # (Written through the ledger in one step, as `git prov record --command TEXT -m TEXT
    # -p p=TEXT` writes them: the cells are what is under test, not how runs are recorded.)
    head = git(repo, "rev-parse", "HEAD")
    texts = ('=HYPERLINK("http://evil")', "+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx")
    records = [
        make_record(head, command=text, argv=(text,), message=text, params={"p": text})
        for text in texts
    ]
    records.append(make_record(head, command="fine", params={"n": -0.5}, message="-0.5"))
    Ledger(open_repo(repo)).write([(head, r) for r in records], keep=[head])
    import csv
    import io

    for args in (("find", "--csv"), ("export", "--all", "-f", "csv")):
        out = subprocess.run(
            [sys.executable, "-m", "git_prov", *args], cwd=repo, capture_output=True, check=True
        ).stdout.decode()
        rows = list(csv.DictReader(io.StringIO(out, newline="")))
        fine = next(row for row in rows if row["command"] == "fine")
        assert fine["params.n"] == "-0.5" and fine["message"] == "-0.5"  # numbers stay
        cells = [
            row[c] for row in rows if row is not fine for c in ("command", "message", "params.p")
        ]
        assert len(cells) == 18, (args, cells)
        assert all(cell.startswith("'") for cell in cells), (args, cells)
