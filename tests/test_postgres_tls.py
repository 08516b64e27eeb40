"""PostgreSQL over TLS with a password (issue 28).

A real server started by the test with ``ssl=on`` on a CA the test made, whose pg_hba.conf admits
TCP clients only over TLS with a SCRAM password. ``sslmode=verify-full`` with the CA works with
the full fenced semantics; a client without TLS, trusting another CA or giving a wrong password
is refused with ``AccessDeniedError``; the password never appears in an error, a log line or
``repr``.
"""

from __future__ import annotations

import logging
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pg_server import PgServer, find_pg_bin
from tls_certs import Pki, make_pki

import fencedstate as fs
from fencedstate.integrations import store_location

PASSWORD = "pg-9b2c41-never-print-me"


@pytest.fixture(scope="module")
def tls_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PgServer, Pki]]:
    bindir = find_pg_bin()
    assert bindir, "PostgreSQL binaries are needed: .ci/deps.d/postgres.sh"
    pki = make_pki(tmp_path_factory.mktemp("pg-tls") / "pki")
    server = PgServer(bindir, tls=pki)
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'")
            conn.execute("CREATE SCHEMA app AUTHORIZATION app")
        yield server, pki
    finally:
        server.stop()


def _url(server: PgServer, **query: Any) -> str:
    q = {"options": "-csearch_path=app", **query}
    return (
        f"postgresql://app:{urllib.parse.quote(PASSWORD)}@localhost:{server.port}/postgres?"
        + urllib.parse.urlencode({k: str(v) for k, v in q.items()})
    )


def _refused(url: str) -> fs.AccessDeniedError:
    with pytest.raises(fs.AccessDeniedError) as info:
        fs.open_store(url, connect_timeout=10)
    err = info.value
    for text in (str(err), repr(err), repr(err.to_dict())):
        assert PASSWORD not in text
    return err


def test_verify_full_works_with_fenced_semantics(tls_pg: tuple[PgServer, Pki]) -> None:
    server, pki = tls_pg
    store = fs.open_store(_url(server, sslmode="verify-full", sslrootcert=pki.ca))
    try:
        key = f"plan-{uuid.uuid4().hex[:6]}"
        store.put(key, {"step": 1}, expected_version=0)
        with pytest.raises(fs.ConflictError):
            store.put(key, {"step": 9}, expected_version=0)
        claim = store.claim(key, owner="w", ttl=30.0)
        store.reclaim(key, by="recovery")
        with pytest.raises(fs.FencedError):
            claim.commit({"step": 2}, expected_version=1)
        assert PASSWORD not in repr(store)
        # store.url too (it held the password in clear), and it is still a URL; the location
        # a component's saved config reopens keeps it (integrations.store_location)
        assert PASSWORD not in store.url and store.url.startswith("postgresql://app:***@")
        assert "sslmode=verify-full" in store.url
        assert store_location(store) == _url(server, sslmode="verify-full", sslrootcert=pki.ca)
        with psycopg.connect(server.url(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                "WHERE usename = 'app'"
            ).fetchall()
        assert rows and all(r[0] for r in rows)  # every connection of the store is TLS
    finally:
        store.close()


def test_plain_tcp_is_refused(tls_pg: tuple[PgServer, Pki]) -> None:
    server, _ = tls_pg
    err = _refused(_url(server, sslmode="disable"))
    assert "TLS" in err.detail or "SSL" in err.detail


def test_untrusted_server_is_refused(tls_pg: tuple[PgServer, Pki]) -> None:
    server, pki = tls_pg
    err = _refused(_url(server, sslmode="verify-full", sslrootcert=pki.other_ca))
    assert "certificate" in err.detail


def test_wrong_password_is_refused_and_never_printed(
    tls_pg: tuple[PgServer, Pki], caplog: pytest.LogCaptureFixture
) -> None:
    server, pki = tls_pg
    caplog.set_level(logging.DEBUG)
    url = _url(server, sslmode="verify-full", sslrootcert=pki.ca)
    bad = url.replace(urllib.parse.quote(PASSWORD), "wrong-" + PASSWORD)
    err = _refused(bad)
    assert "password" in err.detail and ("wrong-" + PASSWORD) not in str(err)
    # A password given in the query string is redacted too.
    query_pw = (
        f"postgresql://app@localhost:{server.port}/postgres?password=wrong-{PASSWORD}"
        f"&sslmode=verify-full&sslrootcert={pki.ca}"
    )
    err = _refused(query_pw)
    assert PASSWORD not in str(err)
    assert PASSWORD not in caplog.text


def test_an_expired_server_certificate_says_renew_it(tmp_path: Any) -> None:
    """An expired server certificate was 'not trusted: give sslrootcert=', sending the user
    after a CA that was right (libpq does not say which: the message names both causes)."""
    bindir = find_pg_bin()
    assert bindir, "PostgreSQL binaries are needed: .ci/deps.d/postgres.sh"
    pki = make_pki(tmp_path / "pki", expired=True)
    server = PgServer(bindir, tls=pki)
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'")
        err = _refused(_url(server, sslmode="verify-full", sslrootcert=pki.ca))
        assert "has not expired" in err.detail
    finally:
        server.stop()
