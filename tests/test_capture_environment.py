"""Environment capture: which Python, what it has installed, the machine, GPUs, secrets, cache.

Interpreters are real (venvs made from the interpreter running the tests); GPUs come from a
fake ``nvidia-smi`` that prints the real H200 output in ``tests/fixtures/gpu-h200``; machine
facts come from fake ``/proc`` and ``/etc`` trees under a temporary root.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from git_prov.capture.environment import (
    DEFAULT_ALLOWED_VARIABLES,
    capture_environment,
    find_lockfiles,
    resolve_interpreter,
)
from git_prov.capture.environment.gpu import parse_query_gpu, parse_smi_header, query_nvidia_smi
from git_prov.errors import UsageProblem
from git_prov.model.manifest import EnvironmentManifest
from git_prov.trust.secrets import REDACTED, is_secret_name, redact_value

H200_UUID = "GPU-443e086d-7979-1e6b-9813-f18e2474a6e6"
H200 = {
    "index": 0,
    "name": "NVIDIA H200",
    "uuid": H200_UUID,
    "driver": "580.159.04",
    "memory_total_mib": 143771,
    "compute_capability": "9.0",
    "pci_bus_id": "00000000:00:06.0",
}
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
HF_TOKEN = "hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH"
CAT = shutil.which("cat")  # fake tools run with a PATH of their own directory only
SITE = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


# --- helpers ------------------------------------------------------------------------------


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def add_dist(venv_or_dir: Path, name: str, version: str, folder: str | None = None) -> Path:
    site = venv_or_dir / SITE if (venv_or_dir / "pyvenv.cfg").exists() else venv_or_dir
    dist = site / f"{folder or name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return dist


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def fake_root(base: Path, files: dict[str, str]) -> Path:
    for relative, content in files.items():
        target = base / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    base.mkdir(parents=True, exist_ok=True)
    return base


def fake_nvidia_smi(bin_dir: Path, fixtures: Path, counter: Path | None = None) -> Path:
    count = f'echo $$ >> "{counter}"\n' if counter else ""
    return executable(
        bin_dir / "nvidia-smi",
        "#!/bin/sh\n"
        f"{count}"
        'case "$1" in\n'
        f'  --query-gpu=*) exec {CAT} "{fixtures}/query-gpu.csv" ;;\n'
        f'  -L) exec {CAT} "{fixtures}/nvidia-smi-L.txt" ;;\n'
        f'  -q) exec {CAT} "{fixtures}/nvidia-smi-q.xml" ;;\n'
        f'  "") exec {CAT} "{fixtures}/nvidia-smi.txt" ;;\n'
        "esac\n"
        "exit 2\n",
    )


def env_with(*bin_dirs: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.pathsep.join(map(str, bin_dirs)), "HOME": os.environ["HOME"], **extra}


def lines(path: Path) -> int:
    """How many processes wrote to ``path`` (a .pth runs twice per start when lib64 -> lib)."""
    return len(set(path.read_text().splitlines())) if path.exists() else 0


@pytest.fixture(scope="module")
def shared_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv the tests only read (resolution, probing without changes)."""
    return make_venv(tmp_path_factory.mktemp("shared") / "venv")


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A venv of this test's own, to install fake distributions into."""
    return make_venv(tmp_path / "venv")


@pytest.fixture
def gpu_fixtures(fixtures_dir: Path) -> Path:
    return fixtures_dir / "gpu-h200"


# --- resolve_interpreter ------------------------------------------------------------------


def test_explicit_python_wins_over_command_and_venv(shared_venv: Path, tmp_path: Path) -> None:
    other = executable(tmp_path / "bin" / "python3", "#!/bin/sh\n")
    env = env_with(tmp_path / "bin", VIRTUAL_ENV=str(shared_venv))
    chosen = resolve_interpreter(["python3", "x.py"], env, python=str(shared_venv / "bin/python"))
    assert chosen == str(shared_venv / "bin/python")
    assert resolve_interpreter(["make"], env, python="python3") == str(other)


@pytest.mark.parametrize("python", ["/no/such/python", "no-such-python-3.99"])
def test_explicit_python_that_does_not_exist_is_a_usage_problem(
    python: str, tmp_path: Path, repo: Path
) -> None:
    env = env_with(tmp_path)
    with pytest.raises(UsageProblem) as caught:
        resolve_interpreter(["python", "x.py"], env, python=python)
    assert caught.value.exit_code == 2
    with pytest.raises(UsageProblem):
        capture_environment(repo, argv=["make"], python=python, env=env)


