"""Everything git-prov does through the ``git`` binary, without pygit2.

The fast paths (``sync``, a query that finds its index fresh) never load pygit2, and the
pygit2 layer (:mod:`git_prov.store.repo`) needs git's own semantics for status, rev-list
and transport: both run git through this package.

* this module — running git (:func:`git_env`: never following replace refs;
  :func:`run_git`, or :func:`start_git` + :func:`finish_git` for several processes side
  by side); reading many objects through one
  ``git cat-file --batch`` (:func:`read_blobs`, :func:`stream_blobs`: one parser), and
  their headers through one ``--batch-check`` (:func:`object_headers`); the
  local cache directory; the one check for a reftable repository (:func:`refuse_reftable`);
* :mod:`~git_prov.store.gitcli.paths` — where a repository is (:class:`RepoPaths`) and
  reading a ref from its files;
* :mod:`~git_prov.store.gitcli.notes` — a notes tree listed and diffed through git.

Start-up matters: this module imports nothing beyond ``os`` and ``subprocess`` (not
pathlib, not dataclasses), since ``git prov sync`` loads it before anything else.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING

from git_prov.errors import RepositoryProblem, UsageProblem

if TYPE_CHECKING:  # (pathlib is not imported on sync's path: see git_prov.sync.SyncRepo)
    from pathlib import Path

PROV_DIR = "prov"  # under the git common dir
NO_GIT = "the git command is not installed or not on PATH"
# Set for every git git-prov runs (git_env; git's --no-replace-objects, inherited by what
# git starts in turn): git reads the objects the ledger's ids name, as pygit2 (libgit2,
# which knows no replace refs) does — never a local refs/replace/* substitute for a note,
# manifest, tree or commit (docs/security.md, "Replace refs").
NO_REPLACE = "GIT_NO_REPLACE_OBJECTS"


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every git git-prov runs: this process's, ``extra`` added, and
    :data:`NO_REPLACE` set (whatever ``extra`` says)."""
    return {**os.environ, **extra, NO_REPLACE: "1"} if extra else {**os.environ, NO_REPLACE: "1"}


