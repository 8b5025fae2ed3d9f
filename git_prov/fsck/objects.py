"""fsck of stored objects: the objects tree's paths, the commits, manifests, logs and histories
a run names.
"""

from __future__ import annotations

import re

from git_prov.fsck.findings import ERROR, INFO, WARNING, FsckReport
from git_prov.model.ids import is_hex_oid
from git_prov.model.manifest import MAX_MANIFEST_BYTES, DataManifest, EnvironmentManifest
from git_prov.store.drops import (
    DROP_DIR,  # drop/<ab>/<rest>: a log `git prov gc` dropped
    HISTORY_DROP_DIR,  # drop-metrics/…: a dropped metric history
)
from git_prov.store.headers import OBJ_BLOB, ObjectHeaders
from git_prov.store.ledger import (
    KEEP_DIR,
    KIND_DATA,
    KIND_ENV,
    KIND_LOG,
    KIND_METRICS,
    object_path,
)
from git_prov.store.repo import GitRepo, Tree

# Top-level directories of the objects tree this version knows; others are reported as
# information (a newer git-prov may add some).
_CONTENT_ADDRESSED = (KIND_DATA, KIND_ENV, KIND_LOG, KIND_METRICS)
# drop-data/<ab>/<rest of sha256>: kept bytes `git prov gc` dropped (git_prov.store.kept)
_KNOWN_TOP = {*_CONTENT_ADDRESSED, KEEP_DIR, DROP_DIR, HISTORY_DROP_DIR, "envtag", "drop-data"}
_HEX = re.compile(r"^[0-9a-f]+\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def objects_tree_paths(
    repo: GitRepo, tree: Tree | None, objects: ObjectHeaders, report: FsckReport
) -> set[str]:
    """Every blob path of the objects tree, checked for shape and content addressing."""
    paths: set[str] = set()
    if tree is None:
        return paths
    for name, kind, oid in repo.tree_listing(tree):
        if name not in _KNOWN_TOP:
            report.add(
                INFO,
                "unknown-tree-entry",
                f"refs/prov/objects has {name!r}, which this version does not know",
                path=name,
            )
            continue
        if name in ("envtag", "drop-data") or kind != "tree":
            continue
        for fan_name, fan_kind, fan_id in repo.tree_listing(oid):
            if fan_kind != "tree" or len(fan_name) != 2 or not _HEX.match(fan_name):
                report.add(ERROR, "bad-tree-path", f"malformed objects path {name}/{fan_name!r}")
                continue
            for rest, leaf_kind, leaf_id in repo.tree_listing(fan_id):
                named = fan_name + rest
                path = f"{name}/{fan_name}/{rest}"
                report.objects += 1
                if leaf_kind != "blob" or not is_hex_oid(named):
                    report.add(ERROR, "bad-tree-path", f"malformed objects path {path!r}")
                    continue
                if name in _CONTENT_ADDRESSED and leaf_id != named:
                    report.add(
                        ERROR,
                        "tree-content-mismatch",
                        f"{path} holds object {leaf_id}, not the object its name says",
                        path=path,
                        object=leaf_id,
                    )
                    continue
                paths.add(path)
    for path in sorted(paths):
        if path.startswith(KEEP_DIR + "/"):
            oid = path[len(KEEP_DIR) + 1 :].replace("/", "")
            if not objects.exists(oid):
                report.add(
                    ERROR,
                    "keep-missing-commit",
                    f"refs/prov/objects keeps commit {oid[:12]}, which is missing (a history "
                    "rewrite such as git filter-repo purged it: the code runs ran on is gone)",
                    object=oid,
                )
        elif path.startswith(DROP_DIR + "/"):
            oid = path[len(DROP_DIR) + 1 :].replace("/", "")
            if object_path(KIND_LOG, oid) in paths:
                report.add(
                    WARNING,
                    "dropped-log-present",
                    f"log {oid[:12]} was dropped by git prov gc but came back with a merge; "
                    "`git prov gc --logs-only --force` drops it again",
                    object=oid,
                )
        elif path.startswith(HISTORY_DROP_DIR + "/"):
            oid = path[len(HISTORY_DROP_DIR) + 1 :].replace("/", "")
            if object_path(KIND_METRICS, oid) in paths:
                report.add(
                    WARNING,
                    "dropped-history-present",
                    f"metric history {oid[:12]} was dropped by git prov gc but came back "
                    "with a merge; `git prov gc` drops it again (unless a run names it)",
                    object=oid,
                )
    return paths


def check_commit(
    run_id: str,
    what: str,
    oid: str,
    tree_paths: set[str],
    objects: ObjectHeaders,
    report: FsckReport,
    *,
    present: bool = False,
) -> None:
    """A run's commit or snapshot: in this repository (``present``: known to be a commit
    already), and kept."""
    if not present and not objects.is_commit(oid):
        if object_path(KEEP_DIR, oid) in tree_paths:
            # We kept it, so it was here: a history rewrite purged it (git filter-repo's
            # default rewrites refs/prov/objects too).
            from git_prov.rewrite.filter_repo import rewritten_to

            new = rewritten_to(objects.repo.path, oid)
            detail = (
                f"git filter-repo rewrote it to {new[:12]}; git prov remap shows the run there"
                if new
                else "purged by a history rewrite such as git filter-repo"
            )
            message = (
                f"run {run_id}: the code it ran on no longer exists: its {what} "
                f"{oid[:12]} was kept but is not in this repository ({detail})"
            )
        else:
            message = (
                f"run {run_id}: its {what} {oid[:12]} is not in this repository "
                "(fetch the provenance it came with: git prov fetch)"
            )
        report.add(ERROR, f"missing-{what}", message, run=run_id, object=oid)
    elif object_path(KEEP_DIR, oid) not in tree_paths:
        report.add(
            WARNING,
            f"{what}-not-kept",
            f"run {run_id}: its {what} {oid[:12]} is not kept by refs/prov/objects "
            "(git gc may delete it once no branch reaches it)",
            run=run_id,
            object=oid,
        )