def test_python_command_is_found_on_the_commands_path(shared_venv: Path, tmp_path: Path) -> None:
    executable(tmp_path / "other" / "python3", "#!/bin/sh\n")
    env = env_with(shared_venv / "bin", tmp_path / "other")
    # The venv's path is kept (not resolved to the base interpreter): it names the venv.
    assert resolve_interpreter(["python3", "train.py"], env) == str(shared_venv / "bin/python3")
    assert resolve_interpreter(["python", "-m", "x"], env) == str(shared_venv / "bin/python")
    assert os.path.realpath(str(shared_venv / "bin/python3")) != str(shared_venv / "bin/python3")
    # `env VAR=… python` and an `env PATH=…` that changes which python runs.
    assert resolve_interpreter(["env", "A=1", "python3"], env) == str(shared_venv / "bin/python3")
    moved = ["env", f"PATH={tmp_path / 'other'}", "python3"]
    assert resolve_interpreter(moved, env) == str(tmp_path / "other" / "python3")


def test_python_command_given_as_a_path(shared_venv: Path, tmp_path: Path) -> None:
    env = env_with(tmp_path, VIRTUAL_ENV="/elsewhere")
    path = str(shared_venv / "bin" / "python")
    assert resolve_interpreter([path, "train.py"], env) == path
    # Relative to the directory the command runs in, not to git-prov's.
    relative = os.path.relpath(path, shared_venv.parent)
    assert resolve_interpreter([relative], env, cwd=shared_venv.parent) == path
    script = executable(tmp_path / "work" / "train.py", f"#!{path}\n")
    assert resolve_interpreter(["./train.py"], env, cwd=script.parent) == path


def test_active_virtual_env_is_used_for_a_non_python_command(
    shared_venv: Path, tmp_path: Path
) -> None:
    executable(tmp_path / "bin" / "python3", "#!/bin/sh\n")
    env = env_with(tmp_path / "bin", VIRTUAL_ENV=str(shared_venv))
    assert resolve_interpreter(["make", "train"], env) == str(shared_venv / "bin/python")
    assert resolve_interpreter(None, env) == str(shared_venv / "bin/python")
    conda = executable(tmp_path / "conda" / "bin" / "python", "#!/bin/sh\n")
    env = env_with(tmp_path / "bin", CONDA_PREFIX=str(tmp_path / "conda"))
    assert resolve_interpreter(["make"], env) == str(conda)
    # Nothing active: python3 on the command's PATH.
    assert resolve_interpreter(["make"], env_with(tmp_path / "bin")) == str(
        tmp_path / "bin" / "python3"
    )


def test_shebang_of_a_script_command(shared_venv: Path, tmp_path: Path) -> None:
    venv_python = str(shared_venv / "bin" / "python")
    direct = executable(tmp_path / "train.py", f"#!{venv_python} -u\nprint(1)\n")
    via_env = executable(tmp_path / "eval.py", "#!/usr/bin/env python3\nprint(1)\n")
    console = executable(tmp_path / "bin" / "torchrun", f"#!{venv_python}\nimport x\n")
    executable(  # pip's form when the shebang would be too long
        tmp_path / "bin" / "long", f"#!/bin/sh\n'''exec' \"{venv_python}\" \"$0\" \"$@\"\n' '''\n"
    )
    env = env_with(tmp_path / "bin", shared_venv / "bin")
    assert resolve_interpreter([str(direct)], env) == venv_python
    assert resolve_interpreter([str(via_env), "--fast"], env) == str(shared_venv / "bin/python3")
    assert resolve_interpreter(["torchrun", "--nproc", "2", "x.py"], env) == venv_python
    assert resolve_interpreter([str(console)], env) == venv_python
    assert resolve_interpreter(["long"], env) == venv_python


def test_uv_run_and_conda_run_use_their_environment(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    uv_python = executable(project / ".venv" / "bin" / "python", "#!/bin/sh\n")
    env = env_with(tmp_path / "nothing")
    command = ["uv", "run", "--directory", str(project / "src"), "python", "x.py"]
    assert resolve_interpreter(command, env) == str(uv_python)
    elsewhere = executable(tmp_path / "uvenv" / "bin" / "python", "#!/bin/sh\n")
    env_uv = {**env, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "uvenv")}
    assert resolve_interpreter(command, env_uv) == str(elsewhere)

    prefix = tmp_path / "conda" / "envs" / "exp"
    (prefix / "conda-meta").mkdir(parents=True)
    conda_python = executable(prefix / "bin" / "python", "#!/bin/sh\n")
    conda = executable(tmp_path / "conda" / "bin" / "conda", "#!/bin/sh\n")
    assert resolve_interpreter(["conda", "run", "-p", str(prefix), "python"], env) == str(
        conda_python
    )
    env_conda = {**env, "CONDA_EXE": str(conda)}
    by_name = ["conda", "run", "-n", "exp", "--no-capture-output", "train"]
    assert resolve_interpreter(by_name, env_conda) == str(conda_python)


