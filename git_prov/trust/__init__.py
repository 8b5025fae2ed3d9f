"""Trusting a ledger: signed records (:mod:`.signing`) and secrets kept out of what is
stored (:mod:`.redaction`). Retention lives in :mod:`git_prov.retention`, integrity checks
in :mod:`git_prov.fsck`; docs/security.md describes the threat model."""
