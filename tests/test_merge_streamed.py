"""A notes merge where both sides changed holds the notes only one side has as blob ids, not
lines (issue #20): the same gains, run counts and conflicts as reading them all, with the
duplicate-run check parsing only lines that could share an id."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import commit_file
from factories import make_record

from git_prov.model.record import encode_entry
from git_prov.store import merge
from git_prov.store.ledger import NOTES_REF, Ledger
from git_prov.store.repo import open_repo


def _escaped(line: str) -> str:
    """The same record with its JSON spelt otherwise: spaces, and the id's key escaped."""
    summary, _, payload = line.rpartition("\t")
    data = json.loads(payload)
    text = json.dumps(data, separators=(", ", " : "), sort_keys=True)
    text = text.replace('"id" :', '"\\u0069d" :', 1).replace('"kind" : "run"', '"kind":"run"')
    return f"{summary}\t{text}"


def test_copies_in_finds_what_parsing_every_line_finds() -> None:
    commit = "ab" * 20
    base = make_record(commit)
    other = make_record(commit, params={"id": base.id})  # names base's id, nested
    twin = replace(base, exit_code=1, status="failed")
    spaced = json.dumps(json.loads(encode_entry(base).partition("\t")[2]), separators=(", ", ": "))
    spaced_line = "prov run x\t" + spaced.replace('"kind": "run"', '"kind":"run"')
    notes = [
        [encode_entry(base), encode_entry(other)],
        [encode_entry(base), encode_entry(twin)],
        [encode_entry(base), encode_entry(twin), encode_entry(other)],
        [encode_entry(base), _escaped(encode_entry(twin))],
        [_escaped(encode_entry(base)), encode_entry(other)],
        [spaced_line, encode_entry(twin)],
        [encode_entry(base), "a line a person typed", encode_entry(base)],
        [encode_entry(make_record(commit)) for _ in range(5)],
    ]
    for lines in notes:
        expected = {r for r, found in merge.run_ids_of(set(lines)).items() if len(found) > 1}
        assert merge.copies_in(set(lines)) == expected, lines
    assert merge.copies_in({encode_entry(base), encode_entry(twin)}) == {base.id}


def test_a_merge_gains_whole_notes_as_ids_and_reads_them_on_demand(repo: Path) -> None:
    ledger = Ledger(open_repo(repo))
    commits = [commit_file(repo, f"f{i}.txt", f"{i}\n") for i in range(4)]
    base = ledger.tip(NOTES_REF)
    assert base is None
    ledger.write([(commits[0], make_record(commits[0]))], keep=[commits[0]])
    ours = ledger.tip(NOTES_REF)
    assert ours is not None
    theirs_runs = [make_record(c) for c in commits[1:]]
    twin = replace(theirs_runs[0], exit_code=3, status="failed")
    ledger.write([(r.commit, r) for r in theirs_runs] + [(twin.commit, twin)], keep=commits[1:])
    both = ledger.tip(NOTES_REF)
    assert both is not None
    theirs_tree = both.tree
    result = merge.merge_notes_trees(ledger.pygit, ours.tree, theirs_tree, write=False)
    gained = result.gained_ours
    assert isinstance(gained, merge.Gained)
    assert sorted(gained) == sorted(commits[1:])
    assert result.runs_gained_ours() == 4 and result.conflicts == {twin.id}
    assert gained[commits[1]] == sorted({encode_entry(theirs_runs[0]), encode_entry(twin)})
    assert dict(result.gained_theirs) == {}


def test_the_git_log_display_rewritten_a_part_at_a_time_is_the_same(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge that changes every note rewrites the display a part at a time: the same
    display lines as all at once."""
    from git_prov.store import ledger as ledger_module
    from git_prov.store.ledger import DISPLAY_REF
    from git_prov.store.notes import iter_notes

    ledger = Ledger(open_repo(repo))
    commits = [commit_file(repo, f"f{i}.txt", f"{i}\n") for i in range(5)]
    runs = [make_record(c) for c in commits for _ in range(2)]
    ledger.write([(r.commit, r) for r in runs], keep=commits)

    def display() -> dict[str, bytes]:
        tip = ledger.tip(DISPLAY_REF)
        assert tip is not None
        return {
            commit: ledger.pygit[blob].data  # type: ignore[attr-defined]
            for commit, blob in iter_notes(ledger.pygit, tip.tree)
        }

    ledger.refresh_display(force=True)
    whole = display()
    assert len(whole) == 5 and all(whole.values())
    ledger.pygit.references.delete(DISPLAY_REF)
    monkeypatch.setattr(ledger_module, "_DISPLAY_PART", 2)
    ledger.refresh_display(force=True)
    assert display() == whole
    ledger.refresh_display(commits[:3], force=True)  # nothing changed: no new commit
    assert display() == whole
