"""Kept data read through the ``git`` binary, without pygit2: what ``git prov get`` needs
to copy bytes that are kept here (the layout of ``refs/prov/data`` is described in
:mod:`git_prov.store.kept`, which re-exports the names defined here).

* the names of the data tree: :func:`kept_path`, :func:`drop_path`, :func:`sha256_of`,
  :func:`tracking_data_ref`, :class:`Found`;
* git-prov's second name of unpushed LFS objects (:func:`guard_unpushed`,
  :func:`restore_kept_lfs`, …): plain files, no git at all;
* :func:`manifests_here` and :func:`kept_here`: a run's data manifests and where their
  kept bytes are named, through ``git for-each-ref``, ``git ls-tree`` and ``git cat-file``
  (a few short processes instead of loading pygit2). Both answer None whenever anything
  is not as a plain local ``get`` expects (a missing or oversized object, a ref that is
  not a commit, a symbolic ref): the caller then takes the pygit2 path, which says
  exactly what is wrong.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from git_prov.model.manifest import KEPT_GIT, KEPT_LFS
from git_prov.store.gitcli import CatFile, run_git
from git_prov.store.lfs import LfsError, has_lfs_object, lfs_object_path

DATA_REF = "refs/prov/data"
OBJECTS_REF = "refs/prov/objects"  # (the same name as store.ledger.OBJECTS_REF)
GIT_DIR = "sha256"
LFS_DIR = "lfs"
DROP_DATA_DIR = "drop-data"  # in refs/prov/objects: kept bytes dropped by `git prov gc`
UNPUSHED_DIR = "lfs-unpushed"
_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")
HEX64 = re.compile(r"[0-9a-f]{64}")
_TRACKING_PREFIX, _TRACKING_SUFFIX = "refs/prov/remotes/", "/data"


def tracking_data_ref(remote: str) -> str:
    """Where a remote's ``refs/prov/data`` is fetched to (never written by hand)."""
    from git_prov.store.gitcli import remote_key

    return f"{_TRACKING_PREFIX}{remote_key(remote)}{_TRACKING_SUFFIX}"


def tracking_remote_of(ref: str) -> str | None:
    """The remote whose tracking data ref ``ref`` is, or None."""
    if ref.startswith(_TRACKING_PREFIX) and ref.endswith(_TRACKING_SUFFIX):
        return ref[len(_TRACKING_PREFIX) : -len(_TRACKING_SUFFIX)]
    return None


def sha256_of(hash_value: str) -> str | None:
    """The hex digest of a ``sha256:<hex>`` hash, else None (other algorithms are never
    kept by git-prov: their bytes live in the store that named them)."""
    match = _SHA256.fullmatch(hash_value)
    return match.group(1) if match else None


def kept_path(kind: str, digest: str) -> str:
    """The path of kept bytes (or their LFS pointer) in the data tree."""
    return f"{GIT_DIR if kind == KEPT_GIT else LFS_DIR}/{digest[:2]}/{digest[2:]}"


def drop_path(digest: str) -> str:
    """The marker in ``refs/prov/objects`` saying these kept bytes were dropped."""
    return f"{DROP_DATA_DIR}/{digest[:2]}/{digest[2:]}"


@dataclass(frozen=True)
class Found:
    """Where kept bytes can be had: a git blob, or an LFS object (``size`` bytes) whose
    pointer is in ``ref``'s tree."""

    kind: str
    ref: str
    blob: str | None = None  # the git blob with the bytes (KEPT_GIT)


class Where(Protocol):
    """A repository's directories (a pygit2 ``GitRepo`` or a ``RepoPaths``)."""

    @property
    def common_dir(self) -> os.PathLike[str]: ...

    @property
    def prov_dir(self) -> os.PathLike[str]: ...


# ---- kept LFS objects that were never pushed -------------------------------------------------
#
# `git lfs prune` keeps the objects of the current checkout, of recent refs (any ref, ours
# included, whose tip is newer than lfs.fetchrecentrefsdays + lfs.pruneoffsetdays: 10 days
# by default) and of commits on branches and tags that were not pushed; it knows nothing of
# refs/prov/data. So a kept object whose last keep is older than that is pruned, pushed or
# not. An unpushed one would be lost for good: git-prov holds a second name of it (a hard
# link: no bytes copied) under <common>/prov/lfs-unpushed/ until `git prov push --data` has
# uploaded it, and puts it back into the store whenever it is looked for.


def guard_path(repo: Where, digest: str) -> str:
    """git-prov's second name of the LFS object ``digest``."""
    lfs_object_path(Path(repo.common_dir), digest)  # (checks that it is an object id)
    return os.path.join(repo.prov_dir, UNPUSHED_DIR, digest)


def guard_unpushed(repo: Where, digest: str, stored: os.PathLike[str] | str) -> None:
    """Hold a second name of the new object ``stored`` until it is pushed (best effort:
    a file system without hard links goes without)."""
    guard = guard_path(repo, digest)
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(guard), exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.link(stored, guard)


def release_guards(repo: Where, digests: Iterable[str]) -> None:
    """Drop the second names of objects a remote now has (or that gc dropped)."""
    for digest in digests:
        with contextlib.suppress(OSError, LfsError):
            os.unlink(guard_path(repo, digest))


def unpushed_digests(repo: Where) -> set[str]:
    """Digests of kept LFS objects git-prov holds because they were never pushed."""
    try:
        names = os.listdir(os.path.join(repo.prov_dir, UNPUSHED_DIR))
    except OSError:
        return set()
    return {n for n in names if HEX64.fullmatch(n)}


