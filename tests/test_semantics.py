"""One test per row of the README's semantics table, run on every backend."""

from __future__ import annotations

import asyncio
import pickle
import threading
import time

import pytest

import fencedstate as fs
from fencedstate import Clock


def test_put_cas_versions_start_at_one(store: fs.Store) -> None:
    assert store.get("plans/alpha") is None
    s1 = store.put("plans/alpha", {"step": 1}, expected_version=0, writer="planner")
    assert (s1.version, s1.value, s1.writer, s1.epoch) == (1, {"step": 1}, "planner", 0)
    assert isinstance(s1.committed_at, float)
    s2 = store.put("plans/alpha", {"step": 2}, expected_version=1)
    assert s2.version == 2
    got = store.get("plans/alpha")
    assert got is not None and got.value == {"step": 2} and got.version == 2


def test_values_round_trip_exactly(store: fs.Store) -> None:
    """Integers past 64 bits stay exact (a JSON decoder that turns them into floats fails),
    as do key order, -0.0, non-ASCII and control characters; through a reopen too."""
    value = {"z": 1, "a": [1.5, -0.0, 10**30, -(2**70), None, True], "s": "snow \u2603 \x00\t"}
    store.put("k", value, expected_version=0)
    for snap in (store.get("k"), store.history("k")[-1]):
        assert snap is not None and snap.value == value and list(snap.value) == ["z", "a", "s"]
        assert type(snap.value["a"][2]) is int


def test_expected_version_zero_means_must_not_exist(store: fs.Store) -> None:
    store.put("k", 1, expected_version=0)
    with pytest.raises(fs.ConflictError) as err:
        store.put("k", 2, expected_version=0)
    assert (err.value.key, err.value.expected_version, err.value.actual_version) == ("k", 0, 1)
    assert err.value.retryable is True
    assert store.get("k").value == 1  # type: ignore[union-attr]


def test_stale_version_conflicts_and_changes_nothing(store: fs.Store) -> None:
    store.put("k", "a", expected_version=0)
    store.put("k", "b", expected_version=1)
    with pytest.raises(fs.ConflictError) as err:
        store.put("k", "stale", expected_version=1)
    assert err.value.actual_version == 2
    snap = store.get("k")
    assert snap is not None and (snap.value, snap.version) == ("b", 2)


def test_concurrent_commits_same_version_exactly_one_wins(store: fs.Store) -> None:
    store.put("race", 0, expected_version=0)
    barrier = threading.Barrier(8)
    wins: list[int] = []
    conflicts: list[int] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            store.put("race", i, expected_version=1, writer=f"w{i}")
            wins.append(i)
        except fs.ConflictError:
            conflicts.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(conflicts) == 7
    snap = store.get("race")
    assert snap is not None and snap.value == wins[0] and snap.version == 2


