"""Unchanged input data costs a walk: the manifest stored for the same files is reused.

Re-recording the same declared inputs (a directory of 20k unchanged files) would otherwise
look up every file in the stat cache, build every manifest entry and serialise the same
manifest again. Instead, ``<git common dir>/prov/data-memo/<key>`` (one small file per set
of declared paths of a working tree) holds a *fingerprint* of the last listing — every
file's name, mode, size, mtime, ctime, inode, device and link target, in walk order, as
git's index keeps them — and the id of the manifest stored for it. A re-record walks and
``stat``\\ s the files (:func:`~git_prov.capture.data.list_data`) and, when the fingerprint
is the same, names that manifest without reading or hashing anything.

What the manifest depends on besides the files' stat data is checked too, and anything
unsure falls back to the full path (which then writes a new memo):

* racy files (git's rule): a listing with a file modified within :data:`RACY_NS` before the
  walk is never remembered, since it could change again without its stat data changing;
* git: only manifests whose every entry was hashed from its bytes (``source = "read"``,
  present, not kept) are remembered. Such a manifest stays right while git's index is the
  one seen then (same stat data, not racy), or while ``git ls-files`` lists no file under
  the declared paths (no file can then be named by its blob id);
* DVC and git-annex: no ``.dvc/`` in or above any directory of the files (DVC metadata
  could name them); annexed files are links, whose targets are in the fingerprint.

The memo is only a cache: a memo that cannot be read or written is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import operator
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from git_prov import __version__
from git_prov.capture.data import DataListing
from git_prov.capture.dvc import in_a_project
from git_prov.capture.hashing import RACY_NS
from git_prov.model.ids import is_hex_oid
from git_prov.model.manifest import MANIFEST_VERSION, SOURCE_READ, DataManifest

MEMO_VERSION = 1
_MEMO_DIR = "data-memo"

IndexStat = tuple[int, int, int, int, int]
_MTIME = operator.itemgetter(3)


class DataMemo:
    """The memo of one set of declared input paths, for one listing of them."""

    def __init__(self, prov_dir: Path, index: Path | None, listing: DataListing) -> None:
        """``index``: git's index file for the working tree (None when git uses another,
        e.g. ``GIT_INDEX_FILE``: every hit then asks ``git ls-files``)."""
        self.listing = listing
        # Before git is asked anything about the files: a later change shows as new stat data.
        self._index_path = index
        self._index = _trusted_stat(index, listing.started_ns) if index is not None else None
        self.fingerprint = fingerprint(listing)
        # git-prov's version too: another version may build another manifest of the files.
        key = "\0".join((str(MEMO_VERSION), __version__, listing.root, *listing.declared))
        name = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        self.path = prov_dir / _MEMO_DIR / name

    def recall(self) -> str | None:
        """The id of the manifest stored for exactly these files, if it can be trusted
        (the caller checks the object is still in the repository)."""
        if self.fingerprint is None:
            return None
        try:
            memo = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if not (
            isinstance(memo, dict)
            and memo.get("version") == MEMO_VERSION
            and memo.get("fingerprint") == self.fingerprint
        ):
            return None
        oid = memo.get("manifest")
        if not (isinstance(oid, str) and is_hex_oid(oid)):
            return None
        index = memo.get("index")
        same_index = (
            self._index is not None and isinstance(index, list) and tuple(index) == self._index
        )
        if not same_index and not _untracked(self.listing.root, self.listing.present):
            return None
        if in_a_project(self.listing.root, self.listing.directories):
            return None
        if not same_index and self._index is not None:
            self._write(oid)  # the index is settled now: the next hit need not ask git
        return oid

    def remember(self, manifest: DataManifest, oid: str) -> None:
        """Remember that these files gave ``manifest``, stored as ``oid`` (unless it names
        something beyond the files' bytes: see the module's doc)."""
        if self.fingerprint is None or not all(
            e.source == SOURCE_READ and e.present is None and e.kept is None and not e.also
            for e in manifest.entries
        ):
            return
        self._write(oid)

    def _write(self, oid: str) -> None:
        memo = {
            "version": MEMO_VERSION,
            "manifest_version": MANIFEST_VERSION,
            "fingerprint": self.fingerprint,
            "manifest": oid,
            "index": list(self._index) if self._index is not None else None,
        }
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(memo))
            os.replace(partial, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink()


def fingerprint(listing: DataListing) -> str | None:
    """A digest of every file's name and stat data in ``listing`` (None when they cannot
    vouch for the files: one was modified within :data:`RACY_NS` before the walk, a
    declared path is missing, or an annexed file's content is absent)."""
    if listing.missing:
        return None
    files = listing.files.values()
    if any(f.absent for f in files):
        return None
    rows = [
        (f.rel, s.st_mode, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino, s.st_dev, f.link)
        for f in files
        for s in (f.stat,)
    ]
    # git's racy rule: a file whose mtime is this recent could change again in the same
    # timestamp tick, leaving its stat data as they are now.
    if rows and max(map(_MTIME, rows)) > listing.started_ns - RACY_NS:
        return None
    # Version 2 of marshal's format: no back-references, so equal values give equal bytes.
    blob = marshal.dumps((MANIFEST_VERSION, listing.declared, rows), 2)
    return hashlib.sha256(blob).hexdigest()


def _trusted_stat(path: Path, now_ns: int) -> IndexStat | None:
    """A file's stat data, if a later change to it must change them (not racy)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_mtime_ns > now_ns - RACY_NS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _untracked(root: str, pathspecs: Sequence[str]) -> bool:
    """Whether git's index has no file under ``pathspecs`` (False when git cannot tell)."""
    try:
        proc = subprocess.run(
            [
                "git",
                "--literal-pathspecs",
                "--no-optional-locks",
                "ls-files",
                "-z",
                "--",
                *pathspecs,
            ],
            cwd=root,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return False
    return proc.returncode == 0 and not proc.stdout
