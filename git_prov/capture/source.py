"""The code a run ran on: the HEAD commit and, when the working tree is dirty, an exact
snapshot of it (tracked changes and untracked, not-ignored files) as a commit object.

The snapshot is built in a temporary index, so the user's index is never touched, and it
is deterministic (its dates are HEAD's), so the same dirty state always gives the same
snapshot commit and is stored once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from git_prov.errors import RepositoryProblem
from git_prov.store.repo import Commit, GitRepo
from git_prov.trust.secrets import DEFAULT_SECRET_FILES, secret_file_test

DEFAULT_MAX_UNTRACKED_BYTES = 10 << 20


@dataclass(frozen=True)
class SourceState:
    """HEAD and the snapshot of the working tree taken for one run."""

    commit: str
    snapshot: str | None
    patch_id: str | None
    branch: str | None
    omitted: tuple[str, ...] = ()
    secrets_left_out: tuple[str, ...] = ()


def capture_source(
    repo: GitRepo,
    *,
    exclude: Sequence[str] = (),
    max_untracked_bytes: int = DEFAULT_MAX_UNTRACKED_BYTES,
    secret_files: Sequence[str] = DEFAULT_SECRET_FILES,
) -> SourceState:
    """Capture HEAD and, if the working tree differs from it, a snapshot commit.

    ``exclude`` holds repo-relative paths (files or directories) of declared data, which
    belongs in data manifests rather than in the source snapshot. Untracked files larger
    than ``max_untracked_bytes`` are left out and listed in ``omitted``; untracked files
    that ``secret_files`` names (:func:`~git_prov.trust.secrets.secret_file`: ``.env``,
    private keys, credential stores …) are left out and listed in ``secrets_left_out``.
    Tracked files are always snapshotted as they are: they are in git already.
    """
    head = repo.head_commit()
    commit_hex = str(head.id)
    status = repo.git(
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--ignore-submodules=none",
    ).stdout
    untracked, tracked_changed = _parse_status(status)
    snapshot = None
    omitted: list[str] = []
    secrets: list[str] = []
    if untracked or tracked_changed:
        keep, omitted, secrets = _choose_untracked(
            repo.root, untracked, exclude, max_untracked_bytes, secret_files
        )
        if tracked_changed or keep:
            snapshot = _snapshot(repo, head, keep, omitted, secrets)
    return SourceState(
        commit=commit_hex,
        snapshot=snapshot,
        patch_id=patch_id(repo, commit_hex),
        branch=repo.branch_name(),
        omitted=tuple(omitted),
        secrets_left_out=tuple(secrets),
    )


def _parse_status(raw: bytes) -> tuple[list[str], bool]:
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


def _choose_untracked(
    root: Path,
    untracked: list[str],
    exclude: Sequence[str],
    limit: int,
    secret_files: Sequence[str],
) -> tuple[list[str], list[str], list[str]]:
    keep: list[str] = []
    omitted: list[str] = []
    secrets: list[str] = []
    excluded = tuple(e.rstrip("/") for e in exclude)
    below = tuple(e + "/" for e in excluded)
    is_secret = secret_file_test(secret_files)
    top = str(root) + os.sep
    lstat = os.lstat
    for path in untracked:
        if excluded and (path in excluded or path.startswith(below)):
            continue
        if is_secret(path):
            secrets.append(path)
            continue
        try:
            size = lstat(top + path).st_size
        except OSError:
            continue
        (keep if size <= limit else omitted).append(path)
    return keep, omitted, secrets


def _snapshot(
    repo: GitRepo,
    head: Commit,
    untracked: list[str],
    omitted: list[str],
    secrets: list[str],
) -> str | None:
    # Untracked files go through a private index that outlives the record (see
    # _UntrackedIndex): re-adding 20k unchanged files then costs what `git status` does.
    # Embedded repositories (``dir/``) are added by `git add`, which makes them gitlinks.
    files = [p for p in untracked if not p.endswith("/")]
    nested = [p for p in untracked if p.endswith("/")]
    cache = _UntrackedIndex(repo) if files else None
    try:
        tree_hex = None
        if cache is not None:
            untracked_tree = cache.tree(files)
            if untracked_tree is not None:
                tracked_tree = _index_tree(repo, nested)
                tree_hex = repo.merge_disjoint_trees(tracked_tree, untracked_tree)
        if tree_hex is None:
            tree_hex = _index_tree(repo, untracked)
        if tree_hex == str(head.tree.id):
            return None
        message = f"git-prov snapshot of the working tree on {str(head.id)[:12]}\n"
        if omitted:
            message += "\nLeft out (too large):\n" + "".join(f"  {p}\n" for p in omitted)
        if secrets:
            message += "\nLeft out (secret files):\n" + "".join(f"  {p}\n" for p in secrets)
        snapshot = repo.commit_dated_like(tree_hex, head, message)
        if cache is not None:
            cache.keep(snapshot)
        return snapshot
    finally:
        if cache is not None:
            cache.discard()


def _index_tree(repo: GitRepo, untracked: list[str]) -> str:
    """The tree of the working tree's tracked files (`git add -u` in a copy of the user's
    index) plus ``untracked``, as `git add` adds them."""
    index_path = repo.prov_dir / f"snapshot-index-{os.getpid()}-{os.urandom(4).hex()}"
    real_index = repo.git_dir / "index"
    try:
        if real_index.exists():
            shutil.copyfile(real_index, index_path)
        env = {"GIT_INDEX_FILE": str(index_path), "GIT_LITERAL_PATHSPECS": "1"}
        # Stage every tracked change (edits, deletions, mode changes) in our private index.
        repo.git("add", "--update", "--", ".", env=env, cwd=repo.root)
        if untracked:
            repo.git(
                "add",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                input=_nul_list(untracked),
                env=env,
                cwd=repo.root,
            )
        return repo.git("write-tree", env=env).stdout.decode().strip()
    finally:
        _remove_index(index_path)


def _nul_list(paths: Sequence[str] | set[str]) -> bytes:
    return b"\0".join(p.encode("utf-8", errors="surrogateescape") for p in paths)


def _copy_keeping_mtime(source: Path, target: Path) -> None:
    """Copy an index file with its mtime, which git compares file mtimes with (racy-git
    check): both read from one open file, should a concurrent record replace it."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        stat = os.fstat(src.fileno())
        shutil.copyfileobj(src, dst, 1 << 20)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _remove_index(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        Path(str(path) + ".lock").unlink()


_CACHE_PREFIX = "snapshot-untracked-"
_CACHE_SUFFIX = ".index"


class _UntrackedIndex:
    """A private git index of the untracked files the last snapshot held, kept under
    ``<git dir>/prov/snapshot-untracked-<snapshot commit>.index``.

    git's own stat data in it makes re-adding unchanged files free: `git add -u` there
    re-hashes only files whose stat changed, and `write-tree` reuses the trees of
    untouched directories (its cache-tree). Its blobs are safe from `git gc` only while
    a snapshot holding them is: the file is used only when ``refs/prov/objects`` still
    keeps the snapshot commit it is named after (otherwise the index starts empty). Each
    record works on its own copy (mtime kept, so git's racy-file check still holds) and
    replaces the file whole, so concurrent records never share one.
    """

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self.dir = repo.prov_dir
        self.work = self.dir / f"{_CACHE_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.tmp"
        self.base: Path | None = None  # the kept index this one started from

    def _trusted(self) -> Path | None:
        try:
            found = sorted(
                self.dir.glob(f"{_CACHE_PREFIX}*{_CACHE_SUFFIX}"),
                key=lambda p: p.stat().st_mtime_ns,
                reverse=True,
            )
        except OSError:
            return None
        if not found:
            return None
        from git_prov.store.ledger import Ledger

        ledger = Ledger(self.repo)
        for path in found:
            commit = path.name[len(_CACHE_PREFIX) : -len(_CACHE_SUFFIX)]
            if len(commit) == 40 and ledger.is_kept(commit):
                return path
        return None

    def tree(self, files: list[str]) -> str | None:
        """The tree of exactly ``files`` (repo-relative, untracked), or None when git
        fails here (the caller then adds them the plain way)."""
        env = {"GIT_INDEX_FILE": str(self.work), "GIT_LITERAL_PATHSPECS": "1"}
        run = self.repo.git
        root = self.repo.root
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            base = self.base = self._trusted()
            have: set[str] = set()
            if base is not None:
                try:
                    _copy_keeping_mtime(base, self.work)
                except OSError:  # removed meanwhile by a concurrent record: start empty
                    base = self.base = None
                    _remove_index(self.work)
            if base is not None:
                listed = run("ls-files", "-z", env=env, cwd=root).stdout
                have = {
                    p.decode("utf-8", errors="surrogateescape") for p in listed.split(b"\0") if p
                }
            want = set(files)
            stale = have - want
            if stale:
                run(
                    "update-index",
                    "--force-remove",
                    "-z",
                    "--stdin",
                    input=_nul_list(sorted(stale)),
                    env=env,
                    cwd=root,
                )
            if len(have) > len(stale):
                # Re-hash what changed since the last snapshot; unchanged files cost a stat.
                run("add", "--update", "--", ".", env=env, cwd=root)
            new = [p for p in files if p not in have]
            if new:
                run(
                    "update-index",
                    "--add",
                    "--remove",
                    "-z",
                    "--stdin",
                    input=_nul_list(new),
                    env=env,
                    cwd=root,
                )
            return run("write-tree", env=env).stdout.decode().strip()
        except (RepositoryProblem, OSError):
            self.discard()
            return None

    def keep(self, snapshot: str) -> None:
        """Keep this index for the next record, named after the snapshot that holds its
        files. Of the older ones only the one :meth:`tree` started from stays: this
        snapshot may never be recorded (``git prov check`` takes one too)."""
        target = self.dir / f"{_CACHE_PREFIX}{snapshot}{_CACHE_SUFFIX}"
        try:
            os.replace(self.work, target)
        except OSError:
            return
        for old in self.dir.glob(f"{_CACHE_PREFIX}*{_CACHE_SUFFIX}"):
            if old not in (target, self.base):
                with contextlib.suppress(OSError):
                    old.unlink()

    def discard(self) -> None:
        """Remove the working copy (nothing when :meth:`keep` moved it)."""
        _remove_index(self.work)


def patch_id(repo: GitRepo, commit_hex: str) -> str | None:
    """``git patch-id --stable`` of a commit's diff against its first parent (None for a
    merge, an empty change, or a commit whose parent is missing in a shallow clone).

    A commit's patch-id never changes, so it is cached under ``<git dir>/prov/patch-id/``:
    the many runs recorded on one commit pay for it once.
    """
    cache = repo.prov_dir / "patch-id" / commit_hex[:2] / commit_hex[2:]
    try:
        cached = cache.read_text().strip()
    except OSError:
        cached = None
    if cached is not None:
        return cached or None
    computed = _compute_patch_id(repo, commit_hex)
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(computed or "")
        os.replace(tmp, cache)
    return computed


def _compute_patch_id(repo: GitRepo, commit_hex: str) -> str | None:
    parents = repo.commit_parents(commit_hex)
    if parents is None or len(parents) > 1:
        return None
    if parents and not repo.has_object(parents[0]):
        return None
    # (A git failure here means no patch-id, not a failed record.)
    return patch_id_pipeline(repo, f"{commit_hex}\n".encode(), check=False).get(commit_hex)


def patch_id_pipeline(
    repo: GitRepo, stdin: bytes, *, fake_parents: bool = False, check: bool = True
) -> dict[str, str]:
    """Run ``git diff-tree --stdin`` (fed ``stdin``: commit lines, or ``END START`` lines
    with ``fake_parents``) into ``git patch-id --stable``; returns {header commit: id}.

    ``diff-tree`` is plumbing: unlike ``git log -p`` it ignores diff.noprefix, textconv and
    external diff drivers, so user configuration cannot change the ids. A failing git is a
    :class:`RepositoryProblem` with ``check``, else (quietly) whatever ids were printed.
    """
    cwd = repo.workdir or repo.git_dir
    args = ["git", "diff-tree", "--stdin", "-p", "--no-renames", "--full-index"]
    if not fake_parents:
        args.append("--root")
    import tempfile  # (only for patch-ids: a clean record never loads it)

    try:
        with tempfile.TemporaryFile() as feed:
            feed.write(stdin)
            feed.seek(0)
            diff = subprocess.Popen(
                args,
                cwd=cwd,
                stdin=feed,
                stdout=subprocess.PIPE,
                stderr=None if check else subprocess.DEVNULL,
            )
            ids = subprocess.run(
                ["git", "patch-id", "--stable"],
                cwd=cwd,
                stdin=diff.stdout,
                capture_output=True,
                check=False,
            )
            if diff.stdout is not None:
                diff.stdout.close()
            status = diff.wait()
    except OSError as exc:
        raise RepositoryProblem(f"cannot compute patch-ids: {exc}") from None
    if check and (status != 0 or ids.returncode != 0):
        raise RepositoryProblem(
            "git diff-tree | git patch-id failed while computing patch-ids",
            "check the repository with git fsck",
        )
    out: dict[str, str] = {}
    for line in ids.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[1]] = parts[0]
    return out
