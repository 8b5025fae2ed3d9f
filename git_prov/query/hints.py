"""What ``log`` and ``find`` add when runs seem to have vanished: runs sitting on commits no
branch reaches any more (an amend or rebase without the post-rewrite hook), and provenance a
clone has not fetched. Facts for the CLI to word; no printing here.

Both are cheap enough to ask on every query. Orphaned runs: the answer depends only on the
tips of the refs that keep commits alive and on the ledger, so it is cached under
``<git common dir>/prov/orphans.json`` keyed by both; a query whose key matches pays one
``git rev-parse`` (the alive tips). On a miss one ``cat-file`` and one ``rev-list`` answer
for every run at once (as :mod:`git_prov.rewrite.orphans` does, without loading pygit2).
Unfetched provenance is judged without any network access: see :func:`unfetched_remotes`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence

from git_prov.errors import RepositoryProblem
from git_prov.model.frozen import Fields, frozen_fields
from git_prov.query.rows import KIND_ATTACH, KIND_RUN
from git_prov.store.gitcli import object_headers, prov_dir, run_git
from git_prov.store.gitcli.paths import ALIVE_TIPS, RepoPaths, read_ref

CACHE_FILE = "orphans.json"
NOTES_REF = "refs/notes/prov"
TRACKING_PREFIX = "refs/notes/remotes/"  # refs/notes/remotes/<remote>/prov (docs/format.md)


def orphaned_run_count(
    paths: RepoPaths, db: object, notes_tip: str, alive: str | None = None
) -> int:
    """How many live runs of the index ``db`` (a sqlite3 connection) sit only on commits
    this repository has but no branch, remote-tracking branch, tag or HEAD reaches (runs on
    commits it does not have are not counted: their history is elsewhere). ``alive``: what
    ``git`` :data:`~git_prov.store.gitcli.paths.ALIVE_TIPS` printed, if already asked."""
    if not notes_tip:
        return 0
    if alive is None:
        alive = run_git(paths.cwd, ALIVE_TIPS, check=False).stdout.decode()
    tips = sorted({line for line in alive.split() if len(line) in (40, 64)})
    alive_key = " ".join(tips)  # (not hashed: hashlib is no import of find's)
    cache = prov_dir(paths.common_dir) / CACHE_FILE
    stored: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(cache.read_text())
        if isinstance(found, dict):
            stored = found
    if stored.get("alive") == alive_key and stored.get("notes") == notes_tip:
        orphaned = stored.get("orphaned")
        if isinstance(orphaned, int):
            return orphaned
    unreachable: set[str] | None = None
    old_unreachable = stored.get("unreachable")
    if stored.get("alive") == alive_key and isinstance(old_unreachable, list):
        # Only the ledger moved (a run recorded, a fetch): what was reachable still is;
        # look only at the notes that changed.
        changed = _changed_notes(paths, str(stored.get("notes", "")), notes_tip)
        if changed is not None:
            unreachable = set(old_unreachable) | _unreachable(paths, changed, tips)
    if unreachable is None:
        commits = [row[0] for row in db.execute("SELECT commit_id FROM notes")]  # type: ignore[attr-defined]
        unreachable = _unreachable(paths, commits, tips)
    count = _count_orphans(paths, db, unreachable)
    state = {"alive": alive_key, "notes": notes_tip, "unreachable": sorted(unreachable)}
    with contextlib.suppress(OSError):
        tmp = cache.with_name(f"{CACHE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**state, "orphaned": count}))
        os.replace(tmp, cache)
    return count


def _changed_notes(paths: RepoPaths, old_tip: str, new_tip: str) -> list[str] | None:
    """The commits whose note was added or changed from ledger ``old_tip`` to ``new_tip``
    (one ``diff-tree``, which descends only where the trees differ); None when that cannot
    be told (the old tip is gone)."""
    if not old_tip:
        return None
    proc = run_git(
        paths.cwd, ["diff-tree", "-r", "-z", "--name-only", old_tip, new_tip], check=False
    )
    if proc.returncode != 0:
        return None
    names = proc.stdout.decode("utf-8", "replace").split("\0")
    commits = [name.replace("/", "") for name in names if name]
    return [c for c in commits if len(c) in (40, 64)]


def _unreachable(paths: RepoPaths, commits: Sequence[str], alive: Sequence[str]) -> set[str]:
    """Those of ``commits`` this repository has that no ``alive`` tip reaches (one
    ``cat-file`` and one ``rev-list`` for all of them)."""
    present = _present(paths, commits)
    if not present:
        return set()
    feed = "".join(f"{c}\n" for c in sorted(present)) + "".join(f"^{t}\n" for t in alive)
    proc = run_git(paths.cwd, ["rev-list", "--stdin"], input=feed.encode(), check=False)
    if proc.returncode != 0:
        return set()  # (a damaged repository: fsck's business, not a hint's)
    return present & set(proc.stdout.decode().split())


def _count_orphans(paths: RepoPaths, db: object, unreachable: set[str]) -> int:
    """The live runs every commit of which that this repository has is in
    ``unreachable``; usually there is none and no run is looked at."""
    if not unreachable:
        return 0
    # The runs shown on an unreachable commit, then every commit each of them is shown on
    # (through the lines_note and lines_run indexes: the few orphans, not every run).
    db.execute("CREATE TEMP TABLE IF NOT EXISTS hint_notes (note TEXT PRIMARY KEY)")  # type: ignore[attr-defined]
    db.execute("DELETE FROM temp.hint_notes")  # type: ignore[attr-defined]
    db.executemany("INSERT INTO temp.hint_notes VALUES (?)", ((c,) for c in unreachable))  # type: ignore[attr-defined]
    rows = db.execute(  # type: ignore[attr-defined]
        "SELECT DISTINCT run, note FROM lines WHERE kind IN (?, ?) AND run IN ("
        " SELECT run FROM lines WHERE live = 1 AND run IN ("
        "  SELECT run FROM lines WHERE note IN temp.hint_notes AND kind IN (?, ?)))",
        (KIND_RUN, KIND_ATTACH, KIND_RUN, KIND_ATTACH),
    ).fetchall()
    db.execute("DELETE FROM temp.hint_notes")  # type: ignore[attr-defined]
    shown: dict[str, set[str]] = {}
    for run, note in rows:
        shown.setdefault(run, set()).add(note)
    # A run's other commits are reachable (not in ``unreachable``) or not in this
    # repository at all; only the latter leave it an orphan.
    others = sorted({c for notes in shown.values() for c in notes - unreachable})
    here = _present(paths, others)
    return sum(1 for notes in shown.values() if not (notes - unreachable) & here)


def _present(paths: RepoPaths, commits: Sequence[str]) -> set[str]:
    """Those of ``commits`` that are commits in this repository (one ``cat-file``)."""
    try:
        found = object_headers(paths.cwd, commits)
    except RepositoryProblem:  # (a hint: none rather than an error)
        return set()
    return {oid for oid, (kind, _) in found.items() if kind == "commit"}


def rewrite_hook_installed(paths: RepoPaths) -> bool:
    """Whether git-prov's post-rewrite hook is where git runs hooks (core.hooksPath too)."""
    from pathlib import Path

    from git_prov.hooks_install import is_ours

    where = run_git(paths.cwd, ["rev-parse", "--git-path", "hooks"], check=False)
    hooks = Path(where.stdout.decode().strip())
    if not hooks.is_absolute():
        hooks = paths.cwd / hooks
    return is_ours(hooks / "post-rewrite", "post-rewrite")


