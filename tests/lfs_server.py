"""A real git-LFS server for tests, on 127.0.0.1: giftless (PyPI) serves the LFS API and
git's own ``git http-backend`` serves the repositories, on one port, as a git host does.

A repository ``ORG/NAME.git`` is cloned from ``<url>/ORG/NAME.git``; git-lfs then finds the
LFS endpoint where every host puts it, ``<url>/ORG/NAME.git/info/lfs``, with no ``lfs.url``.
giftless stores objects with its streaming transfer adapter and local storage, behind its
JWT authentication (its anonymous access can read but never upload): a client token with a
subject and ``obj:*/*/*`` scopes reaches git-lfs through an ``http.<batch url>.extraHeader``
in the repositories that use the server (:meth:`LfsServer.authorize`); git itself pushes and
fetches anonymously (``http.receivepack``).

The server runs in a process of its own (``python tests/lfs_server.py ROOT``), started and
stopped by the ``lfs_server`` fixture; its tests skip when giftless or git-lfs is missing
(``pip install -e '.[test]'`` installs giftless and the packages it needs beside it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_KEY = "git-prov-test-key"  # HS256: the same key signs client tokens and pre-authorized actions
_SERVER_MODULES = ("giftless", "flask", "flask_classful", "webargs", "figcan", "jwt", "werkzeug")


def lfs_server_missing() -> str | None:
    """Why the LFS server cannot run here (None when it can)."""
    if shutil.which("git-lfs") is None:
        return "git-lfs is not installed"
    for module in _SERVER_MODULES:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[test]')"
    return None


@dataclass(frozen=True)
class LfsServer:
    """A running server: ``url`` (``http://127.0.0.1:PORT``), the directory holding its
    repositories and objects, and the token that lets a client write."""

    url: str
    root: Path
    token: str

    def create_repo(self, name: str = "org/repo") -> str:
        """An empty bare repository ``name``.git on the server; returns its URL."""
        path = self.root / "git" / f"{name}.git"
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
        # (Anonymous pushes: the LFS side is what this server's tests are about.)
        subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
        return f"{self.url}/{name}.git"

    def batch_header(self, name: str = "org/repo", token: str | None = None) -> tuple[str, str]:
        """The git config (key, value) that makes git-lfs send the token with its batch
        requests to repository ``name``.

        Only with those: giftless's upload and download actions carry an Authorization
        header of their own, and git-lfs would send both (and get 401) if the header were
        configured for the whole server.
        """
        return (
            f"http.{self.url}/{name}.git/info/lfs/objects/batch.extraHeader",
            f"Authorization: Bearer {token or self.token}",
        )

    def authorize(self, repo: Path, name: str = "org/repo", token: str | None = None) -> None:
        """Let git-lfs in ``repo`` read and write repository ``name``'s objects."""
        subprocess.run(
            ["git", "-C", str(repo), "config", *self.batch_header(name, token)], check=True
        )

    def object_path(self, name: str, oid: str) -> Path:
        """Where giftless's local storage keeps object ``oid`` of repository ``name``."""
        return self.root / "lfs" / name / oid

    def has_object(self, name: str, oid: str) -> bool:
        return self.object_path(name, oid).is_file()


@pytest.fixture
def lfs_server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LfsServer]:
    """A real LFS server (giftless) and git smart-HTTP host on 127.0.0.1, for one test."""
    missing = lfs_server_missing()
    if missing is not None:
        pytest.skip(f"no LFS server: {missing}")
    yield from _server(tmp_path_factory, monkeypatch, lfs=True)


@pytest.fixture
def http_server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LfsServer]:
    """A git smart-HTTP host (``git http-backend``) on 127.0.0.1 without the LFS side, for
    one test: :meth:`LfsServer.create_repo` makes its repositories."""
    if importlib.util.find_spec("werkzeug") is None:
        pytest.skip("werkzeug is not installed (pip install -e '.[test]')")
    yield from _server(tmp_path_factory, monkeypatch, lfs=False)


def _server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, *, lfs: bool
) -> Iterator[LfsServer]:
    # A refused request must fail, not wait for someone to type a password.
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    root = tmp_path_factory.mktemp("lfs-server" if lfs else "http-server")
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, __file__, str(root), *([] if lfs else ["--git-only"])],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server's one line: where it listens
        if not line:
            proc.wait(timeout=10)
            raise AssertionError(f"the LFS server did not start:\n{_tail(root / 'server.log')}")
        started = json.loads(line)
        yield LfsServer(url=started["url"], root=root, token=started["token"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-30:])


# ---- the server process ----------------------------------------------------------------------


def client_token(subject: str = "tester", scopes: Iterable[str] = ("obj:*/*/*",)) -> str:
    """A giftless JWT for a client: read and write every object of every repository."""
    import jwt

    payload = {"sub": subject, "scopes": list(scopes), "exp": int(time.time()) + 24 * 3600}
    return str(jwt.encode(payload, _KEY, algorithm="HS256"))


def _giftless_app(storage: Path) -> Callable[..., Any]:
    from giftless.app import init_app

    jwt_options = {"algorithm": "HS256", "private_key": _KEY, "default_lifetime": 3600}
    return init_app(
        additional_config={
            "LEGACY_ENDPOINTS": False,
            "AUTH_PROVIDERS": [{"factory": "giftless.auth.jwt:factory", "options": jwt_options}],
            "PRE_AUTHORIZED_ACTION_PROVIDER": {
                "factory": "giftless.auth.jwt:factory",
                "options": jwt_options,
            },
            "TRANSFER_ADAPTERS": {
                "basic": {
                    "factory": "giftless.transfer.basic_streaming:factory",
                    "options": {
                        "storage_class": "giftless.storage.local_storage:LocalStorage",
                        "storage_options": {"path": str(storage)},
                        "action_lifetime": 3600,
                    },
                }
            },
        }
    )


def _git_http_backend(project_root: Path) -> Callable[..., Iterable[bytes]]:
    """A WSGI app running ``git http-backend`` as the CGI program it is."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):  # a chunked request: read to its end
            body = stream.read()
        else:
            body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "SERVER_PROTOCOL": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        }
        for header, name in (
            ("HTTP_CONTENT_ENCODING", "HTTP_CONTENT_ENCODING"),
            ("HTTP_GIT_PROTOCOL", "GIT_PROTOCOL"),
        ):
            if header in environ:
                env[name] = environ[header]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status = "200 OK"
        headers = []
        for raw in head.decode("latin-1").splitlines():
            name, _, value = raw.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        start_response(status, headers)
        return [payload]

    return app


def serve(root: Path, lfs: bool = True) -> None:
    """Serve giftless (unless not ``lfs``) and git http-backend on 127.0.0.1 (a free port)
    until terminated."""
    from werkzeug.serving import make_server

    (root / "git").mkdir(exist_ok=True)
    (root / "lfs").mkdir(exist_ok=True)
    giftless = _giftless_app(root / "lfs") if lfs else None
    git_backend = _git_http_backend(root / "git")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if giftless is not None and "/info/lfs/" in environ.get("PATH_INFO", ""):
            return giftless(environ, start_response)  # type: ignore[no-any-return]
        return git_backend(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    print(json.dumps({"url": url, "token": client_token() if lfs else ""}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(Path(sys.argv[1]), lfs="--git-only" not in sys.argv[2:])