def test_no_interpreter_anywhere_is_none(shared_venv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert resolve_interpreter(["make"], env_with(empty)) is None
    # A python command that cannot be found will not run any other Python.
    env = env_with(empty, VIRTUAL_ENV=str(shared_venv))
    assert resolve_interpreter(["python3.99", "x.py"], env) is None


# --- the interpreter's view ---------------------------------------------------------------


def test_capture_records_the_commands_venv_not_git_provs(venv: Path, repo: Path) -> None:
    add_dist(venv, "Foo_Bar", "1.2.3", "Foo_Bar")
    broken = venv / SITE / "broken-0.1.dist-info"
    broken.mkdir()  # no METADATA
    (venv / SITE / "noise.pth").write_text("import sys; sys.stdout.write('noise from a pth\\n')\n")
    (repo / "json.py").write_text("raise SystemExit('shadowed the stdlib')\n")
    env = env_with(venv / "bin")

    manifest = capture_environment(repo, argv=["python", "train.py"], env=env)

    assert manifest.packages == {"foo-bar": "1.2.3"}  # isolated from the tests' own venv
    assert manifest.python == {
        "executable": str(venv / "bin" / "python"),
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "prefix": str(venv),
        "base_prefix": sys.base_prefix,
        "environment": "venv",
        "broken_distributions": 1,
    }
    assert manifest.python["executable"] != sys.executable


def test_first_distribution_on_sys_path_wins(venv: Path, tmp_path: Path, repo: Path) -> None:
    add_dist(venv, "foo-bar", "1.2.3")
    extra = tmp_path / "extra"
    add_dist(extra, "foo.bar", "0.9")
    env = env_with(venv / "bin", PYTHONPATH=str(extra))
    manifest = capture_environment(repo, argv=["python"], env=env)
    assert manifest.packages == {"foo-bar": "0.9"}
    assert manifest.variables == {"PYTHONPATH": str(extra)}


def test_relative_pythonpath_is_read_from_the_commands_directory(venv: Path, repo: Path) -> None:
    add_dist(repo / "sub" / "vendored", "vendored-thing", "2.0")
    env = env_with(venv / "bin", PYTHONPATH="vendored")
    cache = repo.parent / "cache"
    for _ in range(2):  # the cache must not answer for another directory either
        manifest = capture_environment(
            repo, argv=["python"], env=env, cwd=repo / "sub", cache_dir=cache
        )
        assert manifest.packages == {"vendored-thing": "2.0"}
        at_root = capture_environment(repo, argv=["python"], env=env, cwd=repo, cache_dir=cache)
        assert at_root.packages == {}


def test_interpreter_that_fails_is_recorded_not_raised(tmp_path: Path, repo: Path) -> None:
    broken = executable(tmp_path / "bin" / "python", "#!/bin/sh\necho boom >&2\nexit 3\n")
    manifest = capture_environment(repo, argv=["python"], env=env_with(tmp_path / "bin"))
    assert manifest.python == {"executable": str(broken), "error": "exit status 3: boom"}
    assert manifest.packages == {}


def test_no_interpreter_leaves_python_sections_empty(tmp_path: Path, repo: Path) -> None:
    manifest = capture_environment(repo, argv=["make"], env=env_with(tmp_path))
    assert manifest.python == {} and manifest.packages == {}
    assert b"[python]" not in manifest.to_toml()


# --- GPUs ---------------------------------------------------------------------------------


def test_parse_query_gpu_with_and_without_units(gpu_fixtures: Path) -> None:
    with_units = (gpu_fixtures / "query-gpu.csv").read_text()
    assert parse_query_gpu(with_units) == [H200]
    without_units = with_units.replace(" MiB", "")
    assert parse_query_gpu(without_units) == [H200]
    two = (
        "1, B, GPU-b, 535.1, [N/A], 8.0, 0:2\n\n"
        "Warning: something\n"
        "0, A, GPU-a, 535.1, 81920, 8.0, 0:1\n"
    )
    parsed = parse_query_gpu(two)
    assert [g["name"] for g in parsed] == ["A", "B"]
    assert "memory_total_mib" not in parsed[1]


def test_parse_smi_header(gpu_fixtures: Path) -> None:
    banner = (gpu_fixtures / "nvidia-smi.txt").read_text()
    assert parse_smi_header(banner) == {
        "driver_version": "580.159.04",
        "cuda_driver_version": "13.0",
    }
    assert parse_smi_header("Driver Version: 470.1   CUDA Version: N/A") == {
        "driver_version": "470.1"
    }


def test_gpus_from_a_fake_nvidia_smi(gpu_fixtures: Path, tmp_path: Path, repo: Path) -> None:
    fake_nvidia_smi(tmp_path / "bin", gpu_fixtures)
    env = env_with(
        tmp_path / "bin",
        NVIDIA_VISIBLE_DEVICES="0",
        CUDA_VERSION="13.0.2",
        CUDA_HOME="/usr/local/cuda",
        NVIDIA_DRIVER_CAPABILITIES="compute,graphics,utility",
    )
    root = fake_root(tmp_path / "root", {".dockerenv": ""})
    manifest = capture_environment(repo, argv=["make"], env=env, root=root)
    assert manifest.gpus == (H200,)
    assert manifest.accelerator == {
        "driver_version": "580.159.04",
        "cuda_driver_version": "13.0",
        "cuda_toolkit_version": "13.0.2",
    }
    assert manifest.container == {"kind": "docker"}
    assert manifest.variables["NVIDIA_DRIVER_CAPABILITIES"] == "compute,graphics,utility"
    assert "1× NVIDIA H200" in manifest.summary()
    assert EnvironmentManifest.from_toml(manifest.to_toml()) == manifest


def test_old_driver_without_compute_cap_is_asked_again(tmp_path: Path) -> None:
    smi = executable(
        tmp_path / "nvidia-smi",
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  *compute_cap*) echo 'Field \"compute_cap\" is not a valid field to query.'; exit 2 ;;\n"
        "  --query-gpu=*) echo '0, Tesla V100, GPU-v, 470.82.01, 16160, 00000000:00:04.0' ;;\n"
        "  *) echo '| NVIDIA-SMI 470.82.01  Driver Version: 470.82.01  CUDA Version: 11.4 |' ;;\n"
        "esac\n",
    )
    report = query_nvidia_smi(str(smi))
    assert report is not None
    assert report.gpus == (
        {
            "index": 0,
            "name": "Tesla V100",
            "uuid": "GPU-v",
            "driver": "470.82.01",
            "memory_total_mib": 16160,
            "pci_bus_id": "00000000:00:04.0",
        },
    )
    assert report.accelerator() == {"driver_version": "470.82.01", "cuda_driver_version": "11.4"}


