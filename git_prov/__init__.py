"""git-prov: reproducible experiment provenance inside git.

Every run is tied to the exact code (HEAD and a snapshot of a dirty tree), data (a
manifest of hashed inputs and outputs) and environment it used, stored as git notes and
objects that travel with push and fetch.

The Python API (:mod:`git_prov.api`, see ``docs/api.md``) is importable from here::

    import git_prov

    with git_prov.run(inputs=["data"], params={"lr": 0.01}) as run:
        run.log_metric("acc", 0.93)

    runs = git_prov.Ledger(".").runs(status="ok")

Its names are loaded on first use, so ``import git_prov`` stays cheap (the CLI imports it
on every start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name → module that defines it; loaded by __getattr__ on first access.
_LAZY = {
    "run": "git_prov.api",
    "record": "git_prov.api",
    "active_run": "git_prov.api",
    "log_metric": "git_prov.api",
    "log_metrics": "git_prov.api",
    "get": "git_prov.api",
    "Ledger": "git_prov.api",
    "Run": "git_prov.api",
    "ActiveRun": "git_prov.api",
    "ProvError": "git_prov.errors",
}

__all__ = [
    "ActiveRun",
    "Ledger",
    "ProvError",
    "Run",
    "__version__",
    "active_run",
    "get",
    "log_metric",
    "log_metrics",
    "record",
    "run",
]

if TYPE_CHECKING:
    from git_prov.api import (
        ActiveRun,
        Ledger,
        Run,
        active_run,
        get,
        log_metric,
        log_metrics,
        record,
        run,
    )
    from git_prov.errors import ProvError


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'git_prov' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
