"""Signed run records: sign with the user's git signing setup, verify with git's trust files.

A signature covers :func:`~git_prov.model.record.signing_payload`: the canonical JSON of
the record as stored, without its ``signature`` key. It is made the way ``git commit -S``
makes one, from the same configuration:

* ``gpg.format`` — ``openpgp`` (default) or ``ssh`` (``x509`` is refused);
* ``user.signingKey`` — the key; for OpenPGP the committer identity when unset, for SSH
  a private or public key file (``~`` expanded; a public key needs ssh-agent), a literal
  ``key::ssh-…``/``ssh-…`` public key (signed through ssh-agent), or the first line of
  ``gpg.ssh.defaultKeyCommand``;
* ``gpg.program`` / ``gpg.openpgp.program`` (``gpg``), ``gpg.ssh.program`` (``ssh-keygen``).

OpenPGP: ``gpg --status-fd=2 -bsau KEY``. SSH: ``ssh-keygen -Y sign -n git-prov -f KEY``
(namespace ``git-prov``, so a record signature can never pass as a commit signature).

Verification (``git prov verify``) uses the same trust as ``git verify-commit``: the GnuPG
keyring, or ``gpg.ssh.allowedSignersFile`` (and ``gpg.ssh.revocationFile``). Each record
gets one :class:`Verdict`: ``good``, ``bad`` (the record does not match its signature:
tampered), ``unknown-key`` (signed by a key you do not trust, or cannot check),
``unsigned``, or ``error`` (the signature could not be checked: no gpg, a timeout).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from git_prov.errors import EXIT_REPOSITORY, ProvError
from git_prov.model.record import RunRecord, line_object, parse_line, signing_payload
from git_prov.store.ledger import Ledger, LedgerScan
from git_prov.store.repo import GitRepo

SSH_NAMESPACE = "git-prov"
FORMAT_OPENPGP = "openpgp"
FORMAT_SSH = "ssh"
TIMEOUT_SECONDS = 120.0  # signing may wait for a passphrase prompt

GOOD = "good"
BAD = "bad"
UNKNOWN_KEY = "unknown-key"
UNSIGNED = "unsigned"
ERROR = "error"
VERDICTS = (GOOD, BAD, UNKNOWN_KEY, UNSIGNED, ERROR)

_SSH_ARMOR = "-----BEGIN SSH SIGNATURE-----"
_PGP_ARMOR = "-----BEGIN PGP SIGNATURE-----"
_SSH_GOOD = re.compile(r'Good "[^"]*" signature (?:for (?P<who>.+?) )?with (?P<key>\S+ key \S+)')


class SigningProblem(ProvError):
    """Signing was asked for but cannot be done (no key, no program, the program failed)."""

    exit_code = EXIT_REPOSITORY


@dataclass(frozen=True)
class SigningSetup:
    """How this user signs: format, key and program, as git would use them."""

    format: str
    key: str
    program: str
    literal_key: bool = False  # an SSH public key given inline: sign through ssh-agent


def _config(repo: GitRepo, key: str) -> str | None:
    return repo.config_value(key)


def signing_setup(repo: GitRepo) -> SigningSetup:
    """The user's signing configuration, checked enough to fail before a run starts."""
    fmt = (_config(repo, "gpg.format") or FORMAT_OPENPGP).lower()
    key = _config(repo, "user.signingKey")
    if fmt == FORMAT_OPENPGP:
        program = _config(repo, "gpg.openpgp.program") or _config(repo, "gpg.program") or "gpg"
        if not key:
            sig = repo.signature()
            key = f"{sig.name} <{sig.email}>"
        _need_program(program, "gpg.program")
        return SigningSetup(FORMAT_OPENPGP, key, program)
    if fmt == FORMAT_SSH:
        program = _config(repo, "gpg.ssh.program") or "ssh-keygen"
        _need_program(program, "gpg.ssh.program")
        if not key:
            key = _default_ssh_key(repo)
        literal = False
        if key.startswith("key::"):
            key, literal = key[len("key::") :], True
        elif key.startswith("ssh-") or key.startswith("ecdsa-") or key.startswith("sk-"):
            literal = True
        else:
            path = Path(os.path.expanduser(key))
            if not path.is_absolute() and repo.workdir is not None:
                path = repo.workdir / path
            if not path.is_file():
                raise SigningProblem(
                    f"user.signingKey names {key}, which is not a file",
                    "point it at your SSH key (git config user.signingKey ~/.ssh/id_ed25519.pub)",
                )
            key = str(path)
        return SigningSetup(FORMAT_SSH, key, program, literal)
    raise SigningProblem(
        f"gpg.format {fmt!r} is not supported for run records",
        "use gpg.format openpgp or ssh",
    )


