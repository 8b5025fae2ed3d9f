"""Environment tags: set, list, show, query, move, delete; shared through push/fetch of
``refs/prov/objects``; a tag moved on two machines settles the same way everywhere."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, prov
from factories import make_record

from git_prov.model.manifest import EnvironmentManifest
from git_prov.query.envtags import TagEntry, resolve_tags
from git_prov.store.ledger import OBJECTS_REF, Ledger
from git_prov.store.repo import open_repo


def add_runs(repo: Path, *versions: str) -> list[tuple[str, str]]:
    """One run per torch version, each in its own environment: [(short id, env id)]."""
    ledger = Ledger(open_repo(repo))
    head = git(repo, "rev-parse", "HEAD")
    out = []
    for version in versions:
        env = ledger.store_object(EnvironmentManifest(packages={"torch": version}).to_toml())
        record = make_record(head, env=env)
        ledger.write([(head, record)], objects={"env": [env]}, keep=[head])
        out.append((record.short_id, env))
    return out


def tags_json(repo: Path) -> dict[str, dict[str, object]]:
    return {t["name"]: t for t in json.loads(prov(repo, "env", "tags", "--json").stdout)}


def test_tag_round_trip(repo: Path) -> None:
    (run_a, env_a), (run_b, env_b) = add_runs(repo, "2.3.0", "2.4.1")
    tagged = prov(repo, "env", "tag", "old", run_a).stdout
    assert tagged == f"tagged environment {env_a[:10]} as old\n"
    prov(repo, "env", "tag", "new", env_b[:10])
    assert {n: t["env"] for n, t in tags_json(repo).items()} == {"old": env_a, "new": env_b}
    assert "already tagged" in prov(repo, "env", "tag", "old", env_a).stdout

    found = prov(repo, "find", "--env", "new", "--format", "{short_id}").stdout.split()
    assert found == [run_b]
    shown = prov(repo, "env", "show", "new").stdout
    assert shown.startswith(f"environment {env_b}  (new)") and "torch==2.4.1" in shown
    assert json.loads(prov(repo, "env", "show", "--json", run_a).stdout)["tags"] == ["old"]

    moved = prov(repo, "env", "tag", "old", run_b, check=False)
    assert moved.returncode == 2 and "--force" in moved.stderr
    prov(repo, "env", "tag", "--force", "old", run_b)
    assert tags_json(repo)["old"]["env"] == env_b and tags_json(repo)["old"]["history"] == 2
    assert prov(repo, "find", "--env", "old", "--format", "{short_id}").stdout.split() == [run_b]

    prov(repo, "env", "tag", "--delete", "new")
    assert set(tags_json(repo)) == {"old"}
    gone = prov(repo, "find", "--env", "new", check=False)
    assert gone.returncode == 6 and "deleted" in gone.stderr
    for bad in ("a/b", "-x", "cafe1234"):
        assert prov(repo, "env", "tag", bad, run_a, check=False).returncode == 2
    # Every entry is a path of the objects tree, readable with plain git.
    paths = git(repo, "ls-tree", "-r", "--name-only", OBJECTS_REF, "envtag").splitlines()
    assert len(paths) == 4 and all(p.startswith(("envtag/old/", "envtag/new/")) for p in paths)


def test_tags_travel_with_push_and_fetch(repo: Path, tmp_path: Path) -> None:
    (run_a, env_a), (_, env_b), (_, env_c) = add_runs(repo, "2.3.0", "2.4.1", "2.5.0")
    prov(repo, "env", "tag", "gpu", run_a)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main", f"{OBJECTS_REF}:{OBJECTS_REF}")

    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "fetch", "-q", "origin", f"{OBJECTS_REF}:{OBJECTS_REF}")
    assert tags_json(other)["gpu"]["env"] == env_a

    # Both machines move the tag before syncing; after the union every clone agrees on
    # the latest move and reports the other one.
    prov(repo, "env", "tag", "-f", "gpu", env_b[:10])
    prov(other, "env", "tag", "-f", "gpu", env_c[:10])
    prov(repo, "push")
    synced = prov(other, "sync")
    assert synced.returncode == 0
    prov(repo, "fetch")
    here, there = tags_json(repo)["gpu"], tags_json(other)["gpu"]
    assert here["env"] == there["env"] == env_c  # set last
    assert [d["env"] for d in here["diverged"]] == [env_b]
    listed = prov(repo, "env", "tags")
    assert "moved on two machines" in listed.stderr
    prov(repo, "env", "tag", "-f", "gpu", env_b[:10])  # setting it again settles it
    assert tags_json(repo)["gpu"]["diverged"] == []


def test_resolution_depends_only_on_the_entries() -> None:
    env1, env2, env3 = "1" * 40, "2" * 40, "3" * 40
    first = TagEntry("t", env1, "2026-01-01T00:00:00.000Z", "a", (), "e1")
    left = TagEntry("t", env2, "2026-01-02T00:00:00.000Z", "a", ("e1",), "e2")
    right = TagEntry("t", env3, "2026-01-03T00:00:00.000Z", "b", ("e1",), "e3")
    settle = TagEntry("t", None, "2026-01-01T00:00:00.000Z", "b", ("e2", "e3"), "e4")
    for order in ([first, left, right], [right, first, left], [left, right, first]):
        tag = resolve_tags(order)["t"]
        assert tag.env == env3 and [d.id for d in tag.diverged] == ["e2"]
    # An entry that replaced both heads wins even with an older clock: it saw them.
    tag = resolve_tags([first, left, right, settle])["t"]
    assert tag.deleted and tag.diverged == ()
    again = TagEntry.from_toml("x", first.to_toml())
    assert (again.name, again.env, again.at) == ("t", env1, first.at)
