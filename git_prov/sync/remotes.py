"""Which remote, and what to say about it: resolving a name, URL or path; the tracking refs and
fetch refspecs of a remote; the errors for a transport that failed, a shallow clone or a
remote hiding the ledger; making plain git carry provenance (:func:`configure_remote`)."""

from __future__ import annotations

import os

from git_prov.errors import (
    RemoteProblem,
)
from git_prov.store.gitcli import (
    is_url_remote,
    remote_key,
)
from git_prov.sync.repo import DISPLAY_REF, NOTES_REF, OBJECTS_REF, RepoLike, SyncRepo, _git


def tracking_refs(remote: str) -> dict[str, str]:
    """Local ledger ref → the tracking ref holding ``remote``'s copy of it (a URL's go
    under a name made from it: :func:`~git_prov.store.gitcli.remote_key`)."""
    key = remote_key(remote)
    return {
        OBJECTS_REF: f"refs/prov/remotes/{key}/objects",
        NOTES_REF: f"refs/notes/remotes/{key}/prov",
    }


def fetch_refspecs(remote: str) -> list[str]:
    """The ``remote.<r>.fetch`` refspecs that make a plain ``git fetch`` bring provenance.

    They are globs (``prov*``) on purpose: git fails a whole fetch when an exact configured
    refspec names a ref the remote lacks, and a remote without provenance is normal. The
    glob would also match the local-only ``git log`` display ref (``refs/notes/prov-log``)
    on a remote that a ``git push --mirror`` gave it: a negative refspec (git ≥ 2.29)
    leaves it out.
    """
    return [
        f"+{OBJECTS_REF}*:refs/prov/remotes/{remote}/objects*",
        f"+{NOTES_REF}*:refs/notes/remotes/{remote}/prov*",
        f"^{DISPLAY_REF}",
    ]


def remote_names(repo: RepoLike) -> list[str]:
    """The configured remotes (those with a URL, as git and libgit2 list them)."""
    names: list[str] = []
    for key in SyncRepo.open(repo).config():
        if key.startswith("remote.") and key.endswith((".url", ".pushurl")):
            names.append(key[len("remote.") :].rpartition(".")[0])
    return [name for name in dict.fromkeys(names) if name]


def resolve_remote(repo: RepoLike, remote: str | None = None) -> str:
    """The remote to use: the one named, else the current branch's upstream remote, else
    ``origin``, else the only remote. A clear RemoteProblem when there is none.

    As git does, a URL or the path of a repository may stand for a remote: it comes back
    as the URL, or the path made absolute (from the current directory)."""
    sync_repo = SyncRepo.open(repo)
    names = remote_names(sync_repo)
    if remote is not None:
        if remote in names:
            return remote
        if is_url_remote(remote):
            return remote
        looks_like_path = "/" in remote or remote in (".", "..") or remote.endswith(".git")
        if looks_like_path and os.path.isdir(remote):
            return os.path.abspath(remote)
        known = f" (remotes here: {', '.join(names)})" if names else ""
        raise RemoteProblem(
            f"no remote named {remote!r}{known}, nor a repository at that path",
            f"give a remote's name, URL or path, or add it with `git remote add NAME {remote}`",
        )
    if sync_repo.branch:
        upstream = sync_repo.config().get(f"branch.{sync_repo.branch}.remote", [])
        if upstream and upstream[-1] in names:
            return upstream[-1]
    if "origin" in names:
        return "origin"
    if len(names) == 1:
        return names[0]
    if not names:
        raise RemoteProblem(
            "this repository has no remote to share provenance with",
            "add one with `git remote add origin URL`",
        )
    raise RemoteProblem(
        f"several remotes ({', '.join(names)}) and none is the upstream or origin",
        "name one, e.g. `git prov sync REMOTE`",
    )


_UNREACHABLE = (
    "could not resolve host",
    "connection refused",
    "unable to connect",
    "connection timed out",
    "network is unreachable",
    "no route to host",
    "unable to access",
    "could not connect",
)
_NO_REPOSITORY = (
    "does not appear to be a git repository",
    "repository not found",
    "not found",
    "no such repository",
    "not exported",
    "no such file",
)
_DENIED = (
    "permission denied",
    "authentication failed",
    "access denied",
    "returned error: 403",
    "returned error: 401",
    "could not read username",
    "terminal prompts disabled",
    "unauthorized",
)


