"""The one git-binary layer (git_prov/store/gitcli): reading objects in batches and the one
rule for a reftable repository, which every way of opening a repository applies."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import commit_file, git, prov

from git_prov.errors import EXIT_REPOSITORY, RepositoryProblem
from git_prov.store.gitcli import read_blobs, ref_storage, refuse_reftable, stream_blobs

MISSING = "0123456789abcdef0123456789abcdef01234567"


def test_read_blobs_and_stream_blobs_read_the_same_and_skip_missing_objects(repo: Path) -> None:
    one = git(repo, "hash-object", "-w", "--stdin", input="one\n")
    empty = git(repo, "hash-object", "-w", "--stdin", input="")
    two = git(repo, "hash-object", "-w", "--stdin", input="two\nlines\n")
    wanted = [one, MISSING, empty, two, one]
    assert read_blobs(repo, wanted) == {one: b"one\n", empty: b"", two: b"two\nlines\n"}
    assert list(stream_blobs(repo, wanted)) == [
        (one, b"one\n"), (MISSING, None), (empty, b""), (two, b"two\nlines\n"), (one, b"one\n"),
    ]  # fmt: skip
    assert read_blobs(repo, []) == {} and list(stream_blobs(repo, [])) == []


@pytest.mark.parametrize(
    ("config", "storage"),
    [
        ("[core]\n\tbare = false\n", "files"),
        ("[extensions]\n\trefStorage = reftable\n", "reftable"),
        ("[Extensions]\nREFSTORAGE=reftable", "reftable"),  # names in any case, no newline
        ('[extensions]\n\trefstorage = "reftable" ; a comment\n', "reftable"),
        ("[extensions] refstorage = reftable\n", "reftable"),  # on the header's line
        ("[extensions]\n\trefstorage = reftable\n\trefstorage = files\n", "files"),  # last wins
        ("[extensions]\n\trefstorage = files\n[extensions]\n\trefstorage = reftable\n", "reftable"),
        ("[extensions]\n\trefstorage = ref\\\ntable\n", "reftable"),  # a continued line
        ("[extensions]\n\t# refstorage = reftable\n", "files"),  # a comment
        ("[extensions]\n\t; refstorage = reftable\n", "files"),
        ('[extensions "x"]\n\trefstorage = reftable\n', "files"),  # a subsection
        ("[core]\n\trefstorage = reftable\n", "files"),  # another section
        ('[alias]\n\tx = "!echo extensions.refstorage reftable"\n', "files"),  # only text
        ("[extensions]\n\trefstorage\n", "files"),  # no value: git rejects it, not reftable
    ],
)
def test_ref_storage_reads_extensions_refstorage_as_git_does(
    tmp_path: Path, config: str, storage: str
) -> None:
    (tmp_path / "config").write_text(config)
    assert ref_storage(tmp_path) == storage
    if storage == "reftable":
        with pytest.raises(RepositoryProblem, match="reftable"):
            refuse_reftable(tmp_path)
    else:
        refuse_reftable(tmp_path)


def test_a_missing_config_is_the_files_backend(tmp_path: Path) -> None:
    assert ref_storage(tmp_path / "nowhere") == "files"


def test_every_way_of_opening_a_repository_refuses_a_reftable_one(repo: Path) -> None:
    """The query path (no pygit2), the quick sync path (no click, no pygit2) and the pygit2
    path (log) apply the one rule. (The git here may predate reftable, and a version-0
    repository naming a ref storage is one newer gits refuse: either way, not readable.)"""
    commit_file(repo, "a.txt", "a\n")
    prov(repo, "record", "--", "true")
    git(repo, "config", "extensions.refStorage", "reftable")
    for args in (("find",), ("push",), ("log",), ("record", "--", "true")):
        done = prov(repo, *args, check=False)
        assert done.returncode == EXIT_REPOSITORY, (args, done.stderr)
        assert "stores its refs as reftable" in done.stderr, args


def test_a_config_that_merely_mentions_reftable_is_not_refused(repo: Path) -> None:
    """The former check of store/repo.py looked for the two words anywhere in the config."""
    git(repo, "config", "alias.why", "!echo refstorage is not reftable here")
    prov(repo, "record", "--", "true")
    assert prov(repo, "find", "--format", "{status}").stdout == "ok\n"