@frozen_fields
class Unfetched(Fields):
    """Why an empty ledger may not be the whole story (:func:`unfetched_remotes`)."""

    tracked: tuple[str, ...]  # remotes whose provenance was fetched into tracking refs
    remotes: tuple[str, ...]  # every remote of this repository

    def __init__(self, tracked: tuple[str, ...], remotes: tuple[str, ...]) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "tracked", tracked)
        set_(self, "remotes", remotes)


def unfetched_remotes(paths: RepoPaths) -> Unfetched | None:
    """For a repository with no ledger of its own (no ``refs/notes/prov``): the remotes
    whose provenance sits fetched but not merged (``refs/notes/remotes/<r>/prov``: a plain
    ``git fetch`` after ``init --remote``), and every remote. None when there is a ledger.

    No network: whether a remote *has* provenance is known only once something fetched
    it. A fresh ``git clone`` brings branches only, so for its remotes the answer is "may
    have" — the CLI says so and how to look (``git prov fetch``)."""
    if read_ref(paths, NOTES_REF):
        return None
    refs = run_git(
        paths.cwd, ["for-each-ref", "--format=%(refname)", TRACKING_PREFIX], check=False
    ).stdout.decode()
    tracked = tuple(
        sorted(
            name.removeprefix(TRACKING_PREFIX).removesuffix("/prov")
            for name in refs.split()
            if name.endswith("/prov")
        )
    )
    remotes = tuple(run_git(paths.cwd, ["remote"], check=False).stdout.decode().split())
    return Unfetched(tracked, remotes)