def test_failing_hung_or_absent_nvidia_smi_means_no_gpus(tmp_path: Path, repo: Path) -> None:
    failing = executable(
        tmp_path / "bin" / "nvidia-smi",
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the "
        "NVIDIA driver.'\nexit 9\n",
    )
    root = fake_root(tmp_path / "root", {})
    manifest = capture_environment(repo, argv=["make"], env=env_with(tmp_path / "bin"), root=root)
    assert manifest.gpus == () and manifest.accelerator == {}
    assert query_nvidia_smi(str(failing)) is None

    hung = executable(tmp_path / "hung" / "nvidia-smi", f"#!/bin/sh\n{shutil.which('sleep')} 30\n")
    started = time.monotonic()
    assert query_nvidia_smi(str(hung), timeout=0.2) is None
    assert time.monotonic() - started < 5  # its child `sleep` was killed too

    absent = capture_environment(repo, argv=["make"], env=env_with(tmp_path / "none"), root=root)
    assert absent.gpus == () and absent.accelerator == {}


def test_cuda_toolkit_from_cuda_home_version_json(tmp_path: Path, repo: Path) -> None:
    root = fake_root(
        tmp_path / "root",
        {"opt/cuda-12/version.json": '{"cuda": {"name": "CUDA SDK", "version": "12.4.1"}}'},
    )
    env = env_with(tmp_path / "none", CUDA_HOME="/opt/cuda-12")
    manifest = capture_environment(repo, argv=["make"], env=env, root=root)
    assert manifest.accelerator == {"cuda_toolkit_version": "12.4.1"}


# --- the machine --------------------------------------------------------------------------

CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
    "model\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu vme\n\n"
    "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
)
MEMINFO = "MemTotal:       16318480 kB\nMemFree:         1234567 kB\nMemAvailable:    7654321 kB\n"
OS_RELEASE = (
    'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
    "ID=ubuntu\n# a comment\nID_LIKE=debian\n"
)


def test_cpu_memory_and_distro_from_proc_and_etc(tmp_path: Path, repo: Path) -> None:
    root = fake_root(
        tmp_path / "root",
        {
            "proc/cpuinfo": CPUINFO,
            "proc/meminfo": MEMINFO,
            "etc/os-release": OS_RELEASE,
            "proc/self/cgroup": "0::/job/step\n",
            "sys/fs/cgroup/job/memory.max": "1073741824\n",
            "sys/fs/cgroup/job/step/memory.max": "max\n",
            "sys/fs/cgroup/job/step/cpu.max": "250000 100000\n",
        },
    )
    manifest = capture_environment(repo, argv=["make"], env=env_with(tmp_path), root=root)
    assert manifest.cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert manifest.cpu["count"] == os.cpu_count()
    assert manifest.cpu["cgroup_quota"] == 2.5
    assert manifest.memory == {"total_bytes": 16318480 * 1024, "cgroup_limit_bytes": 1 << 30}
    assert manifest.system["distro"] == "Ubuntu 24.04.1 LTS"
    assert manifest.system["distro_id"] == "ubuntu"
    assert manifest.system["distro_version"] == "24.04"
    assert manifest.system["os"] == platform.system()
    assert manifest.system["machine"] == platform.machine()
    assert manifest.container == {}
    assert EnvironmentManifest.from_toml(manifest.to_toml()) == manifest


