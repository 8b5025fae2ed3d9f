"""The remap watermark: ``<git common dir>/prov/remap-state.json`` holds a hash of every ref
and the options of the last remap with what it left unattached, so a repeated remap with no
ref changed returns that without any work. Only a cache: anything unreadable is recomputed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from git_prov.rewrite.report import RemapAmbiguity, RemapCandidate, RemapReport, RemapUnmatched
from git_prov.store.ledger import NOTES_REF, OBJECTS_REF
from git_prov.store.repo import GitRepo

WATERMARK_FILE = "remap-state.json"


def ref_state(repo: GitRepo) -> dict[str, str]:
    """Every ref and HEAD, name → object id."""
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)").stdout.decode()
    state = {}
    for line in out.splitlines():
        oid, _, name = line.partition(" ")
        state[name] = oid
    head = repo.git("rev-parse", "-q", "--verify", "HEAD", check=False)
    state["HEAD"] = head.stdout.decode().strip()
    return state


def state_key(state: Mapping[str, str], settings: Mapping[str, Any]) -> str:
    """The watermark key of a ref state and remap's options."""
    text = json.dumps({"refs": sorted(state.items()), "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def only_our_write(repo: GitRepo, before: Mapping[str, str], after: Mapping[str, str]) -> bool:
    """True when the refs changed only by one new commit on each ledger ref."""
    for name in set(before) | set(after):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name not in (NOTES_REF, OBJECTS_REF) or new is None:
            return False
        parents = repo.git("rev-parse", f"{new}^@", check=False).stdout.decode().split()
        if old is not None and (not parents or parents[0] != old):
            return False
    return True


def read_watermark(repo: GitRepo, key: str) -> RemapReport | None:
    """The report left by the last remap if it ran on exactly this state, else None."""
    try:
        data = json.loads((repo.prov_dir / WATERMARK_FILE).read_text())
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return RemapReport(
            ambiguous=tuple(
                RemapAmbiguity(**{**a, "candidates": tuple(a["candidates"])})
                for a in data["ambiguous"]
            ),
            unconfirmed=tuple(RemapCandidate(**c) for c in data.get("unconfirmed", [])),
            unmatched=tuple(
                RemapUnmatched(**{**u, "shown_on": tuple(u["shown_on"])}) for u in data["unmatched"]
            ),
            orphans=int(data.get("orphans", len(data["ambiguous"]) + len(data["unmatched"]))),
            candidates=int(data["candidates"]),
            missing=int(data["missing"]),
            purged=int(data.get("purged", 0)),
            up_to_date=True,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # only a cache: recompute


def write_watermark(repo: GitRepo, key: str, report: RemapReport) -> None:
    """Leave ``report``'s unattached runs under ``key`` for the next remap."""
    data = {
        "key": key,
        "ambiguous": [asdict(a) for a in report.ambiguous],
        "unmatched": [asdict(u) for u in report.unmatched],
        "unconfirmed": [asdict(c) for c in report.unconfirmed],
        "orphans": len(
            {a.run for a in report.ambiguous}
            | {c.run for c in report.unconfirmed}
            | {u.run for u in report.unmatched}
        ),
        "candidates": report.candidates,
        "missing": report.missing,
        "purged": report.purged,
    }
    path = repo.prov_dir / WATERMARK_FILE
    with contextlib.suppress(OSError):
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)
