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

from collections.abc import Sequence
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


def written_run_dirs(
    cwd: Path, outputs: Sequence[Path], since: float, patterns: Sequence[str] = DEFAULT_PATTERNS
) -> list[Path]:
    """Hydra run directories whose config was written at or after ``since`` (a POSIX
    time): under ``cwd`` where Hydra puts them by default, and each declared output
    directory (itself, or up to two levels below it)."""
    candidates: set[Path] = set()
    for pattern in patterns:
        candidates.update(p.parent.parent for p in cwd.glob(f"{pattern}/{CONFIG}"))
    for out in outputs:
        for depth in ("", "*/", "*/*/"):
            candidates.update(p.parent.parent for p in out.glob(f"{depth}{CONFIG}"))
    found = []
    for run_dir in candidates:
        try:
            if (run_dir / CONFIG).stat().st_mtime >= since:
                found.append(run_dir)
        except OSError:
            continue
    return sorted(found)


def params_of_run(
    cwd: Path, outputs: Sequence[Path], since: float
) -> tuple[dict[str, Scalar], list[str]]:
    """(params, warnings) from the one Hydra run directory written since ``since``."""
    dirs = written_run_dirs(cwd, outputs, since)
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
