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
``gpu-<key>.toml``), each holding the partial manifest and a *stamp* of what it depends on:

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

import contextlib
import fnmatch
import functools
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from git_prov.capture.gpu import NvidiaReport, query_nvidia_smi
from git_prov.errors import UsageProblem
from git_prov.model.manifest import EnvironmentManifest

REDACTED = "<redacted>"

DEFAULT_ALLOWED_VARIABLES: tuple[str, ...] = (
    # Which devices, and how the GPU stack behaves.
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUDA_LAUNCH_BLOCKING",
    "CUDA_HOME",
    "CUDA_PATH",
    "CUDA_VERSION",
    "CUDA_MODULE_LOADING",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDNN_*",
    "NVIDIA_*",
    "NCCL_*",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "ROCM_PATH",
    "HSA_OVERRIDE_GFX_VERSION",
    # Threading and numerics.
    "OMP_*",
    "MKL_*",
    "OPENBLAS_*",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_*",
    "KMP_*",
    # Python itself.
    "PYTHONHASHSEED",
    "PYTHONPATH",
    "PYTHONOPTIMIZE",
    "PYTHONWARNINGS",
    "PYTHONUTF8",
    "PYTHONNOUSERSITE",
    "PYTHONSAFEPATH",
    "PYTHONDONTWRITEBYTECODE",
    # Frameworks.
    "TF_*",
    "!TF_VAR_*",  # TF_ is also Terraform's prefix: its inputs and settings are not ours
    "!TF_CLI_*",
    "!TF_TOKEN_*",
    "!TF_LOG*",
    "!TF_WORKSPACE",
    "!TF_DATA_DIR",
    "!TF_PLUGIN_CACHE_DIR",
    "!TF_IN_AUTOMATION",
    "!TF_INPUT",
    "TORCH_*",
    "PYTORCH_*",
    "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_*",
    "JAX_*",
    "HF_*",
    "HUGGINGFACE_*",
    "TRANSFORMERS_*",
    "TOKENIZERS_PARALLELISM",
    "WANDB_MODE",
    "MLFLOW_TRACKING_URI",
    # Native libraries that change what gets loaded.
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    # Locale and time.
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_NUMERIC",
    "TZ",
    "SOURCE_DATE_EPOCH",
    # Scheduler allocation (not per-job ids: those make every manifest unique).
    "SLURM_CLUSTER_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_CPUS_PER_TASK",
    "SLURM_GPUS*",
    "SLURM_NTASKS",
    "SLURM_JOB_NUM_NODES",
)
"""Variables recorded by default: case-sensitive ``fnmatch`` patterns, the last one matching
a name decides (``!pattern`` excludes), so patterns appended by a user override these."""

DEFAULT_LOCKFILES: tuple[str, ...] = (
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "pdm.lock",
    "pixi.lock",
    "pylock.toml",
    "pylock.*.toml",
    "requirements*.txt",
    "requirements/*.txt",
    "constraints*.txt",
    "environment.yml",
    "environment.yaml",
    "conda-lock.yml",
    "conda-lock.yaml",
    "*.conda-lock.yml",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "Cargo.lock",
    "go.sum",
    "Gemfile.lock",
    "renv.lock",
    "Manifest.toml",
    "flake.lock",
)
"""Lock and requirement files hashed into ``[lockfiles]`` (see the module docstring)."""

# Image-describing variables recorded under [container.hints] when present.
CONTAINER_HINT_VARIABLES: tuple[str, ...] = (
    "CONTAINER_IMAGE",
    "DOCKER_IMAGE",
    "IMAGE_NAME",
    "IMAGE_TAG",
    "NVIDIA_PYTORCH_VERSION",
    "NVIDIA_TENSORFLOW_VERSION",
    "NVIDIA_BUILD_ID",
    "PYTORCH_BUILD_VERSION",
    "SINGULARITY_NAME",
    "APPTAINER_NAME",
)

PROBE_TIMEOUT = 60.0  # seconds; a healthy interpreter answers in ~50 ms, a cold NFS in seconds
CACHE_FORMAT = 1
_MAX_CACHE_BYTES = 32 << 20

