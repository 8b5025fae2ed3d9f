"""Jupyter: tell whether code runs in a notebook kernel, and find the notebook file.

A kernel does not know which notebook it serves; the front ends tell it in different ways,
all of which are read here without any network access:

* VS Code puts the notebook's absolute path in the kernel's ``__vsc_ipynb_file__`` variable;
* JupyterLab / Notebook 7 (jupyter_server ≥ 2) start the kernel with ``JPY_SESSION_NAME``
  set to the notebook's path, and ipykernel copies it into the ``__session__`` variable.

Older servers only name the kernel's connection file; finding the notebook from it means
asking the server's sessions API over HTTP with its token, which git-prov does not do.
There, pass the notebook to ``git_prov.run(inputs=[…])`` yourself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NOTEBOOK_VARIABLES = ("__vsc_ipynb_file__", "__session__")
SESSION_ENV = "JPY_SESSION_NAME"


def kernel_namespace() -> Mapping[str, Any] | None:
    """The user namespace of the IPython kernel running this code, or None outside one.

    IPython is never imported here: only a program that already runs in IPython has it in
    ``sys.modules``. A terminal IPython session is not a notebook (it has no ``kernel``).
    """
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
    namespace = getattr(shell, "user_ns", None)
    return namespace if isinstance(namespace, Mapping) else {}


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
    namespace = kernel_namespace()
    if namespace is None:
        return None
    return notebook_path(namespace, env, cwd)
