"""What fsck found: findings with a severity, and the report that collects them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from git_prov.model.record import printable

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Finding:
    """One thing fsck found. ``code`` is stable, for scripts; ``message`` is for people."""

    severity: str
    code: str
    message: str
    commit: str | None = None
    line: int | None = None
    run: str | None = None
    object: str | None = None
    path: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def text(self) -> str:
        """One line for people, with control characters escaped."""
        return f"{self.severity}: {printable(self.message)}"


@dataclass
class FsckReport:
    """Everything fsck found, and how much it looked at."""

    findings: list[Finding] = field(default_factory=list)
    notes: int = 0
    lines: int = 0
    runs: int = 0
    objects: int = 0
    files_hashed: int = 0
    kept: int = 0  # kept files (entries of refs/prov/data) checked

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def ok(self) -> bool:
        """True when nothing of severity ``error`` was found."""
        return not self.errors

    def add(self, severity: str, code: str, message: str, **where: Any) -> None:
        self.findings.append(Finding(severity, code, message, **where))

    def to_json_dict(self) -> dict[str, Any]:
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}
        return {
            "ok": self.ok,
            "checked": {
                "notes": self.notes,
                "lines": self.lines,
                "runs": self.runs,
                "objects": self.objects,
                "files_hashed": self.files_hashed,
                "kept": self.kept,
            },
            "counts": counts,
            "findings": [f.to_json_dict() for f in self.findings],
        }


REPAIR_HINT = "run git prov fsck --repair to restore the newest intact ledger"