def _transport_problem(action: str, remote: str, stderr: bytes) -> RemoteProblem:
    """A RemoteProblem for a git fetch/push that failed before any ref was considered."""
    text = stderr.decode(errors="replace").strip()
    lowered = text.lower()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    detail = next(
        (ln for ln in lines if ln.lower().startswith(("fatal", "error"))),
        lines[-1] if lines else "no message",
    )
    detail = detail.removeprefix("fatal: ").removeprefix("error: ")
    if "shallow" in lowered:
        return _shallow_problem(remote, detail)
    if any(word in lowered for word in _DENIED):
        return RemoteProblem(
            f"{action} {remote} was refused: {detail}",
            "check that you have access to it and that your credentials "
            "work (try `git fetch " + remote + "`)",
        )
    if any(word in lowered for word in _UNREACHABLE):
        return RemoteProblem(
            f"cannot reach {remote}: {detail}",
            f"check the network and the URL (`git remote get-url {remote}`)",
        )
    if any(word in lowered for word in _NO_REPOSITORY):
        return RemoteProblem(
            f"{remote} is not a git repository that can be reached: {detail}",
            f"check the URL: `git remote get-url {remote}`",
        )
    return RemoteProblem(
        f"{action} {remote} failed: {detail}", f"check that plain `git fetch {remote}` works"
    )


def _shallow_problem(remote: str, detail: str) -> RemoteProblem:
    return RemoteProblem(
        f"{remote} refused provenance from this shallow clone: {detail}",
        "the commits your runs name are not all here; run `git fetch --unshallow`, then sync again",
    )


def _hidden_from_fetch(remote: str, ref: str) -> RemoteProblem:
    return RemoteProblem(
        f"{remote} holds {ref} but never lets it be fetched (the server hides it from "
        "git-upload-pack: uploadpack.hideRefs or transfer.hideRefs covers it), so runs "
        "pushed there cannot be shared",
        f"ask the server's administrators to stop hiding {ref} from fetch (the hideRefs "
        "entry that covers refs/notes or refs/prov); your runs stay here",
    )


# ---- making plain git carry provenance ------------------------------------------------


def configure_remote(
    repo: RepoLike, remote: str | None, *, fetch: bool = True, push_hook: bool = False
) -> list[str]:
    """Make plain git carry provenance for ``remote``; returns one line per step.

    ``fetch``: add the :func:`fetch_refspecs` to ``remote.<r>.fetch`` (only those absent),
    so a plain ``git fetch`` fills the tracking refs. ``push_hook``: install the pre-push
    hook (:func:`git_prov.hooks_install.install_hook`), so a plain ``git push`` also
    pushes provenance. ``remote.<r>.push`` is never set: it would change what a plain
    ``git push`` pushes.
    """
    sync_repo = SyncRepo.open(repo)
    name = resolve_remote(sync_repo, remote)
    if is_url_remote(name):
        raise RemoteProblem(
            f"{name} is not a named remote: plain git fetch keeps refspecs per remote name",
            f"add it with `git remote add NAME {name}`, then `git prov init --remote NAME`",
        )
    done: list[str] = []
    if fetch:
        proc = _git(sync_repo, "config", "--get-all", f"remote.{name}.fetch")
        present = set(proc.stdout.decode().split())
        added = []
        for spec in fetch_refspecs(name):
            if spec not in present:
                sync_repo.git("config", "--add", f"remote.{name}.fetch", spec)
                added.append(spec)
        if added:
            done.append(
                f"git fetch {name}: now also fetches provenance into "
                f"refs/notes/remotes/{name}/prov and refs/prov/remotes/{name}/objects "
                "(git prov merges it on fetch/sync)"
            )
        else:
            done.append(f"git fetch {name}: already fetches provenance")
    if push_hook:
        from git_prov.hooks_install import install_hook

        installed = install_hook(sync_repo, "pre-push")
        if not any("already installed" in line for line in installed):
            done.append(
                f"git push: now also pushes provenance ({OBJECTS_REF}, {NOTES_REF}) to the "
                "remote it pushes to"
            )
        done.extend(installed)
    return done
