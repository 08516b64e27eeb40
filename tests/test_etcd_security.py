"""etcd over TLS with client certificates and etcd's own auth (issue 28).

A real etcd member started by the test with ``--client-cert-auth`` on a CA the test made, auth
enabled, a user ``app`` whose role grants read/write on the ``app/`` prefix only, and auth
tokens that expire after 2 s (so every test also crosses token refreshes). What the store must
refuse, and what it must never print: the password.
"""

from __future__ import annotations

import base64
import logging
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _support import store_workers as workers
from _support.faults import fence_a_stopped_zombie, reclaim_once_expired
from _support.servers import running
from etcd_cluster import EtcdCluster
from tls_certs import Pki, make_pki

import fencedstate as fs

PASSWORD = "pw-7f3a9c-never-print-me"
ROOT_PASSWORD = "root-5d1e-never-print-me"


@pytest.fixture(scope="module")
def secure_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EtcdCluster, Pki]]:
    base = tmp_path_factory.mktemp("etcd-tls")
    pki = make_pki(base / "pki")
    cluster = EtcdCluster(base, size=1, tls=pki, extra=("--auth-token-ttl", "2"))
    try:
        cluster.start()
        m = cluster.members[0]
        b64 = base64.b64encode
        cluster.post(m, "/v3/auth/user/add", {"name": "root", "password": ROOT_PASSWORD})
        cluster.post(m, "/v3/auth/user/grant", {"user": "root", "role": "root"})
        cluster.post(m, "/v3/auth/user/add", {"name": "app", "password": PASSWORD})
        cluster.post(m, "/v3/auth/role/add", {"name": "app"})
        cluster.post(
            m,
            "/v3/auth/role/grant",
            {
                "name": "app",
                "perm": {
                    "permType": "READWRITE",
                    "key": b64(b"app/").decode(),
                    "range_end": b64(b"app0").decode(),
                },
            },
        )
        cluster.post(m, "/v3/auth/user/grant", {"user": "app", "role": "app"})
        cluster.post(m, "/v3/auth/enable", {})
        yield cluster, pki
    finally:
        cluster.stop()


def _url(cluster: EtcdCluster, ns: str | None = None, userinfo: str = "") -> str:
    ns = ns or f"app/t-{uuid.uuid4().hex[:10]}"
    return f"etcds://{userinfo}{cluster.members[0].endpoint}/{ns}"


def _tls(pki: Pki) -> dict[str, Any]:
    return {"ca_file": pki.ca, "cert_file": pki.client_cert, "key_file": pki.client_key}


def _open(cluster: EtcdCluster, pki: Pki, **kw: Any) -> fs.Store:
    options: dict[str, Any] = {**_tls(pki), "username": "app", "password": PASSWORD, **kw}
    return fs.open_store(_url(cluster), **options)


def _refused(url: str, **options: Any) -> fs.AccessDeniedError:
    with pytest.raises(fs.AccessDeniedError) as info:
        fs.open_store(url, **options)
    err = info.value
    for text in (str(err), repr(err), repr(err.to_dict())):
        assert PASSWORD not in text and ROOT_PASSWORD not in text
    return err


def test_untrusted_server_certificate_is_refused(
    secure_etcd: tuple[EtcdCluster, Pki],
) -> None:
    cluster, pki = secure_etcd
    creds = {"username": "app", "password": PASSWORD}
    # The system CAs do not know the test CA; neither does an unrelated CA.
    err = _refused(_url(cluster), **creds)
    assert "not trusted" in err.detail and "ca_file" in err.detail
    err = _refused(_url(cluster), ca_file=pki.other_ca, **creds)
    assert "not trusted" in err.detail


def test_missing_client_certificate_is_refused(secure_etcd: tuple[EtcdCluster, Pki]) -> None:
    cluster, pki = secure_etcd
    err = _refused(_url(cluster), ca_file=pki.ca, username="app", password=PASSWORD)
    assert "client certificate" in err.detail and "cert_file" in err.detail


def test_missing_and_wrong_credentials_are_refused(
    secure_etcd: tuple[EtcdCluster, Pki],
) -> None:
    cluster, pki = secure_etcd
    err = _refused(_url(cluster), **_tls(pki))
    assert "auth enabled" in err.detail and "username" in err.detail
    err = _refused(_url(cluster), **_tls(pki), username="app", password=PASSWORD + "x")
    assert "wrong user name or password" in err.detail
    assert err.retryable is False


def test_namespace_outside_the_users_role_is_refused(
    secure_etcd: tuple[EtcdCluster, Pki],
) -> None:
    cluster, pki = secure_etcd
    err = _refused(_url(cluster, ns="elsewhere/x"), **_tls(pki), username="app", password=PASSWORD)
    assert "do not grant" in err.detail


def test_plain_http_to_a_tls_cluster_says_use_etcds(
    secure_etcd: tuple[EtcdCluster, Pki],
) -> None:
    cluster, _ = secure_etcd
    with pytest.raises(fs.StorageError) as info:
        fs.open_store(f"etcd://{cluster.members[0].endpoint}/app/x", timeout=5.0)
    assert "etcds://" in str(info.value)


