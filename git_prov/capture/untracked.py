"""The untracked files of a dirty-tree snapshot, through a private git index that outlives
the record (``<git dir>/prov/snapshot-untracked-<snapshot>.index``).

Which untracked files a snapshot holds is a function of ``git status``'s listing and the
policy (declared data left out, secret files left out, the size limit), except for the
files' sizes, and its tree is a function of their bytes. git's stat data in the kept
index answers both for unchanged files: ``git diff-files`` lstats every entry (in C, in
parallel) and names only the changed ones. Beside the index, a small state file records
what the listing and policy came to the last time — the key (a hash of both) and the
files left out — so when the listing and policy are the same again, nothing but the
changed files is looked at in Python. When they differ, the listing is gone through
again, but only new and changed files are lstat'ed and added.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO

from git_prov.errors import RepositoryProblem
from git_prov.model.frozen import Fields, frozen_fields
from git_prov.model.ids import is_hex_oid
from git_prov.store.gitcli import git_env
from git_prov.store.repo import GitRepo
from git_prov.trust.secrets import secret_file_test

_CACHE_PREFIX = "snapshot-untracked-"
_CACHE_SUFFIX = ".index"
_STATE_SUFFIX = ".state"
_STATE_VERSION = 1


@frozen_fields
class Policy(Fields):
    """What decides which untracked files a snapshot holds, beside ``git status``:
    ``exclude`` (declared data, repo-relative files or directories), ``limit`` (bytes;
    larger files are left out) and ``secret_files`` (patterns of files left out)."""

    exclude: tuple[str, ...]
    limit: int
    secret_files: tuple[str, ...]

    def __init__(self, exclude: tuple[str, ...], limit: int, secret_files: tuple[str, ...]) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "exclude", exclude)
        set_(self, "limit", limit)
        set_(self, "secret_files", secret_files)

    def key(self, status: bytes) -> str:
        """A hash of this policy and ``status`` (``git status -z`` output): equal keys,
        equal choices of files for files of equal sizes."""
        import hashlib  # (a clean tree's record never needs it)

        digest = hashlib.sha256()
        excluded = sorted({e.rstrip("/") for e in self.exclude})
        head = [_STATE_VERSION, excluded, self.limit, list(self.secret_files)]
        digest.update(json.dumps(head).encode("utf-8", errors="surrogateescape"))
        digest.update(b"\0")
        digest.update(status)
        return digest.hexdigest()


@frozen_fields
class Untracked(Fields):
    """What ``git status``'s listing comes to under a :class:`Policy`, and the tree of the
    untracked files kept."""

    tracked_changed: bool
    files: int  # how many untracked files the snapshot holds (in ``tree``)
    nested: tuple[str, ...]  # embedded repositories ("dir/"): gitlinks, through `git add`
    omitted: tuple[str, ...]  # too large
    secrets: tuple[str, ...]  # secret files left out
    tree: str  # of the untracked files held ("" when none)

    def __init__(
        self,
        tracked_changed: bool,
        files: int,
        nested: tuple[str, ...],
        omitted: tuple[str, ...],
        secrets: tuple[str, ...],
        tree: str,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "tracked_changed", tracked_changed)
        set_(self, "files", files)
        set_(self, "nested", nested)
        set_(self, "omitted", omitted)
        set_(self, "secrets", secrets)
        set_(self, "tree", tree)


def parse_status(raw: bytes) -> tuple[list[str], bool]:
    """The untracked paths in ``git status --porcelain=v1 -z`` output, and whether it
    shows any tracked change."""
    untracked: list[str] = []
    tracked_changed = False
    for item in raw.split(b"\0"):
        if len(item) < 4:
            continue
        code, path = item[:2], item[3:].decode("utf-8", errors="surrogateescape")
        if code == b"??":
            untracked.append(path)
        elif code != b"!!":
            tracked_changed = True
    return untracked, tracked_changed


def choose_untracked(
    root: Path,
    untracked: list[str],
    policy: Policy,
    sized: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[str], list[str], list[str], bool]:
    """Split ``untracked`` into kept, omitted (too large) and secret paths, in order;
    declared data is dropped. Paths in ``sized`` are known to be within the limit (no
    lstat). The last value is False when a file vanished before its lstat (it is
    dropped, as if it had not been listed)."""
    keep: list[str] = []
    omitted: list[str] = []
    secrets: list[str] = []
    complete = True
    excluded = tuple(e.rstrip("/") for e in policy.exclude)
    below = tuple(e + "/" for e in excluded)
    is_secret = secret_file_test(policy.secret_files)
    top = str(root) + os.sep
    lstat = os.lstat
    limit = policy.limit
    for path in untracked:
        if excluded and (path in excluded or path.startswith(below)):
            continue
        if is_secret(path):
            secrets.append(path)
            continue
        if path in sized:
            keep.append(path)
            continue
        try:
            size = lstat(top + path).st_size
        except OSError:
            complete = False
            continue
        (keep if size <= limit else omitted).append(path)
    return keep, omitted, secrets, complete


def nul_list(paths: Sequence[str] | set[str]) -> bytes:
    """Paths as git's ``-z`` input."""
    return b"\0".join(p.encode("utf-8", errors="surrogateescape") for p in paths)