# Variables that change the interpreter's sys.path (so what it sees as installed).
_PROBE_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONSAFEPATH",
    "PYTHONPLATLIBDIR",
    "PYTHONEXECUTABLE",
    "HOME",
)
_PROBE_MARK = "@@git-prov-probe@@"

# Run by the command's interpreter: stdlib only, syntax Python 3.6 accepts, importlib.metadata
# from 3.8 (or its backport). Removing "" first keeps a json.py or
# platform.py in the repository from shadowing the stdlib; .pth files may print, hence the
# marker in front of the answer.
_PROBE_SCRIPT = r"""
import sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
import json, os, platform, re
try:
    from importlib import metadata
except ImportError:
    try:
        import importlib_metadata as metadata
    except ImportError:
        metadata = None
packages, broken = {}, 0
entries = [p for p in sys.path if p]
for entry in entries if metadata is not None else ():
    try:
        dists = list(metadata.distributions(path=[entry]))
    except Exception:
        continue
    found = {}
    for dist in dists:
        try:
            meta = dist.metadata
            name = meta["Name"] if meta is not None else None
            version = meta["Version"] if meta is not None else None
        except Exception:
            name = version = None
        if not name or not version:
            broken += 1
            continue
        key = re.sub(r"[-_.]+", "-", str(name)).lower()
        found.setdefault(key, set()).add(str(version))
    for key in sorted(found):
        if key not in packages:
            packages[key] = sorted(found[key])[-1]
user_site = None
site = sys.modules.get("site")
if site is not None and getattr(site, "ENABLE_USER_SITE", None) is True:
    try:
        user_site = site.getusersitepackages()
    except Exception:
        pass
try:
    import sysconfig
    free_threading = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
except Exception:
    free_threading = False
answer = {
    "sys_executable": sys.executable,
    "version": platform.python_version(),
    "implementation": platform.python_implementation(),
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "conda": os.path.isdir(os.path.join(sys.prefix, "conda-meta")),
    "free_threading": free_threading,
    "path": entries,
    "user_site": user_site,
    "packages": packages,
    "broken": broken,
}
sys.stdout.write("\n" + MARK + json.dumps(answer, sort_keys=True) + "\n")
""".replace("MARK", repr(_PROBE_MARK))


# --- secrets ------------------------------------------------------------------------------

# Words of a variable name that mark its value secret, and endings of glued words
# ("APIKEY", "HFTOKEN"). Words are split on "_", "-", "." and camelCase.
_SECRET_WORDS = frozenset(
    {
        "TOKEN",
        "TOKENS",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "PWD",
        "KEY",
        "KEYS",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "AUTH",
        "AUTHN",
        "AUTHZ",
        "PRIVATE",
        "SESSION",
        "COOKIE",
        "COOKIES",
        "PAT",
        "DSN",
        "SIGNATURE",
    }
)
_SECRET_FRAGMENTS = (
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "PRIVATE",
    "COOKIE",
    "SESSION",
    "AUTHORIZ",
)
_SECRET_ENDINGS = ("TOKEN", "TOKENS", "KEY", "KEYS", "AUTH", "PWD")
# Words ending like a secret that are not one.
_HARMLESS_WORDS = frozenset(
    {"MONKEY", "DONKEY", "HOCKEY", "JOCKEY", "TURKEY", "WHISKEY", "HOTKEY", "OLDPWD"}
)

_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<password>[^/?#\s]+)@"
)
_TOKEN_SHAPES = re.compile(
    "|".join(
        [
            r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
            r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}",
            r"(?<![A-Za-z0-9])glpat-[A-Za-z0-9_\-]{20,}",  # GitLab
            r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}",  # Hugging Face
            r"(?<![A-Za-z0-9])sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",  # OpenAI, Anthropic
            r"(?<![A-Za-z0-9])[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
            r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])",  # AWS access key id
            r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
            r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}",
            r"(?<![A-Za-z0-9])pypi-[A-Za-z0-9_\-]{50,}",
            r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}",  # Google API key
            r"(?<![A-Za-z0-9])ya29\.[0-9A-Za-z_\-]{20,}",  # Google OAuth access token
            r"(?<![A-Za-z0-9])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",  # JWT
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
        ]
    )
)


