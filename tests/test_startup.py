"""The start-up shape of the two commonest commands, by module name (``sys.modules`` as
the process ends: every module it imported), never by time: bench/bench_floor.py measures
the time (issue 18).

``record`` writes objects, so it loads pygit2; a plain one (no ``--keep``, no signing, no
metrics files, a clean tree) loads none of the code only some runs need. ``log`` reads
through the index and the git binary: no pygit2, no manifests, no temporary files. Each
imports the one command module that defines it (cli/__init__.py's lazy group), none of the
others' and none of the library the others call.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import commit_file

# Loaded only by the runs that need them (recording.py imports each where it is used).
RECORD_NEVER = {
    "git_prov.trust.signing",  # --sign / prov.sign
    "git_prov.capture.keep",  # --keep / [keep]
    "git_prov.store.kept",
    "git_prov.store.lfs",
    "git_prov.live",  # `run` only: metric points while a run goes
    "git_prov.model.history",  # metric histories
    "git_prov.capture.data",  # -i / -o
    "git_prov.fsck",
    "tempfile",  # (patch-ids of a dirty tree, writing a new environment cache)
    "random",  # (a compare-and-swap retry)
    "csv",  # (nvidia-smi's answer)
    "tomllib",  # (the environment cache is read from its JSON copy)
    # Other commands' modules: `record` is defined in cli/recording.py alone.
    "git_prov.cli.history",
    "git_prov.cli.initialize",
    "git_prov.cli.query",
    "git_prov.cli.sync",
    "git_prov.cli.output",  # (the progress bar and the pager: not on a pipe, not here)
    "git_prov.history",
    "git_prov.query.index",
}
LOG_NEVER = {
    "pygit2",
    "difflib",  # (click's "did you mean" for every short option: cli.Command parses -n without)
    "git_prov.store.repo",
    "git_prov.store.ledger",
    "git_prov.model.manifest",
    "tomllib",
    "tomli_w",
    "tempfile",
    "random",
    # Other commands' modules and what only they call: `log` is in cli/history.py.
    "git_prov.cli.recording",
    "git_prov.cli.initialize",
    "git_prov.cli.query",
    "git_prov.cli.rewrite",  # (show's whereabouts)
    "git_prov.recording",
    "git_prov.capture",
}


# Runs git-prov as `python -m git_prov` does, and names every module in sys.modules as the
# process exits (importtime would miss the command modules: importlib.import_module, the
# lazy group's way, is not timed).
LISTING = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print('\\n'.join('module: ' + m for m in sys.modules),"
    " file=sys.stderr))\n"
    "sys.argv = ['git_prov', *sys.argv[1:]]\n"
    "runpy.run_module('git_prov', run_name='__main__', alter_sys=True)\n"
)


def _listed(script: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``git prov ARGS`` run by ``script`` (:data:`LISTING` or a variant of it)."""
    return subprocess.run(
        [sys.executable, "-c", script, "--no-pager", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def imported(cwd: Path, *args: str) -> set[str]:
    """The modules ``git prov ARGS`` imports (it must succeed)."""
    done = _listed(LISTING, cwd, *args)
    assert done.returncode == 0, done.stderr
    return {
        line.removeprefix("module: ")
        for line in done.stderr.splitlines()
        if line.startswith("module: ")
    }


def test_a_plain_record_loads_only_what_it_uses(repo: Path) -> None:
    imported(repo, "record", "--command", "true")  # (writes the environment cache)
    imported(repo, "record", "--command", "true")  # (and its JSON copy)
    modules = imported(repo, "record", "--command", "true")
    assert {"git_prov.cli.recording", "git_prov.recording", "pygit2"} <= modules
    assert not RECORD_NEVER & modules, sorted(RECORD_NEVER & modules)


def test_log_loads_no_pygit2_no_manifests_no_temporary_files(repo: Path) -> None:
    for n in range(3):
        commit_file(repo, "a.txt", f"{n}\n")
        imported(repo, "record", "--command", f"step {n}")
    imported(repo, "log")  # (builds the index)
    for args in (("log", "-n", "2"), ("log",), ("log", "--oneline")):
        modules = imported(repo, *args)
        assert {"git_prov.cli.history", "git_prov.history", "git_prov.query.index"} <= modules
        assert not LOG_NEVER & modules, (args, sorted(LOG_NEVER & modules))


# The same, naming the cycle collector's state as the process exits.
COLLECTOR = LISTING.replace(
    "'\\n'.join('module: ' + m for m in sys.modules)",
    "'collector: %s %d' % (__import__('gc').isenabled(), __import__('gc').get_freeze_count())",
)


def collector_at_exit(cwd: Path, *args: str) -> tuple[bool, int]:
    """Whether the collector was on as ``git prov ARGS`` ended, and how many objects its
    start-up left frozen (``gc.freeze``)."""
    done = _listed(COLLECTOR, cwd, *args)
    said = [line for line in done.stderr.splitlines() if line.startswith("collector: ")]
    assert said, done.stderr
    enabled, frozen = said[-1].removeprefix("collector: ").split()
    return enabled == "True", int(frozen)


def test_the_collector_paused_for_start_up_is_on_again_for_the_work(repo: Path) -> None:
    # Start-up (imports, parsing) runs with the collector off (git_prov.collector); every
    # command turns it back on, its start-up's objects frozen, whichever path ran it: click
    # (record pauses it over its own work, then restores it), the quick path of push.
    for args in (("record", "--command", "true"), ("find", "-n", "1"), ("push",)):
        enabled, frozen = collector_at_exit(repo, *args)
        assert enabled and frozen > 10_000, args
