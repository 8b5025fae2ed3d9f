"""The parts of a record stored beside it: data manifests (a large unchanged one by its
memo), metric histories, logs, and the outputs' manifest as a run ends."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from git_prov.errors import ProvError
from git_prov.model.ids import HEX_OID_RE
from git_prov.model.manifest import MANIFEST_VERSION, DataEntry, DataManifest
from git_prov.store.ledger import MAX_OBJECT_BYTES, Ledger

if TYPE_CHECKING:
    from git_prov.model.history import Series
    from git_prov.model.values import Scalar
    from git_prov.progress import Progress
    from git_prov.recording import Prepared
    from git_prov.store.repo import GitRepo


# Manifests of at least this many files are remembered by content (see store_manifest).
_MEMO_ENTRIES = 256


def store_manifest(ledger: Ledger, manifest: DataManifest) -> str:
    """Store a data manifest; its blob id. A large manifest equal to one stored before (the
    same files, sizes, hashes …: a re-record of unchanged data) is not serialised again:
    ``<git dir>/prov/manifest-ids/`` maps a hash of its fields (every field of every entry,
    with the format version) to the blob id, used while that blob is in the repository."""
    if len(manifest.entries) < _MEMO_ENTRIES:
        return ledger.store_object(manifest.to_toml())
    import hashlib
    import marshal

    # marshal's version 2 has no back-references: equal values give equal bytes. (3x
    # cheaper than the manifest's repr; a value it cannot encode just skips the memo.)
    fields = [tuple(vars(e).values()) for e in manifest.entries]
    try:
        key = marshal.dumps((MANIFEST_VERSION, manifest.paths, manifest.missing, fields), 2)
    except ValueError:
        return ledger.store_object(manifest.to_toml())
    memo = ledger.repo.prov_dir / "manifest-ids" / hashlib.sha256(key).hexdigest()
    try:
        known = memo.read_text().strip()
    except OSError:
        known = ""
    if HEX_OID_RE.match(known) and ledger.repo.has_object(known):
        return known
    oid = ledger.store_object(manifest.to_toml())
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        partial = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
        partial.write_text(oid + "\n")
        os.replace(partial, memo)
    except OSError:
        pass  # (a cache: the next record serialises it again)
    return oid


def store_histories(
    ledger: Ledger,
    histories: Mapping[str, Series],
    goals: Mapping[str, str],
    warnings: list[str],
    run_id: str,
) -> tuple[str | None, dict[str, Mapping[str, Scalar]]]:
    """Store a run's histories as one blob; (its id, the summaries the record keeps).
    A history over the reader limit is not stored (its summaries still are), with a
    warning: no reader would read it."""
    histories = {k: s for k, s in histories.items() if len(s)}
    if not histories:
        return None, {}
    from git_prov.model.history import encode_history, goal_for, summarize

    summaries: dict[str, Mapping[str, Scalar]] = {
        k: summarize(s, goal_for(k, goals)) for k, s in histories.items()
    }
    blob = encode_history(histories)
    if len(blob) > MAX_OBJECT_BYTES:
        points = sum(len(s) for s in histories.values())
        warnings.append(
            f"metric history not kept: {points:,} points are {len(blob) >> 20} MiB, over the "
            f"{MAX_OBJECT_BYTES >> 20} MiB reader limit (the summaries are kept)"
        )
        return None, summaries
    from git_prov.store.drops import history_marked

    oid = ledger.store_object(blob)
    if history_marked(ledger, oid):
        # gc dropped these very bytes with another run: a merge would drop them from this
        # record too. The run id in the header makes them this run's own.
        oid = ledger.store_object(encode_history(histories, run=run_id))
    return oid, summaries


def store_log(ledger: Ledger, data: bytes, run_id: str) -> str:
    """Store run ``run_id``'s log ``data``; its blob id. Bytes equal to a log ``git prov gc``
    dropped (or that begin like a log header) get the header naming the run
    (:mod:`git_prov.model.logs`), so that no drop marker names this run's log."""
    from git_prov.model.logs import log_blob, needs_own_blob

    if needs_own_blob(data):
        return ledger.store_object(log_blob(data, run_id))
    from git_prov.store.drops import is_dropped

    oid = ledger.store_object(data)
    if is_dropped(ledger, oid):
        # gc dropped these very bytes with another run: a merge would drop them from this
        # record too. The run id in the header makes them this run's own.
        oid = ledger.store_object(log_blob(data, run_id))
    return oid


def capture_outputs(
    repo: GitRepo, prepared: Prepared, progress: Progress, warnings: list[str]
) -> DataManifest:
    """The outputs' manifest; a declared path that cannot be described (unreadable, not
    a regular file, …) is left out of its files, with a warning, rather than failing."""
    from git_prov.capture.data import build_manifest
    from git_prov.capture.keep import KEEP_OUTPUTS

    def build(paths: Sequence[str]) -> DataManifest:
        return build_manifest(
            repo.root,
            list(paths),
            cwd=repo.root,
            cache_path=repo.prov_dir / "hash-cache.sqlite",
            missing_ok=True,
            progress=progress,
            keep=keeping.chooser(KEEP_OUTPUTS) if keeping else None,
            keeper=keeping.store if keeping else None,
            before=prepared.outputs_before,
            git_ids=True,
        )

    keeping = prepared.keep
    declared = prepared.outputs_declared
    try:
        return build(declared)
    except Exception:  # find which path it was, and keep the others
        pass
    entries: list[DataEntry] = []
    missing: list[str] = []
    for path in declared:
        try:
            part = build([path])
        except ProvError as exc:
            warnings.append(f"output not recorded: {exc}")
            continue
        except Exception as exc:
            warnings.append(f"output {path} not recorded: {type(exc).__name__}: {exc}")
            continue
        entries.extend(part.entries)
        missing.extend(part.missing)
    return DataManifest.build(declared, entries, missing)
