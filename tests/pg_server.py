"""A throwaway PostgreSQL server for the tests, started once per session from installed binaries.

``initdb`` + ``pg_ctl`` in a fresh temporary directory, listening only on a unix socket in that
directory, stopped and deleted at the end of the session. PostgreSQL refuses to run as root, so
when the tests run as root the server runs as the ``postgres`` user (else ``nobody``).

Fixtures: ``pg_server`` (session) and ``pg_url`` (a fresh, empty schema per test, reached through
``options=-csearch_path=...`` in the URL). The tests skip, loudly, only when no PostgreSQL
binaries exist at all; a server that fails to start is an error. ``FENCEDSTATE_TEST_PG_URL``
points the tests at an existing server instead; ``FENCEDSTATE_PG_BIN`` names the binaries' dir.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _support.servers import running

_NEEDED = ("initdb", "pg_ctl", "postgres")


def find_pg_bin() -> str | None:
    """The directory holding initdb, pg_ctl and postgres, or None if there is none."""
    candidates: list[str] = []
    env = os.environ.get("FENCEDSTATE_PG_BIN")
    if env:
        candidates.append(env)
    for name in ("pg_ctl", "initdb"):
        found = shutil.which(name)
        if found:
            candidates.append(os.path.dirname(os.path.realpath(found)))
            candidates.append(os.path.dirname(found))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=False
            ).stdout.strip()
            if out:
                candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)

    for pattern in (
        "/usr/lib/postgresql/*/bin",
        "/usr/pgsql-*/bin",
        "/usr/local/pgsql/bin",
        "/opt/homebrew/opt/postgresql*/bin",
    ):
        candidates.extend(sorted(glob.glob(pattern), key=version, reverse=True))
    for directory in candidates:
        if all(os.access(os.path.join(directory, n), os.X_OK) for n in _NEEDED):
            return directory
    return None


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PgServer:
    """One PostgreSQL cluster in a temporary directory. ``durable`` keeps fsync on (benchmarks).

    With ``tls`` (paths ``ca``, ``server_cert``, ``server_key``) the server also listens on
    127.0.0.1 with ``ssl=on``, and its pg_hba.conf admits TCP clients only over TLS with a
    SCRAM password (``hostssl ... scram-sha-256``; plain TCP is rejected); the unix socket stays
    ``trust`` for the tests' own setup.
    """

    def __init__(self, bindir: str, *, durable: bool = False, tls: Any = None) -> None:
        self.bindir = bindir
        self.durable = durable
        self.tls = tls
        self.base = ""
        self.port = 5432
        self.user = _server_user()
        self.started = False

    @property
    def data(self) -> str:
        return os.path.join(self.base, "data")

    @property
    def log(self) -> str:
        return os.path.join(self.base, "server.log")

    def _run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        kw: dict[str, Any] = {}
        if self.user is not None:
            kw = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        if self.user is not None:
            env["HOME"] = self.base
        return subprocess.run(
            [os.path.join(self.bindir, args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
            cwd=self.base,
            **kw,
        )

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        self.base = tempfile.mkdtemp(prefix="fspg-", dir="/tmp")  # short socket path
        if self.user is not None:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.base, 0o700)
        init = [
            "initdb",
            "-D",
            self.data,
            "-U",
            "fencedstate",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]
        if not self.durable:
            init.append("--no-sync")
        done = self._run(*init)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        self.port = 20000 + (os.getpid() % 20000) if self.tls is None else _free_port()
        listen = "''" if self.tls is None else "127.0.0.1"
        opts = [
            f"-c listen_addresses={listen}",
            f"-c unix_socket_directories={self.base}",
            f"-p {self.port}",
            "-c max_connections=200",
            "-c shared_buffers=32MB",
            "-c dynamic_shared_memory_type=mmap",
            "-c max_locks_per_transaction=256",
        ]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        if self.tls is not None:
            opts += self._setup_tls()
        done = self._run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.log,
            "-w",
            "-t",
            "120",
            "-o",
            " ".join(opts),
            "start",
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed ({done.returncode}):\n{done.stdout}\n"
                f"{done.stderr}\n--- server log ---\n{self.log_text()}"
            )
        self.started = True
        self._wait_ready()

    def _setup_tls(self) -> list[str]:
        """Copy the certificates where the server user can read them; TLS-only pg_hba.conf."""
        names = {"ca": "ca.pem", "server_cert": "server.pem", "server_key": "server.key"}
        for attr, name in names.items():
            dest = os.path.join(self.base, name)
            shutil.copyfile(getattr(self.tls, attr), dest)
            os.chmod(dest, 0o600)
            if self.user is not None:
                os.chown(dest, self.user.pw_uid, self.user.pw_gid)
        with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="ascii") as f:
            f.write(
                "local all all trust\n"
                "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                "hostnossl all all 0.0.0.0/0 reject\n"
            )
        return [
            "-c ssl=on",
            f"-c ssl_cert_file={self.base}/server.pem",
            f"-c ssl_key_file={self.base}/server.key",
            f"-c ssl_ca_file={self.base}/ca.pem",
            "-c password_encryption=scram-sha-256",
        ]

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 120
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def log_text(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return "(no log)"

    def url(self, schema: str | None = None, dbname: str = "postgres") -> str:
        """A libpq URL for this server (with ``search_path`` set to ``schema`` if given)."""
        query = {"host": self.base, "port": str(self.port)}
        if schema is not None:
            query["options"] = f"-csearch_path={schema}"
        return f"postgresql://fencedstate@/{dbname}?{urllib.parse.urlencode(query)}"

    def stop(self) -> None:
        """Stop the server (immediately: the data is thrown away) and delete the directory."""
        try:
            if self.started:
                done = self._run(
                    "pg_ctl",
                    "-D",
                    self.data,
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "60",
                    "stop",
                    timeout=120,
                )
                if done.returncode != 0:
                    self._kill_postmaster()
                self.started = False
        finally:
            if self.base:
                shutil.rmtree(self.base, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            with open(os.path.join(self.data, "postmaster.pid"), encoding="ascii") as f:
                pid = int(f.readline())
            os.kill(pid, 9)
        except (OSError, ValueError):
            pass


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_counter = itertools.count(1)


class ExternalServer:
    """An already running server named by ``FENCEDSTATE_TEST_PG_URL`` (schemas per test)."""

    def __init__(self, url: str) -> None:
        self.base_url = url

    def url(self, schema: str | None = None, dbname: str = "") -> str:
        if schema is None:
            return self.base_url
        parts = urllib.parse.urlsplit(self.base_url)
        query = urllib.parse.parse_qsl(parts.query)
        query = [(k, v) for k, v in query if k != "options"]
        query.append(("options", f"-csearch_path={schema}"))
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | ExternalServer]:
    """A PostgreSQL server for the whole session (a throwaway one unless told otherwise)."""
    external = os.environ.get("FENCEDSTATE_TEST_PG_URL")
    if external:
        yield ExternalServer(external)
        return
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip(
            "NO POSTGRESQL BINARIES FOUND (initdb/pg_ctl/postgres): the PostgreSQL "
            "backend is NOT TESTED. Install Debian's 'postgresql' package "
            "(.ci/deps.d/postgres.sh) or set FENCEDSTATE_PG_BIN."
        )
    with running(PgServer(bindir)) as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer | ExternalServer) -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh, empty schema (dropped after the test)."""
    import psycopg

    schema = f"t{next(_counter)}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.url(), autocommit=True, connect_timeout=30) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield pg_server.url(schema)
    finally:
        try:
            with psycopg.connect(pg_server.url(), autocommit=True, connect_timeout=30) as conn:
                conn.execute("SET lock_timeout = '20s'")
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        except psycopg.Error:
            pass  # a straggler still holds a lock: the whole cluster goes at session end
