"""Integrations with other tools that run experiments: each is a thin client of the
Python API (:mod:`git_prov.api`) and imports its tool only when used (docs/integrations.md)."""
