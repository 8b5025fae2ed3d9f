"""The code a run ran on: the HEAD commit and, when the working tree is dirty, an exact
snapshot of it (tracked changes and untracked, not-ignored files) as a commit object.

The snapshot is built in a temporary index, so the user's index is never touched, and it
is deterministic (its dates are HEAD's), so the same dirty state always gives the same
snapshot commit and is stored once.

Its objects are loose and named by no ref until a record keeps the snapshot, so a
``git gc --prune=now`` running meanwhile may delete them; a new snapshot is held from a
private ref as soon as its commit exists (store/pins.py), checked complete once no gc
that started before is still running, and taken again when an object is missing (git
writes again what it finds missing).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence

from git_prov.capture.untracked import (
    Policy,
    UntrackedIndex,
    choose_untracked,
    nul_list,
    parse_status,
    remove_index,
)
from git_prov.errors import RepositoryProblem, storage_problem
from git_prov.model.frozen import Fields, frozen_fields
from git_prov.store.gitcli import git_env
from git_prov.store.repo import Commit, GitRepo, ObjectVanished
from git_prov.trust.secrets import DEFAULT_SECRET_FILES

DEFAULT_MAX_UNTRACKED_BYTES = 10 << 20
# Snapshots taken before giving up, each one's objects deleted by a concurrent prune.
SNAPSHOT_ATTEMPTS = 20


@frozen_fields
class SourceState(Fields):
    """HEAD and the snapshot of the working tree taken for one run."""

    commit: str
    snapshot: str | None
    patch_id: str | None
    branch: str | None
    omitted: tuple[str, ...] = ()
    secrets_left_out: tuple[str, ...] = ()

    def __init__(
        self,
        commit: str,
        snapshot: str | None,
        patch_id: str | None,
        branch: str | None,
        omitted: tuple[str, ...] = (),
        secrets_left_out: tuple[str, ...] = (),
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "commit", commit)
        set_(self, "snapshot", snapshot)
        set_(self, "patch_id", patch_id)
        set_(self, "branch", branch)
        set_(self, "omitted", omitted)
        set_(self, "secrets_left_out", secrets_left_out)


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
    policy = Policy(tuple(exclude), max_untracked_bytes, tuple(secret_files))
    build = repo
    for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
        if attempt > 1:  # (libgit2 may still take for there what a prune deleted since)
            build = repo.reopened()
        try:
            snapshot, omitted, secrets, base = _working_tree(build, head, policy)
        except ObjectVanished:
            if attempt == SNAPSHOT_ATTEMPTS:
                raise
            from git_prov.store.pins import await_gc

            await_gc(repo)  # (right after a gc ends is the longest way to the next prune)
            continue
        if snapshot is None:
            break
        from git_prov.store.pins import hold_snapshot

        if hold_snapshot(build, snapshot, [commit_hex, *filter(None, [base])]):
            break  # (a gc running as it was held has ended: see hold_snapshot)
        if attempt == SNAPSHOT_ATTEMPTS:
            raise ObjectVanished(
                f"the snapshot of the working tree ({snapshot[:12]}) lost objects to a "
                f"concurrent git gc --prune=now {SNAPSHOT_ATTEMPTS} times",
                "run it again; do not run git gc --prune=now while git prov records",
            )
    return SourceState(
        commit=commit_hex,
        snapshot=snapshot,
        patch_id=patch_id(repo, commit_hex),
        branch=repo.branch_name(),
        omitted=tuple(omitted),
        secrets_left_out=tuple(secrets),
    )


def _working_tree(
    repo: GitRepo, head: Commit, policy: Policy
) -> tuple[str | None, Sequence[str], Sequence[str], str | None]:
    """:func:`_snapshot` of the working tree as `git status` finds it now, and the kept
    snapshot whose untracked files' index it started from (None: none)."""
    # The kept index of the last snapshot's untracked files is checked (git diff-files)
    # while git status runs: an unchanged dirty tree then costs about one git status.
    cache = UntrackedIndex(repo, policy)
    try:
        cache.prefetch()
        status = repo.git(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--ignore-submodules=none",
        ).stdout
        if not status.strip(b"\0"):
            return None, (), (), None
        return (*_snapshot(repo, head, status, policy, cache), cache.base_snapshot)
    finally:
        cache.discard()


def _snapshot(
    repo: GitRepo, head: Commit, status: bytes, policy: Policy, kept: UntrackedIndex
) -> tuple[str | None, Sequence[str], Sequence[str]]:
    """The snapshot commit of a dirty tree (None when it holds nothing HEAD has not),
    with the untracked files left out for size and as secrets (``kept``: the private
    index of the untracked files, used when there are some; the caller discards it)."""
    # Untracked files go through a private index that outlives the record (see
    # UntrackedIndex): an unchanged tree then costs about what `git status` does.
    # Embedded repositories (``dir/``) are added by `git add`, which makes them gitlinks.
    has_untracked = status.startswith(b"?? ") or b"\0?? " in status
    cache = kept if has_untracked else None
    found = cache.split(status) if cache is not None else None
    tree_hex = None
    omitted: Sequence[str] = ()
    secrets: Sequence[str] = ()
    if found is not None:
        omitted, secrets = found.omitted, found.secrets
        if not (found.tracked_changed or found.files or found.nested):
            return None, omitted, secrets
        if not found.files:
            tree_hex = _index_tree(repo, found.nested)
        else:
            # With no tracked change (status shows none), the tracked files are HEAD's.
            same = not (found.tracked_changed or found.nested)
            tracked_tree = str(head.tree.id) if same else _index_tree(repo, found.nested)
            tree_hex = repo.merge_disjoint_trees(tracked_tree, found.tree)
    if tree_hex is None:
        untracked, tracked_changed = parse_status(status)
        keep, omitted, secrets, _ = choose_untracked(repo.root, untracked, policy)
        if not (tracked_changed or keep):
            return None, omitted, secrets
        tree_hex = _index_tree(repo, keep)
    if tree_hex == str(head.tree.id):
        return None, omitted, secrets
    message = f"git-prov snapshot of the working tree on {str(head.id)[:12]}\n"
    if omitted:
        message += "\nLeft out (too large):\n" + "".join(f"  {p}\n" for p in omitted)
    if secrets:
        message += "\nLeft out (secret files):\n" + "".join(f"  {p}\n" for p in secrets)
    snapshot = repo.commit_dated_like(tree_hex, head, message)
    if cache is not None and found is not None and found.files:
        cache.keep(snapshot)
    return snapshot, omitted, secrets


