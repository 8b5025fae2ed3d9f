"""Project templates for ``git prov init --template NAME``: the files that set a repository
up for one kind of project — ``.gitignore`` entries for data, models and metrics, a
``.gitprov.toml`` declaring them, an example that uses git-prov, and a CI workflow that
runs ``git prov check``.

The files are package data under ``templates/projects/<name>/`` (and ``common/``, shared
by every template). A path component written ``dot-x`` is installed as ``.x``, so that no
packaged file is hidden. An existing file is never overwritten: it is kept and named;
``.gitignore`` alone is added to — the template's lines it lacks are appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from git_prov.errors import UsageProblem

COMMON = "common"
GITIGNORE = ".gitignore"


@dataclass(frozen=True)
class ProjectTemplate:
    """One template: its name, what it is for, and the first commands to try after it."""

    name: str
    summary: str
    next_steps: tuple[str, ...]


TEMPLATES = (
    ProjectTemplate(
        "python",
        "a Python training project: prepare.py makes data/, train.py reads params.toml "
        "and writes models/ and metrics.json",
        (
            "python prepare.py",
            "git add -A && git commit -m 'Start from the git-prov python template'",
            "git prov run -- python train.py",
            "git prov log",
        ),
    ),
    ProjectTemplate(
        "notebook",
        "a Jupyter notebook project: analysis.ipynb records itself with git_prov.run(), "
        "reading data/ and writing results/",
        (
            "git add -A && git commit -m 'Start from the git-prov notebook template'",
            "jupyter execute analysis.ipynb   (or run it in Jupyter)",
            "git prov log",
        ),
    ),
)


def find_template(name: str) -> ProjectTemplate:
    """The template called ``name``; a usage error naming the templates otherwise."""
    for template in TEMPLATES:
        if template.name == name:
            return template
    names = ", ".join(t.name for t in TEMPLATES)
    raise UsageProblem(
        f"no project template {name!r}", f"choose one of {names} (git prov init --template list)"
    )


def template_files(name: str) -> dict[str, bytes]:
    """The files template ``name`` installs: repository-relative path → bytes (the
    template's own files win over the common ones)."""
    find_template(name)
    root = resources.files("git_prov").joinpath("templates/projects")
    files: dict[str, bytes] = {}
    for part in (COMMON, name):
        _collect(root.joinpath(part), "", files)
    return files


def _collect(directory: Traversable, prefix: str, files: dict[str, bytes]) -> None:
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        name = "." + entry.name[4:] if entry.name.startswith("dot-") else entry.name
        if entry.is_dir():
            _collect(entry, f"{prefix}{name}/", files)
        else:
            files[f"{prefix}{name}"] = entry.read_bytes()


def apply_template(root: Path, name: str) -> list[str]:
    """Install template ``name`` in the work tree at ``root``; returns one line per file
    saying whether it was written, added to (``.gitignore``) or kept as it was."""
    template = find_template(name)
    done: list[str] = []
    for rel, data in template_files(name).items():
        target = root / rel
        try:
            if rel == GITIGNORE and target.is_file():
                done.append(_add_ignores(target, data, template.name))
            elif target.exists() or target.is_symlink():
                done.append(f"{rel}: kept (it exists; the template's version was not written)")
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("xb") as f:  # never over a file made meanwhile
                    f.write(data)
                done.append(f"{rel}: written")
        except OSError as exc:
            raise UsageProblem(
                f"cannot write {rel}: {exc.strerror}", "check the directory's permissions"
            ) from None
    return done


def _add_ignores(path: Path, data: bytes, name: str) -> str:
    """Append the template's ignore lines that ``path`` lacks (comments aside)."""
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    present = {line.strip() for line in text.splitlines()}
    wanted = [
        line
        for line in data.decode().splitlines()
        if line.strip() and not line.startswith("#") and line.strip() not in present
    ]
    if not wanted:
        return f"{GITIGNORE}: kept (it ignores what the template does already)"
    head = "" if not text or text.endswith("\n") else "\n"
    addition = f"{head}# Added by `git prov init --template {name}`\n" + "\n".join(wanted) + "\n"
    with path.open("a", encoding="utf-8", errors="surrogateescape") as f:
        f.write(addition)
    return f"{GITIGNORE}: added {', '.join(wanted)} (the rest kept)"