def remove_index(path: Path) -> None:
    """Remove an index file and its lock, if there."""
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        Path(str(path) + ".lock").unlink()


@frozen_fields
class _State(Fields):
    """What the kept index beside it holds, written with it: ``index`` is that file's
    identity (:func:`_identity`), so a state never describes another index."""

    key: str | None  # None: a file vanished meanwhile, the choice is not reusable
    limit: int  # every entry's size was within it
    index: tuple[int, int, int, str]  # see _identity
    found: Untracked

    def __init__(
        self, key: str | None, limit: int, index: tuple[int, int, int, str], found: Untracked
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "key", key)
        set_(self, "limit", limit)
        set_(self, "index", index)
        set_(self, "found", found)

    def text(self) -> str:
        found = self.found
        return json.dumps(
            {
                "version": _STATE_VERSION,
                "key": self.key,
                "limit": self.limit,
                "index": list(self.index),
                "tracked_changed": found.tracked_changed,
                "files": found.files,
                "nested": list(found.nested),
                "omitted": list(found.omitted),
                "secrets": list(found.secrets),
                "tree": found.tree,
            },
            sort_keys=True,
        )

    @classmethod
    def read(cls, path: Path) -> _State | None:
        try:
            got = json.loads(path.read_text(encoding="utf-8"))
            if got["version"] != _STATE_VERSION:
                return None
            ino, size, mtime, trailer = got["index"]
            found = Untracked(
                bool(got["tracked_changed"]),
                int(got["files"]),
                tuple(str(p) for p in got["nested"]),
                tuple(str(p) for p in got["omitted"]),
                tuple(str(p) for p in got["secrets"]),
                str(got["tree"]),
            )
            key = None if got["key"] is None else str(got["key"])
            index = (int(ino), int(size), int(mtime), str(trailer))
            return cls(key, int(got["limit"]), index, found)
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _identity(path: Path, stat: os.stat_result) -> tuple[int, int, int, str]:
    """An index file's inode, size and mtime, and the SHA-1 git ends it with (its whole
    content's; zeros with ``index.skipHash``)."""
    with open(path, "rb") as f:
        f.seek(max(0, stat.st_size - 20))
        trailer = f.read(20).hex()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, trailer)