def _index_tree(repo: GitRepo, untracked: Sequence[str]) -> str:
    """The tree of the working tree's tracked files (`git add -u` in a copy of the user's
    index) plus ``untracked``, as `git add` adds them."""
    index_path = repo.prov_dir / f"snapshot-index-{os.getpid()}-{os.urandom(4).hex()}"
    real_index = repo.git_dir / "index"
    try:
        if real_index.exists():
            shutil.copyfile(real_index, index_path)
        env = {"GIT_INDEX_FILE": str(index_path), "GIT_LITERAL_PATHSPECS": "1"}
        # Stage every tracked change (edits, deletions, mode changes) in our private index.
        _git_writing(repo, ("add", "--update", "--", "."), env)
        if untracked:
            _git_writing(
                repo,
                ("add", "--pathspec-from-file=-", "--pathspec-file-nul"),
                env,
                input=nul_list(untracked),
            )
        return _git_writing(repo, ("write-tree",), env).decode().strip()
    finally:
        remove_index(index_path)


# What git says when a concurrent prune deleted an object it wrote a moment ago (write-tree),
# or the fan-out directory it was writing one into (add).
_PRUNED_SAYS = re.compile(
    r"^error: invalid object [0-7]+ [0-9a-f]+ for |"
    r"^error: unable to create temporary file: No such file or directory|"
    r"^error: unable to write file .*: No such file or directory",
    re.M,
)


def _git_writing(
    repo: GitRepo, args: Sequence[str], env: dict[str, str], input: bytes | None = None
) -> bytes:
    """The output of ``git args`` writing objects into the repository; ObjectVanished when
    a concurrent prune made it fail (the caller takes the snapshot again)."""
    proc = repo.git(*args, input=input, env=env, cwd=repo.root, check=False)
    if proc.returncode == 0:
        return proc.stdout
    said = proc.stderr.decode(errors="replace")
    if _PRUNED_SAYS.search(said):
        raise ObjectVanished(
            f"git {args[0]} lost an object to a concurrent git gc --prune=now",
            "run it again; do not run git gc --prune=now while git prov records",
        )
    lines = said.strip().splitlines()
    problem = RepositoryProblem(f"git {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    raise storage_problem(RepositoryProblem(" ".join(lines))) or problem


@frozen_fields
class SnapshotChanges(Fields):
    """What a snapshot commit has that the commit it was taken on has not."""

    new_count: int  # files (untracked, or staged and new) the commit lacks
    new_first: tuple[str, ...]  # the first of them, in git's order
    tracked_changed: bool  # whether any of the commit's files differ

    def __init__(
        self,
        new_count: int,
        new_first: tuple[str, ...],
        tracked_changed: bool,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "new_count", new_count)
        set_(self, "new_first", new_first)
        set_(self, "tracked_changed", tracked_changed)


def snapshot_changes(repo: GitRepo, commit: str, snapshot: str, first: int) -> SnapshotChanges:
    """One ``git diff-tree`` between ``commit`` and ``snapshot``, summed up. Both are
    content ids, so the answer never changes: the last one is remembered under
    ``<git dir>/prov/snapshot-changes`` (a snapshot of 20k untracked files is otherwise
    listed again at every record of an unchanged tree)."""
    memo = repo.prov_dir / "snapshot-changes"
    key = f"{commit} {snapshot} {first}\n"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        text = memo.read_text(encoding="utf-8")
        if text.startswith(key):
            got = json.loads(text[len(key) :])
            return SnapshotChanges(
                int(got["new_count"]),
                tuple(str(p) for p in got["new_first"]),
                bool(got["tracked_changed"]),
            )
    listing = repo.git(
        "diff-tree", "-r", "-z", "--no-renames", "--name-status", commit, snapshot, check=False
    )
    fields = listing.stdout.split(b"\0")
    new: list[str] = []
    count = 0
    tracked_changed = False
    for status, path in zip(fields[0::2], fields[1::2], strict=False):
        if status == b"A":
            count += 1
            if len(new) < first:
                new.append(path.decode("utf-8", errors="surrogateescape"))
        elif status:
            tracked_changed = True
    found = SnapshotChanges(count, tuple(new), tracked_changed)
    if listing.returncode == 0:
        got = {"new_count": count, "new_first": new, "tracked_changed": tracked_changed}
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(key + json.dumps(got), encoding="utf-8")
            os.replace(tmp, memo)
    return found


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
                env=git_env(),
                stdin=feed,
                stdout=subprocess.PIPE,
                stderr=None if check else subprocess.DEVNULL,
            )
            ids = subprocess.run(
                ["git", "patch-id", "--stable"],
                cwd=cwd,
                env=git_env(),
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