def test_update_retries_until_it_commits(store: fs.Store) -> None:
    def bump(v: int | None) -> int:
        return (v or 0) + 1

    threads = [
        threading.Thread(target=lambda: [store.update("n", bump, writer="t") for _ in range(25)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = store.get("n")
    assert snap is not None and snap.value == 100 and snap.version == 100


def test_update_max_retries_zero_raises_the_conflict(store: fs.Store) -> None:
    store.put("k", 0, expected_version=0)

    def meddle(v: int) -> int:
        store.put("k", v + 100, expected_version=None)  # someone else commits meanwhile
        return v + 1

    with pytest.raises(fs.ConflictError):
        store.update("k", meddle, max_retries=0)
    assert store.get("k").value == 100  # type: ignore[union-attr]


def test_update_retry_holds_the_key_so_it_cannot_lose_twice(store: fs.Store) -> None:
    store.put("k", 0, expected_version=0)
    calls: list[int] = []

    def bump(v: int) -> int:
        calls.append(v)
        if len(calls) == 1:  # another writer commits between our read and our commit
            t = threading.Thread(target=lambda: store.put("k", 10, expected_version=1))
            t.start()
            t.join()
        return v + 1

    snap = store.update("k", bump)
    assert calls == [0, 10]  # recomputed once from the fresh value
    assert snap.value == 11 and snap.version == 3
    assert store.stats.retries == 1


def test_update_of_a_recently_contended_key_holds_it_from_the_start(store: fs.Store) -> None:
    store.put("k", 0, expected_version=0)

    def update_racing_a_put(value: int) -> list[int]:
        """store.update(+1) whose fn, on its first call, has another thread put ``value``."""
        calls: list[int] = []
        other = threading.Thread(target=lambda: store.put("k", value, expected_version=None))

        def fn(v: int) -> int:
            calls.append(v)
            if len(calls) == 1:
                other.start()
                other.join(0.3)
            return v + 1

        store.update("k", fn)
        other.join()
        return calls

    calls = update_racing_a_put(10)  # optimistic: the other put lands first, one retry
    assert calls == [0, 10] and store.stats.retries == 1
    assert store.get("k").value == 11  # type: ignore[union-attr]
    store.put("k", 20, expected_version=None)
    # now hot: fn runs holding the key, so the other put waits and cannot cause a retry
    calls = update_racing_a_put(99)
    assert calls == [20] and store.stats.retries == 1
    assert store.get("k").value == 99  # type: ignore[union-attr]  # it landed after ours
    assert [e.value for e in store.history("k", limit=2)] == [21, 99]
    store._contended.clear()  # cooled down: optimistic again, so the racing put costs a retry
    calls = update_racing_a_put(5)
    assert calls == [99, 5] and store.stats.retries == 2
    assert store.get("k").value == 6  # type: ignore[union-attr]


def test_claimless_put_on_live_claim_gets_claim_held(store: fs.Store) -> None:
    store.put("k", 1, expected_version=0)
    claim = store.claim("k", owner="worker-3", ttl=30)
    with pytest.raises(fs.ClaimHeldError) as err:
        store.put("k", 2, expected_version=1, writer="other")
    assert err.value.holder == "worker-3" and 0 < err.value.expires_in <= 30
    with pytest.raises(fs.ClaimHeldError):
        store.delete("k", expected_version=1)
    claim.release()
    assert store.put("k", 2, expected_version=1).version == 2


def test_a_claim_by_the_holder_itself_says_it_holds_it(store: fs.Store) -> None:
    """Same error type, but not 'wait for the holder' when the holder is the one asking."""
    grant = store.claim("k", owner="a", ttl=30)
    with pytest.raises(fs.ClaimHeldError) as mine:
        store.claim("k", owner="a", ttl=30)
    with pytest.raises(fs.ClaimHeldError) as theirs:
        store.claim("k", owner="b", ttl=30)
    assert f"already claimed by 'a', the owner asking, at epoch {grant.epoch}" in str(mine.value)
    assert mine.value.to_dict()["epoch"] == grant.epoch and "epoch" not in theirs.value.to_dict()
    assert mine.value.advice == fs.ClaimHeldError.advice_yours != fs.ClaimHeldError.advice
    assert mine.value.to_dict()["advice"] == fs.ClaimHeldError.advice_yours
    assert mine.value.to_dict()["yours"] is True and "yours" not in theirs.value.to_dict()
    again = pickle.loads(pickle.dumps(mine.value))  # across a process boundary, intact
    assert again.advice == fs.ClaimHeldError.advice_yours and str(again) == str(mine.value)
    assert theirs.value.advice == fs.ClaimHeldError.advice
    assert "already" not in str(theirs.value)


def test_claim_granted_only_without_live_claim(store: fs.Store) -> None:
    c1 = store.claim("task/1", owner="a", ttl=30)
    with pytest.raises(fs.ClaimHeldError) as err:
        store.claim("task/1", owner="b", ttl=30)
    assert err.value.holder == "a"
    assert c1.epoch == 1 and c1.owner == "a" and c1.key == "task/1"
    # the full ttl, less the time since the grant (generous: a loaded machine, and etcd's
    # client-side view of the server clock may be up to ~1 s short, docs/etcd.md)
    assert 25 < c1.expires_in <= 30


def test_every_grant_after_release_expiry_reclaim_has_larger_epoch(store: fs.Store) -> None:
    epochs = []
    c = store.claim("k", owner="a", ttl=30)
    epochs.append(c.epoch)
    c.release()
    c = store.claim("k", owner="b", ttl=0.05)
    epochs.append(c.epoch)
    time.sleep(0.15)
    c = store.claim("k", owner="c", ttl=30)  # granted after expiry
    epochs.append(c.epoch)
    epochs.append(store.reclaim("k", by="recovery"))
    c = store.claim("k", owner="d", ttl=30)
    epochs.append(c.epoch)
    assert epochs == sorted(set(epochs)) and len(epochs) == 5


def test_epoch_persists_across_reopen(store_factory: object) -> None:
    make = store_factory  # type: ignore[assignment]
    s1 = make()  # type: ignore[operator]
    s1.claim("k", owner="a", ttl=30).release()
    s1.reclaim("k")
    s2 = make()  # type: ignore[operator]
    assert s2.claim("k", owner="b", ttl=30).epoch == 3


def test_commit_under_claim_checks_epoch_and_version(store: fs.Store) -> None:
    store.put("k", "v1", expected_version=0)
    with store.claim("k", owner="w", ttl=30) as claim:
        snap = claim.read()
        assert snap is not None
        new = claim.commit("v2", expected_version=snap.version)
        assert new.version == 2 and new.epoch == claim.epoch and new.writer == "w"
        with pytest.raises(fs.ConflictError):
            claim.commit("v3", expected_version=1)
        claim.renew()
        assert claim.commit("v3").version == 3  # no version given: the claim's fence suffices
    # the context manager released the claim
    assert store.put("k", "v4", expected_version=3).version == 4


def test_zombie_after_reclaim_is_fenced_although_version_unchanged(store: fs.Store) -> None:
    store.put("k", "good", expected_version=0)
    claim = store.claim("k", owner="zombie", ttl=30)
    snap = claim.read()
    assert snap is not None
    new_epoch = store.reclaim("k", by="recovery")
    assert new_epoch == claim.epoch + 1
    with pytest.raises(fs.FencedError) as err:
        claim.commit("stale", expected_version=snap.version)  # the version still matches
    e = err.value
    assert (e.key, e.claim_epoch, e.current_epoch, e.reason) == ("k", 1, 2, "reclaimed")
    got = store.get("k")
    assert got is not None and (got.value, got.version) == ("good", 1)


def test_expired_claim_is_fenced(store: fs.Store) -> None:
    store.put("k", "good", expected_version=0)
    claim = store.claim("k", owner="slow", ttl=0.05)
    time.sleep(0.15)
    assert claim.expires_in == 0.0
    with pytest.raises(fs.FencedError) as err:
        claim.commit("late")
    assert err.value.reason == "expired"
    with pytest.raises(fs.FencedError):
        claim.renew()
    assert store.get("k").value == "good"  # type: ignore[union-attr]


def test_released_claim_is_fenced(store: fs.Store) -> None:
    claim = store.claim("k", owner="w", ttl=30)
    assert claim.release() is True
    assert claim.release() is False
    with pytest.raises(fs.FencedError) as err:
        claim.commit("after release")
    assert err.value.reason == "released"
    assert store.get("k") is None


def test_lease_expired_after_reboot(store_factory: object) -> None:
    make = store_factory  # type: ignore[assignment]
    before = make()  # type: ignore[operator]
    claim = before.claim("k", owner="pre-reboot", ttl=3600)
    after = make(clock=Clock(boot_id="another-boot"))  # type: ignore[operator]
    taken = after.claim("k", owner="post-reboot", ttl=30)  # the old lease counts as expired
    assert taken.epoch == claim.epoch + 1


def test_delete_leaves_tombstone_and_versions_never_go_back(store: fs.Store) -> None:
    store.put("k", 1, expected_version=0)
    store.put("k", 2, expected_version=1)
    with pytest.raises(fs.ConflictError):
        store.delete("k", expected_version=1)
    assert store.delete("k", expected_version=2) == 3
    assert store.get("k") is None and "k" not in store.keys()  # noqa: SIM118 - Store.keys() is a method
    with pytest.raises(fs.ConflictError):
        store.delete("k", expected_version=0)
    with pytest.raises(fs.ConflictError):
        store.put("k", "aba", expected_version=2)  # a writer that read version 2 before
    again = store.put("k", "new", expected_version=0)
    assert again.version == 4  # continues after the tombstone: no ABA


def test_keys_sorted_with_prefix(store: fs.Store) -> None:
    for k in ["plans/b", "plans/a", "notes/x", "plans/a/deep", "plansz"]:
        store.put(k, k, expected_version=0)
    store.claim("plans/claimed-only", owner="w", ttl=30)
    assert store.keys(prefix="plans/") == ["plans/a", "plans/a/deep", "plans/b"]
    assert store.keys() == sorted(["notes/x", "plans/a", "plans/a/deep", "plans/b", "plansz"])
    assert store.keys("plans") == ["plans/a", "plans/a/deep", "plans/b", "plansz"]


def test_history_oldest_first_with_limit(store: fs.Store) -> None:
    store.put("k", 1, expected_version=0, writer="a")
    c = store.claim("k", owner="b", ttl=30)
    c.commit(2)
    c.release()
    store.reclaim("k", by="recovery")
    ops = [(e.op, e.version, e.epoch, e.actor) for e in store.history("k")]
    assert ops == [
        ("put", 1, 0, "a"),
        ("claim", 1, 1, "b"),
        ("put", 2, 1, "b"),
        ("release", 2, 1, "b"),
        ("reclaim", 2, 2, "recovery"),
    ]
    assert [e.op for e in store.history("k", limit=2)] == ["release", "reclaim"]
    assert store.history("missing") == []


def test_idempotent_retry_returns_original_commit(store: fs.Store) -> None:
    first = store.put("k", "once", expected_version=0, idempotency_key="req-1")
    store.put("k", "someone else", expected_version=1)
    again = store.put("k", "once", expected_version=0, idempotency_key="req-1")
    assert again.version == first.version == 1 and again.value == "once"
    assert store.get("k").version == 2  # type: ignore[union-attr]  # not applied twice


def test_put_many_is_all_or_nothing(store: fs.Store) -> None:
    store.put("oncall/alice", True, expected_version=0)
    store.put("oncall/bob", True, expected_version=0)
    done = store.put_many({"oncall/alice": (False, 1), "oncall/bob": (True, 1)}, writer="a")
    assert done["oncall/alice"].version == 2
    with pytest.raises(fs.ConflictError):
        store.put_many({"oncall/alice": (True, 2), "oncall/bob": (False, 1)}, writer="b")
    assert store.get("oncall/alice").value is False  # type: ignore[union-attr]
    assert store.get("oncall/bob").value is True  # type: ignore[union-attr]
    assert store.get("oncall/bob").version == 2  # type: ignore[union-attr]


async def test_async_twins(store: fs.Store) -> None:
    assert await store.aget("k") is None
    s = await store.aput("k", [1], expected_version=0)
    assert s.version == 1

    async def add(v: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return [*v, 2]

    results = await asyncio.gather(*(store.aupdate("k", add) for _ in range(5)))
    assert sorted(r.version for r in results) == [2, 3, 4, 5, 6]
    claim = await store.aclaim("k", owner="a", ttl=30)
    async with claim:
        await claim.acommit([9], expected_version=6)
        await claim.arenew()
    assert (await store.aget("k")).value == [9]  # type: ignore[union-attr]
    assert await store.areclaim("k") == 2
    assert await store.adelete("k", expected_version=7) == 8
    assert await store.akeys() == []
    assert [e.op for e in await store.ahistory("k", limit=2)] == ["reclaim", "delete"]


def test_claim_waits_for_a_held_claim_when_asked(store: fs.Store) -> None:
    store.claim("k", owner="a", ttl=2.0)  # long enough to hold through two slow round trips
    with pytest.raises(fs.ClaimHeldError):
        store.claim("k", owner="b", ttl=30)  # wait=0: refused at once
    with pytest.raises(fs.ClaimHeldError):
        store.claim("k", owner="b", ttl=30, wait=0.05)  # still held after the wait
    taken = store.claim("k", owner="b", ttl=30, wait=30)  # granted once the lease runs out
    assert taken.owner == "b" and taken.epoch == 2
    with pytest.raises(fs.InvalidArgumentError):
        store.claim("other", owner="b", wait=-1)
