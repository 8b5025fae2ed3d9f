"""docs/tutorial.md cannot rot: its shell blocks run here, in order, in one shell, in an
empty directory, with this git-prov installed on PATH — from `pip install` to a teammate
reproducing a run from a clone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)

# `pip install git-prov` is the reader's first step; here the git-prov under test is
# already installed (its bin directory leads PATH), so pip only checks that it was asked
# for exactly that and that the package imports.
PIP = """pip() {
    [ "$*" = "install git-prov" ] || { echo "unexpected: pip $*" >&2; return 1; }
    python -c "import git_prov"
}
"""


def tutorial_blocks() -> list[str]:
    return BLOCK.findall(TUTORIAL.read_text(encoding="utf-8"))


def test_the_tutorial_has_the_first_hour() -> None:
    text = "\n".join(tutorial_blocks())
    for step in ("pip install git-prov", "git prov init --template", "git prov run",
                 "git prov log", "git prov show", "git prov push", "git clone",
                 "git prov fetch", "git prov get", "git prov reproduce"):  # fmt: skip
        assert step in text, step


@pytest.mark.slow  # one shell through the whole hour: two runs, a push, a clone, a rerun
def test_every_shell_block_of_the_tutorial_runs(tmp_path: Path) -> None:
    blocks = tutorial_blocks()
    script = PIP + "".join(
        f"echo '::: block {n}' >&2\n{block}" for n, block in enumerate(blocks, 1)
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    reached = re.findall(r"^::: block (\d+)$", proc.stderr, re.M)
    assert proc.returncode == 0, (
        f"docs/tutorial.md block {reached[-1] if reached else '?'} of {len(blocks)} failed "
        f"(exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    assert reached == [str(n) for n in range(1, len(blocks) + 1)]
    # What the text around the blocks promises.
    assert "nothing drifted" in proc.stdout
    assert "REPRODUCED" in proc.stdout
    assert "warning:" not in proc.stderr, proc.stderr
    teammate = tmp_path / "teammate"
    assert (teammate / "data" / "train.csv").read_bytes() == (
        tmp_path / "churn" / "data" / "train.csv"
    ).read_bytes()
