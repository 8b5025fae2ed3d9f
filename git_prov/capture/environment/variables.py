"""Which environment variables are recorded (an allow-list of ``fnmatch`` patterns), with
their values through :func:`~git_prov.trust.secrets.redact_value`."""

from __future__ import annotations

import fnmatch
import functools
import operator
import re
from collections.abc import Callable, Mapping, Sequence

from git_prov.trust.secrets import redact_value

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


def variables_section(env: Mapping[str, str], allow: Sequence[str]) -> dict[str, str]:
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
) -> list[tuple[bool, Callable[[str], object]]]:
    """The patterns, last first, each made into a test once. Most are a name or a
    ``PREFIX*``: string tests, no regular expression to compile on every record."""
    tests: list[tuple[bool, Callable[[str], object]]] = []
    for p in reversed(patterns):
        body = p.removeprefix("!")
        wild = [i for i, c in enumerate(body) if c in "*?["]
        test: Callable[[str], object]
        if not wild:
            test = body.__eq__
        elif wild == [len(body) - 1] and body.endswith("*"):
            test = operator.methodcaller("startswith", body[:-1])
        else:
            test = re.compile(fnmatch.translate(body)).match
        tests.append((not p.startswith("!"), test))
    return tests
