"""One set of reader limits (issue 16.6): a note over the limit of model/limits.py is read
by no command — `fsck` reports it, and `find`, `log`, `show` and `verify` skip it with a
warning naming it — instead of fsck skipping it while the others parse it whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import commit_file, git, prov

from git_prov.model.limits import MAX_NOTE_BYTES


def _giant_note(repo: Path) -> tuple[str, str]:
    """Commit a file and attach a note just over the limit to it: copies of one valid run
    record (a run id of its own). Returns (the commit, the hidden run's id)."""
    prov(repo, "run", "--", sys.executable, "-c", "pass")
    head = git(repo, "rev-parse", "HEAD")
    line = git(repo, "notes", "--ref=prov", "show", head).splitlines()[0]
    record = json.loads(line.partition("\t")[2])
    hidden = record["id"][:-8] + "0badf00d"
    commit = commit_file(repo, "more.txt", "more\n")
    record |= {"id": hidden, "commit": commit}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    one = f"run {hidden[-8:]}\t{text}\n".encode()
    data = one * (MAX_NOTE_BYTES // len(one) + 1)
    assert len(data) > MAX_NOTE_BYTES
    blob = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            cwd=repo,
            input=data,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    git(repo, "notes", "--ref=prov", "add", "-C", blob, commit)
    return commit, hidden


def test_every_reader_skips_a_giant_note_and_says_so(repo: Path) -> None:
    commit, hidden = _giant_note(repo)
    said = f"the note on {commit[:12]} is 64 MiB, over the 64 MiB reader limit"

    proc = prov(repo, "find", "--json")
    ids = [r["id"] for r in json.loads(proc.stdout)]
    assert hidden not in ids and len(ids) == 1
    assert said in proc.stderr

    proc = prov(repo, "log", "--oneline", "--all-commits")
    assert hidden[-8:] not in proc.stdout
    assert said in proc.stderr

    proc = prov(repo, "show", commit, check=False)
    assert hidden[-8:] not in proc.stdout and said in proc.stderr

    proc = prov(repo, "verify", "--json")
    assert hidden not in proc.stdout and said in proc.stderr

    proc = prov(repo, "fsck", "--json", check=False)
    assert proc.returncode == 1
    codes = [f["code"] for f in json.loads(proc.stdout)["findings"]]
    assert "note-too-large" in codes
