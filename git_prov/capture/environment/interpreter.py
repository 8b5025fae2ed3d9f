"""Which Python the command will run under: ``--python``, the command itself, a script's
``#!`` line, ``uv run``/``conda run``, an active venv or conda environment, ``PATH``."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from git_prov.errors import UsageProblem

_PYTHON_NAME = re.compile(r"^(?:python|pypy)(?:\d+(?:\.\d+)*)?t?(?:\.exe)?\Z")
_UV_OPTIONS_WITH_VALUE = frozenset(
    {
        "--with",
        "--with-requirements",
        "--with-editable",
        "--python",
        "-p",
        "--directory",
        "--project",
        "--package",
        "--extra",
        "--group",
        "--only-group",
        "--no-group",
        "--env-file",
        "--index",
        "--default-index",
        "--index-url",
        "-i",
        "--extra-index-url",
        "--find-links",
        "-f",
        "--config-file",
        "--cache-dir",
        "--color",
        "--index-strategy",
        "--keyring-provider",
        "--resolution",
        "--prerelease",
        "--link-mode",
        "--refresh-package",
        "--reinstall-package",
        "--upgrade-package",
        "-P",
        "--exclude-newer",
        "--python-platform",
        "--no-binary-package",
        "--no-build-package",
        "--config-setting",
        "-C",
    }
)
_CONDA_OPTIONS_WITH_VALUE = frozenset(
    {"-n", "--name", "-p", "--prefix", "--cwd", "--root-prefix", "-r"}
)


def resolve_interpreter(
    argv: Sequence[str] | None,
    env: Mapping[str, str],
    python: str | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> str | None:
    """The Python interpreter the command ``argv`` will run under, as an absolute path.

    In order: ``python`` (an explicit ``--python`` path or name on ``env["PATH"]``); the
    command itself when it is a Python (``python3 train.py``, ``/x/bin/python``, also behind
    ``env VAR=…``, ``uv run`` and ``conda run -n/-p``); the ``#!`` line of a script command
    (``./train.py``, console scripts such as ``torchrun``); ``$VIRTUAL_ENV`` or
    ``$CONDA_PREFIX``; ``python3`` (then ``python``) on ``env["PATH"]``. ``None`` when none
    of these exists — also when the command is a Python that cannot be found.

    Relative paths (``./train.py``, ``uv run``'s project) are taken from ``cwd``, the
    directory the command will run in (default: the current directory). Symlinks are kept:
    a venv's ``bin/python`` is what identifies the venv. Raises
    :class:`~git_prov.errors.UsageProblem` when ``python`` names nothing executable.
    """
    workdir = os.path.abspath(cwd if cwd is not None else os.getcwd())
    found = _resolve(argv, env, python, workdir)
    return _unshim_pyenv(found, env, workdir) if found is not None else None


def _resolve(
    argv: Sequence[str] | None, env: Mapping[str, str], python: str | None, workdir: str
) -> str | None:
    search_path = env.get("PATH", os.defpath)
    if python is not None:
        found = find_executable(python, search_path, workdir)
        if found is None:
            raise UsageProblem(
                f"--python {python!r} is not an executable file",
                "give the path of a Python interpreter or a name on PATH",
            )
        return found
    if argv:
        decided, found = _interpreter_of_command(list(argv), dict(env), workdir)
        if decided:
            return found
    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        if env.get(variable) and (found := _prefix_python(env[variable])):
            return found
    for name in ("python3", "python"):
        if found := find_executable(name, search_path):
            return found
    return None


def _unshim_pyenv(path: str, env: Mapping[str, str], workdir: str) -> str:
    """The interpreter a pyenv shim would run, found the way pyenv finds it.

    A shim is a shell script that picks a Python on every call, so it can never be cached
    and costs a full probe per run. pyenv's choice is plain data: ``$PYENV_VERSION``, else
    the nearest ``.python-version`` above the working directory, else
    ``$PYENV_ROOT/version``. When that names an installed version we return its real
    interpreter (which the cache can watch); otherwise the shim itself.
    """
    shims = os.path.dirname(path)
    if os.path.basename(shims) != "shims":
        return path
    root = env.get("PYENV_ROOT") or os.path.dirname(shims)
    if os.path.abspath(os.path.join(root, "shims")) != os.path.abspath(shims):
        return path
    for version in _pyenv_versions(root, env, workdir):
        candidate = os.path.join(root, "versions", version, "bin", os.path.basename(path))
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return path


def _pyenv_versions(root: str, env: Mapping[str, str], workdir: str) -> list[str]:
    if env.get("PYENV_VERSION"):
        return env["PYENV_VERSION"].split(":")
    directory = workdir
    while True:
        text = _read_small(os.path.join(directory, ".python-version"))
        if text is not None:
            return _version_words(text)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    text = _read_small(os.path.join(root, "version"))
    return _version_words(text) if text is not None else []


def _version_words(text: str) -> list[str]:
    words: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        words.extend(w for w in line.split() if w != "system")
    return words


def _read_small(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(4096)
    except OSError:
        return None


def _interpreter_of_command(
    argv: list[str], env: dict[str, str], workdir: str
) -> tuple[bool, str | None]:
    """(decided, interpreter): decided is False when the command says nothing about Python."""
    argv = _strip_env_prefix(argv, env)
    if not argv:
        return False, None
    command = argv[0]
    base = os.path.basename(command)
    search_path = env.get("PATH", os.defpath)
    if _PYTHON_NAME.match(base):
        return True, find_executable(command, search_path, workdir)
    if base == "uv" and argv[1:2] == ["run"]:
        return _uv_run_interpreter(argv[2:], env, workdir)
    if base in {"conda", "mamba", "micromamba"} and argv[1:2] == ["run"]:
        return _conda_run_interpreter(argv[2:], env)
    script = find_executable(command, search_path, workdir)
    if script is not None and (found := _shebang_interpreter(script, search_path)):
        return True, found
    return False, None


def _strip_env_prefix(argv: list[str], env: dict[str, str]) -> list[str]:
    """Drop a leading ``env [-i] [-u NAME] [NAME=VALUE]…``, applying it to ``env``."""
    if not argv or os.path.basename(argv[0]) != "env":
        return argv
    rest = argv[1:]
    while rest:
        word = rest[0]
        if word in {"-i", "--ignore-environment", "-"}:
            env.clear()
        elif word in {"-u", "--unset"} and len(rest) > 1:
            env.pop(rest[1], None)
            rest = rest[1:]
        elif word == "--":
            rest = rest[1:]
            break
        elif "=" in word and not word.startswith("-"):
            key, _, value = word.partition("=")
            env[key] = value
        elif not word.startswith("-"):
            break
        rest = rest[1:]
    return rest


def _uv_run_interpreter(
    args: list[str], env: Mapping[str, str], workdir: str
) -> tuple[bool, str | None]:
    """``uv run`` runs everything in the project environment: find its interpreter."""
    project: str | None = None
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "--":
        option = args[index]
        if option in {"--directory", "--project"} and index + 1 < len(args):
            project = args[index + 1]
        if option in {"--no-project", "--isolated"}:
            return False, None  # an ephemeral environment we cannot see from here
        index += 2 if option in _UV_OPTIONS_WITH_VALUE else 1
    start = Path(workdir, project or ".").absolute()
    project_dir = next(
        (d for d in (start, *start.parents) if (d / "pyproject.toml").is_file()), None
    )
    # $UV_PROJECT_ENVIRONMENT, relative to the project when relative, else <project>/.venv.
    venv = env.get("UV_PROJECT_ENVIRONMENT") or ".venv"
    if project_dir is None and not os.path.isabs(venv):
        return False, None
    found = _prefix_python(os.path.join(project_dir or "/", venv))
    return (True, found) if found else (False, None)


def _conda_run_interpreter(args: list[str], env: Mapping[str, str]) -> tuple[bool, str | None]:
    """``conda run -p PREFIX`` / ``-n NAME``: that environment's interpreter."""
    prefix: str | None = None
    name: str | None = None
    index = 0
    while index < len(args) and args[index].startswith("-"):
        option, _, inline = args[index].partition("=")
        value = inline or (args[index + 1] if index + 1 < len(args) else "")
        if option in {"-p", "--prefix"}:
            prefix = value
        elif option in {"-n", "--name"}:
            name = value
        index += 2 if option in _CONDA_OPTIONS_WITH_VALUE and not inline else 1
    if prefix is None and name is not None:
        prefix = _conda_env_prefix(name, env)
    if prefix is None:
        return False, None  # the active environment: $CONDA_PREFIX decides
    return True, _prefix_python(prefix)


def _conda_env_prefix(name: str, env: Mapping[str, str]) -> str | None:
    roots = [env.get("CONDA_ROOT"), env.get("MAMBA_ROOT_PREFIX")]
    if env.get("CONDA_EXE"):
        roots.append(str(Path(env["CONDA_EXE"]).parent.parent))
    candidates: list[Path] = []
    for root in filter(None, roots):
        candidates.append(Path(root) if name == "base" else Path(root) / "envs" / name)
    for directory in filter(None, env.get("CONDA_ENVS_PATH", "").split(os.pathsep)):
        candidates.append(Path(directory) / name)
    if env.get("HOME"):
        candidates.append(Path(env["HOME"]) / ".conda" / "envs" / name)
    return next((str(c) for c in candidates if (c / "conda-meta").is_dir()), None)


def _shebang_interpreter(script: str, search_path: str) -> str | None:
    """The Python named by the ``#!`` line of ``script`` (``None`` if it names none)."""
    try:
        with open(script, "rb") as handle:
            head = handle.read(1024)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    lines = head.split(b"\n")
    words = lines[0][2:].decode("utf-8", "replace").split()
    if not words:
        return None
    program = os.path.basename(words[0])
    # pip writes "#!/bin/sh" and "'''exec' "/long path/python" "$0" "$@"" when the real
    # shebang would be too long or contain spaces.
    if program in {"sh", "bash"} and len(lines) > 1 and lines[1].startswith(b"'''exec' "):
        rest = lines[1][len(b"'''exec' ") :].decode("utf-8", "replace")
        target = rest[1 : rest.find('"', 1)] if rest.startswith('"') else rest.split()[0]
        return find_executable(target, search_path) if target else None
    if program == "env":
        args = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if args and _PYTHON_NAME.match(os.path.basename(args[0])):
            return find_executable(args[0], search_path)
        return None
    if _PYTHON_NAME.match(program):
        return find_executable(words[0], search_path)
    return None


def find_executable(command: str, search_path: str, workdir: str | None = None) -> str | None:
    """Absolute path of ``command``: a path (relative to ``workdir``), or a name looked up
    on ``search_path``."""
    if os.sep in command or (os.altsep and os.altsep in command):
        path = os.path.abspath(os.path.join(workdir or os.getcwd(), os.path.expanduser(command)))
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    found = shutil.which(command, path=search_path)
    return os.path.abspath(found) if found else None


def _prefix_python(prefix: str) -> str | None:
    for relative in ("bin/python", "bin/python3", "Scripts/python.exe", "python.exe"):
        candidate = os.path.join(os.path.abspath(prefix), relative)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None
