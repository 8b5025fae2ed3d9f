"""Evidence that a reachable commit is a *copy* of a commit a run ran on.

The same change (patch-id) alone is not evidence: two people make the same one-line change
independently, and a run attached to the wrong one tells a wrong story. A copy made by a
rebase, a cherry-pick or a hosting service's rebase merge keeps what git calls the
authorship — author name and e-mail, author date (to the second, with its zone) — and the
message (a ``cherry-pick -x`` adds a line naming the original, which is evidence too). A
squash made by a hosting service keeps none of that; it is a copy of the squashed line when
its tree is the tree of the line's last commit (nothing else came in), or when its message
names every squashed commit (GitHub's default lists each subject; ``git merge --squash``
lists each commit id).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from git_prov.rewrite.orphans import lines
from git_prov.store.repo import GitRepo

# `git cherry-pick -x` appends "(cherry picked from commit <id>)".
CHERRY_PICKED = re.compile(r"^\(cherry picked from commit ([0-9a-f]{40,64})\)$")
# Bullets hosts put before the subjects they list in a squash message.
BULLET = re.compile(r"^(?:[*\-+]\s+)")


@dataclass(frozen=True)
class CommitFacts:
    """What a copy of a commit keeps, and what tells an empty change."""

    tree: str
    parents: tuple[str, ...]
    author: str  # "Name <email>"
    author_date: str  # "<seconds> <zone>", as stored
    message: str

    @property
    def subject(self) -> str:
        """The message's first line (stripped)."""
        return self.message.strip().split("\n", 1)[0].strip()


def read_facts(repo: GitRepo, commits: Iterable[str]) -> dict[str, CommitFacts]:
    """The facts of each commit this repository has (one ``git cat-file --batch``)."""
    wanted = list(dict.fromkeys(commits))
    if not wanted:
        return {}
    out = repo.git("cat-file", "--batch", input=lines(wanted)).stdout
    facts: dict[str, CommitFacts] = {}
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3:
            continue  # "<id> missing"
        size = int(header[2])
        body = out[pos : pos + size]
        pos += size + 1
        if header[1] == b"commit":
            facts[header[0].decode()] = _parse_commit(body)
    return facts


def _parse_commit(raw: bytes) -> CommitFacts:
    head, _, message = raw.partition(b"\n\n")
    tree, author, date = "", "", ""
    parents: list[str] = []
    for line in head.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"tree":
            tree = value.decode()
        elif key == b"parent":
            parents.append(value.decode())
        elif key == b"author":
            text = value.decode("utf-8", "replace")
            who, _, when = text.rpartition("> ")
            author, date = who + ">", when
    return CommitFacts(tree, tuple(parents), author, date, message.decode("utf-8", "replace"))


def _message_lines(message: str, originals: Sequence[str] = ()) -> list[str]:
    """The message without trailing spaces, blank edges and ``cherry-pick -x`` lines that
    name one of ``originals``."""
    kept = []
    for line in message.replace("\r\n", "\n").split("\n"):
        line = line.rstrip()
        found = CHERRY_PICKED.match(line.strip())
        if found and found.group(1) in originals:
            continue
        kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    while kept and not kept[0]:
        kept.pop(0)
    return kept


def copy_missing(original: str, facts: Mapping[str, CommitFacts], candidate: str) -> list[str]:
    """What a copy of ``original`` keeps that ``candidate`` lacks: ``[]`` when ``candidate``
    is a copy (same author, author date and message), else the differing parts."""
    mine, theirs = facts.get(original), facts.get(candidate)
    if mine is None or theirs is None:
        return ["commit"]
    missing = []
    if mine.author != theirs.author:
        missing.append("author")
    if mine.author_date != theirs.author_date:
        missing.append("author date")
    if _message_lines(mine.message) != _message_lines(theirs.message, (original,)):
        missing.append("message")
    return missing


def is_empty_change(commit: str, facts: Mapping[str, CommitFacts]) -> bool:
    """A commit with one parent and that parent's tree (``git commit --allow-empty``)."""
    mine = facts.get(commit)
    if mine is None or len(mine.parents) != 1:
        return False
    parent = facts.get(mine.parents[0])
    return parent is not None and parent.tree == mine.tree


def squash_evidence(
    end: str, squashed: Sequence[str], facts: Mapping[str, CommitFacts], candidate: str
) -> bool:
    """True when ``candidate`` (whose change is the combined change of ``squashed``, which
    ends at ``end``) is a copy of that line: it has ``end``'s tree, or its message names
    every squashed commit that is not a merge (by subject or by full id), and there are
    several."""
    theirs, last = facts.get(candidate), facts.get(end)
    if theirs is None or last is None:
        return False
    if theirs.tree == last.tree:
        return True
    named = {BULLET.sub("", line.strip()).strip() for line in _message_lines(theirs.message)}
    text = theirs.message
    listed = 0
    for commit in squashed:
        mine = facts.get(commit)
        if mine is None:
            return False
        if len(mine.parents) > 1:
            continue  # "Merge branch 'main' into feature": hosts list it or not
        if mine.subject not in named and commit not in text:
            return False
        listed += 1
    # One commit's subject is no list: the same change made again under the same message
    # (the case patch-id copies need the author date for) would pass.
    return listed > 1
