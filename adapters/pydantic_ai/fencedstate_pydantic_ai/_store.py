"""``FencedStepStore``: pydantic-ai-harness's ``StepStore`` on a fencedstate store.

Layout (``P`` is ``prefix``; ids become key segments by ``_keys.segment``):

```text
P runs/<run>            the run's head: record, events, tool effects, snapshot index (one value)
P snapshots/<run>/<id>  one snapshot's message history, written once before the head names it
```

Every change to a run is one compare-and-set of its head, so concurrent writers never lose or
duplicate an event (a retried event or snapshot with the same ``idempotency_key`` is applied
once). With ``own_runs=True`` (the default) the object that first writes a run takes a claim on
its head and commits through it until it appends the run's terminal event: a second process
writing the same run meanwhile gets ``RunClaimedError``, and a holder that was reclaimed gets
``fs.FencedError`` on its next write.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar

import anyio.to_thread
from pydantic_ai_harness.step_persistence import (
    ContinuableSnapshot,
    RunRecord,
    StepEvent,
    ToolEffectRecord,
)

import fencedstate as fs
from fencedstate.core import args, backoff

from . import _codec, _effects
from ._errors import RunClaimedError, RunExistsError
from ._keys import segment

T = TypeVar("T")
Head = dict[str, Any]
Change = Callable[[Head], "tuple[Head | None, T]"]

_TERMINAL_EVENTS = ("run_completed", "run_failed")
_STRIPES = 64
_MAX_ATTEMPTS = 64


def _empty_head(run_id: str) -> Head:
    return {
        "run_id": run_id,
        "record": None,
        "events": [],
        "effects": {},
        "snapshots": [],
        "snapshot_keys": [],
        "high_water": None,
    }


def _sequence(idem: str) -> int | None:
    """The leading ``N:`` of a ``StepPersistence`` snapshot key, or None."""
    head, sep, _ = idem.partition(":")
    if not sep or not head.isdigit():
        return None
    return int(head)


def _retained(refs: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """The newest ``keep`` refs, plus the newest overall and the newest ``complete`` one."""
    chosen = set(range(max(0, len(refs) - keep), len(refs)))
    complete = [i for i, r in enumerate(refs) if r["state"] == "complete"]
    if complete:
        chosen.add(complete[-1])
    return [r for i, r in enumerate(refs) if i in chosen]


class FencedStepStore:
    """A ``StepStore`` whose writes are compare-and-set and whose runs have one fenced owner.

    ``store`` is a ``fs.Store`` or a directory / store URL for ``fs.open_store``. ``owner``
    names this object in claims (default: host-unique); ``ttl`` is the run claim's lease in
    seconds (renewed as the run writes; a lease that lapsed with nobody else taking the run is
    taken again). ``own_runs=False`` writes without claims (for observers and several
    processes appending to one run): such writes are still compare-and-set, and are refused
    with ``RunClaimedError`` while an owner holds the run. ``max_snapshots_per_run`` bounds the
    snapshots kept per run as the harness's stores do. One object may be shared by threads and
    tasks: calls on one run are serialised inside it.
    """

    def __init__(
        self,
        store: fs.Store | str | os.PathLike[str],
        *,
        prefix: str = "pydantic_ai/",
        owner: str | None = None,
        ttl: float = 30.0,
        own_runs: bool = True,
        max_snapshots_per_run: int | None = None,
    ) -> None:
        if isinstance(store, fs.Store):
            self.store = store
        elif isinstance(store, (str, os.PathLike)):
            self.store = fs.open_store(store)
        else:
            raise fs.InvalidArgumentError(
                f"store must be a fencedstate Store, a directory or a store URL, got {store!r}"
            )
        if not isinstance(prefix, str) or (prefix and not prefix.endswith("/")):
            raise fs.InvalidArgumentError(f"prefix must be empty or end with '/', got {prefix!r}")
        args.ttl(ttl)
        args.flag("own_runs", own_runs)
        if max_snapshots_per_run is not None:  # the harness's own messages
            if type(max_snapshots_per_run) is not int:
                raise fs.InvalidArgumentError(
                    "max_snapshots_per_run must be an int >= 1 or None, "
                    f"got {max_snapshots_per_run!r}"
                )
            if max_snapshots_per_run < 1:
                raise fs.InvalidArgumentError(
                    f"max_snapshots_per_run must be >= 1 or None, got {max_snapshots_per_run!r}"
                )
        self.prefix = prefix
        self.owner = (
            args.optional_actor("owner", owner)
            or f"pydantic-ai-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        )
        self.ttl = float(ttl)
        self.own_runs = own_runs
        self.max_snapshots_per_run = max_snapshots_per_run
        self._claims: dict[str, fs.Claim] = {}
        self._fenced: dict[str, int] = {}  # run head -> the epoch this object was fenced at
        self._claims_lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        # the prefix itself must be a valid key prefix: fail now, not on the first write
        self.store.keys(prefix=f"{prefix}runs/")

    # -- keys ---------------------------------------------------------------------------------

    def _head_key(self, run_id: str) -> str:
        return f"{self.prefix}runs/{segment(run_id, 'run_id')}"

    def _lock(self, key: str) -> threading.Lock:
        return self._stripes[zlib.crc32(key.encode()) % _STRIPES]

    # -- ownership ----------------------------------------------------------------------------

    def holds(self, run_id: str) -> bool:
        """True while this object holds the claim of ``run_id``."""
        with self._claims_lock:
            return self._head_key(run_id) in self._claims

    def _acquire(self, key: str) -> fs.Claim:
        try:
            claim = self.store.claim(key, owner=self.owner, ttl=self.ttl)
        except fs.ClaimHeldError as e:
            raise RunClaimedError(e.key, e.holder, e.expires_in) from None
        with self._claims_lock:
            self._claims[key] = claim
        return claim

    def _drop(self, key: str) -> fs.Claim | None:
        with self._claims_lock:
            return self._claims.pop(key, None)

    def _fence(self, key: str, err: fs.FencedError) -> fs.FencedError:
        """Remember that this object lost ``key`` to someone else: it never takes it back itself."""
        with self._claims_lock:
            self._claims.pop(key, None)
            self._fenced[key] = err.claim_epoch
        return err

    def _release_sync(self, run_id: str) -> bool:
        key = self._head_key(run_id)
        with self._lock(key):
            claim = self._drop(key)
            return claim is not None and claim.release()

    async def release_run(self, run_id: str) -> bool:
        """Give up this object's claim on ``run_id`` (False if it held none)."""
        return await anyio.to_thread.run_sync(self._release_sync, run_id)

    async def reclaim_run(self, run_id: str, by: str = "recovery") -> int:
        """Revoke whoever owns ``run_id`` (epoch bump): their next write gets ``fs.FencedError``.

        For an owner known to be dead or stalled. Returns the run's new epoch.
        """
        key = self._head_key(run_id)

        def go() -> int:
            with self._lock(key):
                self._drop(key)
                with self._claims_lock:
                    self._fenced.pop(key, None)  # a deliberate takeover by this object
                return self.store.reclaim(key, by=by)

        return await anyio.to_thread.run_sync(go)

    # -- the one write path -------------------------------------------------------------------

    def _change(self, run_id: str, change: Change[T], *, release: bool = False) -> T:
        """Read the head once, apply ``change``, commit at that version; retry on conflict."""
        key = self._head_key(run_id)
        conflict: fs.ConflictError | None = None
        with self._lock(key):
            for attempt in range(_MAX_ATTEMPTS):
                if conflict is not None:
                    time.sleep(backoff.delay(attempt, first=0.001, cap=0.1))
                claim: fs.Claim | None = None
                if self.own_runs:
                    with self._claims_lock:
                        claim = self._claims.get(key)
                        lost_at = self._fenced.get(key)
                    if lost_at is not None:  # a zombie stays fenced, even once the run is free
                        current = self.store.state(key)
                        epoch = current.epoch if current is not None else lost_at
                        raise fs.FencedError(key, lost_at, epoch, "reclaimed")
                    if claim is None:
                        claim = self._acquire(key)
                    elif claim.expires_in < self.ttl / 2:
                        try:
                            claim.renew()
                        except fs.FencedError as e:
                            if e.reason != "expired":
                                raise self._fence(key, e) from None
                            self._drop(key)
                            continue  # lapsed and nobody took it: take it again
                state = self.store.state(key)
                if claim is not None and state is not None and state.epoch != claim.epoch:
                    # reclaimed or taken over: say so before judging the change itself
                    raise self._fence(
                        key, fs.FencedError(key, claim.epoch, state.epoch, "reclaimed")
                    )
                exists = state is not None and state.exists
                head = state.value if state is not None and exists else _empty_head(run_id)
                new, result = change(head)
                try:
                    if new is not None:
                        version = state.visible_version if state is not None else 0
                        if claim is not None:
                            claim.commit(new, expected_version=version)
                        else:
                            self.store.put(key, new, expected_version=version, writer=self.owner)
                except fs.ConflictError as e:
                    conflict = e
                    continue
                except fs.ClaimHeldError as e:
                    raise RunClaimedError(e.key, e.holder, e.expires_in) from None
                except fs.FencedError as e:
                    if e.reason != "expired":
                        raise self._fence(key, e) from None
                    self._drop(key)
                    continue
                if release and claim is not None:
                    self._drop(key)
                    claim.release()
                return result
            assert conflict is not None
            raise conflict

    def _read(self, run_id: str) -> Head | None:
        snap = self.store.get(self._head_key(run_id))
        return None if snap is None else snap.value

    # -- runs ---------------------------------------------------------------------------------

    def _register_sync(self, record: RunRecord) -> None:
        data = _codec.dump(record)

        def change(head: Head) -> tuple[Head | None, None]:
            old = head["record"]
            if old is None:
                return {**head, "record": data}, None
            same = old.get("registration_id") == record.registration_id
            if same and record.registration_id is not None:
                return None, None  # a replayed registration: already applied
            raise RunExistsError(record.run_id, old.get("registration_id"))

        held = self.holds(record.run_id)
        try:
            self._change(record.run_id, change)
        except RunExistsError:
            if not held:  # give back only the claim this call took
                self._release_sync(record.run_id)
            raise

    async def register_run(self, record: RunRecord) -> None:
        """Create the run (and, with ``own_runs``, take its claim).

        ``RunExistsError`` if another registration already holds the id (the same
        ``registration_id`` again is a no-op); ``RunClaimedError`` if another owner is live.
        """
        await anyio.to_thread.run_sync(self._register_sync, record)

    async def get_run(self, *, run_id: str) -> RunRecord | None:
        """The run's record, or None."""
        head = await anyio.to_thread.run_sync(self._read, run_id)
        if head is None or head["record"] is None:
            return None
        return _codec.load(RunRecord, head["record"])

    def _list_runs_sync(self) -> list[RunRecord]:
        out: list[RunRecord] = []
        for key in self.store.keys(prefix=f"{self.prefix}runs/"):
            snap = self.store.get(key)
            if snap is not None and snap.value.get("record") is not None:
                out.append(_codec.load(RunRecord, snap.value["record"]))
        return out

    async def list_runs(
        self, *, parent_run_id: str | None = None, conversation_id: str | None = None
    ) -> list[RunRecord]:
        """Registered runs matching both filters, oldest ``started_at`` first."""
        records = await anyio.to_thread.run_sync(self._list_runs_sync)
        return sorted(
            (
                r
                for r in records
                if (parent_run_id is None or r.parent_run_id == parent_run_id)
                and (conversation_id is None or r.conversation_id == conversation_id)
            ),
            key=lambda r: r.started_at,
        )

    # -- events -------------------------------------------------------------------------------

    def _append_sync(self, event: StepEvent) -> None:
        data = _codec.dump(event)
        idem = event.idempotency_key

        def change(head: Head) -> tuple[Head | None, None]:
            if idem is not None and any(e.get("idempotency_key") == idem for e in head["events"]):
                return None, None
            return {**head, "events": [*head["events"], data]}, None

        self._change(event.run_id, change, release=event.kind in _TERMINAL_EVENTS)

    async def append_event(self, event: StepEvent) -> None:
        """Append ``event`` (once per ``idempotency_key``); a terminal event ends ownership."""
        await anyio.to_thread.run_sync(self._append_sync, event)

    async def list_events(self, *, run_id: str) -> list[StepEvent]:
        """The run's events in append order."""
        head = await anyio.to_thread.run_sync(self._read, run_id)
        return [] if head is None else [_codec.load(StepEvent, e) for e in head["events"]]

    # -- snapshots ----------------------------------------------------------------------------

    def _save_sync(self, snapshot: ContinuableSnapshot) -> None:
        body = _codec.dump_snapshot(snapshot)
        idem = snapshot.idempotency_key
        seq = None if idem is None else _sequence(idem)
        body_key = f"{self.prefix}snapshots/{segment(snapshot.run_id, 'run_id')}/{uuid.uuid4().hex}"
        written = False
        pruned: list[str] = []

        def change(head: Head) -> tuple[Head | None, None]:
            nonlocal written
            hw = head["high_water"]
            if idem is not None:
                if idem in head["snapshot_keys"]:
                    return None, None
                if seq is not None and hw is not None and seq < hw[0]:
                    return None, None
            if not written:  # the body lands before any head names it
                self.store.put(body_key, body, expected_version=0, writer=self.owner)
                written = True
            ref = {"key": body_key, "state": snapshot.state, "idem": idem}
            refs = [*head["snapshots"], ref]
            if self.max_snapshots_per_run is not None:
                kept = _retained(refs, self.max_snapshots_per_run)
                pruned[:] = [r["key"] for r in refs if r not in kept]
                refs = kept
            new = {**head, "snapshots": refs}
            if idem is not None:
                new["snapshot_keys"] = [*head["snapshot_keys"], idem]
                if seq is not None and (hw is None or seq > hw[0]):
                    new["high_water"] = [seq, [idem]]
            return new, None

        try:
            self._change(snapshot.run_id, change)
        except BaseException:
            if written:
                self._forget(body_key)
            raise
        for key in pruned:
            self._forget(key)

    def _forget(self, key: str) -> None:
        """Delete a snapshot body no head names (best effort: an orphan is only garbage)."""
        snap = self.store.get(key)
        if snap is not None:
            with suppress(fs.FencedStateError):
                self.store.delete(key, expected_version=snap.version, writer=self.owner)

    async def save_snapshot(self, snapshot: ContinuableSnapshot) -> None:
        """Store ``snapshot`` (once per ``idempotency_key``, as the harness's stores do)."""
        await anyio.to_thread.run_sync(self._save_sync, snapshot)

    def _snapshots_sync(self, run_id: str, include_interrupted: bool) -> list[ContinuableSnapshot]:
        head = self._read(run_id)
        if head is None:
            return []
        out = []
        for ref in head["snapshots"]:
            if include_interrupted or ref["state"] == "complete":
                snap = self.store.get(ref["key"])
                if snap is None:
                    raise fs.CorruptStateError(ref["key"], "snapshot named by its run is missing")
                out.append(_codec.load_snapshot(snap.value))
        return out

    async def latest_snapshot(
        self, *, run_id: str, include_interrupted: bool = False
    ) -> ContinuableSnapshot | None:
        """The newest ``complete`` snapshot (any state with ``include_interrupted``), or None."""

        def go() -> ContinuableSnapshot | None:
            head = self._read(run_id)
            if head is None:
                return None
            for ref in reversed(head["snapshots"]):
                if include_interrupted or ref["state"] == "complete":
                    snap = self.store.get(ref["key"])
                    if snap is None:
                        raise fs.CorruptStateError(ref["key"], "snapshot named by its run is gone")
                    return _codec.load_snapshot(snap.value)
            return None

        return await anyio.to_thread.run_sync(go)

    async def list_snapshots(
        self, *, run_id: str, include_interrupted: bool = False
    ) -> list[ContinuableSnapshot]:
        """Retained snapshots in write order (``interrupted`` ones only if asked)."""
        return await anyio.to_thread.run_sync(self._snapshots_sync, run_id, include_interrupted)

    # -- tool effects -------------------------------------------------------------------------

    def _effect_sync(self, record: ToolEffectRecord) -> None:
        def change(head: Head) -> tuple[Head | None, None]:
            moved = _effects.move(head["effects"], record)
            return (None if moved is None else {**head, "effects": moved}), None

        self._change(record.run_id, change)

    async def record_tool_effect(self, record: ToolEffectRecord) -> None:
        """Move the call's record to ``record`` (one compare-and-set; see ``_effects``)."""
        await anyio.to_thread.run_sync(self._effect_sync, record)

    async def get_tool_effect(self, *, run_id: str, tool_call_id: str) -> ToolEffectRecord | None:
        """The call's latest record, or None."""
        head = await anyio.to_thread.run_sync(self._read, run_id)
        return None if head is None else _effects.get(head["effects"], tool_call_id)

    async def list_unresolved_tool_effects(self, *, run_id: str) -> list[ToolEffectRecord]:
        """The run's calls whose latest record is ``started`` (unknown after a crash)."""
        head = await anyio.to_thread.run_sync(self._read, run_id)
        return [] if head is None else _effects.unresolved(head["effects"])