def _default_ssh_key(repo: GitRepo) -> str:
    command = _config(repo, "gpg.ssh.defaultKeyCommand")
    if command:
        proc = subprocess.run(
            command, shell=True, capture_output=True, text=True, check=False, timeout=30
        )
        first = proc.stdout.strip().splitlines()[:1]
        if proc.returncode == 0 and first:
            return first[0]
    raise SigningProblem(
        "signing with gpg.format=ssh needs user.signingKey",
        "git config user.signingKey ~/.ssh/id_ed25519.pub (or gpg.ssh.defaultKeyCommand)",
    )


def _need_program(program: str, setting: str) -> None:
    if shutil.which(program) is None:
        raise SigningProblem(
            f"the signing program {program!r} is not installed or not on PATH",
            f"install it or set {setting}",
        )


def sign_payload(setup: SigningSetup, payload: bytes) -> str:
    """An armored detached signature of ``payload`` (raises SigningProblem on failure)."""
    if setup.format == FORMAT_OPENPGP:
        args = [setup.program, "--status-fd=2", "-bsau", setup.key]
        proc = _run(args, payload, "sign the record")
        if proc.returncode != 0 or b"\n[GNUPG:] SIG_CREATED " not in b"\n" + proc.stderr:
            raise SigningProblem(f"gpg could not sign the record: {_last_line(proc.stderr)}")
    else:
        with _key_file(setup) as key_path:
            args = [setup.program, "-Y", "sign", "-n", SSH_NAMESPACE, "-f", key_path]
            if setup.literal_key:
                args.append("-U")
            proc = _run(args, payload, "sign the record")
        if proc.returncode != 0:
            raise SigningProblem(f"ssh-keygen could not sign the record: {_last_line(proc.stderr)}")
    text = proc.stdout.decode("ascii", errors="replace").strip()
    if not text.startswith((_PGP_ARMOR, _SSH_ARMOR)):
        raise SigningProblem(f"{setup.program} did not write an armored signature")
    return text + "\n"


def sign_record(setup: SigningSetup, record: RunRecord) -> RunRecord:
    """``record`` with its signature (over everything else in it)."""
    unsigned = replace(record, signature=None)
    return replace(unsigned, signature=sign_payload(setup, unsigned.signing_payload()))


@contextlib.contextmanager
def _key_file(setup: SigningSetup) -> Iterator[str]:
    if not setup.literal_key:
        yield setup.key
        return
    with tempfile.TemporaryDirectory(prefix="git-prov-key-") as tmp:
        path = Path(tmp) / "key.pub"
        path.write_text(setup.key.strip() + "\n")
        yield str(path)


def _run(args: Sequence[str], payload: bytes, what: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            list(args), input=payload, capture_output=True, check=False, timeout=TIMEOUT_SECONDS
        )
    except FileNotFoundError:
        raise SigningProblem(f"cannot {what}: {args[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SigningProblem(
            f"cannot {what}: {args[0]} did not answer in {TIMEOUT_SECONDS:.0f} s",
            "is it waiting for a passphrase? check gpg-agent / ssh-agent",
        ) from None


def _last_line(stderr: bytes) -> str:
    lines = [
        ln
        for ln in stderr.decode(errors="replace").splitlines()
        if ln.strip() and not ln.startswith("[GNUPG:]")
    ]
    return lines[-1] if lines else "no message"


