"""The environment a command runs in, as an :class:`EnvironmentManifest`.

:func:`capture_environment` describes the Python the *command* will use (found by
:func:`resolve_interpreter`, not git-prov's own interpreter), its installed distributions,
the lock files of the repository, the machine, its GPUs, the container around it and an
allow-list of environment variables with secrets redacted.

Sections and keys, for ``docs/format.md`` (a key is absent when unknown, never empty):

| section | key | value |
|---|---|---|
| `[python]` | `executable` | absolute path the command runs; a venv's `bin/python` is kept as is |
| | `sys_executable` | `sys.executable` when it differs (behind a pyenv shim, a wrapper) |
| | `version` | `"3.11.7"` (`platform.python_version()`) |
| | `implementation` | `"CPython"`, `"PyPy"`, … |
| | `prefix`, `base_prefix` | `sys.prefix`, `sys.base_prefix` |
| | `environment` | `"venv"` (prefix ≠ base prefix), `"conda"` (`conda-meta/`), `"system"` |
| | `free_threading` | `true` on a free-threaded build |
| | `broken_distributions` | installed distributions without name or version (absent if 0) |
| | `error` | why the interpreter could not be inspected (then no `[packages]`) |
| `[packages]` | `<name>` | version; PEP 503 name (`Foo_Bar` → `foo-bar`); first on sys.path wins |
| `[lockfiles]` | `<path>` | `"sha256:<hex>"` of the bytes; repo-relative posix path (see below) |
| `[system]` | `os` | `platform.system()`: `"Linux"`, `"Darwin"`, … |
| | `release`, `version` | kernel release and build string |
| | `machine` | `"x86_64"`, `"aarch64"`, … |
| | `distro`, `distro_id`, `distro_version` | `PRETTY_NAME`, `ID`, `VERSION_ID` of os-release |
| | `libc` | `"glibc 2.39"` |
| `[cpu]` | `model` | `/proc/cpuinfo` `model name` (or the ARM/POWER equivalent) |
| | `count` | `os.cpu_count()` |
| | `affinity_count` | CPUs this process may run on, when fewer than `count` |
| | `cgroup_quota` | cgroup CPU quota in CPUs (`2.5`), when set |
| `[memory]` | `total_bytes` | `MemTotal` of `/proc/meminfo` (else sysconf) |
| | `cgroup_limit_bytes` | cgroup memory limit, when below the total |
| `[[gpu]]` | `index` | nvidia-smi index (integer) |
| | `name`, `uuid` | `"NVIDIA H200"`, `"GPU-443e086d-…"` |
| | `driver` | `"580.159.04"` |
| | `memory_total_mib` | integer |
| | `compute_capability` | `"9.0"` (a string: `"10.0"` must not read as `10`) |
| | `pci_bus_id` | `"00000000:00:06.0"` |
| `[accelerator]` | `driver_version` | NVIDIA driver |
| | `cuda_driver_version` | highest CUDA the driver supports (`"13.0"`, nvidia-smi banner) |
| | `cuda_toolkit_version` | `$CUDA_VERSION`, else `version.json`/`.txt` of `$CUDA_HOME`, … |
| | `rocm_version` | `/opt/rocm/.info/version` |
| `[container]` | `kind` | `apptainer`, `singularity`, `kubernetes`, `podman`, `docker`, `wsl`, … |
| | `image`, `image_id` | from `/run/.containerenv` (podman), or the `.sif` path |
| | `hints` | table of image-describing variables (`NVIDIA_PYTORCH_VERSION`, …) |
| `[variables]` | `<NAME>` | variables matching `allow_variables`, through :func:`redact_value` |

Never recorded: hostnames, user names, free memory, load, uptime, GPU utilisation or
temperature, ``SLURM_JOB_ID`` and other per-run ids (they would make every run's manifest
unique; the run record is the place for them). Hence the same environment encodes to the
same bytes and is stored once.

Lock files: every pattern of ``lockfile_patterns`` is a ``fnmatch`` pattern. A pattern
without ``/`` and without wildcards (``uv.lock``) is looked for at the repository root *and*
in each first-level directory (``backend/uv.lock``), skipping hidden directories,
``node_modules``, ``venv``, ``env``, ``__pycache__`` and ``site-packages``. A pattern with
wildcards (``requirements*.txt``) matches only at the root, and ``dir/pattern``
(``requirements/*.txt``) only in that directory — so nothing ever lists a big data directory.

Caching: with ``cache_dir``, the two expensive parts — running the interpreter and running
``nvidia-smi`` — are cached in ``cache_dir`` as TOML files (``python-<key>.toml``,
``gpu-<key>.toml``; beside each, a JSON copy of it parsed, named by the hash of the bytes it
was made from: :mod:`~git_prov.capture.environment.cache`), each holding the partial
manifest and a *stamp* of what it depends on:

* Python: the interpreter's real path and its ``stat``, the ``stat`` of ``pyvenv.cfg``, and
  for every ``site-packages``/``dist-packages`` directory on its ``sys.path`` (learnt from
  the first run) plus the user site directory, its mtime, inode and a hash of its file names
  (so an install within one timestamp tick is still seen). The key covers the interpreter
  path, the host name, the working directory when ``PYTHONPATH`` has relative entries, and the
  variables that change ``sys.path`` (``PYTHONPATH``, ``PYTHONHOME``, ``HOME``, …).
  An interpreter that is itself a script (pyenv/asdf shims, wrappers) may switch to another
  Python without any of that changing, so it is never cached.
  Not watched: directories on ``PYTHONPATH`` (a repository's ``src/`` changes all the
  time); a distribution installed into one is seen once the cache misses for another reason.
* GPUs: ``nvidia-smi``'s real path and ``stat``, the kernel boot id (a driver change needs
  a reboot), the GPUs listed in ``/proc/driver/nvidia/gpus``, the host name and
  ``NVIDIA_VISIBLE_DEVICES``. A failed query is not cached.

Everything else (lock files, system, CPU, memory, container, variables) costs microseconds
and is read fresh every time. The cache is only an optimisation: an unreadable, corrupt or
stale file is recomputed and rewritten (atomically) without a word.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from git_prov.capture.environment.gpu import nvidia_part, toolkit_versions
from git_prov.capture.environment.interpreter import resolve_interpreter
from git_prov.capture.environment.lockfiles import DEFAULT_LOCKFILES, find_lockfiles
from git_prov.capture.environment.machine import (
    container_section,
    cpu_section,
    memory_section,
    system_section,
)
from git_prov.capture.environment.python_probe import python_part
from git_prov.capture.environment.reading import utf8_safe
from git_prov.capture.environment.variables import DEFAULT_ALLOWED_VARIABLES, variables_section
from git_prov.model.manifest import EnvironmentManifest

__all__ = [
    "DEFAULT_ALLOWED_VARIABLES",
    "DEFAULT_LOCKFILES",
    "capture_environment",
    "find_lockfiles",
    "resolve_interpreter",
]


def capture_environment(
    repo_root: Path,
    *,
    argv: Sequence[str] | None = None,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    allow_variables: Sequence[str] = DEFAULT_ALLOWED_VARIABLES,
    lockfile_patterns: Sequence[str] = DEFAULT_LOCKFILES,
    cwd: Path | None = None,
    root: Path = Path("/"),
) -> EnvironmentManifest:
    """Describe the environment the command ``argv`` will run in.

    ``env`` is the command's environment (default: this process's); ``python`` an explicit
    interpreter (``--python``); ``cache_dir`` enables the cache described in the module
    docstring (``None``: no cache). ``cwd`` is where the command will run (default: the
    current directory); the interpreter is inspected from there too, so that relative
    ``PYTHONPATH`` entries mean what they will mean to the command. ``root`` is the
    file-system root the machine facts are read under (``/proc``, ``/etc/os-release``,
    ``/.dockerenv`` …) — for tests.

    Nothing here fails because of the environment: an interpreter that cannot be inspected
    is recorded with an ``error``, an absent or failing ``nvidia-smi`` means no GPUs.
    Raises :class:`~git_prov.errors.UsageProblem` when ``python`` names nothing executable.
    """
    env = dict(os.environ if env is None else env)
    repo_root = Path(repo_root)
    workdir = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    interpreter = resolve_interpreter(argv, env, python, cwd=workdir)
    interpreter_part = (
        python_part(interpreter, env, workdir, cache_dir)
        if interpreter is not None
        else EnvironmentManifest()
    )
    nvidia = nvidia_part(env, cache_dir, root)
    return EnvironmentManifest(
        python=interpreter_part.python,
        packages=interpreter_part.packages,
        lockfiles=utf8_safe(find_lockfiles(repo_root, lockfile_patterns)),
        system=utf8_safe(system_section(root)),
        cpu=utf8_safe(cpu_section(root)),
        memory=memory_section(root),
        gpus=nvidia.gpus,
        accelerator=utf8_safe({**nvidia.accelerator(), **toolkit_versions(env, root)}),
        container=utf8_safe(container_section(env, root)),
        variables=utf8_safe(variables_section(env, allow_variables)),
    )
