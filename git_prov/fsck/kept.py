"""fsck of kept bytes (refs/prov/data): present, of the right size, and with --data hashing to
their digest.
"""

from __future__ import annotations

import hashlib

from git_prov.fsck.findings import ERROR, INFO, FsckReport
from git_prov.model.lfs_pointer import parse_lfs_pointer
from git_prov.store.headers import OBJ_BLOB, ObjectHeaders
from git_prov.store.repo import GitRepo

# ---- kept bytes -----------------------------------------------------------------------------


def check_kept(
    repo: GitRepo, objects: ObjectHeaders, report: FsckReport, *, hash_bytes: bool
) -> None:
    """Every kept file of ``refs/prov/data``: present, of the right size, and (with
    ``hash_bytes``) hashing to the digest it is kept under."""
    from git_prov.capture.hashing import hash_file
    from git_prov.store.kept import (
        kept_digests,
        kept_objects,
        tracking_data_ref,
        tracking_remotes,
        unpushed_digests,
    )
    from git_prov.store.lfs import lfs_object_path

    kept = kept_objects(repo)
    if not kept:
        return
    held = unpushed_digests(repo)
    remotes: dict[str, set[str]] | None = None
    for item in kept:
        report.kept += 1
        where = {"object": item.blob, "path": f"sha256:{item.digest}"}
        header = objects.header(item.blob)
        if header is None or header[0] != OBJ_BLOB:
            report.add(
                ERROR,
                "kept-missing",
                f"kept bytes sha256:{item.digest[:12]}: git blob {item.blob[:12]} of "
                "refs/prov/data is missing from the object store",
                **where,
            )
            continue
        if item.kind == "git":
            if hash_bytes:
                report.files_hashed += 1
                if hashlib.sha256(objects.blob(item.blob)).hexdigest() != item.digest:
                    report.add(
                        ERROR,
                        "kept-damaged",
                        f"kept bytes sha256:{item.digest[:12]} (git blob {item.blob[:12]}) "
                        "do not hash to the digest they are kept under",
                        **where,
                    )
            continue
        pointer = parse_lfs_pointer(objects.blob(item.blob)) if header[1] < 1024 else None
        if pointer is None or pointer[0] != item.digest:
            report.add(
                ERROR,
                "kept-damaged",
                f"kept bytes sha256:{item.digest[:12]}: the git-LFS pointer of refs/prov/data "
                "is not a pointer to that object",
                **where,
            )
            continue
        size = pointer[1]
        path = lfs_object_path(repo.common_dir, item.digest)
        try:
            found_size: int | None = path.stat().st_size
        except OSError:
            found_size = None
        if found_size is None:
            if remotes is None:
                remotes = {
                    r: set(kept_digests(repo, tracking_data_ref(r))) for r in tracking_remotes(repo)
                }
            having = sorted(r for r, digests in remotes.items() if item.digest in digests)
            if item.digest in held:
                report.add(
                    INFO,
                    "kept-held",
                    f"kept git-LFS object {item.digest[:12]} is not in the git-LFS store "
                    "(git lfs prune?); git-prov holds it, unpushed: git prov get and "
                    "git prov push --data put it back",
                    **where,
                )
            elif having:
                report.add(
                    INFO,
                    "kept-on-remote",
                    f"kept git-LFS object {item.digest[:12]} is not here; {having[0]} has it "
                    "(git prov get fetches it)",
                    **where,
                )
            else:
                report.add(
                    ERROR,
                    "kept-missing",
                    f"kept git-LFS object {item.digest[:12]} ({size:,} bytes) is neither in "
                    "the git-LFS store nor on a remote this clone has fetched kept data "
                    "from: its bytes may be lost (git prov fetch --data checks the remote)",
                    **where,
                )
            continue
        if found_size != size or (hash_bytes and hash_file(path) != f"sha256:{item.digest}"):
            report.add(
                ERROR,
                "kept-damaged",
                f"kept git-LFS object {item.digest[:12]} ({path}) does not hold the bytes it "
                f"is named by ({found_size:,} bytes, {size:,} recorded"
                + (")" if found_size != size else "; other content)")
                + ": remove it, then git prov get fetches it again from a remote that has it",
                **where,
            )
        report.files_hashed += hash_bytes