# ---- verifying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What checking one stored run line found.

    ``signer`` is who signed (the allowed-signers principal, or the OpenPGP user id),
    ``key`` the key (SSH fingerprint, OpenPGP fingerprint), ``detail`` any more words.
    """

    run: str
    commit: str
    status: str
    format: str | None = None
    signer: str | None = None
    key: str | None = None
    detail: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run": self.run, "commit": self.commit, "status": self.status}
        for name in ("format", "signer", "key"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class VerifyOptions:
    """Trust configuration for verification (from git config by default)."""

    gpg_program: str = "gpg"
    ssh_program: str = "ssh-keygen"
    allowed_signers: Path | None = None
    revocations: Path | None = None

    @classmethod
    def from_config(cls, repo: GitRepo) -> VerifyOptions:
        return cls.from_values(lambda key: _config(repo, key), repo.workdir)

    @classmethod
    def from_values(
        cls, config: Callable[[str], str | None], workdir: Path | None
    ) -> VerifyOptions:
        """The options from a git-config reader (``key`` → value or None)."""

        def path(key: str) -> Path | None:
            value = config(key)
            if not value:
                return None
            p = Path(os.path.expanduser(value))
            return p if p.is_absolute() or workdir is None else workdir / p

        return cls(
            gpg_program=config("gpg.openpgp.program") or config("gpg.program") or "gpg",
            ssh_program=config("gpg.ssh.program") or "ssh-keygen",
            allowed_signers=path("gpg.ssh.allowedSignersFile"),
            revocations=path("gpg.ssh.revocationFile"),
        )


def stored_run_lines(
    ledger: Ledger, run_ids: set[str] | None = None, scan: LedgerScan | None = None
) -> list[dict[str, Any]]:
    """The JSON objects of every distinct run line in the ledger (all versions of a run in
    conflict; a line copied onto a rewritten commit once), optionally only ``run_ids``."""
    scan = scan or ledger.scan()
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for commit in sorted(scan.by_commit):
        for line in ledger.note_text(commit).split("\n"):
            if '"kind":"run"' not in line:
                continue
            try:
                entry = parse_line(line)
                data = line_object(line)
            except ValueError:
                continue
            if not isinstance(entry, RunRecord) or (
                run_ids is not None and entry.id not in run_ids
            ):
                continue
            key = line.rpartition("\t")[2].strip()
            if key not in seen:
                seen.add(key)
                out.append(data)
    return sorted(out, key=lambda d: (str(d.get("id")), str(d.get("signature"))))


def verify_runs(
    repo: GitRepo,
    specs: Sequence[str] = (),
    options: VerifyOptions | None = None,
    skipped: list[str] | None = None,
) -> list[Verdict]:
    """Check the signature of every run named by ``specs`` (default: every run that is
    not tombstoned), one :class:`Verdict` per distinct stored line. Notes not read (over
    the reader limits of model/limits.py) are described in ``skipped``, when given."""
    ledger = Ledger(repo)
    options = options or VerifyOptions.from_config(repo)
    scan = ledger.scan()
    if skipped is not None:
        skipped.extend(p.reason for p in scan.problems if not p.line_number)
    if specs:
        wanted = {ledger.resolve_run(s, scan).id for s in specs}
    else:
        wanted = {r.id for r in scan.live_runs()}
    return [verify_line(data, options) for data in stored_run_lines(ledger, wanted, scan)]


def verify_line(data: dict[str, Any], options: VerifyOptions) -> Verdict:
    """The verdict on one stored run line's JSON object."""
    run, commit = str(data.get("id", "?")), str(data.get("commit", "?"))
    signature = data.get("signature")
    if signature is None:
        return Verdict(run, commit, UNSIGNED)
    if not isinstance(signature, str):
        return Verdict(run, commit, BAD, detail="the signature is not a string")
    try:
        payload = signing_payload(data)
    except (ValueError, RecursionError):
        return Verdict(run, commit, BAD, detail="the record cannot be encoded canonically")
    text = signature.strip()
    try:
        if text.startswith(_SSH_ARMOR):
            return _verify_ssh(run, commit, signature, payload, options)
        if text.startswith(_PGP_ARMOR):
            return _verify_openpgp(run, commit, signature, payload, options)
    except SigningProblem as exc:
        fmt = FORMAT_SSH if text.startswith(_SSH_ARMOR) else FORMAT_OPENPGP
        return Verdict(run, commit, ERROR, fmt, detail=exc.message)
    return Verdict(run, commit, BAD, detail="the signature is neither OpenPGP nor SSH")


