"""Property test of remap on random real histories (issue 15, acceptance): feature branches
with runs that a host merges by rebase or squash (with or without an "update branch" merge,
with or without a message listing the commits), or that are abandoned; empty commits;
independent commits with the same change on main or on another live branch. No hook is
installed, so remap alone must find the copies.

* **0 wrong attachments**: remap attaches a run only to a commit that is a copy of its
  commit (the rebase's copy, the squash of its branch) or that has exactly its tree;
* **complete where the evidence is unambiguous**: every run a rebase merge copied is
  attached to its copy, and every run of a squash whose branch tip has a run is attached
  to the squash when it has the tip's tree or a message naming the squashed commits.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
from factories import write_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from git_prov.rewrite import remap
from git_prov.store.repo import open_repo

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


@dataclass
class World:
    """A repository under construction and what really happened in it."""

    path: Path
    clock: int = 0
    runs: dict[str, str] = field(default_factory=dict)  # run id -> commit it ran on
    copies: dict[str, set[str]] = field(default_factory=dict)  # run id -> true copies
    expected: dict[str, str] = field(default_factory=dict)  # run id -> must be attached here

    def git(self, *args: str, input: str | None = None) -> str:
        self.clock += 60
        when = f"@{T0 + self.clock} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            input=input,
            check=False,
        )
        assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
        return proc.stdout.strip()

    def commit(self, name: str | None, content: str, message: str) -> str:
        if name is None:
            self.git("commit", "-q", "--allow-empty", "-m", message)
        else:
            (self.path / name).write_text(content)
            self.git("add", name)
            self.git("commit", "-q", "-m", message)
        return self.rev("HEAD")

    def rev(self, spec: str) -> str:
        """The commit ``spec`` names (read in-process: a ``git rev-parse`` process per
        lookup was a third of this test's git calls)."""
        found = pygit2.Repository(str(self.path)).revparse_single(spec)
        return str(found.peel(pygit2.Commit).id)

    def tree(self, commit: str) -> str:
        found = pygit2.Repository(str(self.path)).revparse_single(commit)
        return str(found.peel(pygit2.Commit).tree_id)


feature = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["rebase", "squash", "abandon"]),
        # (empty commit?, run on it?) per commit
        "commits": st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=3),
        "main_moves": st.booleans(),
        "update_branch": st.booleans(),
        "list_subjects": st.booleans(),
        "decoy": st.sampled_from([None, "main", "other"]),
    }
)


def _build(world: World, n: int, spec: dict[str, object]) -> None:
    kind = spec["kind"]
    commits = list(spec["commits"])  # type: ignore[call-overload]
    if kind == "squash":
        commits[0] = (False, commits[0][1])  # a squash needs a change to commit
    world.git("checkout", "-q", "-b", f"f{n}", "main")
    made: list[tuple[str, bool]] = []  # (commit, empty)
    first_change: tuple[str, str] | None = None
    for i, (empty, has_run) in enumerate(commits):
        name = None if empty else f"f{n}_{i}.txt"
        commit = world.commit(name, f"feature {n} step {i}\n", f"feature {n} step {i}")
        if name is not None and first_change is None:
            first_change = (name, f"feature {n} step {i}")
        made.append((commit, empty))
        if has_run:
            world.runs[write_run(world.path, commit).id] = commit
    runs_here = {r: c for r, c in world.runs.items() if c in {m for m, _ in made}}
    tip = made[-1][0]
    world.git("checkout", "-q", "main")
    if spec["main_moves"]:
        world.commit(f"main{n}.txt", "main moves\n", f"main moves {n}")
        if kind == "squash" and spec["update_branch"]:
            world.git("checkout", "-q", f"f{n}")
            world.git("merge", "-q", "--no-edit", "main")
            tip = world.rev("HEAD")
            if commits[-1][1]:  # a run after the update too
                world.runs[write_run(world.path, tip).id] = tip
                runs_here = {**runs_here, **{r: c for r, c in world.runs.items() if c == tip}}
            world.git("checkout", "-q", "main")
    if kind == "rebase":
        before = world.rev("main")
        world.git("checkout", "-q", f"f{n}")
        world.git("rebase", "-q", "main")
        world.git("checkout", "-q", "main")
        world.git("merge", "-q", "--ff-only", f"f{n}")
        copies = world.git("rev-list", "--reverse", f"{before}..main").splitlines()
        originals = [c for c, _ in made]
        assert len(copies) == len(originals)
        moved = dict(zip(originals, copies, strict=True))
        for run, commit in runs_here.items():
            world.copies[run] = {moved[commit]}
            if moved[commit] != commit:
                world.expected[run] = moved[commit]
    elif kind == "squash":
        base = world.rev("main")
        world.git("merge", "-q", "--squash", f"f{n}")
        subjects = [f"feature {n} step {i}" for i in range(len(commits))]
        message = f"Feature {n} (#{n})\n\n"
        if spec["list_subjects"]:
            message += "".join(f"* {s}\n\n" for s in subjects)
        world.git("commit", "-q", "-m", message)
        squash = world.rev("HEAD")
        tree_evidence = world.tree(squash) == world.tree(tip)
        several = len(commits) > 1  # a message listing one subject is no evidence
        for run in runs_here:
            world.copies[run] = {squash}
            tip_has_run = tip in runs_here.values()
            if tip_has_run and (tree_evidence or (spec["list_subjects"] and several)):
                world.expected[run] = squash
        assert base != squash
    world.git("branch", "-q", "-D", f"f{n}")
    if spec["decoy"] is not None and first_change is not None:
        # Someone else makes the same change, later, on their own.
        name, message = first_change
        if spec["decoy"] == "other" or kind != "abandon":  # (main has it when merged)
            world.git("checkout", "-q", "other")
        world.commit(name, f"{message}\n", message)
        world.git("checkout", "-q", "main")


@settings(
    max_examples=24,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(features=st.lists(feature, min_size=1, max_size=4))
def test_remap_never_attaches_a_wrong_commit_and_finds_every_evidenced_copy(
    features: list[dict[str, object]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp))
        world.git("init", "-q", "-b", "main")
        world.commit("README.md", "# project\n", "initial commit")
        # Another live branch, whose code differs from everything on main.
        world.git("checkout", "-q", "-b", "other")
        world.commit("other.txt", "other work\n", "other work")
        world.git("checkout", "-q", "main")
        for n, spec in enumerate(features):
            _build(world, n, spec)
        report = remap(open_repo(world.path))
        attached: dict[str, set[str]] = {}
        for match in report.matched:
            attached.setdefault(match.run, set()).add(match.commit)
        for run, commits in attached.items():
            ran = world.runs[run]
            for commit in commits:
                ok = commit in world.copies.get(run, set()) or world.tree(commit) == world.tree(ran)
                assert ok, f"run on {ran[:7]} attached to {commit[:7]}, not a copy of it"
        for run, commit in world.expected.items():
            assert commit in attached.get(run, set()), (
                f"run on {world.runs[run][:7]} not attached to its copy {commit[:7]}: {report}"
            )
