"""The words a newcomer needs at the moment they need them: why a run was dirty, what the
snapshot left out, where runs went after an amend, that a clone has provenance to fetch,
and one-line usage errors with a did-you-mean. Real CLI, real repos."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conftest import commit_file, git, prov

PY = sys.executable


def _notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note: run ")]


def test_a_dirty_run_names_the_untracked_files_and_the_ones_too_large(repo: Path) -> None:
    # A repository that ignores neither its generated data nor its model, with a small
    # snapshot limit so that the "model" is over it.
    commit_file(repo, ".gitprov.toml", "[run]\nmax_snapshot_file = 1000\n")
    clean = prov(repo, "run", "--", PY, "-c", "pass")
    assert _notes(clean.stderr) == []  # a clean tree: not a word more
    (repo / "data").mkdir()
    for name in ("a", "b", "c", "d"):
        (repo / "data" / f"{name}.csv").write_text("x\n1\n")
    (repo / "model.pkl").write_bytes(b"\0" * 2000)
    dirty = prov(repo, "run", "--", PY, "-c", "pass")
    assert "(dirty tree, snapshot kept)" in dirty.stderr
    untracked, too_large = _notes(dirty.stderr)
    assert "4 untracked files" in untracked
    assert "data/a.csv, data/b.csv, data/c.csv and 1 more" in untracked
    assert ".gitignore" in untracked and "-i/-o" in untracked
    assert "model.pkl" not in untracked  # it is not in the snapshot
    assert "1 untracked file larger than 1000 bytes" in too_large
    assert "model.pkl" in too_large and ".gitignore" in too_large and "-i/-o" in too_large

    # `record` says the same; declared data is hashed, not snapshotted, so it is no reason.
    recorded = prov(repo, "record", "-i", "data", "-c", "make", "--duration", "1")
    [too_large_again] = _notes(recorded.stderr)
    assert "model.pkl" in too_large_again

    # Once ignored, the tree is clean again and nothing is said.
    commit_file(repo, ".gitignore", "data/\nmodel.pkl\n")
    quiet = prov(repo, "run", "--", PY, "-c", "pass")
    assert _notes(quiet.stderr) == [] and "dirty" not in quiet.stderr


def test_a_tracked_change_alone_is_dirty_without_a_hint(repo: Path) -> None:
    (repo / "README.md").write_text("# edited\n")
    proc = prov(repo, "run", "--", PY, "-c", "pass")
    assert "(dirty tree, snapshot kept)" in proc.stderr
    assert _notes(proc.stderr) == []  # editing code is what dirty means; no advice needed


def test_run_and_record_say_recorded_in_one_form(repo: Path) -> None:
    head = git(repo, "rev-parse", "--short=7", "HEAD")
    ran = prov(repo, "run", "--", PY, "-c", "pass")
    recorded = prov(repo, "record", "--exit-code", "1", "--duration", "2", "-c", "make")
    pattern = r"git-prov: recorded run [0-9a-f]{8} — (ok|failed), \S+, on " + head + "\n"
    assert re.fullmatch(pattern, ran.stderr) and ran.stdout == ""
    assert re.fullmatch(pattern, recorded.stderr) and recorded.stdout == ""
    assert "— failed, 2.0s," in recorded.stderr
    assert prov(repo, "record", "-q", "-c", "make").stderr == ""


def test_usage_errors_are_one_line_with_a_did_you_mean(repo: Path) -> None:
    typo = prov(repo, "fnd", check=False)
    assert typo.returncode == 2 and typo.stdout == ""
    assert typo.stderr == (
        "error: no such command 'fnd' — did you mean 'git prov find'? "
        "('git prov --help' lists the commands)\n"
    )
    nested = prov(repo, "env", "tga", check=False)
    assert "did you mean 'git prov env tag'?" in nested.stderr
    option = prov(repo, "log", "--all-run", check=False)
    assert option.returncode == 2 and len(option.stderr.splitlines()) == 1
    assert option.stderr.startswith("error: no such option '--all-run' — did you mean '--all-runs'")
    missing = prov(repo, "run", check=False)
    assert missing.returncode == 2
    assert missing.stderr == "error: missing argument 'COMMAND...' — see 'git prov run --help'\n"


def test_a_range_from_before_the_first_commit_is_one_clean_message(repo: Path) -> None:
    for command in ("find", "log"):
        proc = prov(repo, command, "HEAD~1..HEAD", check=False)
        assert proc.returncode == 2
        assert proc.stderr == (
            "error: bad revision 'HEAD~1..HEAD': HEAD~1 is before the first commit "
            "— name HEAD alone for it and everything before it\n"
        )
    proc = prov(repo, "find", "nosuch..HEAD", check=False)
    assert proc.stderr == (
        "error: bad revision 'nosuch..HEAD': nosuch names no commit — see `git help revisions`\n"
    )


def test_show_says_how_a_hash_was_made_and_the_memory_recorded(repo: Path) -> None:
    (repo / "in.csv").write_text("x\n1\n")
    commit_file(repo, "params.yaml", "lr: 1\n")
    prov(repo, "record", "-i", "in.csv", "-i", "params.yaml", "-c", "one")
    prov(repo, "record", "-c", "two")
    shown = prov(repo, "show", "HEAD").stdout  # both runs of the commit
    assert "(hashed from its bytes" in shown  # in.csv: untracked, so its bytes were hashed
    assert "(git blob id, unmodified" in shown  # params.yaml: committed, not read
    assert "(read" not in shown
    memory = [line.split() for line in shown.splitlines() if line.startswith("    memory ")]
    assert len(memory) == 2 and all(m[2] in ("kB", "MB", "GB", "TB") for m in memory)
    # The runs of one commit are apart by a blank line, not by an escaped "\n".
    assert "\\n" not in shown and "\n\nrun " in shown


def test_every_config_key_is_documented_and_the_template_links_there() -> None:
    import git_prov.config
    from git_prov.config import template_text

    source = Path(git_prov.config.__file__).read_text()
    keys = re.findall(r'_(?:strings|int)\((run|environment|keep), "(\w+)"', source)
    assert len(keys) >= 11  # every key load_config reads
    docs = (Path(__file__).parents[1] / "docs" / "config.md").read_text()
    template = template_text()
    for table, key in keys:
        section = docs.split(f"## `[{table}]`")[1].split("\n## ")[0]
        assert f"| `{key}` |" in section, (table, key)
        assert f"\n{key} = " in template.split(f"[{table}]")[1], (table, key)
    first = template.splitlines()[0]
    assert "docs/config.md" in first and "…" not in first and "://" not in first


def test_runs_left_behind_by_an_amend_point_to_remap_and_init(repo: Path) -> None:
    prov(repo, "run", "-q", "--", PY, "-c", "pass")
    before = prov(repo, "log")
    assert "hint:" not in before.stderr  # every run is reachable: nothing to say
    git(repo, "commit", "-q", "--amend", "-m", "amended")  # no hook installed
    log = prov(repo, "log")
    assert "no runs recorded in this range yet" in log.stderr  # (no remote: no fetch advice)
    [hint] = [line for line in log.stderr.splitlines() if line.startswith("hint:")]
    assert hint.startswith("hint: 1 run is on commits no branch reaches")
    assert "`git prov remap`" in hint and "`git prov init`" in hint
    found = prov(repo, "find")  # find still lists the run, and says where it stands
    assert hint in found.stderr.splitlines()
    prov(repo, "init")
    after_init = prov(repo, "log").stderr
    assert "`git prov remap`" in after_init and "`git prov init`" not in after_init
    prov(repo, "remap")  # same tree: attached to the amended commit
    remapped = prov(repo, "log")
    assert "hint:" not in remapped.stderr and "no runs" not in remapped.stderr


def test_a_fresh_clone_says_to_fetch_provenance(repo: Path, tmp_path: Path) -> None:
    prov(repo, "run", "-q", "--", PY, "-c", "pass")
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    prov(repo, "push", "origin")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    fresh = prov(clone, "log")
    assert fresh.stdout == "" and fresh.returncode == 0
    assert "no runs recorded here yet — a clone does not bring provenance" in fresh.stderr
    assert "run `git prov fetch origin`" in fresh.stderr
    # A plain `git fetch` set up by init brings it into tracking refs: now it is known.
    prov(clone, "init", "--remote", "origin", "--no-hooks", "--no-display")
    git(clone, "fetch", "-q")
    tracked = prov(clone, "log").stderr
    assert "provenance fetched from origin is not merged — run `git prov fetch origin`" in tracked
    prov(clone, "fetch")
    assert "ok" in prov(clone, "log", "--oneline").stdout


def test_a_run_on_an_unreachable_commit_is_seen_when_only_the_ledger_moved(repo: Path) -> None:
    from factories import write_run

    prov(repo, "run", "-q", "--", PY, "-c", "pass")
    assert "hint:" not in prov(repo, "log").stderr  # remembered: nothing orphaned
    lost = git(repo, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "never on a branch")
    write_run(repo, lost)  # the ledger moves, no branch, tag or HEAD does
    assert "hint: 1 run is on commits no branch reaches" in prov(repo, "log").stderr


def test_log_asks_for_the_alive_tips_with_the_repository_and_says_the_same(
    repo: Path, tmp_path: Path
) -> None:
    """log learns the tips that keep commits alive from the git process that finds the
    repository (no second rev-parse); the hint is find's (which asks on its own), and a
    detached HEAD counts as a tip."""
    import json

    prov(repo, "run", "-q", "--", PY, "-c", "pass")
    old = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--amend", "-m", "amended")
    trace = tmp_path / "trace.json"
    log = prov(repo, "log", env={"GIT_TRACE2_EVENT": str(trace)})
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    started = [e["argv"] for e in events if e["event"] == "start"]
    asked = [argv for argv in started if "--branches" in argv]
    assert asked == [["git", "rev-parse", "--path-format=absolute", "--git-common-dir",
                      "--is-inside-work-tree", "--show-prefix", "--branches", "--tags",
                      "--remotes", "HEAD"]]  # fmt: skip
    [hint] = [line for line in log.stderr.splitlines() if line.startswith("hint:")]
    assert hint.startswith("hint: 1 run is on commits no branch reaches")
    assert hint in prov(repo, "find").stderr.splitlines()
    (repo / "sub").mkdir()
    assert hint in prov(repo / "sub", "log").stderr.splitlines()
    git(repo, "checkout", "-q", "--detach", old)  # HEAD reaches the run's commit again
    detached = prov(repo, "log")
    assert "hint:" not in detached.stderr and "ok" in detached.stdout
