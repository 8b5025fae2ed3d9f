"""NVIDIA GPUs as ``nvidia-smi`` reports them: pure parsers of its text, and one query.

The parsers take the text the tool printed and return plain dicts ready for
:class:`~git_prov.model.manifest.EnvironmentManifest` (no ``None`` values, so a manifest
equals its TOML round-trip). :func:`query_nvidia_smi` runs the tool; a missing driver, a
machine without GPUs, a hung or failing ``nvidia-smi`` all mean "no GPUs", never an error.
:func:`nvidia_part` is that query behind the fingerprint cache, and :func:`toolkit_versions`
reads the CUDA and ROCm toolkit versions from variables and version files.

Only facts that stay put while the machine is up are kept: name, UUID, driver, total memory,
compute capability, PCI bus id. Utilisation, temperature, power and memory in use are
volatile and never read.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from git_prov.capture.environment.cache import cache_file_for, read_cached, stamp_of, write_cached
from git_prov.capture.environment.interpreter import find_executable
from git_prov.capture.environment.reading import read_text, under
from git_prov.model.frozen import Fields, frozen_fields
from git_prov.model.manifest import EnvironmentManifest

QUERY_FIELDS: tuple[str, ...] = (
    "index",
    "name",
    "uuid",
    "driver_version",
    "memory.total",
    "compute_cap",
    "pci.bus_id",
)
"""The ``--query-gpu`` fields we ask for, in this order."""

# Manifest key of each query field (the ``[[gpu]]`` table in docs/format.md).
GPU_KEYS: Mapping[str, str] = {
    "index": "index",
    "name": "name",
    "uuid": "uuid",
    "driver_version": "driver",
    "memory.total": "memory_total_mib",
    "compute_cap": "compute_capability",
    "pci.bus_id": "pci_bus_id",
}

DEFAULT_TIMEOUT = 5.0  # seconds; nvidia-smi answers in tens of ms when the driver is healthy

# Patterns compiled on first use (by re's cache): a machine without nvidia-smi needs none.
_MEMORY = r"(?i)^(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$"
_MIB_PER_UNIT = {
    "kib": 1 / 1024,
    "kb": 1 / 1024,
    "mib": 1,
    "mb": 1,
    "gib": 1024,
    "gb": 1024,
    "tib": 1024 * 1024,
    "tb": 1024 * 1024,
}
_DRIVER_HEADER = r"Driver Version:\s*([0-9][0-9A-Za-z.\-]*)"
_CUDA_HEADER = r"CUDA Version:\s*([0-9][0-9A-Za-z.\-]*)"


@frozen_fields
class NvidiaReport(Fields):
    """What one ``nvidia-smi`` query found: the GPUs and the driver-level versions."""

    gpus: tuple[Mapping[str, Any], ...]
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # the highest CUDA the driver supports

    def __init__(
        self,
        gpus: tuple[Mapping[str, Any], ...],
        driver_version: str | None = None,
        cuda_driver_version: str | None = None,
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "gpus", gpus)
        set_(self, "driver_version", driver_version)
        set_(self, "cuda_driver_version", cuda_driver_version)

    def accelerator(self) -> dict[str, str]:
        """The driver part of the ``[accelerator]`` section (no ``None`` values)."""
        out: dict[str, str] = {}
        driver = self.driver_version
        if driver is None:
            drivers = sorted({str(g["driver"]) for g in self.gpus if "driver" in g})
            driver = drivers[0] if drivers else None
        if driver is not None:
            out["driver_version"] = driver
        if self.cuda_driver_version is not None:
            out["cuda_driver_version"] = self.cuda_driver_version
        return out


def parse_query_gpu(text: str, fields: Sequence[str] = QUERY_FIELDS) -> list[dict[str, Any]]:
    """Parse ``nvidia-smi --query-gpu=<fields> --format=csv,noheader[,nounits]`` output.

    Works with and without units ("143771 MiB" and "143771"). Values nvidia-smi cannot give
    ("[N/A]", "[Not Supported]") are left out; rows with the wrong number of columns (a
    warning line, a truncated answer) are skipped. GPUs come back sorted by index.
    """
    import csv

    gpus: list[dict[str, Any]] = []
    lines = [line for line in text.splitlines() if line.strip()]
    for row in csv.reader(lines, skipinitialspace=True):
        if len(row) != len(fields):
            continue
        gpu: dict[str, Any] = {}
        for name, raw in zip(fields, row, strict=True):
            value = _parse_field(name, raw.strip())
            if value is not None:
                gpu[GPU_KEYS.get(name, name.replace(".", "_"))] = value
        if gpu:
            gpus.append(gpu)
    gpus.sort(key=lambda g: (g.get("index", len(gpus)), str(g.get("pci_bus_id", ""))))
    return gpus


def parse_smi_header(text: str) -> dict[str, str]:
    """Driver and CUDA versions from the banner of plain ``nvidia-smi`` output.

    Returns ``{"driver_version": "580.159.04", "cuda_driver_version": "13.0"}``, with a key
    left out when the banner lacks it (or says "N/A").
    """
    out: dict[str, str] = {}
    if match := re.search(_DRIVER_HEADER, text):
        out["driver_version"] = match.group(1)
    if match := re.search(_CUDA_HEADER, text):
        out["cuda_driver_version"] = match.group(1)
    return out


def query_nvidia_smi(
    executable: str, env: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> NvidiaReport | None:
    """Ask ``nvidia-smi`` (at ``executable``) for the GPUs; ``None`` if it cannot say.

    Two invocations run side by side: the ``--query-gpu`` CSV (the GPUs) and the plain
    banner (the only place the driver's CUDA version is printed). Drivers older than 510
    do not know ``compute_cap``; the query is then repeated without it.
    """
    fields = QUERY_FIELDS
    # Started together so the slower banner costs no extra wall time.
    banner_proc = _start([executable], env)
    code, out, err = _finish(_start(_query_args(executable, fields), env), timeout)
    if code != 0 and "compute_cap" in out + err:
        fields = tuple(f for f in fields if f != "compute_cap")
        code, out, err = _finish(_start(_query_args(executable, fields), env), timeout)
    banner_code, banner_out, _ = _finish(banner_proc, timeout)
    if code != 0:
        return None
    gpus = parse_query_gpu(out, fields)
    if not gpus:
        return None
    header = parse_smi_header(banner_out) if banner_code == 0 else {}
    return NvidiaReport(
        gpus=tuple(gpus),
        driver_version=header.get("driver_version"),
        cuda_driver_version=header.get("cuda_driver_version"),
    )


def _query_args(executable: str, fields: Sequence[str]) -> list[str]:
    return [executable, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]


def _parse_field(name: str, raw: str) -> Any:
    if not raw or raw.startswith("[") or raw.upper() in {"N/A", "NOT SUPPORTED", "UNKNOWN"}:
        return None
    if name == "index":
        return int(raw) if raw.isdigit() else None
    if name.startswith("memory."):
        match = re.match(_MEMORY, raw)
        if match is None:
            return None
        mib = float(match.group(1)) * _MIB_PER_UNIT[(match.group(2) or "MiB").lower()]
        return round(mib)
    return raw


def _start(args: list[str], env: Mapping[str, str] | None) -> subprocess.Popen[str] | None:
    try:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=None if env is None else dict(env),
            start_new_session=True,  # so that a hung wrapper script dies with its children
        )
    except OSError:
        return None


def _finish(proc: subprocess.Popen[str] | None, timeout: float) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); a process that could not start or hung counts as failed."""
    if proc is None:
        return -1, "", ""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        proc.communicate()
        return -1, "", "timed out"
    return proc.returncode, out, err


def nvidia_part(env: Mapping[str, str], cache_dir: Path | None, root: Path) -> NvidiaReport:
    empty = NvidiaReport(gpus=())
    executable = find_executable("nvidia-smi", env.get("PATH", os.defpath))
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
    cache_file = cache_file_for(cache_dir, "gpu", identity) if cache_dir is not None else None
    if cache_file is not None and (cached := read_cached(cache_file, identity)) is not None:
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
        write_cached(cache_file, identity, stamp_of(keys), part)
    return report


def _optional(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def toolkit_versions(env: Mapping[str, str], root: Path) -> dict[str, str]:
    """CUDA toolkit and ROCm versions, from variables and version files only (no nvcc)."""
    out: dict[str, str] = {}
    if env.get("CUDA_VERSION"):
        out["cuda_toolkit_version"] = env["CUDA_VERSION"]
    else:
        homes = [env.get("CUDA_HOME"), env.get("CUDA_PATH"), "/usr/local/cuda"]
        for home in filter(None, homes):
            if version := _cuda_home_version(under(root, home)):
                out["cuda_toolkit_version"] = version
                break
    rocm = read_text(under(root, env.get("ROCM_PATH") or "/opt/rocm") / ".info" / "version")
    if rocm and rocm.strip():
        out["rocm_version"] = rocm.strip().splitlines()[0]
    return out


def _cuda_home_version(home: Path) -> str | None:
    text = read_text(home / "version.json")
    if text is not None:
        import json

        try:
            version = json.loads(text).get("cuda", {}).get("version")
        except (ValueError, AttributeError):
            version = None
        if isinstance(version, str) and version:
            return version
    text = read_text(home / "version.txt")  # CUDA ≤ 10: "CUDA Version 10.2.89"
    if text is not None and (match := re.search(r"CUDA Version\s+(\S+)", text)):
        return match.group(1)
    return None
