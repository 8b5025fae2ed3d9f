"""Union merge of ledgers: commutative, associative and idempotent on tree ids, loses no
line, keeps conflicting records and tombstones, copes with mixed fan-out, and touches only
the subtrees that differ."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from conftest import commit_file, git
from factories import make_record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from git_prov import sync
from git_prov.model.record import Attachment, Tombstone, encode_entry
from git_prov.store import merge, notes
from git_prov.store.ledger import KEEP_DIR, NOTES_REF, Ledger, object_path
from git_prov.store.repo import open_repo
from git_prov.store.trees import FILEMODE_BLOB, edit_tree

# Commits sharing prefixes, so that notes meet in the same fan-out directories.
COMMITS = [
    "ab" + "1" * 38,
    "ab" + "2" * 38,
    "abcd" + "3" * 36,
    "abcd" + "4" * 36,
    "0f" + "5" * 38,
    "9e" + "6" * 38,
]


def _lines() -> list[str]:
    base = [make_record(c) for c in COMMITS[:3]]
    twin = make_record(COMMITS[0], id=base[0].id, exit_code=1, status="failed")
    return [
        *(encode_entry(r) for r in base),
        encode_entry(twin),  # same id, different content: a conflict
        encode_entry(Tombstone(run=base[1].id, at="2026-01-01T00:00:00Z", reason="gone")),
        encode_entry(
            Attachment(
                run=base[2].id,
                commit=COMMITS[3],
                original=COMMITS[2],
                how="rebase",
                at="2026-01-01T00:00:00Z",
            )
        ),
        "a line a person typed by hand",
        encode_entry(make_record(COMMITS[4])),
    ]


LINES = _lines()
_REPO_DIR = tempfile.mkdtemp(prefix="git-prov-merge-")
atexit.register(shutil.rmtree, _REPO_DIR, True)
REPO = pygit2.init_repository(_REPO_DIR, bare=True)


def _path(commit: str, depth: int) -> str:
    parts = [commit[2 * i : 2 * i + 2] for i in range(depth)]
    return "/".join([*parts, commit[2 * depth :]])


# A side: commit -> (lines, fan-out depth, whether to keep the lines in canonical order).
Side = dict[str, tuple[frozenset[str], int, bool]]

sides = st.dictionaries(
    st.sampled_from(COMMITS),
    st.tuples(st.frozensets(st.sampled_from(LINES), min_size=1), st.integers(0, 2), st.booleans()),
    max_size=len(COMMITS),
)


def _build(side: Side, repo: pygit2.Repository = REPO) -> pygit2.Tree | None:
    if not side:
        return None
    changes = {}
    for commit, (lines, depth, canonical) in side.items():
        text = (
            notes.canonical_note(lines)
            if canonical
            else "".join(line + "\n" for line in sorted(lines, reverse=True))
        )
        changes[_path(commit, depth)] = (repo.create_blob(text.encode()), FILEMODE_BLOB)
    tree = repo[edit_tree(repo, None, changes)]
    assert isinstance(tree, pygit2.Tree)
    return tree


def _merge(a: pygit2.Tree | None, b: pygit2.Tree | None) -> pygit2.Tree | None:
    result = merge.merge_notes_trees(REPO, a, b)
    if result.tree is None:
        return None
    tree = REPO[result.tree]
    assert isinstance(tree, pygit2.Tree)
    return tree


def _tid(tree: pygit2.Tree | None) -> str | None:
    return str(tree.id) if tree is not None else None


def _content(tree: pygit2.Tree | None) -> dict[str, set[str]]:
    """commit -> set of note lines; fails if a commit is filed twice."""
    out: dict[str, set[str]] = {}
    if tree is None:
        return out
    for commit, blob_id in notes.iter_notes(REPO, tree):
        assert commit not in out, f"{commit} filed twice"
        blob = REPO[blob_id]
        assert isinstance(blob, pygit2.Blob)
        out[commit] = set(blob.data.decode().splitlines())
    return out


def _union(*contents: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for content in contents:
        for commit, lines in content.items():
            out.setdefault(commit, set()).update(lines)
    return out


def _consistent(side: Side) -> Side:
    """A side written by one tool: one fan-out depth for the whole tree."""
    depth = next(iter(side.values()))[1] if side else 0
    return {c: (lines, depth, canon) for c, (lines, _, canon) in side.items()}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sides, sides)
def test_merge_is_commutative_and_loses_nothing(a: Side, b: Side) -> None:
    ta, tb = _build(a), _build(b)
    ab, ba = _merge(ta, tb), _merge(tb, ta)
    assert _tid(ab) == _tid(ba)
    assert _content(ab) == _union(_content(ta), _content(tb))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sides, sides, sides)
def test_merge_is_associative(a: Side, b: Side, c: Side) -> None:
    ta, tb, tc = _build(a), _build(b), _build(c)
    left = _merge(_merge(ta, tb), tc)
    right = _merge(ta, _merge(tb, tc))
    assert _tid(left) == _tid(right)
    assert _content(left) == _union(_content(ta), _content(tb), _content(tc))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sides, sides)
def test_merge_is_idempotent_and_absorbing(a: Side, b: Side) -> None:
    ta, tb = _build(a), _build(b)
    assert _tid(_merge(ta, ta)) == _tid(ta)
    ab = _merge(ta, tb)
    assert _tid(_merge(ab, ab)) == _tid(ab)
    assert _tid(_merge(ta, ab)) == _tid(ab)
    assert _tid(_merge(ab, tb)) == _tid(ab)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sides, sides)
def test_mixed_fanout_is_normalised_to_the_deeper_layout(a: Side, b: Side) -> None:
    a, b = _consistent(a), _consistent(b)
    ta, tb = _build(a), _build(b)
    merged = _merge(ta, tb)
    depth = {**{c: d for c, (_, d, _) in a.items()}, **{c: d for c, (_, d, _) in b.items()}}
    for commit in set(a) & set(b):
        depth[commit] = max(a[commit][1], b[commit][1])
    for commit in depth:
        found = notes.find_note(REPO, merged, commit)
        assert found is not None
        # Never shallower than where either side filed it.
        assert found[0].count("/") >= depth[commit]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sides, sides)
def test_gains_are_reported_per_side(a: Side, b: Side) -> None:
    ta, tb = _build(a), _build(b)
    result = merge.merge_notes_trees(REPO, ta, tb, write=False)
    union = _union(_content(ta), _content(tb))
    ca, cb = _content(ta), _content(tb)
    expected_ours = {c: lines - ca.get(c, set()) for c, lines in union.items()}
    expected_theirs = {c: lines - cb.get(c, set()) for c, lines in union.items()}
    assert {c: set(v) for c, v in result.gained_ours.items() if v} == {
        c: v for c, v in expected_ours.items() if v
    }
    assert {c: set(v) for c, v in result.gained_theirs.items() if v} == {
        c: v for c, v in expected_theirs.items() if v
    }


def test_union_note_is_canonical_whichever_side_merges_first() -> None:
    first, second = LINES[0], LINES[1]
    ta = _build({COMMITS[0]: (frozenset({first}), 1, True)})
    tb = _build({COMMITS[0]: (frozenset({second}), 0, False)})
    merged = _merge(ta, tb)
    found = notes.find_note(REPO, merged, COMMITS[0])
    assert found is not None and found[0] == _path(COMMITS[0], 1)
    blob = REPO[found[1]]
    assert isinstance(blob, pygit2.Blob)
    assert blob.data.decode() == notes.canonical_note([first, second])


def test_conflicting_records_and_tombstones_survive_in_a_real_ledger(tmp_path: Path) -> None:
    repo_a = tmp_path / "a"
    repo_a.mkdir()
    git(repo_a, "init", "-q")
    c = commit_file(repo_a, "x.txt", "x")
    repo_b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(repo_a), str(repo_b))
    run = make_record(c)
    twin = make_record(c, id=run.id, exit_code=2, status="failed")
    doomed = make_record(c)
    Ledger(open_repo(repo_a)).write([(c, run), (c, doomed)])
    Ledger(open_repo(repo_b)).write(
        [(c, twin), (c, Tombstone(run=doomed.id, at="2026-01-01T00:00:00Z"))]
    )
    git(repo_a, "fetch", "-q", str(repo_b), f"+{NOTES_REF}:refs/notes/theirs")
    ledger = Ledger(open_repo(repo_a))
    theirs = pygit2.Oid(hex=git(repo_a, "rev-parse", "refs/notes/theirs"))
    outcome = merge.merge_commit_into(ledger, NOTES_REF, theirs, message="merge")
    assert outcome.action == merge.MERGED
    assert outcome.conflicts == (run.id,)
    scan = ledger.scan()
    assert sorted(scan.conflicts[run.id], key=repr) == sorted([run, twin], key=repr)
    assert doomed.id in scan.tombstones
    parents = git(repo_a, "log", "-1", "--format=%P", NOTES_REF).split()
    assert parents[1] == str(theirs)
    # Merging again is a no-op; the other way round is a fast-forward to the same tree.
    assert (
        merge.merge_commit_into(ledger, NOTES_REF, theirs, message="m").action == merge.UP_TO_DATE
    )


def test_ref_merge_fast_forwards_and_creates(tmp_path: Path, repo: Path) -> None:
    c = git(repo, "rev-parse", "HEAD")
    ledger = Ledger(open_repo(repo))
    ledger.write([(c, make_record(c))])
    first = pygit2.Oid(hex=git(repo, "rev-parse", NOTES_REF))
    ledger.write([(c, make_record(c))])
    second = pygit2.Oid(hex=git(repo, "rev-parse", NOTES_REF))
    git(repo, "update-ref", NOTES_REF, str(first))
    assert (
        merge.merge_commit_into(ledger, NOTES_REF, second, message="m").action == merge.FAST_FORWARD
    )
    assert git(repo, "rev-parse", NOTES_REF) == str(second)
    git(repo, "update-ref", "-d", NOTES_REF)
    assert merge.merge_commit_into(ledger, NOTES_REF, second, message="m").action == merge.CREATED


def test_a_write_racing_the_merge_is_kept(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = git(repo, "rev-parse", "HEAD")
    ledger = Ledger(open_repo(repo))
    ledger.write([(c, make_record(c))])
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    theirs_record = make_record(c)
    Ledger(open_repo(clone)).write([(c, theirs_record)])
    git(repo, "fetch", "-q", str(clone), f"+{NOTES_REF}:refs/notes/theirs")
    theirs = pygit2.Oid(hex=git(repo, "rev-parse", "refs/notes/theirs"))
    racer = make_record(c)
    original = merge.merge_notes_trees
    calls = []

    def racing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:  # another writer lands between our read and our swap
            git(repo, "notes", "--ref=prov", "append", "-m", encode_entry(racer), c)
        return original(*args, **kwargs)

    monkeypatch.setattr(merge, "merge_notes_trees", racing)
    merge.merge_commit_into(ledger, NOTES_REF, theirs, message="m")
    ids = {r.id for r in ledger.runs_on(c)}
    assert {theirs_record.id, racer.id} <= ids and len(ids) == 3
    assert len(calls) == 2  # rebuilt once from the new tip


def test_objects_union_by_path_keeps_ours_on_a_clash() -> None:
    blob = REPO.create_blob(b"data\n")
    other = REPO.create_blob(b"other\n")
    empty = REPO.create_blob(b"")
    keep_a, keep_b = object_path(KEEP_DIR, COMMITS[0]), object_path(KEEP_DIR, COMMITS[1])
    ta = REPO[
        edit_tree(
            REPO,
            None,
            {
                object_path("data", str(blob)): (blob, FILEMODE_BLOB),
                keep_a: (empty, FILEMODE_BLOB),
                "env/zz/clash": (blob, FILEMODE_BLOB),
            },
        )
    ]
    tb = REPO[
        edit_tree(
            REPO,
            None,
            {
                keep_b: (empty, FILEMODE_BLOB),
                keep_a: (empty, FILEMODE_BLOB),
                "env/zz/clash": (other, FILEMODE_BLOB),
            },
        )
    ]
    assert isinstance(ta, pygit2.Tree) and isinstance(tb, pygit2.Tree)
    result = merge.merge_objects_trees(REPO, ta, tb)
    assert result.conflicts == ["env/zz/clash"]
    tree = REPO[result.tree]
    assert isinstance(tree, pygit2.Tree)
    paths = {p for p, _ in _walk(tree)}
    assert {keep_a, keep_b, object_path("data", str(blob)), "env/zz/clash"} == paths
    assert tree["env/zz/clash"].id == blob


def _walk(tree: pygit2.Tree, prefix: str = "") -> Iterator[tuple[str, pygit2.Oid]]:
    for entry in tree:
        if entry.type_str == "tree":
            sub = REPO[entry.id]
            assert isinstance(sub, pygit2.Tree)
            yield from _walk(sub, f"{prefix}{entry.name}/")
        else:
            yield f"{prefix}{entry.name}", entry.id


def test_merge_reads_only_the_subtrees_that_differ() -> None:
    # Two 20k-note ledgers that differ by one run: a handful of trees read, not 20k notes.
    import random

    rng = random.Random(7)
    commits = [f"{rng.getrandbits(160):040x}" for _ in range(20_000)]
    line = LINES[0].encode() + b"\n"
    blob = REPO.create_blob(line)
    base = REPO[edit_tree(REPO, None, {_path(c, 1): (blob, FILEMODE_BLOB) for c in commits})]
    assert isinstance(base, pygit2.Tree)
    extra_a = REPO.create_blob(line + LINES[1].encode() + b"\n")
    extra_b = REPO.create_blob(line + LINES[2].encode() + b"\n")
    ta = REPO[edit_tree(REPO, base, {_path(commits[5], 1): (extra_a, FILEMODE_BLOB)})]
    tb = REPO[edit_tree(REPO, base, {_path(commits[9], 1): (extra_b, FILEMODE_BLOB)})]
    assert isinstance(ta, pygit2.Tree) and isinstance(tb, pygit2.Tree)
    result = merge.merge_notes_trees(REPO, ta, tb)
    assert result.trees_read <= 6
    assert result.runs_gained_ours() == 1 and result.runs_gained_theirs() == 1
    assert merge.runs_between(REPO, base, ta) == (1, 0)


def test_plain_git_reads_a_merge_of_flat_and_fanned_out_notes(tmp_path: Path, repo: Path) -> None:
    commits = [commit_file(repo, f"f{i}", str(i)) for i in range(4)]
    # git writes few notes flat; our ledger fans out.
    flat_records = [make_record(c) for c in commits[:3]]
    for r in flat_records:
        git(repo, "notes", "--ref=theirs", "add", "-m", encode_entry(r), r.commit)
    ledger = Ledger(open_repo(repo))
    ours_records = [make_record(c) for c in commits[1:]]
    ledger.write([(r.commit, r) for r in ours_records])
    theirs = pygit2.Oid(hex=git(repo, "rev-parse", "refs/notes/theirs"))
    assert all(len(e.name) == 40 for e in ledger.pygit[theirs].tree)  # type: ignore[union-attr]
    merge.merge_commit_into(ledger, NOTES_REF, theirs, message="m")
    assert len(git(repo, "notes", "--ref=prov", "list").splitlines()) == 4
    for r in flat_records + ours_records:
        assert r.id in git(repo, "notes", "--ref=prov", "show", r.commit)
    tip = ledger.tip(NOTES_REF)
    assert tip is not None
    for c in commits[1:3]:  # on both sides, at two depths: filed once, fanned out
        found = notes.find_note(ledger.pygit, tip.tree, c)
        assert found is not None and found[0] == _path(c, 1)


# ---- what a ref merge reports ----------------------------------------------------------------


def test_ref_merge_reports_the_commits_whose_notes_changed(tmp_path: Path, repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    second = commit_file(repo, "x", "x")
    ledger = Ledger(open_repo(repo))
    ledger.write([(first, make_record(first))])
    base = git(repo, "rev-parse", NOTES_REF)
    ledger.write([(second, make_record(second)), (second, make_record(second))])
    ahead = git(repo, "rev-parse", NOTES_REF)
    git(repo, "update-ref", "-d", NOTES_REF)
    created = merge.merge_commit_into(ledger, NOTES_REF, base, message="m")
    assert (created.action, created.changed, created.runs_added) == (merge.CREATED, None, None)
    forward = merge.merge_commit_into(ledger, NOTES_REF, ahead, message="m")
    assert (forward.action, forward.changed, forward.runs_added) == (
        merge.FAST_FORWARD,
        (second,),
        2,
    )
    # Diverged: ours gains what theirs has on `first`; `second` is unchanged for us.
    git(repo, "update-ref", NOTES_REF, base)
    ledger.write([(first, make_record(first))])
    mine = git(repo, "rev-parse", NOTES_REF)
    git(repo, "update-ref", NOTES_REF, ahead)
    merged = merge.merge_commit_into(ledger, NOTES_REF, mine, message="m")
    assert (merged.action, merged.changed, merged.runs_added) == (merge.MERGED, (first,), 1)
    assert merge.merge_commit_into(ledger, NOTES_REF, mine, message="m").changed == ()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sides, sides)
def test_git_binary_run_counts_agree_with_the_merge_walk(a: Side, b: Side) -> None:
    """``git prov push``/``sync`` count runs with ``git diff-tree`` and ``git cat-file``
    (no pygit2 on their common path): the same numbers as the merge's own walk, whatever
    the fan-out of either side."""
    ta, tb = _build(a), _build(b)
    repo = sync.SyncRepo.open(_REPO_DIR)
    if ta is not None and tb is not None:
        assert sync._runs_between(repo, str(ta.id), str(tb.id)) == merge.runs_between(REPO, ta, tb)
    for tree in (ta, tb):
        if tree is not None:
            assert sync._count_all(repo, str(tree.id)) == merge.count_runs(REPO, tree)
