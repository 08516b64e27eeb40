"""A throwaway 3-member etcd cluster on free loopback ports, for the etcd backend's tests.

Each member is a real ``etcd`` process with its own data directory. ``start()`` returns once
every member answers ``/health`` with ``"health": "true"`` (polled, no fixed sleeps); ``stop()``
kills the members and removes nothing the caller did not give it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.servers import running


def etcd_binary() -> str:
    """The etcd server binary ($FENCEDSTATE_ETCD_BIN, else ``etcd`` on PATH)."""
    found = os.environ.get("FENCEDSTATE_ETCD_BIN") or shutil.which("etcd")
    if not found:
        raise RuntimeError("no etcd binary: run .ci/deps.d/etcd.sh (Debian etcd-server)")
    return found


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Member:
    """One etcd member: its name, ports, data dir and process."""

    def __init__(
        self, name: str, client_port: int, peer_port: int, data_dir: Path, scheme: str = "http"
    ) -> None:
        self.scheme = scheme
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class EtcdCluster:
    """Three etcd members on loopback, started and stopped by the tests.

    With ``tls`` (paths ``ca``, ``server_cert``, ``server_key``, ``client_cert``, ``client_key``)
    the client port serves HTTPS and demands a client certificate signed by ``ca``; ``extra``
    adds server flags (e.g. ``--auth-token-ttl``).
    """

    def __init__(
        self, base: Path, size: int = 3, tls: Any = None, extra: tuple[str, ...] = ()
    ) -> None:
        ports = _free_ports(2 * size)
        self.tls = tls
        self.extra = extra
        scheme = "https" if tls is not None else "http"
        self.members = [
            Member(f"m{i}", ports[2 * i], ports[2 * i + 1], base / f"m{i}", scheme)
            for i in range(size)
        ]
        self.token = f"fs-{os.getpid()}-{ports[0]}"
        self._ssl: ssl.SSLContext | None = None
        if tls is not None:
            self._ssl = ssl.create_default_context(cafile=str(tls.ca))
            self._ssl.load_cert_chain(str(tls.client_cert), str(tls.client_key))

    @property
    def endpoints(self) -> str:
        return ",".join(m.endpoint for m in self.members)

    def url(self, namespace: str) -> str:
        """An ``etcd://`` URL over every member, under ``namespace``."""
        return f"etcd://{self.endpoints}/{namespace}"

    def _launch(self, m: Member, state: str) -> None:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        m.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(m.data_dir.parent / f"{m.name}.log", "ab")  # noqa: SIM115 - kept by Popen
        m.proc = subprocess.Popen(
            [
                etcd_binary(),
                "--name",
                m.name,
                "--data-dir",
                str(m.data_dir),
                "--listen-client-urls",
                m.client_url,
                "--advertise-client-urls",
                m.client_url,
                "--listen-peer-urls",
                m.peer_url,
                "--initial-advertise-peer-urls",
                m.peer_url,
                "--initial-cluster",
                initial,
                "--initial-cluster-token",
                self.token,
                "--initial-cluster-state",
                state,
                # short election timing: a lost leader is replaced within about a second
                "--heartbeat-interval",
                "100",
                "--election-timeout",
                "1000",
                "--logger",
                "zap",
                "--log-level",
                "warn",
                *self._tls_flags(),
                *self.extra,
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def _tls_flags(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            "--cert-file",
            str(self.tls.server_cert),
            "--key-file",
            str(self.tls.server_key),
            "--trusted-ca-file",
            str(self.tls.ca),
            "--client-cert-auth",
        ]

    def post(self, m: Member, path: str, body: dict[str, Any], token: str = "") -> Any:
        """POST ``body`` to member ``m``'s JSON gateway (over TLS when the cluster has it)."""
        req = urllib.request.Request(
            m.client_url + path, data=json.dumps(body).encode(), method="POST"
        )
        if token:
            req.add_header("Authorization", token)
        with urllib.request.urlopen(req, timeout=5, context=self._ssl) as resp:
            return json.loads(resp.read())

    def start(self, timeout: float = 120.0) -> None:
        """Start every member and wait until all are healthy."""
        for m in self.members:
            self._launch(m, "new")
        self.wait_healthy(self.members, timeout)

    def healthy(self, m: Member) -> bool:
        """Does member ``m`` answer ``/health`` with health true (it sees a leader)?"""
        try:
            with urllib.request.urlopen(
                m.client_url + "/health", timeout=2, context=self._ssl
            ) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def wait_healthy(self, members: list[Member], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.healthy(m) for m in members):
            for m in members:
                if m.proc is not None and m.proc.poll() is not None:
                    raise RuntimeError(f"etcd member {m.name} exited: see {m.data_dir}.log")
            if time.monotonic() > deadline:
                raise RuntimeError("etcd cluster not healthy in time")
            time.sleep(0.05)  # poll interval, not a wait for an event

    def status(self, m: Member) -> dict[str, object]:
        """``/v3/maintenance/status`` of member ``m`` (its leader id and own id)."""
        return dict(self.post(m, "/v3/maintenance/status", {}))

    def leader(self, timeout: float = 60.0) -> Member:
        """The member that is currently the leader (waits for one)."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.members:
                if m.proc is None or m.proc.poll() is not None:
                    continue
                try:
                    st = self.status(m)
                except (OSError, ValueError):
                    continue
                header = st.get("header")
                if isinstance(header, dict) and st.get("leader") == header.get("member_id"):
                    return m
            if time.monotonic() > deadline:
                raise RuntimeError("no etcd leader in time")
            time.sleep(0.05)

    def kill9(self, m: Member) -> None:
        assert m.proc is not None
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=30)

    def restart(self, m: Member) -> None:
        """Start a killed member again on its data dir (it rejoins)."""
        self._launch(m, "existing")
        self.wait_healthy([m])

    def stop(self) -> None:
        for m in self.members:
            if m.proc is not None and m.proc.poll() is None:
                with _suppress():
                    os.kill(m.proc.pid, signal.SIGCONT)
                m.proc.kill()
                m.proc.wait(timeout=30)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """One 3-member cluster for the session (tests use their own namespaces)."""
    with running(EtcdCluster(tmp_path_factory.mktemp("etcd"))) as cluster:
        yield cluster


def b64(data: bytes) -> str:
    """Base64 text, as the etcd JSON gateway wants keys and values."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)