@contextlib.contextmanager
def _signature_file(signature: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="git-prov-sig-") as tmp:
        path = Path(tmp) / "record.sig"
        path.write_text(signature)
        yield str(path)


def _verify_ssh(
    run: str, commit: str, signature: str, payload: bytes, options: VerifyOptions
) -> Verdict:
    program = options.ssh_program
    with _signature_file(signature) as sig:
        principals: list[str] = []
        allowed = options.allowed_signers
        if allowed is not None and allowed.is_file():
            found = _run(
                [program, "-Y", "find-principals", "-f", str(allowed), "-s", sig], b"", "verify"
            )
            if found.returncode == 0:
                principals = [p for p in found.stdout.decode(errors="replace").split() if p]
        for principal in principals:
            args = [program, "-Y", "verify", "-f", str(allowed), "-I", principal]
            args += ["-n", SSH_NAMESPACE, "-s", sig]
            if options.revocations is not None:
                args += ["-r", str(options.revocations)]
            proc = _run(args, payload, "verify")
            out = proc.stdout.decode(errors="replace")
            if proc.returncode == 0:
                match = _SSH_GOOD.search(out)
                return Verdict(
                    run, commit, GOOD, FORMAT_SSH, principal, match["key"] if match else None
                )
        # No trusted principal (or no allowed signers file): does the record at least
        # match the key embedded in the signature?
        proc = _run(
            [program, "-Y", "check-novalidate", "-n", SSH_NAMESPACE, "-s", sig], payload, "verify"
        )
        out = proc.stdout.decode(errors="replace")
        match = _SSH_GOOD.search(out)
        if proc.returncode == 0:
            why = (
                "the key is not in gpg.ssh.allowedSignersFile"
                if allowed is not None
                else "gpg.ssh.allowedSignersFile is not set"
            )
            if principals:
                why = "the key is revoked or not valid for these principals"
            return Verdict(
                run, commit, UNKNOWN_KEY, FORMAT_SSH, None, match["key"] if match else None, why
            )
        return Verdict(
            run,
            commit,
            BAD,
            FORMAT_SSH,
            principals[0] if principals else None,
            detail="the record does not match its signature",
        )


def _verify_openpgp(
    run: str, commit: str, signature: str, payload: bytes, options: VerifyOptions
) -> Verdict:
    with _signature_file(signature) as sig:
        args = [options.gpg_program, "--status-fd=1", "--keyid-format=long", "--verify", sig, "-"]
        proc = _run(args, payload, "verify")
    status: dict[str, str] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith("[GNUPG:] "):
            word, _, rest = line[len("[GNUPG:] ") :].partition(" ")
            status.setdefault(word, rest)
    fingerprint = status.get("VALIDSIG", "").split(" ")[0] or None
    trust = next((w[len("TRUST_") :].lower() for w in status if w.startswith("TRUST_")), None)
    for word in ("GOODSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "BADSIG"):
        if word in status:
            keyid, _, uid = status[word].partition(" ")
            key = fingerprint or keyid
            if word == "BADSIG":
                return Verdict(
                    run, commit, BAD, FORMAT_OPENPGP, uid, key,
                    "the record does not match its signature",
                )  # fmt: skip
            if word == "REVKEYSIG":
                return Verdict(run, commit, UNKNOWN_KEY, FORMAT_OPENPGP, uid, key, "key revoked")
            detail = "expired" if word != "GOODSIG" else (f"trust {trust}" if trust else "")
            return Verdict(run, commit, GOOD, FORMAT_OPENPGP, uid, key, detail)
    if "NO_PUBKEY" in status:
        keyid = status["NO_PUBKEY"].split(" ")[0]
        return Verdict(
            run, commit, UNKNOWN_KEY, FORMAT_OPENPGP, None, keyid or None,
            "the public key is not in your keyring: the record was not checked",
        )  # fmt: skip
    if "ERRSIG" in status:
        return Verdict(
            run, commit, ERROR, FORMAT_OPENPGP, None, status["ERRSIG"].split(" ")[0] or None,
            f"gpg cannot check this signature: {_last_line(proc.stderr)}",
        )  # fmt: skip
    return Verdict(run, commit, BAD, FORMAT_OPENPGP, detail=f"gpg: {_last_line(proc.stderr)}")