def is_secret_name(name: str) -> bool:
    """Whether a variable (or option) called ``name`` probably holds a secret.

    Matches whole words (``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``DB_PASS``, ``apiKey``,
    ``OAUTH_CLIENT``), glued words (``APIKEY``, ``GITHUBTOKEN``), but not look-alikes
    (``TOKENIZERS_PARALLELISM``, ``KEYBOARD``, ``GIT_AUTHOR_NAME``, ``PWD``).
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    words = [w for w in re.split(r"[^A-Za-z0-9]+|_", spaced.upper()) if w]
    for word in words:
        if word in _HARMLESS_WORDS:
            continue
        if word in _SECRET_WORDS and not (word == "PWD" and len(words) == 1):
            return True
        if any(fragment in word for fragment in _SECRET_FRAGMENTS):
            return True
        if len(word) > 4 and word.endswith(_SECRET_ENDINGS):
            return True
    return False


def redact_value(name: str, value: str) -> str:
    """``value`` with anything secret replaced by ``"<redacted>"``.

    The whole value when :func:`is_secret_name` says ``name`` is secret (an empty value
    stays empty); otherwise the password of ``scheme://user:password@host`` URLs and every
    substring shaped like a known credential (GitHub, GitLab, Hugging Face, OpenAI, Stripe,
    AWS access key ids, Slack, npm, PyPI, Google, JWTs, PEM private keys). Pass ``name=""``
    for text that has no name, such as one argument of a command line.
    """
    if not value:
        return value
    if name and is_secret_name(name):
        return REDACTED
    value = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}@", value)
    return _TOKEN_SHAPES.sub(REDACTED, value)


# --- which Python -------------------------------------------------------------------------

_PYTHON_NAME = re.compile(r"^(?:python|pypy)(?:\d+(?:\.\d+)*)?t?(?:\.exe)?$")
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
        found = _find_executable(python, search_path, workdir)
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
        if found := _find_executable(name, search_path):
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
        return True, _find_executable(command, search_path, workdir)
    if base == "uv" and argv[1:2] == ["run"]:
        return _uv_run_interpreter(argv[2:], env, workdir)
    if base in {"conda", "mamba", "micromamba"} and argv[1:2] == ["run"]:
        return _conda_run_interpreter(argv[2:], env)
    script = _find_executable(command, search_path, workdir)
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
        return _find_executable(target, search_path) if target else None
    if program == "env":
        args = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if args and _PYTHON_NAME.match(os.path.basename(args[0])):
            return _find_executable(args[0], search_path)
        return None
    if _PYTHON_NAME.match(program):
        return _find_executable(words[0], search_path)
    return None


def _find_executable(command: str, search_path: str, workdir: str | None = None) -> str | None:
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


# --- capture ------------------------------------------------------------------------------


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
    python_part = (
        _python_part(interpreter, env, workdir, cache_dir)
        if interpreter is not None
        else EnvironmentManifest()
    )
    nvidia = _nvidia_part(env, cache_dir, root)
    return EnvironmentManifest(
        python=python_part.python,
        packages=python_part.packages,
        lockfiles=_utf8_safe(find_lockfiles(repo_root, lockfile_patterns)),
        system=_utf8_safe(_system_section(root)),
        cpu=_utf8_safe(_cpu_section(root)),
        memory=_memory_section(root),
        gpus=nvidia.gpus,
        accelerator=_utf8_safe({**nvidia.accelerator(), **_toolkit_versions(env, root)}),
        container=_utf8_safe(_container_section(env, root)),
        variables=_utf8_safe(_variables_section(env, allow_variables)),
    )


def _utf8_safe(value: Any) -> Any:
    """``value`` with undecodable bytes (lone surrogates from file names, variables and
    paths on POSIX) replaced by U+FFFD: TOML is UTF-8 and must never fail to encode."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_utf8_safe(k): _utf8_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_utf8_safe(v) for v in value]
    return value