def restore_kept_lfs(repo: Where, digest: str, size: int | None = None) -> bool:
    """Whether the local LFS store holds object ``digest`` (of ``size`` bytes, when
    given) — putting it back from git-prov's second name when `git lfs prune` removed it."""
    common = Path(repo.common_dir)
    if size is not None and has_lfs_object(common, digest, size):
        return True
    guard = guard_path(repo, digest)
    try:
        held = os.stat(guard).st_size
    except OSError:
        held = None
    if held is None or (size is not None and held != size):
        return size is None and lfs_object_path(common, digest).is_file()
    target = lfs_object_path(common, digest)
    with contextlib.suppress(OSError):
        if not has_lfs_object(common, digest, held):
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(guard, target)
    return has_lfs_object(common, digest, held)


# ---- reading through git ---------------------------------------------------------------------


# What kept_here reads of the refs: the data refs and the objects ref, each with its type
# and whether it is symbolic (a caller may start it early and do other work meanwhile).
REF_LISTING = (
    "for-each-ref",
    "--format=%(objectname) %(objecttype) %(symref) %(refname)",
    DATA_REF,
    OBJECTS_REF,
    _TRACKING_PREFIX,
)


def manifests_here(cat: CatFile, oids: Sequence[str], limit: int) -> dict[str, bytes] | None:
    """The bytes of the blobs ``oids`` (data manifests), read through ``cat`` after their
    headers say each is a blob of at most ``limit`` bytes; None when one is not (missing,
    not a blob, too large, not an object id)."""
    from git_prov.model.ids import is_hex_oid

    if not all(is_hex_oid(oid) for oid in oids):
        return None
    headers = cat.info(oids)
    if headers is None or any(h is None or h[0] != "blob" or h[1] > limit for h in headers):
        return None
    blobs = cat.contents(oids)
    return blobs if blobs is not None and all(oid in blobs for oid in oids) else None


@dataclass(frozen=True)
class KeptHere:
    """What the data trees of this repository say about some digests."""

    found: dict[str, Found]  # digest → where its bytes are named first
    dropped: frozenset[str]  # those of the digests `git prov gc` dropped
    sizes: dict[str, int]  # git blob id → size, for KEPT_GIT bytes


def kept_here(
    cat: CatFile, listed: subprocess.CompletedProcess[bytes], digests: Sequence[str]
) -> KeptHere | None:
    """Where the kept bytes of ``digests`` are named — in ``refs/prov/data``, then in the
    tracking data refs of remotes in remote-name order, as
    :func:`git_prov.store.kept.find_kept` looks — and which were dropped, read through
    ``cat`` from the refs ``listed`` (what git :data:`REF_LISTING` said). None when a
    ledger ref is not a plain ref to a commit with its tree here."""
    if listed.returncode != 0:
        return None
    tips: dict[str, str] = {}
    for line in listed.stdout.decode("utf-8", "surrogateescape").splitlines():
        oid, kind, rest = [*line.split(" ", 2), "", ""][:3]
        symref, _, ref = rest.partition(" ")
        if ref in (DATA_REF, OBJECTS_REF) or tracking_remote_of(ref) is not None:
            if kind != "commit" or symref:
                return None
            tips[ref] = oid
    remotes = sorted(r for ref in tips if (r := tracking_remote_of(ref)) is not None)
    data_refs = [r for r in (DATA_REF, *(tracking_data_ref(x) for x in remotes)) if r in tips]
    # Every tip's tree must be here (a pygit2 read of the ref would fail without it); then,
    # for each digest and data tree, the blob (kept bytes) and the LFS pointer path; then
    # whether the objects tree has drop markers at all.
    queries = [f"{tips[ref]}^{{tree}}" for ref in tips]
    for digest in digests:
        for ref in data_refs:
            queries.append(f"{tips[ref]}:{kept_path(KEPT_GIT, digest)}")
            queries.append(f"{tips[ref]}:{kept_path(KEPT_LFS, digest)}")
    objects_tip = tips.get(OBJECTS_REF)
    if objects_tip is not None:
        queries.append(f"{objects_tip}:{DROP_DATA_DIR}")
    headers = cat.info(queries)
    if headers is None or any(h is None for h in headers[: len(tips)]):
        return None
    answers = iter(headers[len(tips) :])
    found: dict[str, Found] = {}
    sizes: dict[str, int] = {}
    for digest in digests:
        for ref in data_refs:
            blob, pointer = next(answers), next(answers)
            if digest in found:
                continue
            if blob is not None and blob[0] == "blob":
                found[digest] = Found(KEPT_GIT, ref, blob[2])
                sizes[blob[2]] = blob[1]
            elif pointer is not None:
                found[digest] = Found(KEPT_LFS, ref)
    # No drop-data/ in the objects tree (nothing was ever dropped): no markers to list.
    markers = next(answers, None)
    dropped = _dropped(cat.cwd, objects_tip) if markers is not None else set()
    if dropped is None:
        return None
    return KeptHere(found, frozenset(d for d in digests if d in dropped), sizes)


def _dropped(cwd: str | os.PathLike[str], objects_tip: str | None) -> set[str] | None:
    """Every digest with a drop marker (a blob below ``drop-data/``, its path without the
    slashes, as :func:`git_prov.store.kept.dropped_digests` reads them)."""
    if objects_tip is None:
        return set()
    proc = run_git(cwd, ["ls-tree", "-r", "-z", objects_tip, "--", DROP_DATA_DIR], check=False)
    if proc.returncode != 0:
        return None
    out = set()
    prefix = DROP_DATA_DIR + "/"
    for record in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        info, _, path = record.partition("\t")
        if info.split(" ")[1:2] == ["blob"] and path.startswith(prefix):
            out.add(path[len(prefix) :].replace("/", ""))
    return out