def test_bad_options_are_typed_errors(secure_etcd: tuple[EtcdCluster, Pki]) -> None:
    cluster, pki = secure_etcd
    with pytest.raises(fs.InvalidArgumentError, match="both a user name and a password"):
        fs.open_store(_url(cluster), **_tls(pki), username="app")
    with pytest.raises(fs.InvalidArgumentError, match="cert_file"):
        fs.open_store(_url(cluster), ca_file=pki.ca, key_file=pki.client_key)
    with pytest.raises(fs.InvalidArgumentError, match="TLS files"):
        fs.open_store(_url(cluster), ca_file=pki.ca.with_name("missing.pem"))


def test_password_never_printed(
    secure_etcd: tuple[EtcdCluster, Pki], caplog: pytest.LogCaptureFixture
) -> None:
    cluster, pki = secure_etcd
    caplog.set_level(logging.DEBUG)
    url = _url(cluster, userinfo=f"app:{PASSWORD}@")
    store = fs.open_store(url, **_tls(pki))
    try:
        store.put("k", {"v": 1}, expected_version=0)
        assert PASSWORD not in repr(store) and PASSWORD not in str(store.url)
        assert "app@" in repr(store)
    finally:
        store.close()
    bad = url.replace(PASSWORD, PASSWORD + "x")
    err = _refused(bad, **_tls(pki))
    assert (PASSWORD + "x") not in str(err)
    assert PASSWORD not in caplog.text


def test_fenced_semantics_hold_over_tls_and_auth(
    secure_etcd: tuple[EtcdCluster, Pki],
) -> None:
    cluster, pki = secure_etcd
    store = _open(cluster, pki)
    try:
        store.put("plan", {"step": 1}, expected_version=0)
        with pytest.raises(fs.ConflictError):
            store.put("plan", {"step": 9}, expected_version=0)
        claim = store.claim("plan", owner="worker", ttl=30.0)
        store.reclaim("plan", by="recovery")
        with pytest.raises(fs.FencedError):
            claim.commit({"step": 2}, expected_version=1)
        snap = store.get("plan")
        assert snap is not None and snap.value == {"step": 1} and snap.version == 1
    finally:
        store.close()


def test_invalidated_token_is_refreshed(secure_etcd: tuple[EtcdCluster, Pki]) -> None:
    """etcd drops a user's tokens when their password is set (here: to the same value); the
    store's next request is refused with "invalid auth token", logs in again and goes on."""
    cluster, pki = secure_etcd
    store = _open(cluster, pki)
    try:
        store.put("k", 1, expected_version=0)
        stale = store._token  # type: ignore[attr-defined]
        assert stale
        m = cluster.members[0]
        root = cluster.post(m, "/v3/auth/authenticate", {"name": "root", "password": ROOT_PASSWORD})
        cluster.post(
            m, "/v3/auth/user/changepw", {"name": "app", "password": PASSWORD}, root["token"]
        )
        with pytest.raises(OSError, match="401"):  # the old token is gone on the server
            cluster.post(m, "/v3/kv/range", {"key": base64.b64encode(b"app/").decode()}, stale)
        snap = store.put("k", 2, expected_version=1)
        assert snap.version == 2
        assert store._token and store._token != stale  # type: ignore[attr-defined]
    finally:
        store.close()


def test_processes_over_tls_lose_nothing(secure_etcd: tuple[EtcdCluster, Pki]) -> None:
    cluster, pki = secure_etcd
    url = _url(cluster)
    options = {**{k: str(v) for k, v in _tls(pki).items()}, "username": "app", "password": PASSWORD}
    results = workers.run_updaters(url, "counter", procs=4, n=25, options=options, timeout=300)
    assert sorted(r[:2] for r in results) == [(f"p{i}", "ok") for i in range(4)], results
    store = fs.open_store(url, **options)
    try:
        snap = store.get("counter")
        assert snap is not None and snap.value == 100 and snap.version == 100
    finally:
        store.close()


def test_zombie_with_an_expired_token_is_fenced_not_let_in(
    secure_etcd: tuple[EtcdCluster, Pki],
) -> None:
    """A SIGSTOPped claim holder outlives its lease and its auth token: on SIGCONT it logs in
    again (it still has the password) and its commit is refused by the fence."""
    cluster, pki = secure_etcd
    url = _url(cluster)
    options = {**{k: str(v) for k, v in _tls(pki).items()}, "username": "app", "password": PASSWORD}
    with fs.open_store(url, **options) as store:
        fence_a_stopped_zombie(url, store, lambda: reclaim_once_expired(store), options)


def test_an_expired_server_certificate_says_renew_it(tmp_path: Any) -> None:
    """An expired server certificate was 'not trusted: give ca_file= the CA bundle that signed
    it', sending the user after a CA that was right."""
    pki = make_pki(tmp_path / "pki", expired=True)
    cluster = EtcdCluster(tmp_path, size=1, tls=pki)
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # the helper's own health checks only
    unverified.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    cluster._ssl = unverified
    with running(cluster):
        err = _refused(
            _url(cluster), ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
        )
        assert "has expired: renew" in err.detail and "give ca_file=" not in err.detail
