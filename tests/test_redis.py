"""The Redis backend under real faults: a real ``redis-server`` (Debian's), real worker
processes, real ``kill -9`` and ``SIGSTOP``, connections dropped mid-commit by a proxy, TLS with a
test-made CA and a password. The shared semantics and bad-input suites run on Redis via conftest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
import redis_server as rs
from _support import store_workers as workers
from _support.faults import WAIT, Committers, fence_a_stopped_zombie, sigstop
from _support.faults import wait_for as _wait_for
from _support.servers import running
from _support.tcp_proxy import TcpProxy
from redis.crc import key_slot
from redis_server import RedisServer
from tls_certs import make_pki

import fencedstate as fs
from fencedstate.redis import RedisStore, UnsafeDurabilityError
from fencedstate.redis.scripts import COMMIT

CLI = [sys.executable, "-m", "fencedstate.cli"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def _ns() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[Any]:
    client = redis_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of its own, for tests that kill it or change its settings."""
    with running(RedisServer(tmp_path / "redis")) as server:
        yield server


# -- opening, options, layout ------------------------------------------------------------------


def test_open_store_and_bad_urls_are_typed(redis_server: RedisServer) -> None:
    store = fs.open_store(redis_server.url(_ns()))
    assert isinstance(store, RedisStore)
    assert store.clock.boot_id == f"redis:{store.store_id}"
    store.close()
    for bad in (
        redis_server.url() + "/extra",  # the path is a database number
        redis_server.url("has{brace}"),
        redis_server.url(_ns(), durability="sometimes"),
        redis_server.url(_ns(), wait_replicas="-1"),
        redis_server.url(_ns(), wait_timeout="0"),
        f"redis://127.0.0.1:port/0?namespace={_ns()}",  # not a port number
        f"redis://[::1/0?namespace={_ns()}",  # an unclosed IPv6 bracket
        redis_server.url(_ns(), no_such_option="1"),  # redis-py does not know it
        redis_server.url(_ns()).replace("/0?", "/99?"),  # no such database: SELECT refused
    ):
        with pytest.raises(fs.InvalidArgumentError):
            fs.open_store(bad)
    with pytest.raises(fs.InvalidArgumentError):  # keyword and URL disagree
        fs.open_store(redis_server.url("a"), namespace="b")
    with pytest.raises(fs.InvalidArgumentError):
        fs.open_store(redis_server.url(_ns()), history_limit=0)
    with pytest.raises(fs.InvalidArgumentError):
        fs.open_store(redis_server.url(_ns()), max_connections=0)
    with pytest.raises(fs.InvalidArgumentError):
        fs.open_store(redis_server.url(_ns()), max_value_bytes=0)
    # nothing listens on port 1: a typed storage error, not a raw redis-py exception
    with pytest.raises(fs.StorageError):
        fs.open_store("redis://127.0.0.1:1/0", timeout=1.0)
    with pytest.raises(fs.StorageError):  # a store object after close
        store.get("k")


def test_each_commit_is_one_script_writing_record_journal_and_notification(
    redis_url: str, admin: Any
) -> None:
    store = fs.open_store(redis_url)
    assert isinstance(store, RedisStore)
    ns = store.namespace
    try:
        store.put("a", {"n": 1}, expected_version=0, writer="w")
        before = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        store.put_many({"a": (2, 1), "b": (3, 0)}, writer="w")
        after = admin.info("commandstats")["cmdstat_evalsha"]["calls"]
        assert after - before == 2  # one read script + one commit script for both keys
        names = sorted(k.decode() for k in admin.scan_iter(match=f"fencedstate:{{{ns}}}:*"))
        p = f"fencedstate:{{{ns}}}:"
        assert names == sorted(
            p + s for s in ("meta", "r:a", "r:b", "j:a", "j:b", "live", "all", "events")
        )
        # one hash tag: every key of the store is in one cluster slot
        assert len({key_slot(n.encode()) for n in names}) == 1
        assert admin.llen(p + "j:a") == 2 and admin.llen(p + "j:b") == 1
        rec = json.loads(admin.hget(p + "r:b", "rec"))
        assert (rec["version"], rec["value"], rec["seq"]) == (1, "3", 1)
        txn = {json.loads(admin.hget(p + f"r:{k}", "rec"))["txn"] for k in "ab"}
        assert len(txn) == 1 and None not in txn  # the two-key commit's events share one id
        events = admin.xrange(p + "events")
        assert [(e[1][b"key"], e[1][b"version"], e[1][b"op"]) for e in events] == [
            (b"a", b"1", b"put"),
            (b"a", b"2", b"put"),
            (b"b", b"1", b"put"),
        ]
        assert [e.value for e in store.history("b", limit=None)] == [3]
    finally:
        store.close()


