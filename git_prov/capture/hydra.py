"""Hydra's composed config as a run's params.

A Hydra app writes, in each run's output directory, ``.hydra/config.yaml`` (the config it
composed, overrides applied) and ``.hydra/overrides.yaml`` (the command-line overrides).
When a run wrote exactly one such directory, its config becomes the run's params
(flattened: ``model.depth``), and the overrides the param ``hydra.overrides`` (as typed,
space-separated); params given explicitly (``-p``, ``params=``) win. Where a run wrote
several (a ``--multirun`` inside one command), which one is the run's is not known: none is
read, and a warning names them. Reading needs PyYAML (the ``yaml`` extra); without it the
run is recorded with a warning saying so — git-prov has no YAML dependency of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from git_prov.errors import ProvError
from git_prov.model.values import Scalar

CONFIG = Path(".hydra") / "config.yaml"
OVERRIDES = Path(".hydra") / "overrides.yaml"
OVERRIDES_PARAM = "hydra.overrides"
# Where Hydra writes run directories by default (hydra.run.dir, hydra.sweep.dir), relative
# to the directory it started in; declared outputs are looked at too.
DEFAULT_PATTERNS = ("outputs/*/*", "multirun/*/*/*")


def hydra_params(run_dir: Path) -> dict[str, Scalar]:
    """The params of the Hydra run directory ``run_dir`` (holding ``.hydra/``); raises a
    ProvError when its config cannot be read (PyYAML missing, a malformed file)."""
    from git_prov.capture.values_files import read_values_file

    params = read_values_file(run_dir / CONFIG, "Hydra config")
    overrides = run_dir / OVERRIDES
    if overrides.is_file():
        try:
            import yaml  # type: ignore[import-untyped]

            items = yaml.safe_load(overrides.read_bytes())
        except Exception:  # an unreadable overrides file costs only this param
            items = None
        if isinstance(items, list) and items:
            params[OVERRIDES_PARAM] = " ".join(str(i) for i in items)
    return params


# A config file's identity for "did the run write it": (mtime_ns, size, inode).
ConfigStat = tuple[int, int, int]


def _candidates(cwd: Path, outputs: Sequence[Path], patterns: Sequence[str]) -> set[Path]:
    """Hydra run directories under ``cwd`` where Hydra puts them by default, and in each
    declared output directory (itself, or up to two levels below it)."""
    candidates: set[Path] = set()
    for pattern in patterns:
        candidates.update(p.parent.parent for p in cwd.glob(f"{pattern}/{CONFIG}"))
    for out in outputs:
        for depth in ("", "*/", "*/*/"):
            candidates.update(p.parent.parent for p in out.glob(f"{depth}{CONFIG}"))
    return candidates


def _config_stat(run_dir: Path) -> ConfigStat | None:
    try:
        st = (run_dir / CONFIG).stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def config_stats(
    cwd: Path, outputs: Sequence[Path], patterns: Sequence[str] = DEFAULT_PATTERNS
) -> dict[Path, ConfigStat]:
    """The Hydra configs there are before a command starts, to tell afterwards which ones
    it wrote: a time alone cannot (a run started within a second of the last one would
    take that run's directory for its own)."""
    stats = {}
    for run_dir in _candidates(cwd, outputs, patterns):
        found = _config_stat(run_dir)
        if found is not None:
            stats[run_dir] = found
    return stats


def written_run_dirs(
    cwd: Path,
    outputs: Sequence[Path],
    since: float,
    patterns: Sequence[str] = DEFAULT_PATTERNS,
    before: Mapping[Path, ConfigStat] | None = None,
) -> list[Path]:
    """Hydra run directories whose config was written at or after ``since`` (a POSIX
    time) and, given ``before`` (:func:`config_stats` taken before the command), is new
    or changed since then."""
    found = []
    for run_dir in _candidates(cwd, outputs, patterns):
        now = _config_stat(run_dir)
        if now is None or now[0] < since * 1e9:
            continue
        if before is not None and before.get(run_dir) == now:
            continue
        found.append(run_dir)
    return sorted(found)


def params_of_run(
    cwd: Path,
    outputs: Sequence[Path],
    since: float,
    before: Mapping[Path, ConfigStat] | None = None,
) -> tuple[dict[str, Scalar], list[str]]:
    """(params, warnings) from the one Hydra run directory written since ``since``."""
    dirs = written_run_dirs(cwd, outputs, since, before=before)
    if not dirs:
        return {}, []
    if len(dirs) > 1:
        names = [str(d.relative_to(cwd)) if d.is_relative_to(cwd) else str(d) for d in dirs]
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        return {}, [
            f"Hydra config not read as params: the run wrote {len(dirs)} Hydra run "
            f"directories ({shown}) and which is this run's is not known"
        ]
    try:
        return hydra_params(dirs[0]), []
    except ProvError as exc:
        return {}, [f"Hydra config not read as params: {exc}"]
