"""Jupyter: tell whether code runs in a notebook kernel, and find the notebook file.

A kernel does not know which notebook it serves; the front ends tell it in different ways,
all of which are read here without any network access:

* VS Code puts the notebook's absolute path in the kernel's ``__vsc_ipynb_file__`` variable;
* JupyterLab / Notebook 7 (jupyter_server ≥ 2) start the kernel with ``JPY_SESSION_NAME``
  set to the notebook's path, and ipykernel copies it into the ``__session__`` variable.

A notebook executed headless — ``jupyter nbconvert --execute``, ``jupyter execute``,
papermill, nbclient called from Python — is told nothing: its kernel gets only a working
directory (the notebook's, by default) and ``JPY_PARENT_PID``, the process executing it.
There the notebook is found by evidence, :func:`headless_notebook`: a candidate notebook
is one named on the executing process's command line (read from ``/proc``, so on Linux)
or lying in the kernel's working directory, and it is the notebook only when one of its
code cells is exactly the cell running now. Candidates the command line names come
first, in its order (papermill's input before its output); among notebooks found only in
the directory, more than one match (copies) is no answer.

Older servers only name the kernel's connection file; finding the notebook from it means
asking the server's sessions API over HTTP with its token, which git-prov does not do.
Unless the saved notebook holds the running cell (found as above), pass the notebook to
``git_prov.run(inputs=[…])`` yourself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NOTEBOOK_VARIABLES = ("__vsc_ipynb_file__", "__session__")
SESSION_ENV = "JPY_SESSION_NAME"
PARENT_ENV = "JPY_PARENT_PID"  # set by jupyter_client for every kernel it starts
MAX_NOTEBOOK_BYTES = 64 << 20  # a larger candidate is not read


def kernel_namespace() -> Mapping[str, Any] | None:
    """The user namespace of the IPython kernel running this code, or None outside one.

    IPython is never imported here: only a program that already runs in IPython has it in
    ``sys.modules``. A terminal IPython session is not a notebook (it has no ``kernel``).
    """
    shell = _kernel_shell()
    if shell is None:
        return None
    namespace = getattr(shell, "user_ns", None)
    return namespace if isinstance(namespace, Mapping) else {}


def _kernel_shell() -> Any:
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is None:
        return None
    try:
        shell = get_ipython()
    except Exception:  # a half-initialised IPython: not a kernel we can ask
        return None
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    return shell


def notebook_path(
    namespace: Mapping[str, Any] | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path | None:
    """The notebook file the kernel serves, from the kernel's variables or environment
    (see the module doc); None when none of them names an existing ``.ipynb`` file.

    A relative name is tried against ``cwd`` (a kernel starts in its notebook's directory)
    and, by its file name alone, in ``cwd`` too.
    """
    env = os.environ if env is None else env
    base = cwd or Path.cwd()
    names: list[str] = []
    for variable in NOTEBOOK_VARIABLES:
        value = (namespace or {}).get(variable)
        if isinstance(value, str) and value:
            names.append(value)
    if env.get(SESSION_ENV):
        names.append(env[SESSION_ENV])
    for name in names:
        for candidate in _candidates(name, base):
            if candidate.suffix == ".ipynb" and candidate.is_file():
                return candidate
    return None


def _candidates(name: str, base: Path) -> list[Path]:
    path = Path(name).expanduser()
    if path.is_absolute():
        return [path]
    return [base / path, base / path.name]


def detect_notebook(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The notebook this code runs in, or None when it does not run in a notebook kernel
    (or the notebook cannot be found)."""
    shell = _kernel_shell()
    if shell is None:
        return None
    namespace = getattr(shell, "user_ns", None)
    found = notebook_path(namespace if isinstance(namespace, Mapping) else {}, env, cwd)
    if found is not None:
        return found
    env = os.environ if env is None else env
    return headless_notebook(running_cell(shell), _parent_argv(env), cwd or Path.cwd())


def running_cell(shell: Any) -> str | None:
    """The source of the cell the kernel is running now (IPython keeps it in its input
    history before running it), or None when the shell does not say."""
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if not isinstance(history, list) or not history or not isinstance(history[-1], str):
        return None
    return history[-1]


def headless_notebook(
    cell: str | None, parent: tuple[Path, list[str]] | None, cwd: Path
) -> Path | None:
    """The notebook holding ``cell``, the code running now (see the module doc): among
    the ``.ipynb`` files the executing process's command line names (``parent``: its
    working directory and arguments), the first that has the cell; else the one notebook
    in ``cwd`` that has it; None when there is no such notebook or several in ``cwd``."""
    if not cell or not cell.strip():
        return None
    named: list[Path] = []
    if parent is not None:
        parent_cwd, argv = parent
        for arg in argv[1:]:
            if arg.endswith(".ipynb"):
                path = Path(arg).expanduser()
                named.append(path if path.is_absolute() else parent_cwd / path)
    for path in named:
        if _has_cell(path, cell):
            return path
    try:
        nearby = sorted(p for p in cwd.glob("*.ipynb") if p not in named)
    except OSError:
        return None
    matches = [p for p in nearby if _has_cell(p, cell)]
    return matches[0] if len(matches) == 1 else None


def _parent_argv(env: Mapping[str, str]) -> tuple[Path, list[str]] | None:
    """The working directory and command line of the process that started this kernel
    (``JPY_PARENT_PID``, else the parent process), where ``/proc`` tells them."""
    pid = env.get(PARENT_ENV, "")
    if not pid.isdigit():
        pid = str(os.getppid())
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode("utf-8", "surrogateescape").split("\0")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    return cwd, [a for a in argv if a]


def _has_cell(path: Path, cell: str) -> bool:
    """Whether the notebook at ``path`` has a code cell whose source is ``cell``."""
    import json

    try:
        if not path.is_file() or path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return False
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    cells = doc.get("cells") if isinstance(doc, dict) else None
    if not isinstance(cells, list):
        return False
    wanted = cell.strip()
    for c in cells:
        if not isinstance(c, dict) or c.get("cell_type") != "code":
            continue
        source = c.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str) and source.strip() == wanted:
            return True
    return False