def test_script_reloaded_after_script_flush(redis_url: str, admin: Any) -> None:
    with fs.open_store(redis_url) as store:
        store.put("k", 1, expected_version=0)
        admin.script_flush()
        assert admin.script_exists(COMMIT.sha) == [False]
        assert store.put("k", 2, expected_version=1).version == 2
        assert admin.script_exists(COMMIT.sha) == [True]


def test_journal_is_trimmed_to_history_limit(redis_url: str, admin: Any) -> None:
    with fs.open_store(redis_url, history_limit=10) as store:
        for i in range(25):
            store.put("k", i, expected_version=i)
        events = store.history("k", limit=None)
        assert len(events) == 10
        assert [e.version for e in events] == list(range(16, 26))
        assert events[-1].value == 24


def test_corrupt_record_and_foreign_keys_are_typed_and_nothing_is_written(
    redis_url: str, admin: Any
) -> None:
    with fs.open_store(redis_url) as store:
        assert isinstance(store, RedisStore)
        p = f"fencedstate:{{{store.namespace}}}:"
        admin.hset(p + "r:bad", "rec", "not json")
        with pytest.raises(fs.CorruptStateError):
            store.get("bad")
        with pytest.raises(fs.CorruptStateError):
            store.put("bad", 1, expected_version=None)
        store.put("ok", 1, expected_version=0)
        admin.set(p + "j:ok", "a string where the journal list should be")
        with pytest.raises(fs.StorageError):
            store.put("ok", 2, expected_version=1)
        admin.delete(p + "j:ok")
        assert store.get("ok").version == 1  # type: ignore[union-attr]
        assert json.loads(admin.hget(p + "r:ok", "rec"))["version"] == 1
        # a field the script does arithmetic on, damaged: refused before the first write, so
        # a multi-key commit is not torn (key "a" sorts first and would be written first)
        admin.hset(p + "r:z", mapping={"gen": "x"})
        with pytest.raises(fs.StorageError):
            store.put_many({"a": (1, 0), "z": (1, 0)})
        assert store.get("a") is None and admin.exists(p + "r:a") == 0


# -- durability at open ------------------------------------------------------------------------


def test_everysec_server_is_refused_by_default_naming_the_setting(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "r", appendfsync="everysec")
    server.start()
    try:
        url = server.url(_ns())
        with pytest.raises(UnsafeDurabilityError) as err:
            fs.open_store(url)
        assert err.value.setting == "appendfsync" and err.value.value == "everysec"
        assert "appendfsync everysec" in str(err.value) and isinstance(err.value, fs.StorageError)
        assert not err.value.retryable and "durability" in err.value.advice
        # nothing was written by the refused open except its meta hash
        assert server.client().dbsize() == 1
        # the explicit choice opens it
        with fs.open_store(url, durability="none") as store:
            assert store.put("k", 1, expected_version=0).version == 1
        with fs.open_store(server.url(_ns(), durability="none")) as store:
            assert store.keys() == []
        # the server turns safe: the default opens
        server.client().config_set("appendfsync", "always")
        fs.open_store(url).close()
    finally:
        server.stop()


def test_aof_off_eviction_and_hidden_config_are_refused(tmp_path: Path) -> None:
    server = RedisServer(
        tmp_path / "r",
        appendonly="no",
        extra=["--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", ""],
    )
    server.start()
    try:
        url = server.url(_ns())
        # CONFIG disabled (as on managed Redis): the store cannot check, the caller must choose
        with pytest.raises(UnsafeDurabilityError) as err:
            fs.open_store(url)
        assert err.value.setting == "CONFIG" and err.value.value is None
        assert "managed Redis" in str(err.value)
        with fs.open_store(url, durability="none") as store:
            store.put("k", 1, expected_version=0)
    finally:
        server.stop()
    server = RedisServer(tmp_path / "r2", appendonly="no")
    server.start()
    try:
        with pytest.raises(UnsafeDurabilityError) as err:
            fs.open_store(server.url(_ns()))
        assert (err.value.setting, err.value.value) == ("appendonly", "no")
        server.client().config_set("maxmemory-policy", "allkeys-lru")
        with pytest.raises(UnsafeDurabilityError) as err:  # no choice makes eviction safe
            fs.open_store(server.url(_ns()), durability="none")
        assert (err.value.setting, err.value.value) == ("maxmemory-policy", "allkeys-lru")
    finally:
        server.stop()


