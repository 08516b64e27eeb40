"""A throwaway ``redis-server`` for the Redis backend's tests, started from Debian's binary.

Each server listens on a free loopback port with its own directory, ``appendonly yes`` and
``appendfsync always`` unless told otherwise (``appendfsync=``), optionally a password and ACL
users (``requirepass=``, ``users=``), and optionally TLS only (``tls=`` a dict of
``cert``, ``key``, ``ca`` paths). ``start()`` returns once the server answers ``PING`` (not
``LOADING``), polled, no fixed sleeps; ``kill9()``/``restart()`` reuse the directory and port.

Fixtures: ``redis_server`` (one per session; tests use their own namespaces) and
``redis_url`` (a fresh namespace on it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.servers import running


def redis_binary() -> str:
    """The redis-server binary ($FENCEDSTATE_REDIS_BIN, else ``redis-server`` on PATH)."""
    found = os.environ.get("FENCEDSTATE_REDIS_BIN") or shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary: run .ci/deps.d/redis.sh (Debian redis-server)")
    return found


def free_port() -> int:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
    finally:
        s.close()


class RedisServer:
    """One redis-server process on loopback, started and stopped by the tests."""

    def __init__(
        self,
        base: Path,
        *,
        appendonly: str = "yes",
        appendfsync: str = "always",
        requirepass: str | None = None,
        users: list[str] | None = None,
        tls: dict[str, str] | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.dir = base
        self.port = free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.requirepass = requirepass
        self.users = users or []
        self.tls = tls
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, namespace: str | None = None, *, auth: str = "", **params: str) -> str:
        scheme = "rediss" if self.tls else "redis"
        query = dict(params)
        if namespace is not None:
            query["namespace"] = namespace
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        at = f"{auth}@" if auth else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}/0" + (f"?{qs}" if qs else "")

    def _args(self) -> list[str]:
        args = [
            redis_binary(),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--appendonly",
            self.appendonly,
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
            "--protected-mode",
            "no",
        ]
        if self.tls:
            args += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                self.tls["cert"],
                "--tls-key-file",
                self.tls["key"],
                "--tls-ca-cert-file",
                self.tls["ca"],
                "--tls-auth-clients",
                "no",
            ]
        else:
            args += ["--port", str(self.port)]
        if self.requirepass is not None:
            args += ["--requirepass", self.requirepass]
        for user in self.users:
            args += ["--user", *user.split()]
        return [*args, *self.extra]

    def start(self, timeout: float = 120.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self._args(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_ready(timeout)

    def client(self, **kw: Any) -> Any:
        """A plain redis-py client (not through the store), as the server's admin."""
        import redis

        options: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "socket_timeout": 30}
        if self.requirepass is not None:
            options["password"] = self.requirepass
        if self.tls:
            options.update(ssl=True, ssl_ca_certs=self.tls["ca"])
        options.update(kw)
        return redis.Redis(**options)

    def ready(self) -> bool:
        import redis

        try:
            with self.client(socket_timeout=2, socket_connect_timeout=2) as c:
                return bool(c.ping())
        except (redis.RedisError, OSError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc is not None and self.proc.poll() is not None:
                log = self.dir / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}): {tail}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server not ready in time")
            time.sleep(0.02)  # poll interval, not a wait for an event

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def restart(self, timeout: float = 120.0) -> None:
        """Start again on the same directory (its AOF) and port."""
        deadline = time.monotonic() + timeout
        while True:  # the killed server's port may linger a moment
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                s.close()
        self.start(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (appendonly yes, appendfsync always)."""
    with running(RedisServer(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A ``redis://`` URL with a fresh namespace on the session's server."""
    return redis_server.url(f"t-{uuid.uuid4().hex[:12]}")


# -- child-process bodies (importable by name under ``spawn``) --------------------------------


def lin_worker(url: str, hist: str, seed: int, ops: int, out: Any) -> None:
    """A seeded random mix of recorded operations on two keys (linearizability history)."""
    import random

    import fencedstate as fs
    from fencedstate.testing import linearizability as lin

    try:
        store = fs.open_store(url)
        rec = lin.Recorder(store, hist, f"p{seed}")
        rng = random.Random(seed)
        owner = f"w{seed}"
        for _ in range(ops):
            key = rng.choice(["k0", "k1"])
            r = rng.random()
            try:
                if r < 0.5:
                    snap = rec.get(key)
                    rec.put(key, uuid.uuid4().hex, 0 if snap is None else snap.version)
                elif r < 0.7:
                    claim = rec.claim(key, owner, 3600)
                    try:
                        rec.commit(claim, uuid.uuid4().hex, None)
                    finally:
                        rec.release(claim)
                elif r < 0.75:
                    rec.reclaim(key, owner)
                elif r < 0.8:
                    rec.put_many({k: (uuid.uuid4().hex, None) for k in ("k0", "k1")})
                elif r < 0.9:
                    snap = rec.get(key)
                    if snap is not None:
                        rec.delete(key, snap.version)
                else:
                    rec.get(key)
            except (fs.ConflictError, fs.FencedError, fs.ClaimHeldError):
                pass
        rec.close()
        store.close()
        out.put(("ok", seed))
    except BaseException as exc:
        out.put(("error", repr(exc)))