def test_arm_cpu_model_and_missing_files(tmp_path: Path, repo: Path) -> None:
    root = fake_root(
        tmp_path / "root",
        {"proc/cpuinfo": "processor\t: 0\nBogoMIPS\t: 108.00\n\nModel\t\t: Raspberry Pi 4\n"},
    )
    manifest = capture_environment(repo, argv=["make"], env=env_with(tmp_path), root=root)
    assert manifest.cpu["model"] == "Raspberry Pi 4"
    assert "distro" not in manifest.system
    assert "cgroup_quota" not in manifest.cpu


@pytest.mark.parametrize(
    ("files", "env", "expected"),
    [
        ({".dockerenv": ""}, {}, {"kind": "docker"}),
        (
            {
                "run/.containerenv": 'engine="podman-4.9"\nimage="docker.io/pytorch:2.4"\n'
                'imageid="abc123"\nname="exp"\n'
            },
            {},
            {"kind": "podman", "image": "docker.io/pytorch:2.4", "image_id": "abc123"},
        ),
        ({".dockerenv": ""}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, {"kind": "kubernetes"}),
        (
            {},
            {"APPTAINER_CONTAINER": "/images/train.sif", "APPTAINER_NAME": "train.sif"},
            {
                "kind": "apptainer",
                "image": "/images/train.sif",
                "hints": {"APPTAINER_NAME": "train.sif"},
            },
        ),
        ({}, {"SINGULARITY_CONTAINER": "/x.sif"}, {"kind": "singularity", "image": "/x.sif"}),
        ({"run/systemd/container": "lxc\n"}, {}, {"kind": "lxc"}),
        ({"proc/self/cgroup": "12:memory:/docker/0123abcd\n"}, {}, {"kind": "docker"}),
        (
            {"proc/sys/kernel/osrelease": "5.15.167.4-microsoft-standard-WSL2\n"},
            {},
            {"kind": "wsl"},
        ),
        ({}, {"NVIDIA_PYTORCH_VERSION": "24.10"}, {"hints": {"NVIDIA_PYTORCH_VERSION": "24.10"}}),
        ({"proc/self/cgroup": "0::/\n"}, {}, {}),
    ],
)
def test_container_detection(
    files: dict[str, str],
    env: dict[str, str],
    expected: dict[str, object],
    tmp_path: Path,
) -> None:
    root = fake_root(tmp_path / "root", files)
    # Capture needs no git repository: a plain directory keeps these cases fast.
    env = env_with(tmp_path, **env)
    manifest = capture_environment(tmp_path, argv=["make"], env=env, root=root)
    assert manifest.container == expected


# --- variables and secrets ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "HF_TOKEN",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "DB_PASSWORD",
        "PGPASSWORD",
        "MYSQL_PWD",
        "SMTP_PASS",
        "api_key",
        "apiKey",
        "OPENAI_APIKEY",
        "SESSION_COOKIE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_PRIVATE_KEY",
        "BASIC_AUTH",
        "OAUTH_CLIENT_ID",
        "HUGGINGFACEHUB_API_TOKEN",
        "NPM_AUTHTOKEN",
        "GH_PAT",
        "SENTRY_DSN",
        "HTTP_AUTHORIZATION",
        "TF_VAR_db_passphrase",
        "WANDB_API_KEY",
        "MY_SECRETS",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "TOKENIZERS_PARALLELISM",
        "KEYBOARD_LAYOUT",
        "GIT_AUTHOR_NAME",
        "PWD",
        "OLDPWD",
        "CUDA_VISIBLE_DEVICES",
        "PATH",
        "MONKEY_PATCH",
        "HOME",
        "PYTHONHASHSEED",
        "KEYMAP",
        "PASSTHROUGH",
        "HF_HOME",
        "AUTHOR",
        "LANG",
    ],
)
def test_harmless_names(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MLFLOW_TRACKING_URI", "https://user:hunter2@host/x", f"https://user:{REDACTED}@host/x"),
        (
            "X",
            "postgres://u:p@ss:w@db:5432/n?sslmode=require",
            f"postgres://u:{REDACTED}@db:5432/n?sslmode=require",
        ),
        ("X", "https://host/x", "https://host/x"),
        ("X", "git@github.com:o/r.git", "git@github.com:o/r.git"),
        (
            "",
            f"git clone https://{GITHUB_TOKEN}@github.com/o/r",
            f"git clone https://{REDACTED}@github.com/o/r",
        ),
        ("", f"--key={AWS_KEY_ID}", f"--key={REDACTED}"),
        ("", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", REDACTED),
        ("", HF_TOKEN, REDACTED),
        ("", "sk-proj-abcdefghijklmnopqrstuvwxyz012345", REDACTED),
        ("", "xoxb-1234567890-abcdefghij", REDACTED),
        (
            "",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
            f"Bearer {REDACTED}",
        ),
        (
            "",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----",
            REDACTED,
        ),
        ("HF_TOKEN", "anything at all", REDACTED),
        ("DB_PASSWORD", "", ""),
        ("LANG", "C.UTF-8", "C.UTF-8"),
        (
            "X",
            "scikit-learn sk-learn /usr/local/cuda 13.0.2",
            "scikit-learn sk-learn /usr/local/cuda 13.0.2",
        ),
    ],
)
def test_redact_value(name: str, value: str, expected: str) -> None:
    assert redact_value(name, value) == expected


