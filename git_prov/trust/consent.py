"""May ``git prov reproduce`` run a recorded command? Consent for other people's records.

A record fetched from a remote is written by whoever could push there (docs/security.md),
and reproducing it runs its command — and the code of its source — on your machine. So a
record runs without asking only when it is provably yours or vouched for:

* **written here**: this repository's git-prov wrote exactly this record
  (:mod:`git_prov.store.authored`); its ``user``/``host`` fields are not enough, since any
  writer can put your login and host name there;
* **signed**: its signature is ``good`` against your GnuPG keyring or
  ``gpg.ssh.allowedSignersFile`` (what ``git prov verify`` checks).

Anything else is shown (command, working directory, source, who it claims to be from and
why it is not trusted) and asked about on a terminal. Without a terminal it is refused
(:class:`Untrusted`, exit 10) unless ``--yes`` or ``git config prov.reproduceTrust all``
says to trust every record. The setting is read from git config only — never from
``.gitprov.toml``, which a fetched commit could carry.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from git_prov.errors import Untrusted, UsageProblem
from git_prov.model.record import RunRecord, printable
from git_prov.model.values import canonical_json
from git_prov.store.authored import was_authored
from git_prov.store.repo import GitRepo

TRUST_CONFIG = "prov.reproduceTrust"
TRUST_ASK = "ask"  # the default: ask about records that are not yours
TRUST_ALL = "all"  # run every record without asking (as --yes)
TRUST_VALUES = (TRUST_ASK, TRUST_ALL)

# How a run came to be allowed (or not): Reproduction.trust["consent"].
CONSENT_OWN = "own"  # written in this repository
CONSENT_SIGNED = "signed"  # a good signature by a key you trust
CONSENT_YES = "yes"  # --yes
CONSENT_CONFIG = "config"  # prov.reproduceTrust = all
CONSENT_ASKED = "asked"  # you said yes at the prompt
CONSENT_WOULD_ASK = "would-ask"  # dry run on a terminal
CONSENT_REFUSED = "refused"  # dry run without a terminal: the rerun would be refused

Ask = Callable[[str], bool]


@dataclass(frozen=True)
class TrustDecision:
    """Whether a record may run without asking, and why (for people and ``--json``)."""

    trusted: bool
    consent: str  # one of the CONSENT_* words
    reason: str
    claimed_by: str  # user@host as the record says (unverified)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "trusted": self.trusted,
            "consent": self.consent,
            "reason": self.reason,
            "claimed_by": self.claimed_by,
        }


def trust_setting(repo: GitRepo) -> str:
    """``prov.reproduceTrust`` from git config (``ask`` when unset)."""
    value = repo.config_value(TRUST_CONFIG)
    if value is None:
        return TRUST_ASK
    value = str(value).strip().lower()
    if value not in TRUST_VALUES:
        raise UsageProblem(
            f"git config {TRUST_CONFIG} is {value!r}",
            f"set it to one of {', '.join(TRUST_VALUES)} (or unset it)",
        )
    return value


def judge_record(repo: GitRepo, record: RunRecord) -> TrustDecision:
    """Is ``record`` yours or signed by a key you trust? (Nothing is asked here.)"""
    claimed = f"{record.user or '?'}@{record.host or '?'}"
    record_json = canonical_json(record.to_json_dict())
    if was_authored(repo.prov_dir, record_json):
        return TrustDecision(True, CONSENT_OWN, "recorded in this repository", claimed)
    if record.signature:
        from git_prov.model.record import line_object
        from git_prov.trust.signing import GOOD, VerifyOptions, verify_line

        verdict = verify_line(line_object(record_json), VerifyOptions.from_config(repo))
        if verdict.status == GOOD:
            return TrustDecision(True, CONSENT_SIGNED, f"signed by {verdict.signer}", claimed)
        why = f"its signature is {verdict.status}" + (
            f" ({verdict.detail})" if verdict.detail else ""
        )
    else:
        why = "it is unsigned"
    return TrustDecision(
        False,
        CONSENT_REFUSED,
        f"not recorded in this repository (it claims to be from {claimed}) and {why}",
        claimed,
    )


def question(record: RunRecord, command: tuple[str, ...], cwd: str, decision: TrustDecision) -> str:
    """The prompt shown on a terminal: what would run and why we ask (escaped: every
    field comes from the record)."""
    shown = printable(shlex.join(command))
    return (
        f"run {record.short_id} is not known to be yours: {printable(decision.reason)}.\n"
        f"  command  {shown}\n"
        f"  cwd      {printable(cwd)} (in a worktree of {record.source_commit[:12]}, "
        "whose code will run too)\n"
        "Run it?"
    )


def gate(
    repo: GitRepo,
    record: RunRecord,
    command: tuple[str, ...],
    cwd: str,
    *,
    assume_yes: bool,
    ask: Ask | None,
    dry_run: bool,
) -> TrustDecision:
    """Decide whether the rerun may go ahead. Returns the decision (``consent`` says how
    it was given); raises :class:`Untrusted` when it may not — declined at the prompt, or
    no terminal to ask and no ``--yes``. A dry run never asks: it says ``would-ask`` or,
    with nobody to ask, ``refused`` (which the caller reports as a blocker)."""
    decision = judge_record(repo, record)
    if decision.trusted:
        return decision
    if assume_yes:
        return _given(decision, CONSENT_YES)
    if trust_setting(repo) == TRUST_ALL:
        return _given(decision, CONSENT_CONFIG)
    if dry_run:
        return _given(decision, CONSENT_WOULD_ASK, trusted=False) if ask else decision
    if ask is None:
        raise Untrusted(
            f"run {record.short_id} is not yours: {printable(decision.reason)}; "
            "not running its command without a terminal to ask",
            "check it (git prov reproduce --dry-run), then rerun with --yes to trust it",
        )
    if not ask(question(record, command, cwd, decision)):
        raise Untrusted(f"not running run {record.short_id}: you declined", "nothing was run")
    return _given(decision, CONSENT_ASKED)


def _given(decision: TrustDecision, consent: str, *, trusted: bool = True) -> TrustDecision:
    return TrustDecision(trusted, consent, decision.reason, decision.claimed_by)


__all__ = [
    "TRUST_CONFIG",
    "TrustDecision",
    "gate",
    "judge_record",
    "question",
    "trust_setting",
]
