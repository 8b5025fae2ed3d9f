"""Repository settings from ``.gitprov.toml`` (committed, shared by everyone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from git_prov.errors import UsageProblem
from git_prov.model.frozen import Fields, frozen_fields

CONFIG_NAME = ".gitprov.toml"
DEFAULT_LOG_LIMIT = 1 << 20
DEFAULT_MAX_SNAPSHOT_FILE = 10 << 20
DEFAULT_LFS_THRESHOLD = 8 << 20  # kept files this big or bigger go to git-LFS


@frozen_fields
class ProvConfig(Fields):
    """The settings that shape a recorded run."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    params_files: tuple[str, ...] = ()
    metrics_files: tuple[str, ...] = ()
    log_limit: int = DEFAULT_LOG_LIMIT
    max_snapshot_file: int = DEFAULT_MAX_SNAPSHOT_FILE
    variables: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()  # [keep] what: inputs, outputs, all, or paths
    keep_max_size: int | None = None  # [keep] max_size: larger files are not kept by default
    lfs_threshold: int = DEFAULT_LFS_THRESHOLD  # [keep] lfs_threshold
    secret_files: tuple[str, ...] = ()

    def __init__(
        self,
        inputs: tuple[str, ...] = (),
        outputs: tuple[str, ...] = (),
        params_files: tuple[str, ...] = (),
        metrics_files: tuple[str, ...] = (),
        log_limit: int = DEFAULT_LOG_LIMIT,
        max_snapshot_file: int = DEFAULT_MAX_SNAPSHOT_FILE,
        variables: tuple[str, ...] = (),
        keep: tuple[str, ...] = (),
        keep_max_size: int | None = None,
        lfs_threshold: int = DEFAULT_LFS_THRESHOLD,
        secret_files: tuple[str, ...] = (),
    ) -> None:
        set_ = object.__setattr__  # (the fields are frozen: set as @dataclass sets them)
        set_(self, "inputs", inputs)
        set_(self, "outputs", outputs)
        set_(self, "params_files", params_files)
        set_(self, "metrics_files", metrics_files)
        set_(self, "log_limit", log_limit)
        set_(self, "max_snapshot_file", max_snapshot_file)
        set_(self, "variables", variables)
        set_(self, "keep", keep)
        set_(self, "keep_max_size", keep_max_size)
        set_(self, "lfs_threshold", lfs_threshold)
        set_(self, "secret_files", secret_files)

    @property
    def snapshot_secret_files(self) -> tuple[str, ...]:
        """Patterns of untracked files left out of snapshots: git-prov's defaults, then
        ``[run] secret_files`` (the last match decides, ``!pattern`` keeps a file in)."""
        from git_prov.trust.secrets import DEFAULT_SECRET_FILES

        return (*DEFAULT_SECRET_FILES, *self.secret_files)


def template_text() -> str:
    """The documented ``.gitprov.toml`` template that ``git prov init`` writes."""
    from importlib import resources

    return resources.files("git_prov").joinpath("templates/gitprov.toml").read_text()


def load_config(root: Path) -> ProvConfig:
    """Read ``.gitprov.toml`` at the repository root; defaults when there is none."""
    path = root / CONFIG_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ProvConfig()
    except OSError as exc:
        raise UsageProblem(f"cannot read {CONFIG_NAME}: {exc.strerror}") from None
    import tomllib

    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageProblem(
            f"{CONFIG_NAME} is not valid TOML: {exc}",
            "fix it, or compare with `git prov init --print-template`",
        ) from None
    run = _table(doc, "run")
    environment = _table(doc, "environment")
    keep = _table(doc, "keep")
    max_size = _int(keep, "max_size", 0)
    return ProvConfig(
        inputs=_strings(run, "inputs"),
        outputs=_strings(run, "outputs"),
        params_files=_strings(run, "params_files"),
        metrics_files=_strings(run, "metrics_files"),
        log_limit=_int(run, "log_limit", DEFAULT_LOG_LIMIT),
        max_snapshot_file=_int(run, "max_snapshot_file", DEFAULT_MAX_SNAPSHOT_FILE),
        secret_files=_strings(run, "secret_files"),
        variables=_strings(environment, "variables"),
        keep=_strings(keep, "what"),
        keep_max_size=max_size or None,
        lfs_threshold=_int(keep, "lfs_threshold", DEFAULT_LFS_THRESHOLD),
    )


def _table(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise UsageProblem(f"{CONFIG_NAME}: [{name}] must be a table")
    return value


def _strings(table: dict[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageProblem(f"{CONFIG_NAME}: {key} must be a list of strings")
    return tuple(value)


def _int(table: dict[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UsageProblem(f"{CONFIG_NAME}: {key} must be a whole number of bytes ≥ 0")
    return value