_WHAT = {KIND_LOG: "log", KIND_METRICS: "blob"}


def _check_history(
    run_id: str, oid: str, size: int, objects: ObjectHeaders, report: FsckReport
) -> None:
    """A run's metric history blob: within the reader limit, and in its layout."""
    where = {"run": run_id, "object": oid}
    if size > MAX_MANIFEST_BYTES:
        report.add(
            ERROR,
            "object-too-large",
            f"run {run_id}: its metric history {oid[:12]} is {size >> 20} MiB, over the "
            f"{MAX_MANIFEST_BYTES >> 20} MiB limit: not read",
            **where,
        )
        return
    from git_prov.model.history import decode_history

    try:
        decode_history(objects.blob(oid))
    except ValueError as exc:
        report.add(ERROR, "bad-history", f"run {run_id}: metric history {oid[:12]}: {exc}", **where)


def check_object(
    run_id: str,
    what: str,
    kind: str,
    oid: str,
    tree_paths: set[str],
    objects: ObjectHeaders,
    report: FsckReport,
) -> None:
    where = {"run": run_id, "object": oid}
    in_tree = object_path(kind, oid) in tree_paths
    dropped = kind == KIND_LOG and object_path(DROP_DIR, oid) in tree_paths
    if dropped and not in_tree:
        report.add(INFO, "log-dropped", f"run {run_id}: {what} log dropped by git prov gc", **where)
        return
    if kind == KIND_METRICS and not in_tree and object_path(HISTORY_DROP_DIR, oid) in tree_paths:
        report.add(
            INFO, "history-dropped", f"run {run_id}: metric history dropped by git prov gc", **where
        )
        return
    header = objects.header(oid)
    if header is None:
        report.add(
            ERROR,
            "missing-object",
            f"run {run_id}: its {what} {_WHAT.get(kind, 'manifest')} {oid[:12]} is missing",
            **where,
        )
        return
    if header[0] != OBJ_BLOB:
        report.add(
            ERROR, "not-a-blob", f"run {run_id}: its {what} {oid[:12]} is not a blob", **where
        )
        return
    if not in_tree:
        report.add(
            WARNING,
            "object-not-in-tree",
            f"run {run_id}: its {what} {oid[:12]} is not reachable from refs/prov/objects "
            "(git gc may delete it; it is not pushed)",
            **where,
        )
    if kind == KIND_LOG:
        return
    if kind == KIND_METRICS:
        _check_history(run_id, oid, header[1], objects, report)
        return
    if header[1] > MAX_MANIFEST_BYTES:
        report.add(
            ERROR,
            "object-too-large",
            f"run {run_id}: its {what} manifest {oid[:12]} is {header[1] >> 20} MiB, over the "
            f"{MAX_MANIFEST_BYTES >> 20} MiB limit: not read",
            **where,
        )
        return
    try:
        raw = objects.blob(oid)
        if kind == KIND_DATA:
            data_manifest = DataManifest.from_toml(raw)
            paths = [
                *data_manifest.paths,
                *data_manifest.missing,
                *(e.path for e in data_manifest.entries),
            ]
            links = [e.link for e in data_manifest.entries if e.link is not None]
        else:
            env_manifest = EnvironmentManifest.from_toml(raw)
            paths = list(env_manifest.lockfiles)
            links = []
    except (ValueError, RecursionError) as exc:
        report.add(
            ERROR, "bad-manifest", f"run {run_id}: {what} manifest {oid[:12]}: {exc}", **where
        )
        return
    for path in sorted(set(paths)):
        reason = unsafe_path_reason(path)
        if reason:
            report.add(
                ERROR,
                "unsafe-path",
                f"run {run_id}: {what} manifest {oid[:12]} names {path!r}: {reason}",
                path=path,
                **where,
            )
    for link in links:
        if _CONTROL.search(link):
            report.add(
                ERROR,
                "unsafe-path",
                f"run {run_id}: {what} manifest {oid[:12]} has a link target with control "
                f"characters: {link!r}",
                path=link,
                **where,
            )


def unsafe_path_reason(path: str) -> str | None:
    """Why a repo-relative path from a manifest must not be used, or None when it is fine:
    empty, absolute, with ``..``/``.``/empty components, inside ``.git``, or with control
    characters (a newline in a path can forge lines of output)."""
    if not path:
        return "empty path"
    if _CONTROL.search(path):
        return "control characters in the path"
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        return "absolute path"
    parts = path.split("/")
    if ".." in parts:
        return "'..' leaves the working tree"
    if "." in parts or "" in parts:
        return "not a normalised path"
    if parts[0] == ".git":
        return "inside .git"
    return None
