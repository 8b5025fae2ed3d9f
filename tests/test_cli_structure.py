"""The command-line layout: every command a module registers is in the lazy map, so
`git prov <command>` finds it without importing every command module at start-up."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import git_prov.cli as cli_package
from git_prov.cli import LAZY_COMMANDS, cli

EAGER = {"demo", "init", "log", "record", "run", "show"}


def test_lazy_map_names_exactly_the_commands_modules_register() -> None:
    for module in pkgutil.iter_modules(cli_package.__path__):
        importlib.import_module(f"git_prov.cli.{module.name}")
    assert set(cli.commands) == EAGER | set(LAZY_COMMANDS)
    # Every module named in the map exists, and the shared hook group got both hooks.
    hook = cli.commands["hook"]
    assert {"pre-push", "post-rewrite"} <= set(hook.commands)  # type: ignore[attr-defined]


def test_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys; from git_prov.cli import main\n"
        "sys.argv = ['git-prov', 'sync', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('git_prov.cli.')), "
        "file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "git_prov.cli.sync" in proc.stderr
    for other in ("query", "report", "trust", "ecosystem", "reproduce"):
        assert f"git_prov.cli.{other}'" not in proc.stderr
