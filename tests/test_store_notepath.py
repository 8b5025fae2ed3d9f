"""One rule for "this notes-tree path is a note" (git_prov/model/notepath.py), and every
reader of the ledger holding to it: the pygit2 walk (store/notes.iter_notes: log, show,
fsck, merge), the query index (built and updated incrementally) and sync's run counts
(whole and by difference) see exactly the notes git itself lists, whatever the fan-out."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest
from conftest import commit_file, git
from factories import make_record

from git_prov import sync
from git_prov.model.notepath import is_fanout, note_commit
from git_prov.model.record import encode_entry
from git_prov.query.index import RepoPaths, open_index
from git_prov.store import notes
from git_prov.store.ledger import NOTES_REF
from git_prov.store.repo import open_repo

C = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("path", "commit"),
    [
        (f"{C[:2]}/{C[2:]}", C),  # git-prov's one level, and git's first fan-out
        (C, C),  # none: flat, as libgit2 and a small git notes tree
        (f"{C[:2]}/{C[2:4]}/{C[4:]}", C),  # git's 2/2/36
        ("/".join(C[i : i + 2] for i in range(0, 40, 2)), C),  # fanned out all the way
        ("ab" * 32, "ab" * 32),  # a SHA-256 id
        (f"{C[:4]}/{C[4:]}", None),  # a 4-digit directory: git reads no note there
        (f"{C[:2]}/{C[2:5]}/{C[5:]}", None),
        (f"{C[:1]}/{C[1:]}", None),
        (C[:39], None),  # too short
        (C + "0", None),  # too long
        (C.upper(), None),  # (git reads capitals too, but never writes them: see notepath)
        ("README", None),  # a non-note git keeps in notes trees
        (f"zz/{C[2:]}", None),
        (f"{C[:2]}/", None),
        ("", None),
    ],
)
def test_which_paths_are_notes(path: str, commit: str | None) -> None:
    assert note_commit(path) == commit


def test_which_trees_can_hold_notes() -> None:
    assert is_fanout("ab") and is_fanout("ab/cd") and is_fanout("/".join(["ab"] * 19))
    assert not is_fanout("abcd") and not is_fanout("zz") and not is_fanout("a")
    assert not is_fanout("/".join(["ab"] * 32))  # as long as the longest id: no room left


def _mktree(repo: Path, entries: dict[str, object]) -> str:
    """A tree from {name: blob id, or a dict (a subtree)}, made with git mktree."""
    lines = []
    for name, value in entries.items():
        if isinstance(value, dict):
            lines.append(f"040000 tree {_mktree(repo, value)}\t{name}")
        else:
            lines.append(f"100644 blob {value}\t{name}")
    return git(repo, "mktree", input="".join(line + "\n" for line in lines))


def _note(repo: Path, commit: str) -> tuple[str, str]:
    """A note blob holding one run on ``commit``; (blob id, run id)."""
    record = make_record(commit)
    blob = git(repo, "hash-object", "-w", "--stdin", input=encode_entry(record) + "\n")
    return blob, record.id


def _set_notes(repo: Path, tree: str, parent: str | None) -> str:
    args = ["commit-tree", tree, "-m", "notes", *(["-p", parent] if parent else [])]
    commit = git(repo, *args)
    git(repo, "update-ref", NOTES_REF, commit)
    return commit


def _readers(repo: Path) -> dict[str, set[str]]:
    """The annotated commits each reader of the ledger sees, and git's own list."""
    gitrepo = open_repo(repo)
    tree = gitrepo.pygit.revparse_single(NOTES_REF + "^{tree}")
    assert isinstance(tree, pygit2.Tree)
    with open_index(RepoPaths.discover(repo)) as index:
        indexed = {c for (c,) in index.db.execute("SELECT commit_id FROM notes")}
        shown = {c for (c,) in index.db.execute("SELECT commit_id FROM lines WHERE live = 1")}
    return {
        "git notes list": {
            line.split()[1] for line in git(repo, "notes", "--ref=prov", "list").splitlines()
        },
        "store.notes.iter_notes": {c for c, _ in notes.iter_notes(gitrepo.pygit, tree)},
        "query index: notes": indexed,
        "query index: runs": shown,
    }


def test_every_reader_sees_the_notes_git_sees_whatever_the_fan_out(repo: Path) -> None:
    """Notes at git's 2/2/36, at 2/38, flat, and non-notes a careless reader would take:
    a 4-digit directory (``abcd/`` + 36 digits), non-hex names, a note of the wrong length
    (a path in capitals is the one non-note git reads: see git_prov/model/notepath.py).
    Each reader must agree with ``git notes list``: on a fresh build, then on an
    incremental update (the odd notes arrive in a second notes commit); and sync's count
    of runs, whole and by difference, must be the number of notes git sees."""
    commits = [commit_file(repo, f"f{i}.txt", f"{i}\n") for i in range(6)]
    plain, flat, deep, four, short, later = commits
    first = {plain[:2]: {plain[2:]: _note(repo, plain)[0]}, flat: _note(repo, flat)[0]}
    tip = _set_notes(repo, _mktree(repo, first), None)
    before = git(repo, "rev-parse", f"{tip}^{{tree}}")
    seen = _readers(repo)
    assert all(found == {plain, flat} for found in seen.values()), seen
    assert sync.run_total(repo) == 2

    odd = {
        **first,
        deep[:2]: {deep[2:4]: {deep[4:]: _note(repo, deep)[0]}},  # git's 2/2/36
        four[:4]: {four[4:]: _note(repo, four)[0]},  # abcd/ + 36: a non-note
        short[:2]: {short[2:-1]: _note(repo, short)[0]},  # one digit short
        "README": _note(repo, later)[0],  # a non-hex name holding a run line
        "zz": {later[2:]: _note(repo, later)[0]},  # a non-hex fan-out directory
    }
    _set_notes(repo, _mktree(repo, odd), tip)
    seen = _readers(repo)  # the index updates incrementally from the first tip
    expected = {plain, flat, deep}
    assert seen["git notes list"] == expected
    assert all(found == expected for found in seen.values()), seen
    after = git(repo, "rev-parse", f"{NOTES_REF}^{{tree}}")
    assert sync.run_total(repo, after, hint=before) == 3  # by difference from the cached 2
    (repo / ".git" / "prov" / sync.RUN_COUNT_CACHE).unlink()
    assert sync.run_total(repo) == 3  # counted whole
    with open_index(RepoPaths.discover(repo), rebuild=True) as index:
        assert {c for (c,) in index.db.execute("SELECT commit_id FROM notes")} == expected
