"""``git prov fsck``: is the ledger whole, and can everything it names be read?

Checks, in order (each finding has a severity: ``error`` makes fsck exit 1, ``warning``
and ``info`` do not):

* the ledger refs (``refs/notes/prov``, ``refs/prov/objects``) point at readable commits —
  if not, :class:`~git_prov.errors.CorruptLedger` (exit 9): nothing else can be trusted;
* stale ``*.lock`` files on ledger refs left by a killed writer (warning; the next
  git-prov write removes them, see :func:`git_prov.store.reflocks.recover_stale_ref_locks`);
* every note line parses (commit and line number of each that does not); no two lines
  give one run id different content (a conflict); tombstones and attachments naming
  runs this ledger does not have (info);
* every run's commit and snapshot exist (and are kept by ``refs/prov/objects``), every
  manifest and log it names exists, is reachable from ``refs/prov/objects`` (or was
  dropped by ``git prov gc``), is not larger than the manifest limit (checked from the
  object header, before reading), parses, and names only safe paths (no ``..``, no
  absolute paths, no control characters);
* every path of the objects tree is well formed and content-addressed (``data/ab/cd…``
  holds the blob ``abcd…``), every kept commit exists;
* the ``git log`` display ref lists the commits that have runs (warning);
* kept bytes (``refs/prov/data``): every git blob and git-LFS object is here with the size
  its pointer names — or, when not, whether it can still be had (git-prov's hold on an
  unpushed object `git lfs prune` removed, a remote that has it: ``info``) or is lost
  (``error``); with ``--data`` their bytes are hashed too (a mismatch is an ``error``);
* with ``--data``: the files of data manifests that still exist in the working tree are
  re-hashed and compared (``info``: drift is what ``git prov check`` is for, not damage).

Nothing is modified (stale ref locks are removed by the writers:
:func:`git_prov.store.reflocks.recover_stale_ref_locks`).

The checks live in the package's modules: the notes and runs in :mod:`.notes`, stored
objects in :mod:`.objects`, kept bytes in :mod:`.kept`, ``--data`` in :mod:`.drift`; what
they find in :mod:`.findings`.
"""

from __future__ import annotations

from git_prov.errors import CorruptLedger
from git_prov.fsck.drift import check_data
from git_prov.fsck.findings import ERROR as ERROR
from git_prov.fsck.findings import INFO as INFO
from git_prov.fsck.findings import REPAIR_HINT as REPAIR_HINT
from git_prov.fsck.findings import SEVERITIES as SEVERITIES
from git_prov.fsck.findings import WARNING as WARNING
from git_prov.fsck.findings import Finding as Finding
from git_prov.fsck.findings import FsckReport as FsckReport
from git_prov.fsck.kept import check_kept
from git_prov.fsck.notes import RunChecks, check_display, check_notes
from git_prov.fsck.objects import objects_tree_paths
from git_prov.fsck.objects import unsafe_path_reason as unsafe_path_reason
from git_prov.store.headers import ObjectHeaders
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF, Ledger
from git_prov.store.reflocks import STALE_LOCK_SECONDS as STALE_LOCK_SECONDS
from git_prov.store.reflocks import ledger_ref_locks, lock_age
from git_prov.store.reflocks import recover_stale_ref_locks as recover_stale_ref_locks
from git_prov.store.repo import GitError, GitRepo, Tree

# ---- the check ------------------------------------------------------------------------------


def _tip_tree(ledger: Ledger, ref: str) -> Tree | None:
    try:
        tip = ledger.tip(ref)
        return tip.tree if tip is not None else None
    except CorruptLedger:
        raise
    except (KeyError, ValueError, GitError) as exc:
        raise CorruptLedger(f"{ref} cannot be read: {exc}", REPAIR_HINT) from None


def fsck(repo: GitRepo, *, data: bool = False) -> FsckReport:
    """Check the ledger of ``repo``; raises CorruptLedger when its refs cannot be read."""
    ledger = Ledger(repo)
    report = FsckReport()
    objects = ObjectHeaders(repo)
    notes_tree = _tip_tree(ledger, NOTES_REF)
    objects_tree = _tip_tree(ledger, OBJECTS_REF)
    for path in ledger_ref_locks(repo):
        age = lock_age(path)
        report.add(
            WARNING,
            "stale-lock",
            f"{path} exists ({age or 0:.0f} s old): a writer was killed inside a ref update; "
            f"the next git-prov write removes it, or remove it yourself: rm '{path}'",
            path=str(path),
        )
    try:
        tree_paths = objects_tree_paths(repo, objects_tree, objects, report)
        checks = RunChecks(tree_paths, objects)
        runs = check_notes(ledger, notes_tree, objects, report, checks, keep_all=data)
    except (KeyError, GitError) as exc:
        raise CorruptLedger(
            f"the ledger's trees are incomplete or damaged: {exc}", REPAIR_HINT
        ) from None
    checks.finish(report)
    check_display(ledger, runs, report)
    check_kept(repo, objects, report, hash_bytes=data)
    if data and repo.workdir is not None:
        check_data(repo, runs, tree_paths, objects, report)
    return report


def summary(report: FsckReport) -> str:
    """The last line of ``git prov fsck``."""
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITIES}
    checked = (
        f"checked {report.notes} notes, {report.lines} lines, {report.runs} runs, "
        f"{report.objects} stored objects"
        + (f", {report.kept} kept files" if report.kept else "")
        + (f", re-hashed {report.files_hashed} files" if report.files_hashed else "")
    )
    verdict = (
        "ledger is consistent"
        if report.ok
        else f"{counts[ERROR]} problem{'s' if counts[ERROR] != 1 else ''}"
    )
    extra = ", ".join(f"{counts[s]} {s}" for s in (WARNING, INFO) if counts[s])
    return f"{checked}: {verdict}" + (f" ({extra})" if extra else "")