def test_variables_allow_list_and_no_secret_reaches_the_manifest(
    tmp_path: Path, repo: Path
) -> None:
    env = env_with(
        tmp_path,
        CUDA_VISIBLE_DEVICES="0,1",
        OMP_NUM_THREADS="8",
        TOKENIZERS_PARALLELISM="false",
        HF_TOKEN=HF_TOKEN,
        TORCH_HOME="/data/torch",
        TORCH_EXTRA=f"{GITHUB_TOKEN} {AWS_KEY_ID}",
        MLFLOW_TRACKING_URI="https://user:hunter2@host/x",
        TF_VAR_region="eu-west-1",
        GITHUB_TOKEN=GITHUB_TOKEN,
        USER="ada",
        SLURM_JOB_ID="4242",
    )
    manifest = capture_environment(repo, argv=["make"], env=env)
    assert manifest.variables == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "OMP_NUM_THREADS": "8",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_TOKEN": REDACTED,
        "TORCH_HOME": "/data/torch",
        "TORCH_EXTRA": f"{REDACTED} {REDACTED}",
        "MLFLOW_TRACKING_URI": f"https://user:{REDACTED}@host/x",
    }
    for allow in (DEFAULT_ALLOWED_VARIABLES, ["*"]):
        data = capture_environment(repo, argv=["make"], env=env, allow_variables=allow).to_toml()
        for secret in (GITHUB_TOKEN, AWS_KEY_ID, HF_TOKEN, "hunter2"):
            assert secret.encode() not in data
    # The last matching pattern decides: a user's patterns override the defaults.
    tuned = (*DEFAULT_ALLOWED_VARIABLES, "TF_VAR_region", "!OMP_*")
    variables = capture_environment(repo, argv=["make"], env=env, allow_variables=tuned).variables
    assert variables["TF_VAR_region"] == "eu-west-1" and "OMP_NUM_THREADS" not in variables
    everything = capture_environment(repo, argv=["make"], env=env, allow_variables=["*"])
    assert everything.variables["USER"] == "ada"
    assert everything.variables["GITHUB_TOKEN"] == REDACTED


# --- lock files ---------------------------------------------------------------------------


def test_lockfiles_are_hashed_where_documented(repo: Path) -> None:
    files = {
        "requirements.txt": "numpy==2.0\n",
        "requirements-dev.txt": "pytest\n",
        "requirements/gpu.txt": "torch\n",
        "uv.lock": "version = 1\n",
        "backend/poetry.lock": "# poetry\n",
        "deep/er/uv.lock": "too deep\n",
        "node_modules/package-lock.json": "{}\n",
        ".hidden/uv.lock": "hidden\n",
        "data/requirements.txt": "wildcards only match at the root\n",
        "notes.txt": "not a lock file\n",
    }
    for relative, content in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(content)
    found = find_lockfiles(repo)
    expected = [
        "backend/poetry.lock",
        "requirements-dev.txt",
        "requirements.txt",
        "requirements/gpu.txt",
        "uv.lock",
    ]
    assert sorted(found) == expected
    for relative in expected:
        digest = hashlib.sha256(files[relative].encode()).hexdigest()
        assert found[relative] == f"sha256:{digest}"

    (repo / "uv.lock").write_text("version = 2\n")
    changed = capture_environment(repo, argv=["make"], env=env_with(repo)).lockfiles
    assert changed["uv.lock"] != found["uv.lock"]
    assert changed["requirements.txt"] == found["requirements.txt"]


def test_undecodable_names_and_values_still_encode(tmp_path: Path, repo: Path) -> None:
    (repo / os.fsdecode(b"requirements-\xff.txt")).write_text("numpy\n")
    env = env_with(tmp_path, LANG=os.fsdecode(b"de_DE.\xfe"))
    manifest = capture_environment(repo, argv=["make"], env=env)
    data = manifest.to_toml()
    assert manifest.variables == {"LANG": "de_DE.\ufffd"}
    assert "requirements-\ufffd.txt" in manifest.lockfiles
    assert EnvironmentManifest.from_toml(data) == manifest


# --- cache --------------------------------------------------------------------------------


def counting_pth(venv: Path, counter: Path) -> None:
    """Every start of the venv's interpreter appends a line to ``counter``."""
    (venv / SITE / "zz_count.pth").write_text(
        f"import os; open({str(counter)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
    )


