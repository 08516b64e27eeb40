"""``remote.RemoteStore``'s commit loop on a dict "server" whose sends can be told to lose
races or replies: what the loop does in each phase (the real servers run the same loop in
test_postgres, test_etcd, test_redis and test_conformance)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

import fencedstate as fs
from fencedstate.core.clock import Clock
from fencedstate.core.remote import LostReply, NotCommitted, Read, RemoteStore
from fencedstate.records import State, empty_state


class DictStore(RemoteStore[Read]):
    """A server that is a dict; ``plan`` says what each send does: "ok", "race" (another
    writer moved first), "lost-landed" / "lost-not" (the reply is lost; it did / did not land)."""

    _history_limit = 1000
    _commit_deadline = 10.0
    _retry_first = _retry_cap = 0.0

    def __init__(self, plan: list[str], max_attempts: float = 100) -> None:
        self.data: dict[str, list[State]] = {}
        self.plan = plan
        self.settled: list[bool] = []
        self._max_attempts = max_attempts
        super().__init__(max_value_bytes=1 << 20, clock=Clock("test"))

    def read_state(self, key: str) -> State | None:
        return self.data[key][-1] if key in self.data else None

    def read_history(self, key: str) -> list[State]:
        return list(self.data.get(key, []))

    def read_keys(self, prefix: str) -> list[str]:
        return sorted(k for k, h in self.data.items() if k.startswith(prefix) and h[-1].exists)

    @contextlib.contextmanager
    def _read_for_commit(self, keys: list[str]) -> Iterator[Read]:
        states = {k: self.read_state(k) or empty_state(k) for k in keys}
        yield Read(states, {k: len(self.data.get(k, [])) for k in keys}, self.clock.now())

    def _write(self, changed: dict[str, State]) -> None:
        for key, state in changed.items():
            self.data.setdefault(key, []).append(state)

    def _send(self, read: Read, changed: dict[str, State], commit_id: str) -> None:
        what = self.plan.pop(0) if self.plan else "ok"
        if what == "race":
            raise NotCommitted("another writer changed a key first")
        if what != "lost-not":
            self._write(changed)
        if what.startswith("lost"):
            raise LostReply("connection reset")

    def _settle(
        self, read: Read, changed: dict[str, State], commit_id: str, lost: LostReply
    ) -> bool:
        landed = all(len(self.data.get(k, [])) == read.seqs[k] + 1 for k in changed)
        self.settled.append(landed)
        return landed


def test_a_lost_race_runs_the_step_again_on_what_moved() -> None:
    store = DictStore(["race", "race"])
    assert store.put("k", "v", expected_version=0).version == 1
    assert [e.version for e in store.history("k")] == [1]


def test_a_lost_reply_that_landed_is_acknowledged_once() -> None:
    store = DictStore(["lost-landed"])
    assert store.put("k", "v", expected_version=0).version == 1
    assert store.settled == [True] and [e.version for e in store.history("k")] == [1]


def test_a_lost_reply_that_did_not_land_is_sent_again() -> None:
    store = DictStore(["lost-not"])
    assert store.put("k", "v", expected_version=0).version == 1
    assert store.settled == [False] and [e.version for e in store.history("k")] == [1]


def test_the_loop_gives_up_with_a_storage_error_naming_the_last_reason() -> None:
    store = DictStore(["race"] * 5, max_attempts=3)
    with pytest.raises(fs.StorageError) as err:
        store.put("k", "v", expected_version=0)
    assert "3 attempts" in str(err.value) and "another writer" in str(err.value)
    assert store.read_state("k") is None


def test_a_refusal_by_the_rules_is_not_retried_and_writes_nothing() -> None:
    store = DictStore([])
    store.put("k", "v", expected_version=0)
    with pytest.raises(fs.ConflictError):
        store.put("k", "w", expected_version=0)
    assert [e.version for e in store.history("k")] == [1]


def test_a_multi_key_commit_tags_its_events_with_one_txn() -> None:
    store = DictStore([])
    store.put_many({"a": (1, 0), "b": (2, 0)})
    txns = {store.data[k][-1].txn for k in ("a", "b")}
    assert len(txns) == 1 and None not in txns