def test_wait_replicas_acknowledges_only_what_a_replica_has(
    own_server: RedisServer, tmp_path: Path
) -> None:
    replica = RedisServer(
        tmp_path / "replica", extra=["--replicaof", "127.0.0.1", str(own_server.port)]
    )
    replica.start()
    stopped = False
    try:
        _wait_for(
            lambda: (
                own_server.client().info("replication")["connected_slaves"] == 1
                and replica.client().info("replication")["master_link_status"] == "up"
            ),
            "the replica to sync",
        )
        url = own_server.url(_ns())
        store = fs.open_store(url, wait_replicas=1, wait_timeout=WAIT)  # generous: loaded CI
        assert isinstance(store, RedisStore)
        p = f"fencedstate:{{{store.namespace}}}:"
        snap = store.put("k", "one", expected_version=0)
        # acknowledged means the replica has it: read it there at once, no waiting
        rec = replica.client().hget(p + "r:k", "rec")
        assert rec is not None and json.loads(rec)["version"] == snap.version
        store.close()
        # the replica stalls: the commit lands on the primary but is not confirmed
        sigstop(replica.pid)
        stopped = True
        with fs.open_store(url, wait_replicas=1, wait_timeout=0.5) as short:
            with pytest.raises(fs.OutcomeUnknownError) as err:
                short.put("k", "two", expected_version=1)
            assert "replicas confirmed" in str(err.value) and err.value.retryable
            assert short.get("k").value == "two"  # type: ignore[union-attr]
    finally:
        if stopped:
            os.kill(replica.pid, signal.SIGCONT)
        replica.stop()


# -- many processes, zombies -------------------------------------------------------------------


def test_sigstopped_zombie_is_fenced_by_the_server_clock(redis_url: str, admin: Any) -> None:
    with fs.open_store(redis_url) as store:
        assert isinstance(store, RedisStore)
        key = f"fencedstate:{{{store.namespace}}}:r:task"

        def expired() -> bool:  # the lease runs out on the Redis server's clock (TIME)
            sec, usec = admin.time()
            return float(admin.hget(key, "ld")) < sec + usec / 1e6

        def reclaim() -> int:
            _wait_for(expired, "the lease to expire on the server clock")
            return store.reclaim("task", by="recovery")

        fence_a_stopped_zombie(redis_url, store, reclaim, {})


