"""The ``[python]`` and ``[packages]`` sections, from the command's own interpreter: a small
stdlib-only script it runs once, cached by :mod:`.cache` while nothing it depends on changes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from git_prov.capture.environment.cache import cache_file_for, read_cached, stamp_of, write_cached
from git_prov.capture.environment.reading import utf8_safe
from git_prov.model.manifest import EnvironmentManifest
from git_prov.trust.secrets import redact_value

PROBE_TIMEOUT = 60.0  # seconds; a healthy interpreter answers in ~50 ms, a cold NFS in seconds

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


def python_part(
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
        cache_file = cache_file_for(cache_dir, "python", identity)
    if cache_file is not None and (cached := read_cached(cache_file, identity)) is not None:
        return cached
    part, watched = _probe_python(interpreter, env, workdir)
    if cache_file is not None and watched is not None:
        keys = [f"realpath:{interpreter}", f"file:{os.path.realpath(interpreter)}", *watched]
        write_cached(cache_file, identity, stamp_of(keys), part)
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
        python=utf8_safe({k: v for k, v in section.items() if v}),
        packages=utf8_safe(packages),
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
        python=utf8_safe({"executable": interpreter, "error": redact_value("", why)[:500]})
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