def find_lockfiles(repo_root: Path, patterns: Sequence[str] = DEFAULT_LOCKFILES) -> dict[str, str]:
    """``{repo-relative posix path: "sha256:<hex>"}`` of the lock files matching ``patterns``.

    Search depth and pattern rules are in the module docstring; unreadable files are left out.
    """
    root_files = _file_names(repo_root)
    subdirs: list[str] | None = None
    found: set[str] = set()
    for pattern in patterns:
        directory, _, base = pattern.rpartition("/")
        if directory:
            if _is_glob(directory):
                continue
            names = _file_names(repo_root / directory) if _is_glob(base) else [base]
            found.update(
                f"{directory}/{n}"
                for n in names
                if fnmatch.fnmatchcase(n, base) and (repo_root / directory / n).is_file()
            )
        elif _is_glob(base):
            found.update(n for n in root_files if fnmatch.fnmatchcase(n, base))
        else:
            if base in root_files:
                found.add(base)
            if subdirs is None:
                subdirs = _lockfile_subdirs(repo_root)
            found.update(f"{d}/{base}" for d in subdirs if (repo_root / d / base).is_file())
    hashes: dict[str, str] = {}
    for relative in sorted(found):
        digest = _sha256_file(repo_root / relative)
        if digest is not None:
            hashes[relative] = f"sha256:{digest}"
    return hashes


_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env"})


def _lockfile_subdirs(repo_root: Path) -> list[str]:
    try:
        with os.scandir(repo_root) as entries:
            return sorted(
                e.name
                for e in entries
                if e.is_dir(follow_symlinks=False)
                and not e.name.startswith(".")
                and e.name not in _SKIPPED_DIRS
            )
    except OSError:
        return []


