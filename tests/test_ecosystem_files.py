"""Files git-prov reads and writes for the tools around it: params/metrics files in JSON,
TOML and YAML; shell completion scripts; the man page; the CI recipes in docs/ci/."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import git, prov, runs_json

from git_prov.capture.values_files import read_values_file
from git_prov.cli import cli
from git_prov.cli.ecosystem import completion_script
from git_prov.errors import BadPath, UsageProblem

DOCS = Path(__file__).resolve().parent.parent / "docs"
PY = sys.executable

try:
    import yaml  # type: ignore[import-untyped]
except ImportError:  # the `yaml` extra is optional: YAML tests skip without it
    yaml = None

needs_yaml = pytest.mark.skipif(yaml is None, reason="PyYAML (the yaml extra) is not installed")

NESTED = {"lr": 0.01, "model": {"depth": 3, "act": "relu", "layers": [64, 32]}, "ok": True}
FLAT = {"lr": 0.01, "model.depth": 3, "model.act": "relu", "model.layers": "[64,32]", "ok": True}


# ---- params and metrics files ----------------------------------------------------------------


def test_json_values_are_flattened(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(
        '{"lr": 0.01, "model": {"depth": 3, "act": "relu", "layers": [64, 32]}, "ok": true}'
    )
    assert read_values_file(path, "params") == FLAT


def test_toml_values_are_flattened_and_dates_become_text(tmp_path: Path) -> None:
    path = tmp_path / "params.toml"
    path.write_text(
        "lr = 0.01\nok = true\nwhen = 2026-01-02T03:04:05Z\nday = 2026-01-02\n"
        '[model]\ndepth = 3\nact = "relu"\nlayers = [64, 32]\n'
    )
    values = read_values_file(path, "params")
    assert values == {**FLAT, "when": "2026-01-02T03:04:05+00:00", "day": "2026-01-02"}


@needs_yaml
@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_yaml_values_are_flattened(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"params{suffix}"
    path.write_text(
        "lr: 0.01\nok: yes\nday: 2026-01-02\n1: numbered\n"
        "model:\n  depth: 3\n  act: relu\n  layers: [64, 32]\n"
    )
    assert read_values_file(path, "params") == {**FLAT, "day": "2026-01-02", "1": "numbered"}


@needs_yaml
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", "cannot be parsed"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("", "must hold a mapping"),
        ("!!python/object:os.system {}\n", "cannot be parsed"),  # safe_load refuses tags
    ],
)
def test_bad_yaml_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(UsageProblem, match=message):
        read_values_file(path)


def test_yaml_without_pyyaml_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    path = tmp_path / "params.yaml"
    path.write_text("lr: 0.1\n")
    with pytest.raises(UsageProblem) as caught:
        read_values_file(path, "params")
    assert "PyYAML is not installed" in str(caught.value)
    assert "git-prov[yaml]" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("m.json", "{not json", UsageProblem),
        ("m.toml", "a = ", UsageProblem),
        ("m.json", "[1, 2]", UsageProblem),
        ("m.toml", "\udcff", UsageProblem),
        ("absent.json", None, BadPath),
    ],
)
def test_bad_files_are_clear_errors(
    tmp_path: Path, name: str, text: str | None, problem: type[Exception]
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(problem):
        read_values_file(path)


def test_values_files_through_the_cli(repo: Path) -> None:
    (repo / "params.toml").write_text('[optim]\nlr = 0.1\nname = "adam"\n')
    files = ["--params-file", "params.toml", "--metrics-file", "metrics.json"]
    script = "import json; json.dump({'val': {'acc': 0.9}}, open('metrics.json', 'w'))"
    if yaml is not None:
        (repo / "more.yaml").write_text("seed: 7\n")
        files += ["--params-file", "more.yaml"]
    prov(repo, "run", *files, "--", PY, "-c", script)
    [run] = runs_json(repo)
    assert run["params"] == {"optim.lr": 0.1, "optim.name": "adam", **({"seed": 7} if yaml else {})}
    assert run["metrics"] == {"val.acc": 0.9}


# ---- shell completion ------------------------------------------------------------------------


def _complete(
    shell: str, words: str, cword: int, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> str:
    """What click answers a completion request for ``git-prov`` (the protocol the
    scripts speak), run in-process."""
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(cword))
    monkeypatch.setenv("_GIT_PROV_COMPLETE", f"{shell}_complete")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(args=[], prog_name="git-prov", complete_var="_GIT_PROV_COMPLETE")
    return str(capsys.readouterr().out)


def test_completion_answers_commands_options_and_choices(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def complete(words: str, cword: int) -> list[str]:
        return _complete("bash", words, cword, monkeypatch, capsys).splitlines()

    assert "plain,export" in complete("git-prov ex", 1)
    assert "plain,--format" in complete("git-prov export --fo", 2)
    choices = set(complete("git-prov export -f ", 3))
    assert {"plain,prov-json", "plain,ro-crate", "plain,mlflow", "plain,csv"} <= choices
    assert complete("git-prov completion z", 2) == ["plain,zsh"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    script = completion_script(shell)
    assert "_GIT_PROV_COMPLETE" in script and "git-prov" in script
    if shell == "bash":
        assert "complete -o nosort -F _git_prov_completion git-prov" in script
        assert "_git_prov() {" in script
    if shell == "zsh":
        assert "_git-prov() {" in script and "user-commands prov:" in script
    proc = prov(".", "completion", shell)
    assert proc.stdout == script


def test_the_installed_entry_point_answers_completion(tmp_path: Path) -> None:
    env = {**os.environ, "COMP_WORDS": "git-prov ex", "COMP_CWORD": "1"}
    env["_GIT_PROV_COMPLETE"] = "bash_complete"
    proc = subprocess.run(
        [PY, "-m", "git_prov"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "plain,export" in proc.stdout.splitlines()


def _git_prov_shim(tmp_path: Path) -> Path:
    """A ``git-prov`` on PATH that answers completion through click, as the installed
    entry point does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "git-prov"
    shim.write_text(
        f"#!{PY}\nfrom git_prov.cli import cli\n"
        "cli.main(prog_name='git-prov', complete_var='_GIT_PROV_COMPLETE')\n"
    )
    shim.chmod(0o755)
    return bin_dir


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_git_prov_and_git_space_prov(tmp_path: Path) -> None:
    script = tmp_path / "git-prov.bash"
    script.write_text(completion_script("bash"))
    bin_dir = _git_prov_shim(tmp_path)
    git_completion = Path("/usr/share/bash-completion/completions/git")
    probe = f"""
        source {script}
        # git-prov ex<TAB>
        COMP_WORDS=(git-prov ex); COMP_CWORD=1
        _git_prov_completion git-prov
        echo "direct: ${{COMPREPLY[*]}}"
        # git prov ex<TAB>, the way git's completion calls _git_prov
        words=(git prov ex); cword=2; COMPREPLY=()
        _git_prov
        echo "via git: ${{COMPREPLY[*]}}"
        words=(git -C somewhere prov export --fo); cword=5; COMPREPLY=()
        _git_prov
        echo "options: ${{COMPREPLY[*]}}"
    """
    if git_completion.exists():
        probe += f"""
        source {git_completion}
        COMP_WORDS=(git prov ex); COMP_CWORD=2; COMP_LINE="git prov ex"; COMP_POINT=11
        COMPREPLY=()
        __git_wrap__git_main
        echo "git's completion: ${{COMPREPLY[*]}}"
        """
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert "export" in lines["direct"].split()
    assert lines["via git"].split() == lines["direct"].split()
    assert "--format" in lines["options"].split()
    if git_completion.exists():
        assert lines["git's completion"].split() == lines["direct"].split()