def test_cache_skips_the_interpreter_until_something_is_installed(
    venv: Path, tmp_path: Path, repo: Path
) -> None:
    counter = tmp_path / "starts"
    counting_pth(venv, counter)
    add_dist(venv, "foo-bar", "1.2.3")
    cache = tmp_path / "cache"
    env = env_with(venv / "bin")

    cold = capture_environment(repo, argv=["python"], env=env, cache_dir=cache)
    assert lines(counter) == 1
    warm = capture_environment(repo, argv=["python"], env=env, cache_dir=cache)
    assert lines(counter) == 1  # not started again
    assert warm == cold
    assert warm.to_toml() == cold.to_toml()

    site = venv / SITE
    before = site.stat()
    add_dist(venv, "new-thing", "0.1")  # a new dist-info dir in site-packages,
    os.utime(site, ns=(before.st_atime_ns, before.st_mtime_ns))  # within the same mtime tick
    fresh = capture_environment(repo, argv=["python"], env=env, cache_dir=cache)
    assert lines(counter) == 2
    assert fresh.packages == {"foo-bar": "1.2.3", "new-thing": "0.1"}

    # Another PYTHONPATH is another sys.path: not answered from the cache.
    capture_environment(repo, argv=["python"], env={**env, "PYTHONPATH": "x"}, cache_dir=cache)
    assert lines(counter) == 3


def test_corrupt_cache_is_recomputed_silently(venv: Path, tmp_path: Path, repo: Path) -> None:
    counter = tmp_path / "starts"
    counting_pth(venv, counter)
    add_dist(venv, "foo-bar", "1.2.3")
    cache = tmp_path / "cache"
    env = env_with(venv / "bin")
    cold = capture_environment(repo, argv=["python"], env=env, cache_dir=cache)
    (cache_file,) = cache.glob("python-*.toml")
    for garbage in (
        b"\x00\xff not toml [[",
        b'format = 1\nidentity = []\nstamp = {}\nmanifest = "x"\n',
    ):
        cache_file.write_bytes(garbage)
        again = capture_environment(repo, argv=["python"], env=env, cache_dir=cache)
        assert again == cold
    assert lines(counter) == 3
    capture_environment(repo, argv=["python"], env=env, cache_dir=cache)
    assert lines(counter) == 3  # rewritten by the recomputation
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


def test_wrapper_script_interpreters_are_never_cached(
    shared_venv: Path, tmp_path: Path, repo: Path
) -> None:
    """A shim (pyenv, asdf) can switch Pythons without any file we stat changing."""
    counter = tmp_path / "starts"
    executable(
        tmp_path / "bin" / "python",
        f'#!/bin/sh\necho $$ >> "{counter}"\nexec "{shared_venv}/bin/python" "$@"\n',
    )
    env = env_with(tmp_path / "bin")
    first = capture_environment(repo, argv=["python"], env=env, cache_dir=tmp_path / "cache")
    second = capture_environment(repo, argv=["python"], env=env, cache_dir=tmp_path / "cache")
    assert lines(counter) == 2
    assert first == second
    assert first.python["executable"] == str(tmp_path / "bin" / "python")
    assert first.python["sys_executable"] == str(shared_venv / "bin" / "python")


def test_gpu_query_is_cached_but_failures_are_not(
    gpu_fixtures: Path, tmp_path: Path, repo: Path
) -> None:
    counter = tmp_path / "smi-calls"
    fake_nvidia_smi(tmp_path / "bin", gpu_fixtures, counter)
    root = fake_root(tmp_path / "root", {"proc/sys/kernel/random/boot_id": "boot-1\n"})
    env = env_with(tmp_path / "bin")
    cache = tmp_path / "cache"
    cold = capture_environment(repo, argv=["make"], env=env, cache_dir=cache, root=root)
    assert lines(counter) == 2  # query and banner
    warm = capture_environment(repo, argv=["make"], env=env, cache_dir=cache, root=root)
    assert lines(counter) == 2
    assert warm.gpus == cold.gpus == (H200,) and warm.accelerator == cold.accelerator
    (root / "proc/sys/kernel/random/boot_id").write_text("boot-2\n")  # rebooted
    capture_environment(repo, argv=["make"], env=env, cache_dir=cache, root=root)
    assert lines(counter) == 4
    (root / "proc/driver/nvidia/gpus/0000:00:07.0").mkdir(parents=True)  # another GPU shows up
    capture_environment(repo, argv=["make"], env=env, cache_dir=cache, root=root)
    assert lines(counter) == 6
    capture_environment(repo, argv=["make"], env=env, cache_dir=cache, root=root)
    assert lines(counter) == 6

    executable(tmp_path / "broken" / "nvidia-smi", f'#!/bin/sh\necho $$ >> "{counter}"\nexit 9\n')
    broken_env = env_with(tmp_path / "broken")
    for _ in range(2):
        manifest = capture_environment(
            repo, argv=["make"], env=broken_env, cache_dir=cache, root=root
        )
        assert manifest.gpus == ()
    assert lines(counter) == 6 + 2 * 2


