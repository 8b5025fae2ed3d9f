"""Hydra: the composed config of a Hydra run as params. ``git prov run -- python app.py``
reads it by itself (:mod:`git_prov.capture.hydra`); inside a Hydra app, where the config
was written before a ``with git_prov.run()`` block starts, pass it yourself::

    @hydra.main(config_path="conf", config_name="config", version_base=None)
    def main(cfg):
        with git_prov.run(params=git_prov.integrations.hydra.run_params()) as run:
            ...
"""

from __future__ import annotations

from pathlib import Path

from git_prov.capture.hydra import hydra_params
from git_prov.model.values import Scalar


def run_params(output_dir: str | Path | None = None) -> dict[str, Scalar]:
    """The params of a Hydra run directory: ``.hydra/config.yaml`` flattened (``model.depth``)
    and ``hydra.overrides``. Default: the directory of the Hydra run in progress (asked of
    Hydra's ``HydraConfig``)."""
    if output_dir is None:
        from hydra.core.hydra_config import HydraConfig  # type: ignore[import-not-found,unused-ignore]

        output_dir = HydraConfig.get().runtime.output_dir
    return hydra_params(Path(str(output_dir)))
