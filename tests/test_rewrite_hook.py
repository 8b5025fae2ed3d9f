"""The post-rewrite hook on real repositories: `git commit --amend` and `git rebase` (plain
and interactive) run the installed trampoline, and runs follow their commits."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import commit_file, git, prov, runs_json
from factories import shown_on, write_run

from git_prov.hooks_install import hook_template, install_hook, render_hook, uninstall_hook
from git_prov.model.record import Attachment, parse_note
from git_prov.rewrite import find_orphans, remap, remap_rewritten
from git_prov.store.ledger import NOTES_REF, Ledger
from git_prov.store.repo import open_repo

REPO_ROOT = Path(__file__).resolve().parent.parent


def _attach_lines(repo: Path, commit: str) -> list[Attachment]:
    text = git(repo, "notes", "--ref=prov", "show", commit)
    return [e for e in parse_note(text).entries if isinstance(e, Attachment)]


def _by_subject(repo: Path, rev: str = "HEAD") -> dict[str, str]:
    lines = git(repo, "log", "--format=%H %s", rev).splitlines()
    return {subject: commit for commit, _, subject in (ln.partition(" ") for ln in lines)}


def _notes_commits(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", NOTES_REF))


def _install(repo: Path) -> str:
    return prov(repo, "hooks", "install").stdout


# ---- the trampoline ------------------------------------------------------------------------


def test_shipped_hook_script_is_the_packaged_template() -> None:
    shipped = REPO_ROOT / "hooks" / "post-rewrite"
    assert shipped.read_text() == hook_template("post-rewrite")
    assert shipped.stat().st_mode & stat.S_IXUSR
    assert "GIT_PROV_PYTHON=''" in shipped.read_text()


def test_install_is_idempotent_and_uninstall_removes_it(repo: Path) -> None:
    out = _install(repo)
    hook = repo / ".git" / "hooks" / "post-rewrite"
    assert "installed" in out and hook.stat().st_mode & stat.S_IXUSR
    assert hook.read_text() == render_hook("post-rewrite")  # the interpreter filled in
    assert "already installed" in _install(repo)
    assert not (hook.parent / "post-rewrite.legacy").exists()
    assert "removed" in prov(repo, "hooks", "uninstall").stdout
    assert not hook.exists()


# ---- amend ---------------------------------------------------------------------------------


def test_amend_shows_the_run_on_the_new_commit_and_chains_keep_the_original(
    repo: Path,
) -> None:
    _install(repo)
    original = commit_file(repo, "train.py", "print(1)\n")
    prov(repo, "record", "--command", "python train.py")
    [run] = runs_json(repo)
    (repo / "train.py").write_text("print(2)\n")
    git(repo, "commit", "-q", "-a", "--amend", "-m", "amended")
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--amend", "-m", "amended again")
    second = git(repo, "rev-parse", "HEAD")
    [shown] = runs_json(repo)
    assert shown["id"] == run["id"] and shown["commit"] == original
    assert shown["shown_on"][0] == original
    assert set(shown["shown_on"]) == {original, first, second}
    [attach] = _attach_lines(repo, second)
    assert attach.original == original and attach.how == "amend"  # not the middle commit
    show = prov(repo, "show", str(run["short_id"])).stdout
    assert f"Also on:     {second} (amend)" in show
    assert "ran on" in prov(repo, "log").stdout


# ---- rebase --------------------------------------------------------------------------------


def test_rebase_onto_a_moved_base_moves_every_run(repo: Path) -> None:
    _install(repo)
    git(repo, "checkout", "-q", "-b", "feature")
    a = commit_file(repo, "a.py", "a\n", "feature a")
    run_a = write_run(repo)
    b = commit_file(repo, "b.py", "b\n", "feature b")
    run_b = write_run(repo)
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "main.py", "m\n", "main moves")
    git(repo, "checkout", "-q", "feature")
    git(repo, "rebase", "-q", "main")
    new = _by_subject(repo)
    assert new["feature a"] != a and new["feature b"] != b
    assert shown_on(repo, run_a.id) == (a, new["feature a"])
    assert shown_on(repo, run_b.id) == (b, new["feature b"])
    assert _attach_lines(repo, new["feature b"])[0].how == "rebase"


def test_interactive_rebase_reorder_fixup_squash_drop(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(repo)
    base = git(repo, "rev-parse", "HEAD")
    commits, runs = {}, {}
    for n in range(1, 7):
        commits[n] = commit_file(repo, f"f{n}.txt", f"{n}\n", f"c{n}")
        runs[n] = write_run(repo)
    todo = tmp_path / "todo"
    # c1 is kept as it is, c2 fixed and c3 squashed into it: git then fires "amend" for each
    # step (c1 → intermediate → final) before the final "rebase".
    todo.write_text(
        f"pick {commits[1]} c1\nfixup {commits[2]} c2\nsquash {commits[3]} c3\n"
        f"pick {commits[5]} c5\npick {commits[4]} c4\ndrop {commits[6]} c6\n"
    )
    editor = tmp_path / "sequence-editor"
    editor.write_text(f"#!/bin/sh\ncp '{todo}' \"$1\"\n")
    editor.chmod(0o755)
    monkeypatch.setenv("GIT_SEQUENCE_EDITOR", str(editor))
    monkeypatch.setenv("GIT_EDITOR", "true")
    git(repo, "rebase", "-q", "-i", base)
    new = git(repo, "rev-list", "--reverse", f"{base}..HEAD").splitlines()
    assert len(new) == 3
    n1, n2, n3 = new
    expected = {1: n1, 2: n1, 3: n1, 5: n2, 4: n3}
    scan = Ledger(open_repo(repo)).scan()
    for n, commit in expected.items():
        # Exactly the final commit: no attachments on fixup intermediates nobody keeps.
        assert scan.runs[runs[n].id].shown_on == (commits[n], commit), n
    # The dropped commit's run stays on its own commit, orphaned but kept.
    assert scan.runs[runs[6].id].shown_on == (commits[6],)
    assert [r.id for r in find_orphans(open_repo(repo))] == [runs[6].id]
    assert Ledger(open_repo(repo)).is_kept(commits[6])
    # One attachment per run on each new commit, even if git fired the hook twice.
    for commit in (n1, n2, n3):
        attached = [a.run for a in _attach_lines(repo, commit)]
        assert len(attached) == len(set(attached))
    before = _notes_commits(repo)
    mapping = "".join(f"{commits[n]} {c}\n" for n, c in expected.items())
    again = prov(repo, "hook", "post-rewrite", "rebase", input=mapping + mapping)
    assert again.stderr == "" and _notes_commits(repo) == before
    report = remap(open_repo(repo))
    assert [u.run for u in report.unmatched] == [runs[6].id] and not report.matched
    # gc with every reflog gone: the dropped commit's code is still there.
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert git(repo, "show", f"{commits[6]}:f6.txt") == "6"


def test_remap_rewritten_is_idempotent_and_follows_chains_within_one_batch(repo: Path) -> None:
    one = git(repo, "rev-parse", "HEAD")
    two = commit_file(repo, "x", "2\n")
    three = commit_file(repo, "x", "3\n")
    run = write_run(repo, one)
    gprov = open_repo(repo)
    written = remap_rewritten(gprov, [(one, two), (one, two), (two, three)], "rebase")
    assert [(a.commit, a.original) for a in written] == [(two, one), (three, one)]
    assert remap_rewritten(gprov, [(one, two), (two, three)], "rebase") == []
    assert shown_on(repo, run.id)[0] == one
    assert set(shown_on(repo, run.id)) == {one, two, three}
    # A run already on the new commit (git's own notes.rewriteRef copy) gets nothing new.
    assert remap_rewritten(gprov, [(three, one)], "amend") == []


# ---- never in the way ----------------------------------------------------------------------


def test_hook_never_fails_a_rebase_even_with_a_broken_ledger(repo: Path) -> None:
    _install(repo)
    commit_file(repo, "a.py", "a\n", "work")
    write_run(repo)
    blob = git(repo, "hash-object", "-w", "--stdin", input="not a commit\n")
    git(repo, "update-ref", NOTES_REF, blob)
    proc = _amend(repo, "still works")
    assert proc.returncode == 0
    assert git(repo, "log", "-1", "--format=%s") == "still works"
    warnings = [ln for ln in proc.stderr.splitlines() if "git-prov" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("warning: git-prov")


def test_hook_warns_in_one_line_when_git_prov_is_gone(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "post-rewrite").write_text(render_hook("post-rewrite", python="/nonexistent/python3"))
    (hooks / "post-rewrite").chmod(0o755)
    proc = _amend(repo, "amended", env_path="/usr/bin:/bin")
    assert proc.returncode == 0 and proc.stderr == ""  # no ledger yet: nothing to do
    write_run(repo)
    proc = _amend(repo, "amended again", env_path="/usr/bin:/bin")
    assert proc.returncode == 0
    [warning] = [ln for ln in proc.stderr.splitlines() if "git-prov" in ln]
    assert warning.startswith("warning: git-prov: git-prov is not installed")


def _amend(
    repo: Path, message: str, env_path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if env_path is not None:
        env["PATH"] = env_path
    return subprocess.run(
        ["git", "commit", "-q", "--amend", "-m", message],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_install_chains_an_existing_hook_which_still_runs(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    log = repo.parent / "legacy.log"
    (hooks / "post-rewrite").write_text(
        f"#!/bin/sh\necho \"args: $*\" >> '{log}'\ncat >> '{log}'\n"
    )
    (hooks / "post-rewrite").chmod(0o755)
    out = _install(repo)
    assert "kept your post-rewrite hook as post-rewrite.legacy" in out
    old = git(repo, "rev-parse", "HEAD")
    run = write_run(repo)
    git(repo, "commit", "-q", "--amend", "-m", "amended")
    new = git(repo, "rev-parse", "HEAD")
    assert log.read_text() == f"args: amend\n{old} {new}\n"  # same args, same input
    assert shown_on(repo, run.id) == (old, new)
    assert "restored your previous post-rewrite hook" in prov(repo, "hooks", "uninstall").stdout
    assert "echo" in (hooks / "post-rewrite").read_text()
    assert not (hooks / "post-rewrite.legacy").exists()


def test_install_honours_core_hooks_path(repo: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared-hooks"
    git(repo, "config", "core.hooksPath", str(shared))
    out = _install(repo)
    assert (shared / "post-rewrite").exists() and "hint: core.hooksPath is set" in out
    assert not (repo / ".git" / "hooks" / "post-rewrite").exists()
    old = git(repo, "rev-parse", "HEAD")
    run = write_run(repo)
    git(repo, "commit", "-q", "--amend", "-m", "amended")
    assert shown_on(repo, run.id) == (old, git(repo, "rev-parse", "HEAD"))


def test_library_install_and_uninstall_messages(repo: Path) -> None:
    gprov = open_repo(repo)
    assert install_hook(gprov, "post-rewrite")[0].startswith("post-rewrite hook: installed")
    hook = repo / ".git" / "hooks" / "post-rewrite"
    hook.write_text(hook.read_text() + "# an older version\n")
    assert install_hook(gprov, "post-rewrite")[0].startswith("post-rewrite hook: updated")
    assert uninstall_hook(gprov, "post-rewrite") == [f"post-rewrite hook: removed ({hook})"]
    assert uninstall_hook(gprov, "post-rewrite") == ["post-rewrite hook: not installed"]
