"""The machine: ``[system]``, ``[cpu]``, ``[memory]`` (with cgroup limits) and
``[container]``, read from ``/proc``, ``/sys`` and ``/etc`` under a root (``/`` but in tests)."""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from git_prov.capture.environment.reading import read_text
from git_prov.trust.secrets import redact_value

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


def system_section(root: Path) -> dict[str, Any]:
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
    text = read_text(root / "etc/os-release")
    if text is None:
        text = read_text(root / "usr/lib/os-release")
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


def cpu_section(root: Path) -> dict[str, Any]:
    section: dict[str, Any] = {}
    cpuinfo = read_text(root / "proc/cpuinfo", limit=4 << 20)
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


def memory_section(root: Path) -> dict[str, Any]:
    total: int | None = None
    meminfo = read_text(root / "proc/meminfo")
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
    text = read_text(root / "proc/self/cgroup") or ""
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
            value = (read_text(directory / name) or "").strip()
            if value.isdigit() and int(value) < 1 << 62:  # v1 says "no limit" as ~2**63
                limits.append(int(value))
    return min(limits) if limits else None


def _cgroup_cpu_quota(root: Path) -> float | None:
    quotas: list[float] = []
    for directory in _cgroup_dirs(root, "cpu"):
        words = (read_text(directory / "cpu.max") or "").split()
        if len(words) == 2 and words[0].isdigit() and words[1].isdigit() and int(words[1]):
            quotas.append(int(words[0]) / int(words[1]))
        quota = (read_text(directory / "cpu.cfs_quota_us") or "").strip()
        period = (read_text(directory / "cpu.cfs_period_us") or "").strip()
        if quota.isdigit() and period.isdigit() and int(period):
            quotas.append(int(quota) / int(period))
    return round(min(quotas), 3) if quotas else None


def container_section(env: Mapping[str, str], root: Path) -> dict[str, Any]:
    section: dict[str, Any] = {}
    for variable, kind in (
        ("APPTAINER_CONTAINER", "apptainer"),
        ("SINGULARITY_CONTAINER", "singularity"),
    ):
        if env.get(variable):
            section.update(kind=kind, image=env[variable])
            break
    containerenv = read_text(root / "run/.containerenv")
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
    declared = (read_text(root / "run/systemd/container") or env.get("container") or "").strip()
    if declared:
        return declared.splitlines()[0]
    cgroup = read_text(root / "proc/self/cgroup") or ""
    for marker, kind in (
        ("kubepods", "kubernetes"),
        ("docker", "docker"),
        ("libpod", "podman"),
        ("lxc", "lxc"),
        ("containerd", "containerd"),
    ):
        if marker in cgroup:
            return kind
    osrelease = (read_text(root / "proc/sys/kernel/osrelease") or "").lower()
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