def _complete_in(cwd: Path, words: str, shell: str = "bash") -> list[str]:
    """What the real entry point answers a completion request in ``cwd`` (the protocol
    click's scripts speak: COMP_WORDS, COMP_CWORD, _GIT_PROV_COMPLETE)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    env["_GIT_PROV_COMPLETE"] = f"{shell}_complete"
    proc = subprocess.run(
        [PY, "-m", "git_prov"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return [line for line in proc.stdout.splitlines() if line]  # (no items: one blank line)


def test_run_ids_complete(repo: Path, tmp_path: Path) -> None:
    from factories import make_record

    from git_prov.model.ids import short_run_id
    from git_prov.store.ledger import Ledger
    from git_prov.store.repo import open_repo

    head = git(repo, "rev-parse", "HEAD")
    older = make_record(head, id="20260101T000000.000Z-1c0ffee1")
    newer = make_record(head, id="20260102T000000.000Z-1cafe002", command="evil \x1b]0;x\x07")
    other = make_record(head, id="20260103T000000.000Z-2bad0003")
    Ledger(open_repo(repo)).write([(head, r) for r in (older, newer, other)], keep=[head])

    # Short ids (what `git prov log` shows) complete to short ids, newest first.
    assert _complete_in(repo, "git-prov show 1c") == ["plain,1cafe002", "plain,1c0ffee1"]
    assert _complete_in(repo, "git-prov diff 1cafe002 2b") == ["plain,2bad0003"]
    assert _complete_in(repo, "git-prov show ") == [
        f"plain,{short_run_id(r.id)}" for r in (other, newer, older)
    ]
    # A full id's prefix completes to full ids; -C DIR is where the runs are looked up.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert _complete_in(outside, f"git-prov -C {repo} get 20260101") == [f"plain,{older.id}"]
    assert _complete_in(outside, "git-prov show 1c") == []  # not a repository: nothing
    # zsh and fish show what each run was: ledger text, escaped like any record text.
    zsh = _complete_in(repo, "git-prov reproduce 1ca", "zsh")
    assert zsh == ["plain", "1cafe002", "ok evil \\x1b]0;x\\x07"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_run_ids_after_git_space_prov(repo: Path, tmp_path: Path) -> None:
    from factories import write_run

    run = write_run(repo)
    short = run.id.rsplit("-", 1)[1]
    script = tmp_path / "git-prov.bash"
    script.write_text(completion_script("bash"))
    probe = f"""
        source {script}
        words=(git prov show {short[:3]}); cword=3; COMPREPLY=()
        _git_prov
        echo "via git: ${{COMPREPLY[*]}}"
    """
    env = {**os.environ, "PATH": f"{_git_prov_shim(tmp_path)}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", probe], cwd=repo, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"via git: {short}"]


# ---- man page ----------------------------------------------------------------------------------


def _make_man() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_man", DOCS / "make_man.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_man_page_is_up_to_date() -> None:
    expected = _make_man().render()
    committed = (DOCS / "git-prov.1").read_text(encoding="utf-8")
    assert committed == expected, "docs/git-prov.1 is stale: run python docs/make_man.py"


def test_the_man_page_covers_every_command() -> None:
    page = (DOCS / "git-prov.1").read_text(encoding="utf-8")
    for name, command in cli.commands.items():
        if not command.hidden:
            assert f'.SS "git prov {name}' in page, name


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_git_help_prov_shows_the_page(tmp_path: Path) -> None:
    man1 = tmp_path / "man" / "man1"
    man1.mkdir(parents=True)
    shutil.copy(DOCS / "git-prov.1", man1 / "git-prov.1")
    bin_dir = _git_prov_shim(tmp_path)  # git help only pages commands it can find
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "MANPATH": str(tmp_path / "man"),
        "MANPAGER": "cat",
        "PAGER": "cat",
        "MANWIDTH": "100",
    }
    proc = subprocess.run(["git", "help", "prov"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "git-prov - Provenance for experiment runs" in proc.stdout
    assert "git prov export" in proc.stdout
    check = subprocess.run(
        ["man", "--warnings", "-l", str(DOCS / "git-prov.1")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert check.returncode == 0 and check.stderr == "", check.stderr


# ---- CI recipes --------------------------------------------------------------------------------


@needs_yaml
def test_github_actions_recipe() -> None:
    doc = yaml.safe_load((DOCS / "ci" / "github-actions.yml").read_text())
    steps = doc["jobs"]["train"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # a shallow clone cannot push provenance
    assert doc["permissions"]["contents"] == "write"
    runs = [s.get("run", "") for s in steps]
    fetch = next(i for i, r in enumerate(runs) if "git prov fetch" in r)
    record = next(i for i, r in enumerate(runs) if "git prov run" in r)
    sync = next(i for i, r in enumerate(runs) if "git prov sync" in r)
    assert fetch < record < sync and steps[sync]["if"] == "always()"
    assert not any("remote.origin.push " in r or "push.default" in r for r in runs)


@needs_yaml
def test_gitlab_ci_recipe() -> None:
    doc = yaml.safe_load((DOCS / "ci" / "gitlab-ci.yml").read_text())
    assert doc["variables"]["GIT_DEPTH"] == "0"
    job = doc["train"]
    script = job["script"]
    record = next(i for i, line in enumerate(script) if "git prov run" in line)
    sync = next(i for i, line in enumerate(script) if "git prov sync" in line)
    assert record < sync and "|| status=$?" in script[record] and script[-1] == "exit $status"
    setup = "\n".join(job["before_script"])
    assert "git prov fetch origin" in setup and "set-url --push origin" in setup
    assert "config remote.origin.push" not in setup  # never change what plain push does
