"""Hypothesis stateful test: the file store against a simple in-memory model of the semantics."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import fencedstate as fs

KEYS = st.sampled_from(["a", "b/c", "b/d"])
OWNERS = st.sampled_from(["w1", "w2"])
VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.lists(st.booleans(), max_size=2))


@dataclass
class ModelKey:
    version: int = 0
    exists: bool = False
    value: Any = None
    epoch: int = 0
    holder: str | None = None
    history: list[str] = field(default_factory=list)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="fs-stateful-")
        self.store = fs.FileStore(self.dir + "/s", durability="none")
        self.model: dict[str, ModelKey] = {}
        self.claims: list[tuple[fs.Claim, str]] = []

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def m(self, key: str) -> ModelKey:
        return self.model.setdefault(key, ModelKey())

    @rule(key=KEYS, value=VALUES, skew=st.integers(-1, 1))
    def put(self, key: str, value: Any, skew: int) -> None:
        m = self.m(key)
        visible = m.version if m.exists else 0
        expected = max(0, visible + skew)
        try:
            snap = self.store.put(key, value, expected_version=expected, writer="p")
        except fs.ClaimHeldError:
            assert m.holder is not None
            return
        except fs.ConflictError as e:
            assert m.holder is None and expected != visible and e.actual_version == visible
            return
        assert m.holder is None and expected == visible
        m.version += 1
        m.exists, m.value = True, value
        m.history.append("put")
        assert (snap.version, snap.value, snap.epoch) == (m.version, value, m.epoch)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        m = self.m(key)
        visible = m.version if m.exists else 0
        try:
            v = self.store.delete(key, expected_version=visible)
        except fs.ClaimHeldError:
            assert m.holder is not None
            return
        except fs.ConflictError:
            assert not m.exists and m.holder is None
            return
        assert m.exists and m.holder is None
        m.version += 1
        m.exists, m.value = False, None
        m.history.append("delete")
        assert v == m.version

    @rule(key=KEYS, owner=OWNERS)
    def claim(self, key: str, owner: str) -> None:
        m = self.m(key)
        try:
            c = self.store.claim(key, owner=owner, ttl=3600)
        except fs.ClaimHeldError as e:
            assert m.holder is not None and e.holder == m.holder
            return
        assert m.holder is None
        m.epoch += 1
        m.holder = owner
        m.history.append("claim")
        assert c.epoch == m.epoch
        self.claims.append((c, key))

    @precondition(lambda self: self.claims)
    @rule(data=st.data(), value=VALUES)
    def commit(self, data: st.DataObject, value: Any) -> None:
        c, key = data.draw(st.sampled_from(self.claims))
        m = self.m(key)
        try:
            snap = c.commit(value)
        except fs.FencedError as e:
            assert not (c.epoch == m.epoch and m.holder == c.owner)
            assert e.current_epoch == m.epoch
            assert e.reason == ("reclaimed" if c.epoch != m.epoch else "released")
            return
        assert c.epoch == m.epoch and m.holder == c.owner
        m.version += 1
        m.exists, m.value = True, value
        m.history.append("put")
        assert snap.version == m.version

    @precondition(lambda self: self.claims)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        c, key = data.draw(st.sampled_from(self.claims))
        m = self.m(key)
        held = c.epoch == m.epoch and m.holder == c.owner
        assert c.release() is held
        if held:
            m.holder = None
            m.history.append("release")

    @rule(key=KEYS)
    def reclaim(self, key: str) -> None:
        m = self.m(key)
        assert self.store.reclaim(key, by="r") == m.epoch + 1
        m.epoch += 1
        m.holder = None
        m.history.append("reclaim")

    @invariant()
    def matches_model(self) -> None:
        for key, m in self.model.items():
            snap = self.store.get(key)
            if m.exists:
                assert snap is not None and (snap.value, snap.version) == (m.value, m.version)
            else:
                assert snap is None
            assert [e.op for e in self.store.history(key, limit=None)] == m.history
        assert self.store.keys() == sorted(k for k, m in self.model.items() if m.exists)


StoreMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestStoreMachine = StoreMachine.TestCase
