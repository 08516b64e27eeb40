"""A malformed server URL is one InvalidArgumentError before any connection, never a
StorageError with 'disk full' advice, a foreign exception, or a message quoting the password."""

from __future__ import annotations

import pytest

import fencedstate as fs


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://app:s3cret-pw@[bad/db", "IPv6 host"),
        ("postgresql://app:s3cret-pw@db.example/app?bogus=1", "bogus"),
        ("postgresql://app:s3cret-pw@127.0.0.1:notaport/db", "port 'notaport'"),
        ("postgres://127.0.0.1:99999/db", "port '99999'"),
        ("etcd://127.0.0.1:notaport", "'127.0.0.1:notaport'"),
        ("etcd://127.0.0.1:99999", "'127.0.0.1:99999'"),
        ("etcd://127.0.0.1:2379,:2380", "':2380'"),
        ("etcd://app:s3cret-pw@[::1", "IPv6"),
    ],
)
def test_a_malformed_server_url_is_an_invalid_argument(url: str, said: str) -> None:
    with pytest.raises(fs.InvalidArgumentError) as err:
        fs.open_store(url)
    assert said in str(err.value)
    assert "s3cret-pw" not in str(err.value)
    assert err.value.advice == fs.InvalidArgumentError.advice


def test_an_etcd_endpoint_without_a_port_is_etcds_client_port() -> None:
    """``etcd://host`` talks to host:2379, as etcdctl does (it went to port 80), and the watch
    stream already did."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.2", 2379))
    accepted = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        accepted.set()
        conn.close()  # no answer: the open fails, after connecting here

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with pytest.raises(fs.StorageError):
            fs.open_store("etcd://127.0.0.2/ns", timeout=30)
        assert accepted.is_set()
    finally:
        listener.close()