# --- determinism --------------------------------------------------------------------------


def test_same_environment_same_bytes(
    shared_venv: Path, gpu_fixtures: Path, tmp_path: Path, repo: Path
) -> None:
    fake_nvidia_smi(tmp_path / "bin", gpu_fixtures)
    (repo / "requirements.txt").write_text("numpy\n")
    env = env_with(tmp_path / "bin", shared_venv / "bin", LANG="C.UTF-8", OMP_NUM_THREADS="4")
    first = capture_environment(repo, argv=["python", "train.py"], env=env)
    second = capture_environment(repo, argv=["python", "train.py"], env=dict(reversed(env.items())))
    assert first.to_toml() == second.to_toml()
    assert EnvironmentManifest.from_toml(first.to_toml()) == first
    assert first.python and first.gpus and first.lockfiles and first.system and first.cpu
    assert first.memory["total_bytes"] > 0
    for volatile in (b"MemFree", b"load", b"uptime", b"utilization", b"temperature"):
        assert volatile not in first.to_toml()


def test_pyenv_shim_resolves_to_the_version_pyenv_would_pick(tmp_path: Path) -> None:
    from git_prov.capture.environment import resolve_interpreter

    root = tmp_path / "pyenv"
    shim = root / "shims" / "python3"
    shim.parent.mkdir(parents=True)
    shim.write_text('#!/bin/sh\nexec pyenv exec python3 "$@"\n')
    shim.chmod(0o755)
    for version in ("3.11.7", "3.12.1"):
        real = root / "versions" / version / "bin" / "python3"
        real.parent.mkdir(parents=True)
        real.write_text("#!/bin/sh\n")
        real.chmod(0o755)
    (root / "version").write_text("3.11.7\n")
    project = tmp_path / "project" / "src"
    project.mkdir(parents=True)
    env = {"PATH": str(shim.parent), "PYENV_ROOT": str(root)}
    global_pick = resolve_interpreter(["python3", "x.py"], env, cwd=project)
    assert global_pick == str(root / "versions" / "3.11.7" / "bin" / "python3")
    (tmp_path / "project" / ".python-version").write_text("# pinned\n3.12.1\n")
    local_pick = resolve_interpreter(["python3", "x.py"], env, cwd=project)
    assert local_pick == str(root / "versions" / "3.12.1" / "bin" / "python3")
    env["PYENV_VERSION"] = "3.11.7"
    assert resolve_interpreter(["python3"], env, cwd=project) == global_pick
    env["PYENV_VERSION"] = "system"  # not a pyenv version: the shim itself is kept
    assert resolve_interpreter(["python3"], env, cwd=project) == str(shim)


def test_variable_patterns_as_string_tests_agree_with_fnmatch() -> None:
    import fnmatch

    from git_prov.capture.environment.variables import DEFAULT_ALLOWED_VARIABLES, _allowed

    patterns = (*DEFAULT_ALLOWED_VARIABLES, "A?C", "X[YZ]*", "!HF_TOKEN", "*_SEED")
    names = [
        "TF_VAR_x",
        "TF_XLA",
        "CUDA_HOME",
        "CUDA_HOMEX",
        "HF_HOME",
        "HF_TOKEN",
        "ABC",
        "AXC",
        "XY1",
        "XQ",
        "MY_SEED",
        "SLURM_GPUS_ON_NODE",
        "TF_LOG_PATH",
        "LANG",
        "LANGX",
    ]

    def plain(name: str) -> bool:
        for pattern in reversed(patterns):
            if fnmatch.fnmatchcase(name, pattern.removeprefix("!")):
                return not pattern.startswith("!")
        return False

    assert [_allowed(n, patterns) for n in names] == [plain(n) for n in names]


def test_the_json_copy_of_a_cache_file_answers_only_for_the_bytes_it_was_made_of(
    tmp_path: Path,
) -> None:
    from git_prov.capture.environment.cache import read_cached, write_cached

    path = tmp_path / "python-key.toml"
    copy = tmp_path / "python-key.json"
    part = EnvironmentManifest(python={"version": "3.11.7"}, packages={"numpy": "2.1.0"})
    write_cached(path, ["python"], {}, part)
    assert read_cached(path, ["python"]) == part  # parsed from the TOML: the copy is made
    assert copy.exists()
    assert read_cached(path, ["python"]) == part  # from the copy
    # The TOML file changes (same size, same stamp): its copy no longer answers for it.
    path.write_bytes(path.read_bytes().replace(b"2.1.0", b"2.1.1"))
    changed = read_cached(path, ["python"])
    assert changed is not None and changed.packages == {"numpy": "2.1.1"}
    assert read_cached(path, ["python"]) == changed  # (the new copy)
    copy.write_bytes(b"\x00 not json")  # a damaged copy: the TOML answers, and is copied again
    assert read_cached(path, ["python"]) == changed
    assert read_cached(path, ["python"]) == changed