def run_git(
    cwd: str | os.PathLike[str],
    args: Sequence[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git args…`` in ``cwd``; on failure (when ``check``) raise RepositoryProblem.

    ``env`` adds to the current environment. Without ``input``, git's stdin is /dev/null:
    git never needs it here, and a hook's own stdin must not be consumed by a nested git.
    """
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            env=git_env(env),
            check=False,
        )
    except FileNotFoundError:
        raise RepositoryProblem(NO_GIT) from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {proc.returncode}"
        from git_prov.errors import storage_problem

        problem = RepositoryProblem(f"git {args[0]} failed: {detail}")
        raise storage_problem(RepositoryProblem(" ".join(message))) or problem
    return proc


def bad_revision(
    cwd: str | os.PathLike[str], revisions: Sequence[str], stderr: bytes
) -> UsageProblem:
    """The one-line error for revisions git refused (``rev-list``/``log`` failed with
    ``stderr``): which revision, in our words, not git's ``fatal: bad revision …`` quoted
    inside ours. A range whose start is before the first commit (``A~1..A`` on a root
    commit) says so and how to name that history instead."""
    said = stderr.decode(errors="replace").strip().splitlines()
    detail = said[-1] if said else ""
    bad = next((r for r in revisions if f"'{r}'" in detail), None)
    if bad is None:
        for prefix in ("fatal: ", "error: "):
            detail = detail.removeprefix(prefix)
        shown = " ".join(revisions) or "HEAD"
        return UsageProblem(f"bad revision {shown}: {detail}", "see `git help revisions`")
    start, dots, end = bad.partition("...") if "..." in bad else bad.partition("..")
    if dots:
        missing = [r for r in (start, end) if r and not _names_commit(cwd, r)]
        if missing == [start] and _ancestor_of(start, end or "HEAD"):
            return UsageProblem(
                f"bad revision {bad!r}: {start} is before the first commit",
                f"name {end or 'HEAD'} alone for it and everything before it",
            )
        if missing:
            return UsageProblem(
                f"bad revision {bad!r}: {' and '.join(missing)} "
                + ("name no commit" if len(missing) > 1 else "names no commit"),
                "see `git help revisions`",
            )
    return UsageProblem(f"bad revision {bad!r}: it names no commit", "see `git help revisions`")


def _names_commit(cwd: str | os.PathLike[str], revision: str) -> bool:
    args = ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"]
    return run_git(cwd, args, check=False).returncode == 0


def _ancestor_of(start: str, end: str) -> bool:
    """Whether ``start`` is written as an ancestor of ``end``: ``end~2``, ``end^``."""
    rest = start.removeprefix(end)
    return rest != start and bool(rest) and rest.strip("~^0123456789") == "" and rest[0] in "~^"


def start_git(
    cwd: str | os.PathLike[str],
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``git args…`` in ``cwd`` (stdin a pipe when ``input``, else /dev/null);
    :func:`finish_git` waits for it. Several started at once run side by side."""
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.PIPE if input else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_env(env),
        )
    except FileNotFoundError:
        raise RepositoryProblem(NO_GIT) from None


def finish_git(
    proc: subprocess.Popen[bytes], input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Wait for a git started by :func:`start_git` (feeding it ``input``); its result."""
    out, err = proc.communicate(input)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def prov_dir(common_dir: Path) -> Path:
    """Local, rebuildable caches and locks: ``<git common dir>/prov`` (created if needed)."""
    path = common_dir / PROV_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- the ref storage format --------------------------------------------------------------

REFTABLE_PROBLEM = (
    "this repository stores its refs as reftable, which libgit2 1.9 (used by "
    "git-prov through pygit2) cannot read",
    "use a repository with the files ref backend (git refs migrate --ref-format=files)",
)


def refuse_reftable(common_dir: str | os.PathLike[str]) -> None:
    """Raise RepositoryProblem when the repository at ``common_dir`` keeps its refs in a
    reftable (:func:`ref_storage`): libgit2 1.9 cannot read one, and git-prov must not
    half-work on it. Every way of opening a repository calls this."""
    if ref_storage(common_dir) == "reftable":
        raise RepositoryProblem(*REFTABLE_PROBLEM)


def ref_storage(common_dir: str | os.PathLike[str]) -> str:
    """The repository's ref storage format: ``extensions.refStorage`` of the config file in
    its common dir, or ``files`` when unset or unreadable.

    Read as git reads its repository format: that one file only (no includes, no global
    or system config), section and key names in any case, the last value winning, the
    value itself compared exactly (git knows ``files`` and ``reftable``). The repository
    format version is not consulted: git ≥ 2.45 refuses a version-0 repository that names
    a ref storage at all, so such a repository is refused here too.
    """
    try:
        with open(os.path.join(common_dir, "config"), "rb") as file:
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return "files"
    if "refstorage" not in text.lower():  # (the common case: no parsing)
        return "files"
    found = "files"
    for section, key, value in config_entries(text):
        if section == "extensions" and key == "refstorage" and value is not None:
            found = value
    return found


def config_entries(text: str) -> Iterator[tuple[str, str, str | None]]:
    """(section, key, value) of each variable in a git config file's text, in order.

    ``section`` is lower-cased, with a subsection after a dot (``remote.origin``, its case
    kept); ``key`` is lower-cased; ``value`` is None for a bare ``key`` line (git's
    boolean true). Values are unquoted and unescaped, comments and line continuations
    handled, as git's own parser does. A line git would reject is skipped.
    """
    section = ""
    pos, end = 0, len(text)
    while pos < end:
        char = text[pos]
        if char in " \t\r\n":
            pos += 1
        elif char in "#;":
            pos = _line_end(text, pos)
        elif char == "[":
            close = text.find("]", pos)
            if close < 0:
                return
            section = _section_name(text[pos + 1 : close])
            pos = close + 1
        else:
            name_end = pos
            while name_end < end and (text[name_end].isalnum() or text[name_end] == "-"):
                name_end += 1
            key = text[pos:name_end].lower()
            pos = name_end
            while pos < end and text[pos] in " \t":
                pos += 1
            if not key or (pos < end and text[pos] not in "=\n#;\r"):
                pos = _line_end(text, pos)  # not a variable: skip the line
                continue
            if pos < end and text[pos] == "=":
                value, pos = _config_value(text, pos + 1)
                yield section, key, value
            else:
                pos = _line_end(text, pos)
                yield section, key, None


def _line_end(text: str, pos: int) -> int:
    newline = text.find("\n", pos)
    return len(text) if newline < 0 else newline + 1


def _section_name(header: str) -> str:
    """``extensions``, ``remote "origin"`` → ``remote.origin``; ``Core.Sub`` (the old
    form) → ``core.sub``."""
    name, _, rest = header.strip().partition(" ")
    rest = rest.strip()
    if rest.startswith('"') and rest.endswith('"') and len(rest) >= 2:
        sub = rest[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return f"{name.lower()}.{sub}"
    return header.strip().lower()


_ESCAPES = {"n": "\n", "t": "\t", "b": "\b", "\\": "\\", '"': '"'}


def _config_value(text: str, pos: int) -> tuple[str, int]:
    """A value from ``pos`` (after ``=``) to the end of its line: (value, next position)."""
    out: list[str] = []
    quoted = False
    trailing = 0  # unquoted whitespace at the end of ``out``, dropped at the end
    end = len(text)
    while pos < end and text[pos] in " \t":
        pos += 1
    while pos < end:
        char = text[pos]
        pos += 1
        if char == "\n" and not quoted:
            break
        if char == "\r" and pos < end and text[pos] == "\n" and not quoted:
            pos += 1
            break
        if char in "#;" and not quoted:
            pos = _line_end(text, pos)
            break
        if char == "\\" and pos < end:
            following = text[pos]
            pos += 1
            if following == "\n":
                continue  # a continued line
            out.append(_ESCAPES.get(following, following))
            trailing = 0
        elif char == '"':
            quoted = not quoted
            trailing = 0
        else:
            out.append(char)
            trailing = trailing + 1 if char in " \t" and not quoted else 0
    value = "".join(out)
    return (value[: len(value) - trailing] if trailing else value), pos


# ---- reading objects in batches -----------------------------------------------------------

_BATCH = ("cat-file", "--batch", "--buffer")
# What a stream of objects reads from git at a time, at most: whatever the pipe holds (git
# writes 4 KiB at a time; an 8 KiB buffer made a read per 4 KiB, ~15k for 60 MB of notes).
_READ_AHEAD = 1 << 20


def _entries(out: IO[bytes], oids: Sequence[str]) -> Iterator[tuple[str, bytes | None]]:
    """(oid, contents, or None when git says it is missing) for each of ``oids`` in
    order, read from ``git cat-file --batch`` output; stops early when the output ends.

    Each answer is ``<oid> <type> <size>\\n<contents>\\n``, or ``<oid> missing\\n`` (or
    ``ambiguous``) for an object git cannot give.
    """
    for oid in oids:
        header = out.readline().split()
        if not header:
            return
        if len(header) != 3:  # "<oid> missing", "<oid> ambiguous"
            yield oid, None
            continue
        data = out.read(int(header[2]))
        out.read(1)  # the newline after the contents
        yield oid, data


def read_blobs(
    cwd: str | os.PathLike[str], oids: Sequence[str], *, check: bool = True
) -> dict[str, bytes]:
    """The contents of many objects through one ``git cat-file --batch`` (missing ones are
    absent); ``check``: RepositoryProblem when git fails (else what it gave). Inside
    :func:`sharing`, a few objects of its repository are read by its shared process."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    shared = _shared
    if shared is not None and shared.serves(cwd):
        answers = shared.contents(wanted)
        if answers is not None:
            return answers
        # (the shared process failed: a process of its own says how, as it always did)
    proc = run_git(cwd, _BATCH, input="\n".join(wanted).encode() + b"\n", check=check)
    return {
        oid: data for oid, data in _entries(io.BytesIO(proc.stdout), wanted) if data is not None
    }


def object_headers(
    cwd: str | os.PathLike[str], oids: Sequence[str], *, env: Mapping[str, str] | None = None
) -> dict[str, tuple[str, int]]:
    """(type, size) of each of ``oids`` git has, by one ``git cat-file --batch-check``:
    headers only, never the contents. An id git does not have, or answers under another
    name (one that is not a full object id), is left out. RepositoryProblem when git
    fails or does not answer each id in turn. ``env`` adds to git's environment
    (``GIT_NO_LAZY_FETCH``). Replace refs are never followed (:func:`git_env`)."""
    if not oids:
        return {}
    proc = run_git(
        cwd,
        ("cat-file", "--batch-check", "--buffer"),
        input="".join(f"{oid}\n" for oid in oids).encode(),
        env=env,
    )
    lines = proc.stdout.split(b"\n")
    if len(lines) != len(oids) + 1 or lines[-1]:
        raise RepositoryProblem("git cat-file --batch-check did not answer each object in turn")
    found: dict[str, tuple[str, int]] = {}
    for oid, line in zip(oids, lines, strict=False):
        fields = line.split(b" ")  # "<oid> <type> <size>", "<name> missing" (or ambiguous)
        if len(fields) == 3 and fields[0] == oid.encode() and fields[2].isdigit():
            found[oid] = (fields[1].decode("ascii", "replace"), int(fields[2]))
    return found


def stream_blobs(
    cwd: str | os.PathLike[str], oids: Sequence[str]
) -> Generator[tuple[str, bytes | None], None, None]:
    """(oid, contents or None when missing) for each of ``oids``, in order, as ``git
    cat-file --batch`` produces them — so the caller works while git still reads."""
    import threading

    if not oids:
        return
    try:
        proc = subprocess.Popen(
            ["git", *_BATCH],
            env=git_env(),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=_READ_AHEAD,
        )
    except FileNotFoundError:
        raise RepositoryProblem(NO_GIT) from None
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def feed() -> None:
        with contextlib.suppress(OSError):
            stdin.write("\n".join(oids).encode() + b"\n")
        with contextlib.suppress(OSError):
            stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        count = 0
        for entry in _entries(stdout, oids):
            count += 1
            yield entry
        if count < len(oids):
            raise RepositoryProblem("git cat-file stopped early while reading the ledger")
    finally:
        stdout.close()
        proc.wait()
        feeder.join()


# ---- one cat-file for a whole short command ---------------------------------------------------


class CatFile:
    """One ``git cat-file --batch-command --buffer`` process that answers every object
    read of a short command: ``info`` (type, size, id) of object names such as
    ``<commit>:<path>``, and the ``contents`` of objects, a round of commands at a time.
    Started early, it runs while Python is still importing; a read after git failed (a
    damaged repository, a killed process) answers None, and so does every later one."""

    def __init__(self, cwd: str | os.PathLike[str]):
        self.cwd = os.path.abspath(cwd)
        self._proc: subprocess.Popen[bytes] | None
        try:
            self._proc = subprocess.Popen(
                ["git", "cat-file", "--batch-command", "--buffer"],
                env=git_env(),
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self._proc = None

    def serves(self, cwd: str | os.PathLike[str]) -> bool:
        """Whether this process reads the repository git finds from ``cwd``."""
        return self._proc is not None and os.path.abspath(cwd) == self.cwd

    def info(self, names: Sequence[str]) -> list[tuple[str, int, str] | None] | None:
        """(type, size, object id) of each of ``names``, None for one git does not find
        (missing, ambiguous); None when git failed."""
        answers: list[tuple[str, int, str] | None] = []
        for out, some in self._rounds(b"info ", names):
            if out is None:
                return None
            try:
                for _ in some:
                    header = _header(out.readline())
                    answers.append((header[1], header[2], header[0]) if header else None)
            except _Broken:
                self.close()
                return None
        return answers

    def contents(self, oids: Sequence[str]) -> dict[str, bytes] | None:
        """The contents of each of ``oids`` git has (those it has not are absent); None
        when git failed."""
        found: dict[str, bytes] = {}
        for out, some in self._rounds(b"contents ", oids):
            if out is None:
                return None
            try:
                for oid in some:
                    header = _header(out.readline())
                    if header is not None:
                        data = out.read(header[2])
                        if len(data) != header[2] or out.read(1) != b"\n":
                            raise _Broken
                        found[oid] = data
            except _Broken:
                self.close()
                return None
        return found

    def close(self) -> None:
        """End the process (it exits when its input ends)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            proc.wait()

    def _rounds(
        self, command: bytes, names: Sequence[str]
    ) -> Iterator[tuple[IO[bytes] | None, Sequence[str]]]:
        """Send the commands for ``names`` a round at a time; for each round, where its
        answers are to be read (None: git failed) and the names it asked about. A round
        is small enough for the pipe to hold it whole, so git never waits for its answers
        to be read while this process waits for it to read the commands."""
        for start in range(0, len(names), _ROUND):
            some = names[start : start + _ROUND]
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdout is None:
                yield None, some
                return
            if any("\n" in name for name in some):
                yield None, some  # (one command a line)
                return
            request = b"".join(command + os.fsencode(name) + b"\n" for name in some)
            try:
                proc.stdin.write(request + b"flush\n")
                proc.stdin.flush()
            except OSError:
                self.close()
                yield None, some
                return
            yield proc.stdout, some


_ROUND = 128  # commands per round (each well under 200 bytes: a round is under 32 KiB)


class _Broken(Exception):
    """cat-file's output ended or made no sense."""


def _header(line: bytes) -> tuple[str, str, int] | None:
    """(object id, type, size) of an answer's first line; None for ``<name> missing`` (or
    ``ambiguous``); :class:`_Broken` when the output ended."""
    if not line.endswith(b"\n"):
        raise _Broken
    parts = line.split()
    if len(parts) == 3 and parts[2].isdigit():
        oid, kind = (part.decode("ascii", "replace") for part in parts[:2])
        return oid, kind, int(parts[2])
    if len(parts) >= 2 and parts[-1] in (b"missing", b"ambiguous"):
        return None
    raise _Broken


_shared: CatFile | None = None


@contextlib.contextmanager
def sharing(cat: CatFile) -> Iterator[CatFile]:
    """While inside, :func:`read_blobs` of ``cat``'s repository reads through ``cat``."""
    global _shared
    before, _shared = _shared, cat
    try:
        yield cat
    finally:
        _shared = before


def remote_key(remote: str) -> str:
    """The name a remote's tracking refs go under (``refs/prov/remotes/<key>/…``): a
    configured remote's own name, or, for a URL or path given in its place (which git
    accepts, and which cannot be part of a ref name), ``url-`` and 12 hex digits of its
    SHA-1."""
    if not is_url_remote(remote):
        return remote
    import hashlib

    return "url-" + hashlib.sha1(remote.encode()).hexdigest()[:12]


def is_url_remote(remote: str) -> bool:
    """Whether ``remote`` is a URL or an absolute path rather than a remote's name (a
    name is part of ref names, so it never starts with ``/`` nor holds ``:``)."""
    return remote.startswith("/") or ":" in remote
