"""Several different records stored under one run id, and which of them is shown.

The ledger is a union: a second, different copy of a run (an edited copy someone pushed,
or two machines writing one id) is kept beside the first, never instead of it. Readers
never pick one silently: a run in conflict carries a :class:`RunConflict` saying how many
copies there are, what each one's signature check said, and why the one shown was chosen
(``verified``: the only copy a trusted key signed; ``first``: none verifies, so the first
copy in note order is shown, flagged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from git_prov.model.record import RunRecord

SHOWN_VERIFIED = "verified"
SHOWN_FIRST = "first"
_IGNORED = frozenset({"signature"})


@dataclass(frozen=True)
class RunCopy:
    """One stored copy of a run: its record, where it is stored, its signature verdict
    (``good``, ``bad``, ``unknown-key``, ``unsigned``, ``error``) and who signed it."""

    record: RunRecord
    note: str  # the annotated commit whose note holds this copy
    verdict: str
    signer: str | None = None
    shown: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        out = self.record.to_json_dict()
        out.update(note=self.note, verdict=self.verdict, shown=self.shown)
        if self.signer:
            out["signer"] = self.signer
        return out


@dataclass(frozen=True)
class RunConflict:
    """The copies of a run in conflict (the shown one first) and why it is shown."""

    copies: tuple[RunCopy, ...]
    shown: str  # SHOWN_VERIFIED or SHOWN_FIRST

    def to_json_dict(self) -> dict[str, Any]:
        return {"shown": self.shown, "copies": [c.to_json_dict() for c in self.copies]}

    def summary(self) -> str:
        """One line for people: how many copies, and why this one is shown."""
        n = len(self.copies)
        if self.shown == SHOWN_VERIFIED:
            who = self.copies[0].signer
            return f"{n} different copies of this run are stored; shown: the one that verifies" + (
                f" (signed by {who})" if who else ""
            )
        return (
            f"{n} different copies of this run are stored and none verifies; shown: the "
            "first — do not trust either"
        )

    def differences(self) -> list[str]:
        """Per other copy: its verdict, where it is, and the fields that differ from the
        shown copy (``metrics: {"acc": 0.99}``)."""
        shown = self.copies[0].record.to_json_dict()
        out = []
        for copy in self.copies[1:]:
            other = copy.record.to_json_dict()
            keys = sorted(k for k in shown.keys() | other.keys() if k not in _IGNORED)
            changed = [k for k in keys if shown.get(k) != other.get(k)]
            fields = "; ".join(f"{k}: {_compact(other.get(k))}" for k in changed)
            out.append(
                f"{copy.verdict} copy in the note on {copy.note[:7]}: "
                + (fields or "differs only in its signature")
            )
        return out


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def choose(copies: list[tuple[RunRecord, str, str, str | None]]) -> tuple[RunRecord, RunConflict]:
    """The copy to show among ``copies`` (record, note, verdict, signer; in note order)
    and the conflict to report: the first copy whose signature is good, else the first."""
    chosen = next((i for i, c in enumerate(copies) if c[2] == "good"), None)
    shown = SHOWN_VERIFIED if chosen is not None else SHOWN_FIRST
    at = chosen or 0
    order = [at, *(i for i in range(len(copies)) if i != at)]
    listed = tuple(
        RunCopy(copies[i][0], copies[i][1], copies[i][2], copies[i][3], shown=(i == at))
        for i in order
    )
    return copies[at][0], RunConflict(listed, shown)