def test_lease_expiring_between_decision_and_commit_is_refused_by_the_script(
    redis_url: str, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = fs.open_store(redis_url)
    assert isinstance(store, RedisStore)
    claim = store.claim("k", owner="a", ttl=0.2)
    key = f"fencedstate:{{{store.namespace}}}:r:k"

    def expired() -> bool:
        sec, usec = admin.time()
        return float(admin.hget(key, "ld")) < sec + usec / 1e6

    _wait_for(expired, "the lease to expire on the server clock")
    # The first attempt decides as if it read the clock a minute ago (the lease still live):
    # the commit script, reading TIME itself, sees the lease expired since and refuses.
    real = store._read_script
    decided: list[float] = []

    def early(keys: Any, where: Any) -> Any:
        now, rows = real(keys, where)
        decided.append(now)
        return (now - 60.0 if len(decided) == 1 else now), rows

    monkeypatch.setattr(store, "_read_script", early)
    with pytest.raises(fs.FencedError) as err:
        claim.commit("late", expected_version=0)
    assert err.value.reason == "expired" and len(decided) == 2
    assert store.get("k") is None and [e.op for e in store.history("k")] == ["claim"]
    store.close()


@pytest.mark.slow
def test_kill9_of_the_server_under_four_writers_loses_no_acked_commit(
    own_server: RedisServer,
) -> None:
    url = own_server.url(_ns())
    writers = Committers(url, {"commit_deadline": 60.0})

    def crash() -> None:
        own_server.kill9()  # appendfsync always: every acknowledged commit is in the AOF
        own_server.restart()

    writers.run(crash, acks=40)
    msgs = writers.msgs
    with fs.open_store(url, history_limit=100_000) as store:
        final = store.get("log")
        events = store.history("log", limit=None)
    unknown = writers.check_log(final, events)
    assert final is not None
    refused = {m[1] for m in msgs if m[0] == "storage"}  # known not to have landed
    assert not (refused & set(final.value))
    assert [e.version for e in events] == list(range(1, final.version + 1))
    assert final.version >= max(m[2] for m in msgs if m[0] == "acked")
    lost = len(unknown - refused)
    print(f"kill -9: {writers.acked()} acked, {lost} unknown, {len(refused)} refused")


# -- connections lost mid-commit ---------------------------------------------------------------


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[TcpProxy]:
    p = TcpProxy(redis_server.port)
    try:
        yield p
    finally:
        p.close()


def _via(proxy: TcpProxy) -> str:
    return f"redis://127.0.0.1:{proxy.port}/0?namespace={_ns()}"


@pytest.mark.parametrize("mode", ["after", "before"])
def test_connection_dropped_mid_commit_commits_exactly_once(proxy: TcpProxy, mode: str) -> None:
    with fs.open_store(_via(proxy), max_connections=2) as store:
        store.put("k", "old", expected_version=0)
        proxy.arm(COMMIT.sha.encode(), mode)
        snap = store.put("k", "new", expected_version=1, writer="w")
        assert proxy.fired.is_set()
        assert (snap.value, snap.version) == ("new", 2)
        events = store.history("k", limit=None)
        assert [(e.op, e.version, e.value) for e in events] == [
            ("put", 1, "old"),
            ("put", 2, "new"),
        ]
        # update() through a dropped reply applies its function's result once, not twice
        proxy.arm(COMMIT.sha.encode(), mode)
        assert store.update("n", workers.bump, writer="w").value == 1
        assert [e.version for e in store.history("n", limit=None)] == [1]


def test_unreachable_after_a_dropped_reply_is_outcome_unknown(proxy: TcpProxy) -> None:
    url = _via(proxy)
    with fs.open_store(url, max_connections=1, timeout=1.0, commit_deadline=1.0) as store:
        store.put("k", "old", expected_version=0)
        proxy.arm(COMMIT.sha.encode(), "after", refuse_after=True)
        with pytest.raises(fs.OutcomeUnknownError) as err:
            store.put("k", "new", expected_version=1, writer="w")
        assert err.value.key == "k" and err.value.retryable
        proxy.refuse(False)
        # it landed (the proxy forwarded it): reading tells, exactly once
        snap = store.get("k")
        assert snap is not None and (snap.value, snap.version) == ("new", 2)
        assert [e.version for e in store.history("k", limit=None)] == [1, 2]


def test_server_killing_the_client_connection_mid_claim_is_settled(
    redis_url: str, admin: Any
) -> None:
    with fs.open_store(redis_url, max_connections=1) as store:
        store.put("k", 0, expected_version=0)
        # kill the store's idle pooled connection server-side: the next step finds it dead
        for c in admin.client_list():
            if c["id"] != str(admin.client_id()):
                admin.client_kill_filter(_id=c["id"])
        claim = store.claim("k", owner="a", ttl=30)
        assert claim.commit(1, expected_version=1).version == 2
        claim.release()
        assert [e.op for e in store.history("k", limit=None)] == ["put", "claim", "put", "release"]


# -- TLS and passwords -------------------------------------------------------------------------


def _make_certs(d: Path) -> dict[str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=120)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=fencedstate-test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return {"cert": str(d / "server.crt"), "key": str(d / "server.key"), "ca": str(d / "ca.crt")}


def test_rediss_with_a_password_never_shows_the_password(tmp_path: Path) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    app_secret = "app-" + uuid.uuid4().hex
    tls = _make_certs(tmp_path / "certs")
    server = RedisServer(
        tmp_path / "r",
        requirepass=secret,
        tls=tls,
        users=[f"app on >{app_secret} ~* &* +@all -config"],
    )
    server.start()
    ca = tls["ca"]
    try:
        url = server.url(_ns(), auth=f":{secret}", ssl_ca_certs=ca)
        store = fs.open_store(url)
        assert isinstance(store, RedisStore)
        assert store.put("k", {"over": "tls"}, expected_version=0).version == 1
        assert store.get("k").value == {"over": "tls"}  # type: ignore[union-attr]
        assert secret not in repr(store) and "***" in repr(store)
        assert secret not in store.url and secret not in str(vars(store))
        store.close()
        errors: list[BaseException] = []
        attempts = [
            server.url(_ns(), auth=f":wrong-{secret}", ssl_ca_certs=ca),  # wrong password
            server.url(_ns(), auth=f"app:{secret}", ssl_ca_certs=ca),  # right one, wrong user
            server.url(_ns(), auth=f":{secret}"),  # no CA: the certificate is not trusted
            server.url(_ns(), auth=f":{secret}").replace("rediss://", "redis://"),  # no TLS
            server.url(_ns(), auth=f"app:{app_secret}", ssl_ca_certs=ca),  # may not run CONFIG
        ]
        for bad in attempts:
            with pytest.raises((fs.StorageError, fs.AccessDeniedError)) as err:
                fs.open_store(bad, timeout=5.0)
            errors.append(err.value)
        assert [type(e).__name__ for e in errors] == [
            "AccessDeniedError",  # wrong password
            "AccessDeniedError",  # wrong user
            "AccessDeniedError",  # the certificate is not trusted
            "StorageError",  # plain TCP to a TLS port: the server hangs up
            "UnsafeDurabilityError",  # the ACL user may not read CONFIG
        ]
        assert isinstance(errors[-1], UnsafeDurabilityError) and errors[-1].setting == "CONFIG"
        with pytest.raises(fs.AccessDeniedError) as noauth:  # no password at all
            fs.open_store(server.url(_ns(), ssl_ca_certs=ca))
        errors.append(noauth.value)
        with pytest.raises(fs.InvalidArgumentError) as bad_arg:
            fs.open_store(server.url("a", auth=f":{secret}", ssl_ca_certs=ca), namespace="b")
        errors.append(bad_arg.value)
        with pytest.raises(fs.InvalidArgumentError) as bad_path:
            fs.open_store(server.url(auth=f":{secret}") + "/x")
        errors.append(bad_path.value)
        with pytest.raises(fs.InvalidArgumentError) as bad_param:  # TLS options on redis://
            plain = server.url(_ns(), auth=f":{secret}", ssl_ca_certs=ca)
            fs.open_store(plain.replace("rediss://", "redis://", 1))
        errors.append(bad_param.value)
        for e in errors:
            text = f"{e} {e!r} {json.dumps(e.to_dict())}"  # type: ignore[attr-defined]
            assert secret not in text and app_secret not in text, text
        # the ACL user without CONFIG, having chosen: works
        with fs.open_store(
            server.url(_ns(), auth=f"app:{app_secret}", ssl_ca_certs=ca), durability="none"
        ) as app:
            assert app.put("k", 1, expected_version=0).version == 1
            assert app_secret not in repr(app)
        # the CLI's one-line errors carry no password either
        cli = subprocess.run(
            [*CLI, "inspect", server.url(_ns(), auth=f":wrong-{secret}", ssl_ca_certs=ca)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert cli.returncode != 0 and secret not in cli.stdout + cli.stderr
        assert "***" in cli.stderr or "refused" in cli.stderr, cli.stderr
    finally:
        server.stop()


# -- copy and the command line -----------------------------------------------------------------


def test_copy_file_to_redis_and_back_verified_and_cli_reads_redis(
    tmp_path: Path, redis_url: str
) -> None:
    src = str(tmp_path / "src")
    store = fs.open_store(src)
    store.put("plans/a", {"goal": "ship"}, expected_version=0, writer="p")
    store.put("plans/a", {"goal": "ship", "step": 2}, expected_version=1, writer="p")
    store.put("gone", 1, expected_version=0)
    store.delete("gone", expected_version=1)
    store.reclaim("claimed-only", by="r")
    store.close()
    run = subprocess.run(
        [*CLI, "copy", src, redis_url], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    with fs.open_store(redis_url) as dst:
        assert dst.keys() == ["plans/a"]
        snap = dst.get("plans/a")
        assert snap is not None and (snap.version, snap.writer) == (2, "p")
        assert dst.state("claimed-only").epoch == 1  # type: ignore[union-attr]
        # the copy keeps working: versions and epochs continue, the tombstone keeps its version
        assert dst.put("gone", 2, expected_version=0).version == 3
        with pytest.raises(fs.ConflictError):
            dst.put("plans/a", "stale", expected_version=1)
    inspect = subprocess.run(
        [*CLI, "inspect", redis_url], capture_output=True, text=True, timeout=600
    )
    assert inspect.returncode == 0 and "plans/a" in inspect.stdout, inspect.stderr
    history = subprocess.run(
        [*CLI, "history", redis_url, "plans/a"], capture_output=True, text=True, timeout=600
    )
    assert history.returncode == 0, history.stderr
    assert history.stdout.count("put") == 2
    back = str(tmp_path / "back")
    run = subprocess.run(
        [*CLI, "copy", redis_url, back], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    with fs.open_store(back) as copy:
        assert [e.version for e in copy.history("gone", limit=None)] == [1, 2, 3]
        assert copy.get("plans/a").value == {"goal": "ship", "step": 2}  # type: ignore[union-attr]
    # a second copy into the same Redis namespace refuses: the keys are taken
    again = subprocess.run(
        [*CLI, "copy", src, redis_url], capture_output=True, text=True, timeout=600
    )
    assert again.returncode != 0 and "already" in again.stderr


def test_async_twins_work_on_redis(redis_url: str) -> None:
    import asyncio

    async def main() -> int:
        store = fs.open_store(redis_url)
        try:
            await asyncio.gather(*(store.aupdate("c", workers.bump) for _ in range(20)))
            snap = await store.aget("c")
            assert snap is not None
            return int(snap.value)
        finally:
            store.close()

    assert asyncio.run(main()) == 20


def test_redis_py_errors_never_escape_untyped(redis_url: str) -> None:
    with fs.open_store(redis_url) as store:
        store.put("k", 1, expected_version=0)
        store.close()
        for call in (
            lambda: store.get("k"),
            lambda: store.put("k", 2, expected_version=1),
            lambda: store.keys(),
            lambda: store.history("k"),
        ):
            with pytest.raises(fs.FencedStateError):
                call()
    assert not issubclass(redis_py.RedisError, fs.FencedStateError)


# -- the spec-derived checkers on Redis --------------------------------------------------------

_CONF_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import conformance_worker as w

def now(self):  # a call's start: the earliest the server's clock can read (a lower bound)
    return self.store.clock.floor()

def ack(self, kind, key, t0, **fields):  # a call's end: the latest (an upper bound)
    rec = {"kind": kind, "key": key, "t_start": t0, "t_end": self.store.clock.now(),
           "boot": self.store.clock.boot_id, **fields}
    self.f.write(json.dumps(rec) + "\\n")
    self.f.flush()

w.Recorder.now, w.Recorder.ack = now, ack
sys.exit(w.main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_multiprocess_journal_on_redis_conforms_to_the_specs(
    redis_url: str, tmp_path: Path
) -> None:
    from fencedstate.testing import conformance as conf

    tests_dir = str(Path(__file__).resolve().parent)

    def spawn(*args: str, **kw: Any) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", _CONF_DRIVER, tests_dir, "worker", *args]
        return subprocess.Popen(argv, text=True, **kw)

    acks_files = [tmp_path / f"acks-{i}.jsonl" for i in range(6)]
    z_acks = tmp_path / "z.jsonl"
    zombie = spawn(redis_url, str(z_acks), "zombie", "zombie", "k/z",
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    procs = [
        spawn(redis_url, str(f), f"w{i}", str(1000 + i), "40") for i, f in enumerate(acks_files)
    ]
    store = fs.open_store(redis_url)
    parent_acks: list[Any] = []
    try:
        # A deterministic multi-key commit, so the run always has one (acknowledged as puts).
        t0 = store.clock.floor()  # type: ignore[attr-defined]
        tokens = {k: uuid.uuid4().hex for k in ("pm/a", "pm/b")}
        done = store.put_many(
            {
                k: ({"n": 1, "token": t, "claim_epoch": None, "owner": None}, 0)
                for k, t in tokens.items()
            },
            writer="parent",
        )
        for k, t in tokens.items():
            parent_acks.append(
                conf.Ack(
                    "put",
                    k,
                    t,
                    done[k].version,
                    None,
                    None,
                    t0,
                    store.clock.now(),
                    store.clock.boot_id,
                )
            )
        # A deterministic claim, claim commit and release (as the file backend's run has).
        clock: Any = store.clock
        t0 = clock.floor()
        c = store.claim("pc/a", owner="parent", ttl=60.0)
        parent_acks.append(
            conf.Ack("claim", "pc/a", None, None, c.epoch, "parent", t0, clock.now(), clock.boot_id)
        )
        token = uuid.uuid4().hex
        t0 = clock.floor()
        snap = c.commit(
            {"n": 1, "token": token, "claim_epoch": c.epoch, "owner": "parent"},
            expected_version=0,
        )
        parent_acks.append(
            conf.Ack(
                "claim_commit",
                "pc/a",
                token,
                snap.version,
                c.epoch,
                "parent",
                t0,
                clock.now(),
                clock.boot_id,
            )
        )
        c.release()
        assert zombie.stdout is not None and zombie.stdin is not None
        ready = zombie.stdout.readline()
        assert ready.startswith("READY "), ready
        z_epoch = int(ready.split()[1])
        sigstop(zombie.pid)
        zombie.stdin.write("GO\n")
        zombie.stdin.flush()

        def reclaimed() -> int:
            st = store.state("k/z")
            assert st is not None and st.lease is not None
            return 0 if st.lease.live(store.clock) else store.reclaim("k/z", by="recovery")

        t0 = clock.floor()
        assert _wait_for(reclaimed, "the zombie's lease to run out") == z_epoch + 1
        parent_acks.append(
            conf.Ack(
                "reclaim", "k/z", None, None, z_epoch + 1, None, t0, clock.now(), clock.boot_id
            )
        )
        os.kill(zombie.pid, signal.SIGCONT)
        z_out, _ = zombie.communicate(timeout=WAIT)
        assert zombie.returncode == 0 and "FENCED reclaimed" in z_out, z_out
        for p in procs:
            assert p.wait(timeout=WAIT) == 0
        acks = parent_acks + [
            conf.Ack.from_dict(json.loads(line))
            for f in [*acks_files, z_acks]
            if f.exists()
            for line in f.read_text().splitlines()
            if line.strip()
        ]
        # states with their leases
        journal = {k: store.read_history(k) for k in store.read_all_keys()}
        events = [s for states in journal.values() for s in states]
        violations = conf.check_journal(events) + conf.check_acks(journal, acks)
        assert violations == [], "\n".join(map(str, violations))
        kinds = {a.kind for a in acks}
        assert {"put", "claim", "claim_commit", "reclaim", "fenced"} <= kinds
        assert {s.op for s in events} >= {"put", "claim", "reclaim", "release"}
        assert sum(1 for s in events if s.txn is not None) >= 2  # put_many events were checked
        assert len(events) > 50
    finally:
        for p in [*procs, zombie]:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait(timeout=30)
        store.close()


@pytest.mark.slow
def test_four_processes_on_redis_are_linearizable(redis_url: str, tmp_path: Path) -> None:
    from fencedstate.testing import linearizability as lin

    paths = [str(tmp_path / f"p{i}.history") for i in range(4)]
    argv = [(redis_url, paths[i], i + 1, 300) for i in range(4)]
    results = workers.run_children(rs.lin_worker, argv, WAIT)
    assert all(r[0] == "ok" for r in results), results
    result = lin.report(paths)
    assert result.ops >= 4 * 300 and result.keys == 2
    assert result.ok, [lin.format_window(f.window) for f in result.failures]


# -- Redis Cluster -----------------------------------------------------------------------------


def test_a_store_lives_in_one_cluster_slot_and_its_scripts_run_there(tmp_path: Path) -> None:
    nodes = [
        RedisServer(
            tmp_path / f"n{i}",
            extra=[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                str(rs.free_port()),
            ],
        )
        for i in range(3)
    ]
    try:
        for n in nodes:
            n.start()
        create = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert create.returncode == 0, create.stdout + create.stderr

        def ok() -> bool:
            return all(n.client().cluster("info")["cluster_state"] == "ok" for n in nodes)

        _wait_for(ok, "the cluster to agree")
        ns = _ns()
        slot = key_slot(f"fencedstate:{{{ns}}}:meta".encode())
        assert slot == key_slot(ns.encode())  # the hash tag is the namespace
        owner = next(n for n in nodes if any(lo <= slot <= hi for lo, hi in _slots(n, n.port)))
        with fs.open_store(owner.url(ns)) as store:
            store.put_many({"a": (1, 0), "b/c": (2, 0)}, writer="w")  # one script, two keys
            with store.claim("a", owner="x", ttl=30) as c:
                c.commit(3, expected_version=1)
            store.reclaim("b/c", by="r")
            assert store.keys() == ["a", "b/c"] and store.get("a").value == 3  # type: ignore[union-attr]
            assert [e.op for e in store.history("a")] == ["put", "claim", "put", "release"]
        assert owner.client().cluster("countkeysinslot", slot) == 8  # the whole store, one slot
        # A node that does not own the slot redirects (MOVED): a typed error, nothing written.
        other = next(n for n in nodes if n is not owner)
        with pytest.raises(fs.StorageError) as err:
            fs.open_store(other.url(ns))
        assert "MOVED" in str(err.value)
    finally:
        for n in nodes:
            n.stop()


def _slots(node: RedisServer, port: int) -> list[tuple[int, int]]:
    """The slot ranges the node on ``port`` owns (from CLUSTER SLOTS)."""
    out = []
    for lo, hi, master, *_ in node.client().execute_command("CLUSTER SLOTS"):
        if int(master[1]) == port:
            out.append((int(lo), int(hi)))
    return out


def test_a_server_that_is_not_redis_is_a_storage_error(tmp_path: Path) -> None:
    """Something on the port answers, not in Redis's protocol (an HTTP server): a typed
    StorageError, not redis-py's InvalidResponse."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(fs.StorageError, match="does not answer as a Redis server"):
            fs.open_store(f"redis://127.0.0.1:{port}/0?namespace=x", timeout=5.0)
    finally:
        listener.close()


def test_tls_mistakes_are_named(redis_server: RedisServer, tmp_path: Path) -> None:
    """A CA file that is not there is named at open (it was "Error 2 connecting ... No such
    file or directory"); rediss:// to a server without TLS says the scheme may be the cause (it
    was a bare connect timeout)."""
    plain = redis_server.url(_ns())
    missing = tmp_path / "ca.pem"
    with pytest.raises(fs.InvalidArgumentError, match=f"ssl_ca_certs={missing}: no such file"):
        fs.open_store(plain.replace("redis://", "rediss://", 1) + f"&ssl_ca_certs={missing}")
    with pytest.raises(fs.StorageError, match="never answers a rediss:// handshake"):
        fs.open_store(plain.replace("redis://", "rediss://", 1), timeout=2.0)


class _Unverified(RedisServer):
    """A server whose readiness is checked without verifying its certificate (an expired one)."""

    def client(self, **kw: Any) -> Any:
        return super().client(ssl_cert_reqs="none", **kw)


def test_tls_mistakes_say_what_is_wrong(tmp_path: Path) -> None:
    """A plain redis:// URL to a TLS port was 'cannot reach ...: Connection reset by peer'; a CA
    file that is no PEM bundle a StorageError advising 'disk full, permissions'; a directory
    'no such file'; an expired server certificate 'not trusted: give ?ssl_ca_certs='."""
    good = make_pki(tmp_path / "good")
    tls = {"ca": str(good.ca), "cert": str(good.server_cert), "key": str(good.server_key)}
    with running(RedisServer(tmp_path / "r", tls=tls)) as server:
        plain = server.url(_ns()).replace("rediss://", "redis://", 1)
        with pytest.raises(fs.StorageError, match="rediss://"):
            fs.open_store(plain, timeout=5)
        with pytest.raises(fs.InvalidArgumentError, match="not a file"):
            fs.open_store(server.url(_ns(), ssl_ca_certs=str(tmp_path / "good")))
        not_pem = tmp_path / "ca.txt"
        not_pem.write_text("not a certificate\n")
        with pytest.raises(fs.InvalidArgumentError, match="cannot load the TLS files"):
            fs.open_store(server.url(_ns(), ssl_ca_certs=str(not_pem)))
    old = make_pki(tmp_path / "old", expired=True)
    tls = {"ca": str(old.ca), "cert": str(old.server_cert), "key": str(old.server_key)}
    with running(_Unverified(tmp_path / "r2", tls=tls)) as server:
        with pytest.raises(fs.AccessDeniedError, match="has expired: renew") as refused:
            fs.open_store(server.url(_ns(), ssl_ca_certs=str(old.ca)))
        assert "give ?ssl_ca_certs=" not in str(refused.value)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("socket_timeot=1", "did you mean 'socket_timeout'"),
        ("bogus=1", "unknown Redis URL parameter ?bogus="),
        ("max_connections=4", "pass max_connections= to open_store"),
        ("timeout=4", "pass timeout= to open_store"),
    ],
)
def test_a_url_parameter_redis_py_does_not_take_is_named_before_connecting(
    query: str, says: str
) -> None:
    # Port 1: nothing listens there; the parameter is refused before any connection is tried.
    with pytest.raises(fs.InvalidArgumentError) as caught:
        fs.open_store(f"redis://127.0.0.1:1/0?{query}")
    assert says in str(caught.value)
    assert "AbstractConnection" not in str(caught.value)