def _file_names(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if e.is_file())
    except OSError:
        return []


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _sha256_file(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


# --- the interpreter's own view -----------------------------------------------------------


def _python_part(
    interpreter: str, env: Mapping[str, str], workdir: Path, cache_dir: Path | None
) -> EnvironmentManifest:
    """``python`` and ``packages`` sections, from the cache or by running the interpreter."""
    pythonpath = env.get("PYTHONPATH", "").split(os.pathsep)
    relative_entries = any(entry and not os.path.isabs(entry) for entry in pythonpath)
    identity = [
        "python",
        interpreter,
        # The directory matters only to relative $PYTHONPATH entries ("" is dropped).
        str(workdir.absolute()) if relative_entries else "",
        platform.node(),
        *(f"{v}={env.get(v, '')}" for v in _PROBE_VARIABLES if v in env),
    ]
    cache_file = None
    if cache_dir is not None and not _is_script(interpreter):
        cache_file = _cache_file(cache_dir, "python", identity)
    if cache_file is not None and (cached := _read_cache(cache_file, identity)) is not None:
        return cached
    part, watched = _probe_python(interpreter, env, workdir)
    if cache_file is not None and watched is not None:
        keys = [f"realpath:{interpreter}", f"file:{os.path.realpath(interpreter)}", *watched]
        _write_cache(cache_file, identity, _stamp(keys), part)
    return part


def _probe_python(
    interpreter: str, env: Mapping[str, str], workdir: Path
) -> tuple[EnvironmentManifest, list[str] | None]:
    """Run the interpreter once; the partial manifest and the stamp keys it depends on
    (``None`` when it failed, so that nothing is cached)."""
    # No -I/-E/-s: the command will see $PYTHONPATH and the user site, so the probe must too.
    # The probe script itself drops the working directory from sys.path.
    probe_env = {k: v for k, v in env.items() if k not in {"PYTHONINSPECT", "PYTHONSTARTUP"}}
    try:
        proc = subprocess.run(
            [interpreter, "-c", _PROBE_SCRIPT],
            cwd=workdir,
            env=probe_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _probe_failure(interpreter, f"no answer within {PROBE_TIMEOUT:g} s"), None
    except OSError as exc:
        return _probe_failure(interpreter, exc.strerror or type(exc).__name__), None
    answer = _probe_answer(proc.stdout)
    if proc.returncode != 0 or answer is None:
        last = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        return _probe_failure(interpreter, f"exit status {proc.returncode}: {last}"), None
    section: dict[str, Any] = {
        "executable": interpreter,
        "version": _text(answer.get("version")),
        "implementation": _text(answer.get("implementation")),
        "prefix": _text(answer.get("prefix")),
        "base_prefix": _text(answer.get("base_prefix")),
    }
    sys_executable = _text(answer.get("sys_executable"))
    if sys_executable and sys_executable != interpreter:
        section["sys_executable"] = sys_executable
    if section["prefix"] and section["prefix"] != section["base_prefix"]:
        section["environment"] = "venv"
    else:
        section["environment"] = "conda" if answer.get("conda") is True else "system"
    if answer.get("free_threading") is True:
        section["free_threading"] = True
    broken = answer.get("broken")
    if isinstance(broken, int) and broken > 0:
        section["broken_distributions"] = broken
    raw_packages = answer.get("packages")
    packages = (
        {str(k): str(v) for k, v in raw_packages.items()} if isinstance(raw_packages, dict) else {}
    )
    watched = [f"file:{os.path.join(section['prefix'], 'pyvenv.cfg')}"] if section["prefix"] else []
    raw_path = answer.get("path")
    for entry in raw_path if isinstance(raw_path, list) else []:
        if isinstance(entry, str) and os.path.basename(entry.rstrip("/\\")) in {
            "site-packages",
            "dist-packages",
        }:
            watched.append(f"dir:{entry}")
    if user_site := _text(answer.get("user_site")):
        watched.append(f"dir:{user_site}")
    manifest = EnvironmentManifest(
        python=_utf8_safe({k: v for k, v in section.items() if v}),
        packages=_utf8_safe(packages),
    )
    return manifest, sorted(set(watched))


def _probe_answer(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(_PROBE_MARK):
            try:
                answer = json.loads(line[len(_PROBE_MARK) :])
            except ValueError:
                return None
            return answer if isinstance(answer, dict) else None
    return None


def _probe_failure(interpreter: str, why: str) -> EnvironmentManifest:
    return EnvironmentManifest(
        python=_utf8_safe({"executable": interpreter, "error": redact_value("", why)[:500]})
    )


def _is_script(path: str) -> bool:
    """Whether ``path`` is a ``#!`` script (a shim that may pick another Python any time)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- GPUs ---------------------------------------------------------------------------------


def _nvidia_part(env: Mapping[str, str], cache_dir: Path | None, root: Path) -> NvidiaReport:
    empty = NvidiaReport(gpus=())
    executable = _find_executable("nvidia-smi", env.get("PATH", os.defpath))
    if executable is None:
        return empty
    # NVIDIA_VISIBLE_DEVICES picks a container's GPUs when it is created.
    identity = ["gpu", executable, platform.node(), env.get("NVIDIA_VISIBLE_DEVICES", "")]
    # The driver is a kernel module: changing it needs a reboot (new boot id); a changed
    # user-space nvidia-smi shows in its stat; the driver lists the GPUs it sees (by PCI
    # bus id) in /proc. A GPU that falls off the bus, or MIG reconfiguration, without any
    # of these changing is not seen — an accepted gap.
    keys = [
        f"realpath:{executable}",
        f"file:{os.path.realpath(executable)}",
        f"bootid:{root / 'proc/sys/kernel/random/boot_id'}",
        f"names:{root / 'proc/driver/nvidia/gpus'}",
    ]
    cache_file = _cache_file(cache_dir, "gpu", identity) if cache_dir is not None else None
    if cache_file is not None and (cached := _read_cache(cache_file, identity)) is not None:
        return NvidiaReport(
            gpus=cached.gpus,
            driver_version=_optional(cached.accelerator.get("driver_version")),
            cuda_driver_version=_optional(cached.accelerator.get("cuda_driver_version")),
        )
    report = query_nvidia_smi(executable, env)
    if report is None:
        return empty  # not cached: the driver may come up later in this boot
    if cache_file is not None:
        part = EnvironmentManifest(gpus=report.gpus, accelerator=report.accelerator())
        _write_cache(cache_file, identity, _stamp(keys), part)
    return report


def _optional(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _toolkit_versions(env: Mapping[str, str], root: Path) -> dict[str, str]:
    """CUDA toolkit and ROCm versions, from variables and version files only (no nvcc)."""
    out: dict[str, str] = {}
    if env.get("CUDA_VERSION"):
        out["cuda_toolkit_version"] = env["CUDA_VERSION"]
    else:
        homes = [env.get("CUDA_HOME"), env.get("CUDA_PATH"), "/usr/local/cuda"]
        for home in filter(None, homes):
            if version := _cuda_home_version(_under(root, home)):
                out["cuda_toolkit_version"] = version
                break
    rocm = _read_text(_under(root, env.get("ROCM_PATH") or "/opt/rocm") / ".info" / "version")
    if rocm and rocm.strip():
        out["rocm_version"] = rocm.strip().splitlines()[0]
    return out


def _cuda_home_version(home: Path) -> str | None:
    text = _read_text(home / "version.json")
    if text is not None:
        try:
            version = json.loads(text).get("cuda", {}).get("version")
        except (ValueError, AttributeError):
            version = None
        if isinstance(version, str) and version:
            return version
    text = _read_text(home / "version.txt")  # CUDA ≤ 10: "CUDA Version 10.2.89"
    if text is not None and (match := re.search(r"CUDA Version\s+(\S+)", text)):
        return match.group(1)
    return None


# --- the machine --------------------------------------------------------------------------


def _system_section(root: Path) -> dict[str, Any]:
    release = _os_release(root)
    section: dict[str, Any] = {
        "os": platform.system(),
        "release": platform.release(),
        "version": platform.version(),
        "machine": platform.machine(),
        "distro": release.get("PRETTY_NAME") or release.get("NAME"),
        "distro_id": release.get("ID"),
        "distro_version": release.get("VERSION_ID"),
        "libc": _libc(),
    }
    if section["os"] == "Darwin" and not section["distro"] and root == Path("/"):
        mac = platform.mac_ver()[0]
        section["distro"] = f"macOS {mac}" if mac else None
    return {k: v for k, v in section.items() if v}


def _os_release(root: Path) -> dict[str, str]:
    text = _read_text(root / "etc/os-release")
    if text is None:
        text = _read_text(root / "usr/lib/os-release")
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or key.startswith("#"):
            continue
        try:
            words = shlex.split(value, comments=False)
            out[key] = words[0] if words else ""
        except ValueError:
            out[key] = value.strip().strip("\"'")
    return out


def _libc() -> str | None:
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.39", without reading a binary
    except (AttributeError, ValueError, OSError):
        version = None
    if version:
        return version
    name, number = platform.libc_ver()
    return f"{name} {number}".strip() or None


_CPU_MODEL_KEYS = ("model name", "cpu model", "Processor", "cpu", "Model", "Hardware")


def _cpu_section(root: Path) -> dict[str, Any]:
    section: dict[str, Any] = {}
    cpuinfo = _read_text(root / "proc/cpuinfo", limit=4 << 20)
    if cpuinfo is not None:
        seen: dict[str, str] = {}
        for line in cpuinfo.splitlines():
            key, sep, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if sep and value and key in _CPU_MODEL_KEYS and key not in seen:
                seen[key] = value
                if key == "model name":
                    break
        section["model"] = next((seen[k] for k in _CPU_MODEL_KEYS if k in seen), None)
    elif root == Path("/") and platform.system() != "Linux":
        section["model"] = platform.processor() or None  # spawns `uname -p` on Linux
    count = os.cpu_count()
    section["count"] = count
    if hasattr(os, "sched_getaffinity"):
        available = len(os.sched_getaffinity(0))
        if count is not None and available != count:
            section["affinity_count"] = available
    quota = _cgroup_cpu_quota(root)
    if quota is not None:
        section["cgroup_quota"] = quota
    return {k: v for k, v in section.items() if v is not None and v != ""}


def _memory_section(root: Path) -> dict[str, Any]:
    total: int | None = None
    meminfo = _read_text(root / "proc/meminfo")
    for line in (meminfo or "").splitlines():
        if line.startswith("MemTotal:"):
            words = line.split()
            if len(words) >= 2 and words[1].isdigit():
                unit = words[2].lower() if len(words) > 2 else "kb"
                total = int(words[1]) * (1024 if unit == "kb" else 1)
            break
    if total is None and meminfo is None and root == Path("/"):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            total = None
    section: dict[str, Any] = {}
    if total:
        section["total_bytes"] = total
    limit = _cgroup_memory_limit(root)
    if limit is not None and (total is None or limit < total):
        section["cgroup_limit_bytes"] = limit
    return section


def _cgroup_dirs(root: Path, controller: str) -> Iterator[Path]:
    """The cgroup directories of this process for ``controller``, innermost first.

    cgroup v2 (``0::/path``) and v1 (``N:cpu,cpuacct:/path``); every ancestor is included
    because a limit anywhere up the tree applies.
    """
    text = _read_text(root / "proc/self/cgroup") or ""
    base = root / "sys/fs/cgroup"
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        number, controllers, path = parts
        if number == "0" and controllers == "":
            top = base
        elif controller in controllers.split(","):
            top = base / controllers
        else:
            continue
        relative = [p for p in path.split("/") if p and p not in {".", ".."}]
        for depth in range(len(relative), -1, -1):
            yield top.joinpath(*relative[:depth])


def _cgroup_memory_limit(root: Path) -> int | None:
    limits: list[int] = []
    for directory in _cgroup_dirs(root, "memory"):
        for name in ("memory.max", "memory.limit_in_bytes"):
            value = (_read_text(directory / name) or "").strip()
            if value.isdigit() and int(value) < 1 << 62:  # v1 says "no limit" as ~2**63
                limits.append(int(value))
    return min(limits) if limits else None


def _cgroup_cpu_quota(root: Path) -> float | None:
    quotas: list[float] = []
    for directory in _cgroup_dirs(root, "cpu"):
        words = (_read_text(directory / "cpu.max") or "").split()
        if len(words) == 2 and words[0].isdigit() and words[1].isdigit() and int(words[1]):
            quotas.append(int(words[0]) / int(words[1]))
        quota = (_read_text(directory / "cpu.cfs_quota_us") or "").strip()
        period = (_read_text(directory / "cpu.cfs_period_us") or "").strip()
        if quota.isdigit() and period.isdigit() and int(period):
            quotas.append(int(quota) / int(period))
    return round(min(quotas), 3) if quotas else None


def _container_section(env: Mapping[str, str], root: Path) -> dict[str, Any]:
    section: dict[str, Any] = {}
    for variable, kind in (
        ("APPTAINER_CONTAINER", "apptainer"),
        ("SINGULARITY_CONTAINER", "singularity"),
    ):
        if env.get(variable):
            section.update(kind=kind, image=env[variable])
            break
    containerenv = _read_text(root / "run/.containerenv")
    if containerenv is not None:
        fields = _key_values(containerenv)
        section.setdefault("kind", "podman")
        if fields.get("image"):
            section.setdefault("image", fields["image"])
        if fields.get("imageid"):
            section["image_id"] = fields["imageid"]
    if "kind" not in section:
        section["kind"] = _container_kind(env, root)
    hints = {v: redact_value(v, env[v]) for v in CONTAINER_HINT_VARIABLES if env.get(v)}
    if hints:
        section["hints"] = hints
    if "image" in section:
        section["image"] = redact_value("", section["image"])
    return {k: v for k, v in section.items() if v}


def _container_kind(env: Mapping[str, str], root: Path) -> str | None:
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if (root / ".dockerenv").exists():
        return "docker"
    # systemd's convention: PID 1 exports $container and writes /run/systemd/container.
    declared = (_read_text(root / "run/systemd/container") or env.get("container") or "").strip()
    if declared:
        return declared.splitlines()[0]
    cgroup = _read_text(root / "proc/self/cgroup") or ""
    for marker, kind in (
        ("kubepods", "kubernetes"),
        ("docker", "docker"),
        ("libpod", "podman"),
        ("lxc", "lxc"),
        ("containerd", "containerd"),
    ):
        if marker in cgroup:
            return kind
    osrelease = (_read_text(root / "proc/sys/kernel/osrelease") or "").lower()
    if env.get("WSL_DISTRO_NAME") or "microsoft" in osrelease:
        return "wsl"
    return None


def _key_values(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


def _variables_section(env: Mapping[str, str], allow: Sequence[str]) -> dict[str, str]:
    return {name: redact_value(name, value) for name, value in env.items() if _allowed(name, allow)}


def _allowed(name: str, patterns: Sequence[str]) -> bool:
    """The last pattern matching ``name`` decides: ``!pattern`` excludes, others include."""
    for include, matches in _compiled_patterns(tuple(patterns)):
        if matches(name):
            return include
    return False


@functools.lru_cache(maxsize=8)
def _compiled_patterns(
    patterns: tuple[str, ...],
) -> list[tuple[bool, Callable[[str], re.Match[str] | None]]]:
    """The patterns, last first, each compiled once (fnmatch per variable per run adds up)."""
    return [
        (not p.startswith("!"), re.compile(fnmatch.translate(p.removeprefix("!"))).match)
        for p in reversed(patterns)
    ]


def _under(root: Path, path: str) -> Path:
    """``path`` (absolute on the real machine) inside ``root``."""
    return root / path.lstrip("/") if os.path.isabs(path) else Path(path)


def _read_text(path: Path, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


# --- cache --------------------------------------------------------------------------------


def _cache_file(cache_dir: Path, kind: str, identity: Sequence[str]) -> Path:
    digest = hashlib.sha256("\0".join(identity).encode("utf-8", "surrogateescape"))
    return Path(cache_dir) / f"{kind}-{digest.hexdigest()[:32]}.toml"


def _stamp(keys: Sequence[str]) -> dict[str, str]:
    """The current value of every stamp key (see :data:`_STAMPERS`)."""
    stamp: dict[str, str] = {}
    for key in keys:
        kind, _, argument = key.partition(":")
        stamper = _STAMPERS.get(kind)
        stamp[key] = stamper(argument) if stamper is not None else "?"
    return stamp


def _stat_stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "absent"
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def _dir_stamp(path: str) -> str:
    try:
        st = os.stat(path)
        names = sorted(os.listdir(path))
    except OSError:
        return "absent"
    listing = hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape"))
    return f"{st.st_mtime_ns}:{st.st_ino}:{listing.hexdigest()[:16]}"


def _names_stamp(path: str) -> str:
    """Only the names in a directory: /proc directories have no stable mtime or inode."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return "absent"
    return hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _bootid_stamp(path: str) -> str:
    return (_read_text(Path(path)) or "").strip() or "unknown"


_STAMPERS: dict[str, Callable[[str], str]] = {
    "realpath": os.path.realpath,
    "file": _stat_stamp,
    "dir": _dir_stamp,
    "names": _names_stamp,
    "bootid": _bootid_stamp,
}


def _read_cache(path: Path, identity: Sequence[str]) -> EnvironmentManifest | None:
    """The cached partial manifest, if the file is sound and its stamp still holds."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_CACHE_BYTES + 1)
        if len(data) > _MAX_CACHE_BYTES:
            return None
        doc = tomllib.loads(data.decode("utf-8"))
        stamp = doc["stamp"]
        if (
            doc.get("format") != CACHE_FORMAT
            or doc.get("identity") != list(identity)
            or not isinstance(stamp, dict)
            or _stamp(list(stamp)) != stamp
        ):
            return None
        return EnvironmentManifest.from_toml(str(doc["manifest"]).encode("utf-8"))
    except (
        OSError,
        UnicodeDecodeError,
        tomllib.TOMLDecodeError,
        KeyError,
        TypeError,
        ValueError,
        RecursionError,
    ):
        return None


def _write_cache(
    path: Path, identity: Sequence[str], stamp: Mapping[str, str], part: EnvironmentManifest
) -> None:
    """Write atomically (temp file + rename); a cache that cannot be written is skipped."""
    doc = {
        "format": CACHE_FORMAT,
        "identity": list(identity),
        "stamp": dict(stamp),
        "manifest": part.to_toml().decode("utf-8"),
    }
    data = tomli_w.dumps(doc, multiline_strings=True).encode("utf-8")
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
        temp = None
    except OSError:
        pass
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
