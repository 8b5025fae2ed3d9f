"""The post-rewrite hook: git says which commit became which (``git commit --amend``,
``git rebase``), and runs follow. Idempotent (git may report a mapping twice). An ``amend``
fired by a fixup/squash step inside a rebase is skipped: the rebase's own event maps
originals to final commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from git_prov.model.ids import is_hex_oid
from git_prov.model.record import Attachment, Entry, RunRecord
from git_prov.store.ledger import NOTES_REF, Ledger
from git_prov.store.repo import GitRepo

HOW_AMEND = "amend"
HOW_REBASE = "rebase"
REWRITE_KINDS = (HOW_AMEND, HOW_REBASE)


def parse_rewrite_lines(lines: Iterable[str]) -> list[tuple[str, str]]:
    """git's post-rewrite input (``old new [extra]`` per line) as (old, new) pairs.

    Lines that do not start with two object ids are skipped.
    """
    pairs: list[tuple[str, str]] = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and is_hex_oid(parts[0]) and is_hex_oid(parts[1]):
            pairs.append((parts[0], parts[1]))
    return pairs


def follow_rewrite(repo: GitRepo, kind: str, lines: Iterable[str]) -> list[Attachment]:
    """The post-rewrite hook: ``kind`` is git's first argument (``amend``, ``rebase``),
    ``lines`` its input. Returns the attachments written.

    An ``amend`` while a rebase is in progress (a fixup/squash step, or an amend at an
    ``edit`` stop) is skipped: the ``rebase`` event at the end maps every original to its
    final commit, so the intermediate commits, which nothing will keep, get no attachments.
    """
    if kind == HOW_AMEND and rebase_in_progress(repo):
        return []
    return remap_rewritten(repo, parse_rewrite_lines(lines), kind)


def rebase_in_progress(repo: GitRepo) -> bool:
    """True while ``git rebase`` (merge or apply backend) is under way in this worktree."""
    if (repo.git_dir / "rebase-merge").is_dir():
        return True
    apply = repo.git_dir / "rebase-apply"
    return apply.is_dir() and not (apply / "applying").exists()  # "applying": git am


def remap_rewritten(
    repo: GitRepo,
    mapping: Iterable[tuple[str, str]],
    how: str,
    *,
    at: str | None = None,
    write: bool = True,
) -> list[Attachment]:
    """Show the runs of each rewritten ``old`` commit on its ``new`` commit as well.

    ``mapping`` is git's old → new map (several olds may map to one new: a squash);
    ``how`` says what rewrote it (``amend``, ``rebase``). Runs shown on ``old`` through an
    attachment follow too, and their new attachment names the commit the run ran on.
    Idempotent: a run already shown on ``new`` (by its record, an attachment, or git's own
    notes copying) gets nothing new, so a hook that fires twice writes nothing twice.
    Everything is written in one ledger commit; the originals stay kept. Returns the
    attachments written (without ``write``: those that would be, nothing is written).
    """
    pairs = list(dict.fromkeys((old, new) for old, new in mapping if old != new))
    ledger = Ledger(repo)
    if not pairs or ledger.tip(NOTES_REF) is None:
        return []
    stamp = at or now_iso()
    # run id → original commit, for what each commit shows (the ledger plus this batch, so a
    # chain old → mid → new inside one batch carries through).
    shown: dict[str, dict[str, str]] = {}

    def shown_on(commit: str) -> dict[str, str]:
        if commit not in shown:
            entries, _problems = ledger.entries_on(commit)
            shown[commit] = _runs_in(entries)
        return shown[commit]

    written: list[Attachment] = []
    for old, new in pairs:
        carried = shown_on(old)
        if not carried:
            continue
        target = shown_on(new)
        for run_id, original in sorted(carried.items()):
            if run_id in target or original == new:
                continue
            target[run_id] = original
            written.append(Attachment(run_id, new, original, how, stamp))
    if written and write:
        ledger.write(
            [(a.commit, a) for a in written],
            keep=present(repo, {a.original for a in written}),
            message=f"git-prov: {len(written)} run(s) follow {how}",
        )
    return written


def present(repo: GitRepo, commits: Iterable[str]) -> list[str]:
    """The commits this repository has (a kept commit must exist to be a parent)."""
    return sorted(c for c in commits if repo.has_object(c))


def _runs_in(entries: Iterable[Entry]) -> dict[str, str]:
    runs: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, RunRecord):
            runs.setdefault(entry.id, entry.commit)
        elif isinstance(entry, Attachment):
            runs.setdefault(entry.run, entry.original)
    return runs


def now_iso() -> str:
    """The current UTC time as ledger entries write it."""
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"