class UntrackedIndex:
    """The private index of the untracked files the last snapshot held.

    git's own stat data in it makes unchanged files free: ``git diff-files`` names the
    entries whose stat changed (or that git's racy-file rule cannot trust), and only
    those are hashed again; ``write-tree`` reuses the trees of untouched directories
    (its cache-tree). Its blobs are safe from ``git gc`` only while a snapshot holding
    them is: the file is used only when ``refs/prov/objects`` still keeps the snapshot
    commit it is named after (otherwise the index starts empty). Each record works on
    its own hard link (or copy) of it — git replaces an index file whole, never edits
    it, and a link keeps its mtime, which git's racy-file check compares file mtimes
    with — and replaces the kept file whole, so concurrent records never share one.
    """

    def __init__(self, repo: GitRepo, policy: Policy) -> None:
        self.repo = repo
        self.policy = policy
        self.dir = repo.prov_dir
        self.work = self.dir / f"{_CACHE_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.tmp"
        self.env = {"GIT_INDEX_FILE": str(self.work), "GIT_LITERAL_PATHSPECS": "1"}
        self.base: Path | None = None  # the kept index this one started from
        self.state: _State | None = None  # what base's state file says of it
        self.found: _State | None = None  # what this record's listing came to
        self._started = False
        self._pending: subprocess.Popen[bytes] | None = None  # see prefetch

    @property
    def base_snapshot(self) -> str | None:
        """The kept snapshot whose index this one started from (None: it started empty)."""
        if self.base is None:
            return None
        return self.base.name[len(_CACHE_PREFIX) : -len(_CACHE_SUFFIX)]

    def prefetch(self) -> None:
        """Start ``git diff-files`` on the work index now, before the caller's ``git
        status``: both lstat every file, and side by side they take about one pass's time
        on two cores. :meth:`split` reads its answer (made from the same unchanged work
        index it would have asked). Nothing when there is no kept index to start from."""
        try:
            self._start()
            if self.base is None:
                return
            self._pending = subprocess.Popen(
                ["git", "diff-files", "-z", "--name-only"],
                cwd=self.repo.root,
                env=git_env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError:
            self._pending = None  # (split asks again, the plain way)

    def split(self, status: bytes) -> Untracked | None:
        """What ``status`` (``git status --porcelain=v1 -z -uall`` output) comes to, with
        the tree of the kept untracked files; None when git fails here (the caller then
        adds them the plain way)."""
        key = self.policy.key(status)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not self._started:
                self._start()
            found = None
            if self.state is not None and self.state.key == key:
                found = self._same_listing(self.state)
            return found or self._listing(status, key)
        except (RepositoryProblem, OSError):
            self.discard()
            return None

    def _git(self, *args: str, input: bytes | None = None) -> bytes:
        return self.repo.git(*args, input=input, env=self.env, cwd=self.repo.root).stdout

    def _start(self) -> None:
        """Make the work index from the newest trusted kept index (none without one)."""
        self._started = True
        base = self._trusted()
        if base is None:
            return
        try:
            with open(base, "rb") as src:
                stat = os.fstat(src.fileno())
                _link_or_copy(base, src, stat, self.work)
            identity = _identity(self.work, stat)
        except OSError:  # removed meanwhile by a concurrent record: start empty
            remove_index(self.work)
            return
        self.base = base
        state = _State.read(base.with_suffix(_STATE_SUFFIX))
        if state is not None and state.index == identity:
            self.state = state

    def _trusted(self) -> Path | None:
        """The most recently used kept index whose snapshot is still kept (an index and
        the one it was made from may be one file under two names: its state decides)."""

        def used(path: Path) -> int:
            try:
                state = path.with_suffix(_STATE_SUFFIX).stat().st_mtime_ns
            except OSError:
                state = 0
            return max(path.stat().st_mtime_ns, state)

        try:
            kept = self.dir.glob(f"{_CACHE_PREFIX}*{_CACHE_SUFFIX}")
            found = sorted(kept, key=used, reverse=True)
        except OSError:
            return None
        if not found:
            return None
        from git_prov.store.ledger import Ledger

        ledger = Ledger(self.repo)
        for path in found:
            commit = path.name[len(_CACHE_PREFIX) : -len(_CACHE_SUFFIX)]
            if is_hex_oid(commit) and ledger.is_kept(commit):
                return path
        return None

    def _changed(self) -> list[str]:
        """The entries whose file git cannot vouch for: changed stat, racily clean,
        gone, or of another type."""
        pending, self._pending = self._pending, None
        if pending is None:
            listed = self._git("diff-files", "-z", "--name-only")
        else:
            listed, errors = pending.communicate()
            if pending.returncode != 0:
                said = errors.decode(errors="replace").strip().splitlines()
                raise RepositoryProblem(f"git diff-files failed: {said[-1] if said else ''}")
        return [p.decode("utf-8", errors="surrogateescape") for p in listed.split(b"\0") if p]

    def _same_listing(self, state: _State) -> Untracked | None:
        """The same listing under the same policy as the kept index's: only the files
        git names as changed, and the ones left out for size, are looked at. None when
        one of them crossed the size limit or vanished (then the listing is gone
        through again)."""
        changed = self._changed()
        top = str(self.repo.root) + os.sep
        limit = self.policy.limit
        try:
            if any(os.lstat(top + p).st_size > limit for p in changed):
                return None
            if any(os.lstat(top + p).st_size <= limit for p in state.found.omitted):
                return None
        except OSError:
            return None
        tree = state.found.tree
        if changed:  # hash them again (unchanged bytes give the same tree)
            self._git("update-index", "--add", "--remove", "-z", "--stdin", input=nul_list(changed))
            tree = self._git("write-tree").decode().strip()
        elif not state.index[3].strip("0") and self._git("write-tree").decode().strip() != tree:
            return None  # (an index without a content hash, index.skipHash: tree checked)
        found = replace(state.found, tree=tree)
        self.found = _State(state.key, limit, state.index, found)
        return found

    def _listing(self, status: bytes, key: str) -> Untracked:
        """Go through the listing: drop the entries no longer wanted, add the new files,
        hash again the changed ones; lstat only what the kept index cannot vouch for."""
        untracked, tracked_changed = parse_status(status)
        have: set[str] = set()
        changed: set[str] = set()
        if self.base is not None:
            listed = self._git("ls-files", "-z")
            have = {p.decode("utf-8", errors="surrogateescape") for p in listed.split(b"\0") if p}
        if have:
            changed = set(self._changed())
        # Unchanged entries are within the limit they were checked against.
        state = self.state
        sized = have - changed if state and state.limit <= self.policy.limit else set()
        keep, omitted, secrets, complete = choose_untracked(
            self.repo.root, untracked, self.policy, sized
        )
        files = [p for p in keep if not p.endswith("/")]
        stale = have.difference(files)
        if stale:
            self._git(
                "update-index", "--force-remove", "-z", "--stdin", input=nul_list(sorted(stale))
            )
        add = [p for p in files if p not in have or p in changed]
        if add:
            self._git("update-index", "--add", "--remove", "-z", "--stdin", input=nul_list(add))
        tree = self._git("write-tree").decode().strip() if files else ""
        nested = tuple(p for p in keep if p.endswith("/"))
        found = Untracked(tracked_changed, len(files), nested, tuple(omitted), tuple(secrets), tree)
        self.found = _State(key if complete else None, self.policy.limit, (0, 0, 0, ""), found)
        return found

    def keep(self, snapshot: str) -> None:
        """Keep this index for the next record, named after the snapshot that holds its
        files, with its state beside it. Of the older ones only the one :meth:`split`
        started from stays: this snapshot may never be recorded (``git prov check``
        takes one too)."""
        target = self.dir / f"{_CACHE_PREFIX}{snapshot}{_CACHE_SUFFIX}"
        state_path = target.with_suffix(_STATE_SUFFIX)
        try:
            identity = _identity(self.work, os.stat(self.work))
            if target.exists() and os.path.samefile(self.work, target):  # nothing changed
                self.work.unlink()
            else:
                os.replace(self.work, target)
            if self.found is not None:
                text = replace(self.found, index=identity).text()
                if not _same_text(state_path, text):
                    tmp = state_path.with_name(f"{state_path.name}.{os.getpid()}.tmp")
                    tmp.write_text(text, encoding="utf-8")
                    os.replace(tmp, state_path)
        except OSError:
            return
        for old in self.dir.glob(f"{_CACHE_PREFIX}*{_CACHE_SUFFIX}"):
            if old not in (target, self.base):
                with contextlib.suppress(OSError):
                    old.unlink()
                with contextlib.suppress(OSError):
                    old.with_suffix(_STATE_SUFFIX).unlink()

    def discard(self) -> None:
        """Remove the working copy (nothing when :meth:`keep` moved it); stop a prefetched
        ``git diff-files`` nobody asked for."""
        pending, self._pending = self._pending, None
        if pending is not None:
            with contextlib.suppress(OSError):
                pending.kill()
            pending.communicate()
        remove_index(self.work)


def _same_text(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except OSError:
        return False


def _link_or_copy(source: Path, src: IO[bytes], stat: os.stat_result, target: Path) -> None:
    """``target`` as the very file open in ``src``: a hard link while that still is
    ``source`` (a concurrent record may have replaced it), else a copy from ``src`` with
    its mtime, which git compares file mtimes with (racy-git check)."""
    with contextlib.suppress(OSError):
        os.link(source, target)
        linked = os.stat(target)
        if (linked.st_dev, linked.st_ino) == (stat.st_dev, stat.st_ino):
            return
        target.unlink()
    with open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
