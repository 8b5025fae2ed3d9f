"""ObjectHeaders.headers: many headers through one `git cat-file --batch-check` give what
ObjectHeaders.header gives for each id, whatever the id names (fsck reads the headers of
every note and its commit this way)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import commit_file, git

from git_prov.store import headers as headers_module
from git_prov.store.headers import ObjectHeaders
from git_prov.store.repo import open_repo


def _ids(repo: Path) -> list[str]:
    """A commit, a tree, a blob, an annotated tag, a missing id, ids that are no full hex
    object name (a ref name git would resolve, a short id, upper case), and a blob
    replaced through refs/replace (pygit2 does not follow replacements)."""
    commit = commit_file(repo, "a.txt", "a\n")
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    blob = git(repo, "rev-parse", "HEAD:a.txt")
    other = git(repo, "hash-object", "-w", "--stdin", input="other contents\n")
    git(repo, "replace", blob, other)
    git(repo, "tag", "-a", "-m", "t", "t1")
    tag = git(repo, "rev-parse", "t1")
    return [commit, tree, blob, tag, "0" * 40, "HEAD", commit[:12], commit.upper(), other]


def test_batched_headers_equal_one_by_one(repo: Path) -> None:
    objects = ObjectHeaders(open_repo(repo))
    ids = _ids(repo)
    many = ids * (headers_module._BATCH_HEADERS // len(ids) + 1)
    assert len(many) >= headers_module._BATCH_HEADERS  # (the batched path)
    one_by_one = [objects.header(oid) for oid in many]
    assert objects.headers(many) == one_by_one
    assert objects.headers(ids) == one_by_one[: len(ids)]  # (few: looked up here)
    kinds = {oid: found for oid, found in zip(ids, one_by_one[: len(ids)], strict=True)}
    assert kinds[ids[4]] is None and kinds["HEAD"] is None and kinds[ids[6]] is None
    assert kinds[ids[2]] == (headers_module.OBJ_BLOB, 2)  # the blob itself, not "other"


def test_batched_headers_when_git_fails(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git answering nothing (here: no git on PATH for that call) leaves every id to
    pygit2: the same answers."""
    objects = ObjectHeaders(open_repo(repo))
    ids = _ids(repo)
    many = ids * (headers_module._BATCH_HEADERS // len(ids) + 1)
    expected = [objects.header(oid) for oid in many]
    monkeypatch.setenv("PATH", "/nonexistent")
    assert objects.headers(many) == expected
