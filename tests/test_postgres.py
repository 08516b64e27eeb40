"""PostgreSQL-specific tests (the shared semantics suite runs on PostgreSQL via conftest).

Real processes with their own connections, a SIGSTOPped zombie fenced by the server's clock,
connections killed mid-commit, schema migrations, lock timeouts and client clock skew.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from _support import store_workers as workers
from _support.faults import fence_a_stopped_zombie
from _support.faults import wait_for as _wait_for

import fencedstate as fs
from fencedstate.postgres import SCHEMA_VERSION, PostgresStore

WAIT = 120.0  # generous: a noisy 2-core machine


@pytest.fixture
def pg(pg_url: str) -> Iterator[PostgresStore]:
    store = fs.open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection to the test's schema (not through the store)."""
    conn = psycopg.connect(pg_url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def _journal(admin: psycopg.Connection[Any], key: str) -> list[tuple[Any, ...]]:
    return admin.execute(
        "SELECT seq, op, version, epoch, value FROM fencedstate_journal "
        "WHERE key = %s ORDER BY seq",
        (key,),
    ).fetchall()


def _row(admin: psycopg.Connection[Any], key: str) -> tuple[Any, ...] | None:
    return admin.execute(
        "SELECT seq, op, version, epoch, value, commit_id FROM fencedstate_keys WHERE key = %s",
        (key,),
    ).fetchone()


# -- schema and migrations


def test_schema_created_with_version_table(
    pg: PostgresStore, admin: psycopg.Connection[Any]
) -> None:
    rows = admin.execute("SELECT version, description FROM fencedstate_schema").fetchall()
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert pg.schema_version() == SCHEMA_VERSION
    assert pg.clock.boot_id == f"pg:{pg.store_id}"


def test_concurrent_opens_migrate_once(pg_url: str, admin: psycopg.Connection[Any]) -> None:
    stores, errors = _open_at_once(4, pg_url)
    try:
        assert not errors
        assert len({s.store_id for s in stores}) == 1  # type: ignore[attr-defined]
        count = admin.execute("SELECT count(*) FROM fencedstate_schema").fetchone()
        assert count is not None and count[0] == SCHEMA_VERSION
    finally:
        for s in stores:
            s.close()


def test_concurrent_opens_of_a_new_schema_all_succeed(
    pg_url: str, admin: psycopg.Connection[Any]
) -> None:
    """A fleet started at once on a fresh `schema=`: every open succeeds (two concurrent
    CREATE SCHEMA IF NOT EXISTS collided on pg_namespace's unique index: StorageError)."""
    plain = (
        pg_url.split("?")[0]
        + "?"
        + "&".join(p for p in pg_url.split("?")[1].split("&") if not p.startswith("options="))
    )
    names = [f"fs_fleet_{n}" for n in range(6)]
    try:
        for name in names:
            stores, errors = _open_at_once(4, plain, schema=name)
            try:
                assert not errors, errors
                assert len({s.store_id for s in stores}) == 1  # type: ignore[attr-defined]
            finally:
                for st in stores:
                    st.close()
    finally:
        for name in names:
            admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _open_at_once(n: int, url: str, **options: Any) -> tuple[list[fs.Store], list[BaseException]]:
    """``n`` threads released together by a barrier, each opening the store once."""
    gate = threading.Barrier(n)
    stores: list[fs.Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            gate.wait(WAIT)
            stores.append(fs.open_store(url, **options))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    return stores, errors


def test_newer_schema_is_refused(
    pg: PostgresStore, pg_url: str, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("INSERT INTO fencedstate_schema (version, description) VALUES (999, 'future')")
    with pytest.raises(fs.StorageError, match="newer"):
        fs.open_store(pg_url)


def test_migrate_false_refuses_to_create(pg_url: str) -> None:
    with pytest.raises(fs.StorageError, match="migrate"):
        fs.open_store(pg_url, migrate=False)


def test_explicit_schema_option(pg_url: str, admin: psycopg.Connection[Any]) -> None:
    plain = (
        pg_url.split("?")[0]
        + "?"
        + "&".join(p for p in pg_url.split("?")[1].split("&") if not p.startswith("options="))
    )
    with fs.open_store(plain, schema="fs_explicit") as store:
        store.put("k", 1, expected_version=0)
    try:
        found = admin.execute("SELECT value FROM fs_explicit.fencedstate_keys").fetchone()
        assert found == ("1",)
    finally:
        admin.execute("DROP SCHEMA fs_explicit CASCADE")


def test_the_schema_option_as_a_url_parameter_reaches_the_same_store(
    pg_url: str, admin: psycopg.Connection[Any]
) -> None:
    """`?schema=` (libpq does not know it) is the `schema=` keyword, so the command line and
    the MCP server reach a store opened with one; `store.url` keeps it, and the two disagreeing
    is refused."""
    import json
    import subprocess
    import sys

    from fencedstate.integrations import store_location

    plain = (
        pg_url.split("?")[0]
        + "?"
        + "&".join(p for p in pg_url.split("?")[1].split("&") if not p.startswith("options="))
    )
    try:
        with fs.open_store(plain, schema="fs_url") as store:
            store.put("k", {"n": 1}, expected_version=0)
        with fs.open_store(plain + "&schema=fs_url") as again:
            snap = again.get("k")
            assert snap is not None and snap.value == {"n": 1} and again.schema == "fs_url"
            assert "schema=fs_url" in again.url
            assert store_location(again) == plain + "&schema=fs_url"
        got = subprocess.run(
            [sys.executable, "-m", "fencedstate.cli", "get", plain + "&schema=fs_url", "k"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["value"] == {"n": 1}
        with pytest.raises(fs.InvalidArgumentError, match="schema is given twice"):
            fs.open_store(plain + "&schema=fs_url", schema="other")
    finally:
        admin.execute("DROP SCHEMA IF EXISTS fs_url CASCADE")


def test_bad_options_are_typed(pg_url: str) -> None:
    with pytest.raises(fs.InvalidArgumentError):
        PostgresStore("not-a-url")
    with pytest.raises(fs.InvalidArgumentError):
        fs.open_store(pg_url, history_limit=0)
    with pytest.raises(fs.InvalidArgumentError):
        fs.open_store(pg_url, lock_timeout=-1)


# -- values, journal


def test_values_round_trip_exactly(pg: PostgresStore) -> None:
    value = {"z": 1, "a": [1.5, -0.0, 10**30, None, True], "s": "snow \u2603 nul \x00 tab\t"}
    pg.put("k", value, expected_version=0)
    got = pg.get("k")
    assert got is not None and got.value == value and list(got.value) == ["z", "a", "s"]


def test_journal_in_database_matches_history(
    pg: PostgresStore, admin: psycopg.Connection[Any]
) -> None:
    pg.put("k", 1, expected_version=0)
    with pg.claim("k", owner="w", ttl=30) as c:
        c.commit(2)
    pg.delete("k", expected_version=2)
    rows = _journal(admin, "k")
    assert [(r[1], r[2]) for r in rows] == [
        ("put", 1),
        ("claim", 1),
        ("put", 2),
        ("release", 2),
        ("delete", 3),
    ]
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert [e.op for e in pg.history("k", limit=None)] == [r[1] for r in rows]


def test_history_is_pruned_to_the_limit(pg_url: str) -> None:
    with fs.open_store(pg_url, history_limit=10) as store:
        for i in range(130):
            store.put("k", i, expected_version=i)
        events = store.history("k", limit=None)
        assert 10 <= len(events) <= 10 + 64
        assert events[-1].version == 130 and events[-1].value == 129


def test_failed_step_leaves_no_row(pg: PostgresStore, admin: psycopg.Connection[Any]) -> None:
    with pytest.raises(fs.ConflictError):
        pg.put("never", 1, expected_version=5)
    assert _row(admin, "never") is None and pg.keys() == []


# -- many processes, separate connections


def test_processes_with_separate_connections_lose_nothing(pg: PostgresStore, pg_url: str) -> None:
    results = workers.run_updaters(
        pg_url, "counter", procs=4, n=100, options={"max_connections": 2}, timeout=WAIT * 2
    )
    assert all(r[1] == "ok" for r in results), results
    snap = pg.get("counter")
    assert snap is not None and snap.value == 400 and snap.version == 400
    puts = [e for e in pg.history("counter", limit=None) if e.op == "put"]
    assert [e.value for e in puts] == list(range(1, 401))


def test_put_many_from_threads_never_deadlocks(pg: PostgresStore) -> None:
    def worker(keys: list[str]) -> None:
        for _ in range(20):
            pg.put_many({k: (1, None) for k in keys}, writer="t")

    orders = [["a", "b", "c"], ["c", "b", "a"], ["b", "c", "a"], ["a", "c", "b"]]
    threads = [threading.Thread(target=worker, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert [pg.get(k).version for k in "abc"] == [80, 80, 80]  # type: ignore[union-attr]


# -- leases on the server's clock


def test_sigstopped_zombie_is_fenced_by_the_server_clock(
    pg: PostgresStore, pg_url: str, admin: psycopg.Connection[Any]
) -> None:
    def reclaim() -> int:
        _wait_for(  # the lease runs out on the database server's clock, not on ours
            lambda: admin.execute(
                "SELECT lease_deadline < extract(epoch FROM clock_timestamp()) "
                "FROM fencedstate_keys WHERE key = 'task'"
            ).fetchone()[0],  # type: ignore[index]
            "the lease to expire on the server clock",
        )
        return pg.reclaim("task", by="recovery")

    fence_a_stopped_zombie(pg_url, pg, reclaim, {"max_connections": 1})


# -- connections killed mid-transaction


def _backend_waiting(admin: psycopg.Connection[Any], query: str) -> int | None:
    row = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'fencedstate' "
        "AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE %s",
        (query + "%",),
    ).fetchone()
    return None if row is None else int(row[0])


@pytest.mark.parametrize("phase", ["lock", "commit"])
def test_connection_killed_mid_transaction_commits_once_or_not_at_all(
    pg: PostgresStore, pg_url: str, admin: psycopg.Connection[Any], phase: str
) -> None:
    pg.put("k", "old", expected_version=0)
    blocker = psycopg.connect(pg_url, autocommit=True)
    try:
        if phase == "commit":
            # A deferred trigger makes COMMIT itself wait on a lock the test holds, so the
            # backend is killed while executing COMMIT.
            admin.execute("""CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS
                             $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NULL;
                             END $$""")
            admin.execute(
                "CREATE CONSTRAINT TRIGGER gate AFTER INSERT ON fencedstate_journal "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gate()"
            )
            blocker.execute("SELECT pg_advisory_lock(4242)")
            waiting_on = "COMMIT"
        else:
            blocker.execute("BEGIN")
            blocker.execute("SELECT 1 FROM fencedstate_keys WHERE key = 'k' FOR UPDATE")
            waiting_on = "SELECT"
        outcome: list[Any] = []

        def writer() -> None:
            try:
                outcome.append(pg.put("k", "new", expected_version=1, writer="w"))
            except BaseException as exc:
                outcome.append(exc)

        t = threading.Thread(target=writer)
        t.start()
        pid = _wait_for(
            lambda: _backend_waiting(admin, waiting_on), f"the writer to block in {waiting_on}"
        )
        killed = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert killed == (True,)
        _wait_for(
            lambda: admin.execute(
                "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()[0],  # type: ignore[index]
            "the killed backend to exit",
        )
        if phase == "commit":
            blocker.execute("SELECT pg_advisory_unlock(4242)")
        else:
            blocker.execute("ROLLBACK")
        t.join(WAIT)
        assert not t.is_alive()
    finally:
        blocker.close()
    # The killed attempt did not land; the store learnt that and committed exactly once.
    assert len(outcome) == 1 and isinstance(outcome[0], fs.Snapshot), outcome
    assert (outcome[0].value, outcome[0].version) == ("new", 2)
    assert [(r[1], r[2], r[4]) for r in _journal(admin, "k")] == [
        ("put", 1, '"old"'),
        ("put", 2, '"new"'),
    ]
    row = _row(admin, "k")
    assert row is not None and row[:5] == (2, "put", 2, 0, '"new"')


class _LostAck:
    """Make the store's next COMMIT land on the server but fail on the client (lost reply)."""

    def __init__(self, store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fired = False
        real = store._send_commit

        def send_commit(conn: Any, writes: Any) -> str:
            status = real(conn, writes)
            if not self.fired:
                self.fired = True
                assert status == "COMMIT"
                conn.close()  # the reply is lost with the connection
                raise psycopg.OperationalError("simulated: connection lost after COMMIT")
            return status

        monkeypatch.setattr(store, "_send_commit", send_commit)


def test_lost_commit_ack_is_resolved_by_reading(
    pg: PostgresStore, admin: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.put("k", "old", expected_version=0)
    lost = _LostAck(pg, monkeypatch)
    snap = pg.put("k", "new", expected_version=1)  # committed; the client learns it by reading
    assert lost.fired
    assert (snap.value, snap.version) == ("new", 2)
    assert [r[2] for r in _journal(admin, "k")] == [1, 2]  # exactly once, not retried


def test_unresolvable_outcome_raises_outcome_unknown(
    pg: PostgresStore, admin: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.put("k", "old", expected_version=0)
    _LostAck(pg, monkeypatch)

    def unreachable() -> Any:
        raise fs.StorageError(None, "simulated: server unreachable")

    monkeypatch.setattr(pg, "_connect", unreachable)
    with pytest.raises(fs.OutcomeUnknownError) as err:
        pg.put("k", "new", expected_version=1, writer="w")
    assert err.value.key == "k" and err.value.retryable
    monkeypatch.undo()
    # Resolve by reading: the commit either is in the history or is not; never half.
    snap = pg.get("k")
    assert snap is not None and (snap.value, snap.version) in {("old", 1), ("new", 2)}
    assert [e.version for e in pg.history("k") if e.op == "put"] == list(range(1, snap.version + 1))


def test_pool_recovers_after_server_kills_idle_connections(
    pg: PostgresStore, admin: psycopg.Connection[Any]
) -> None:
    pg.put("k", 0, expected_version=0)
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'fencedstate' AND pid <> pg_backend_pid()"
    )
    assert pg.get("k").version == 1  # type: ignore[union-attr]
    assert pg.put("k", 1, expected_version=1).version == 2


def test_lock_held_by_stalled_client_times_out_typed(pg_url: str) -> None:
    with fs.open_store(pg_url, lock_timeout=0.3) as store:
        store.put("k", 0, expected_version=0)
        stalled = psycopg.connect(pg_url, autocommit=True)
        try:
            stalled.execute("BEGIN")
            stalled.execute("SELECT 1 FROM fencedstate_keys WHERE key = 'k' FOR UPDATE")
            with pytest.raises(fs.LockTimeoutError) as err:
                store.put("k", 1, expected_version=1)
            assert err.value.retryable and err.value.key == "k"
        finally:
            stalled.close()
        assert store.put("k", 1, expected_version=1).version == 2


def test_concurrent_creators_of_a_new_key_exactly_one_wins(pg: PostgresStore) -> None:
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def create(i: int) -> None:
        barrier.wait(WAIT)
        try:
            results.append(pg.put("fresh", i, expected_version=0, writer=f"w{i}"))
        except fs.ConflictError as exc:
            results.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    wins = [r for r in results if isinstance(r, fs.Snapshot)]
    assert len(results) == 6 and len(wins) == 1
    assert all(r.actual_version == 1 for r in results if isinstance(r, fs.ConflictError))
    assert [e.version for e in pg.history("fresh")] == [1]
