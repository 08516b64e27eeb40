"""``FencedFlowPersistence``: CrewAI flow state saved with compare-and-set under a fenced claim.

How a kickoff uses it (all automatic once the persistence is attached to a flow):

* ``load_state(flow_id)`` (called by ``kickoff(inputs={"id": ...})``) claims the key
  ``<key_prefix><flow_id>`` for this kickoff (waiting up to ``claim_timeout`` seconds while
  another kickoff holds it) and remembers the version it read.
* every ``save_state`` commits under that claim with ``expected_version`` = the version the
  flow *method* started from. The store checks version, epoch and lease atomically, so:

  - two parallel ``@listen`` methods that both started from version ``v``: the first save wins,
    the second gets :class:`fencedstate.ConflictError` instead of silently overwriting;
  - a kickoff whose claim was reclaimed or whose lease expired (a stalled, "zombie" process)
    gets :class:`fencedstate.FencedError` and the stored state is untouched.

* when the kickoff ends (success or failure) the claim is released, so the next kickoff on the
  same flow id gets it immediately. A crashed process's claim expires after ``ttl`` seconds.
* a kickoff paused for async human feedback (``HumanFeedbackPending``) commits the state and the
  pending context together (``save_pending_feedback``) and gives its claim back: CrewAI ends a
  paused kickoff without ``EXECUTION_END``. ``Flow.from_pending`` (any process) reads both back
  with ``load_pending_feedback``; the resume's saves commit against the version read there, and
  ``clear_pending_feedback`` drops the marker. Saves in between keep the marker, so a resume
  that fails part-way can be retried, as with ``SQLiteFlowPersistence``.

CrewAI wraps errors raised by ``save_state`` in ``RuntimeError("State persistence failed: ...")``;
:func:`fenced_cause` digs the typed fencedstate error out of any exception chain.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crewai.flow.persistence.base import FlowPersistence
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_serializer, field_validator

import fencedstate as fs
from fencedstate.core import args
from fencedstate.core.keys import validate_key
from fencedstate.integrations import KeyedLocks, default_owner, resolve_store

from ._kickoff import KICKOFF, STEP, Kickoff, Session, SessionKey, install_hooks, release
from ._record import jsonable, merged, pending_of, state_of, to_json

if TYPE_CHECKING:
    from crewai.flow.async_feedback.types import PendingFeedbackContext

__all__ = ["FencedFlowPersistence", "fenced_cause"]


def fenced_cause(exc: BaseException | None) -> fs.FencedStateError | None:
    """The fencedstate error in ``exc``'s cause/context chain (CrewAI wraps them), or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, fs.FencedStateError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class FencedFlowPersistence(FlowPersistence):
    """CrewAI ``FlowPersistence`` over a fencedstate store: claim on load, fenced CAS on save.

    ``FencedFlowPersistence(store)`` takes a fencedstate store (or a directory path, opened with
    :func:`fencedstate.open_store`). Each flow id is one key, ``key_prefix + flow_id``; the flow
    id must therefore follow fencedstate's key grammar (UUIDs do).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")  # a typo is refused

    persistence_type: str = Field(default="FencedFlowPersistence")
    store: Any = Field(description="fencedstate store (or its directory path)")
    key_prefix: str = Field(default="crewai/flows/")
    ttl: float = Field(default=30.0, gt=0, description="lease of a kickoff's claim, seconds")
    claim_timeout: float = Field(
        default=60.0, ge=0, description="how long a kickoff waits for another to release the flow"
    )
    writer: str = Field(default="crewai-flow")

    _detached_versions: dict[str, int] = PrivateAttr(default_factory=dict)
    _detached_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    # one lock per flow id: this object's own detached callers go one at a time
    _flow_locks: KeyedLocks = PrivateAttr(default_factory=KeyedLocks)
    _heartbeat: threading.Thread | None = PrivateAttr(default=None)
    _hb_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _hb_sessions: dict[int, Session] = PrivateAttr(default_factory=dict)

    def __init__(self, store: Any = None, /, **kwargs: Any) -> None:
        if store is not None:
            kwargs["store"] = store
        if isinstance(kwargs.get("store"), str | os.PathLike):
            # opened here, not in the validator, so a bad location raises fencedstate's own
            # InvalidArgumentError instead of a pydantic ValidationError wrapping it
            kwargs["store"] = fs.open_store(kwargs["store"])
        super().__init__(**kwargs)
        install_hooks()

    @field_validator("store", mode="before")
    @classmethod
    def _open_store(cls, value: Any) -> Any:
        return resolve_store(value)  # InvalidStoreError (a ValueError) for anything else

    @field_serializer("store")
    def _store_path(self, store: Any) -> str:
        for attr in ("path", "root", "directory", "dir"):
            where = getattr(store, attr, None)
            if isinstance(where, str | os.PathLike):
                return str(Path(where))
        return repr(store)

    @field_validator("ttl", mode="before")
    @classmethod
    def _check_ttl(cls, value: Any) -> float:
        return args.ttl(value)  # within the store's lease limit; ttl=True is refused

    @field_validator("claim_timeout", mode="before")
    @classmethod
    def _check_claim_timeout(cls, value: Any) -> float:
        return args.wait(value, "claim_timeout")

    @field_validator("writer")
    @classmethod
    def _check_writer(cls, value: str) -> str:
        """An actor name that still is one as a claim owner (``writer@host:pid:xxxxxxxx``)."""
        args.actor("writer", value)
        args.actor("writer (with the owner suffix @host:pid:xxxxxxxx)", default_owner(value))
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if value and not value.endswith("/"):
            value += "/"
        validate_key(value + "x")
        return value

    # ----------------------------------------------------------------- FlowPersistence API

    def init_db(self) -> None:
        """Nothing to create: the store directory already exists."""

    def flow_key(self, flow_uuid: str) -> str:
        """The store key holding ``flow_uuid``'s state (``InvalidKeyError`` if it is unusable)."""
        key = f"{self.key_prefix}{flow_uuid}"
        validate_key(key)
        return key

    def load_state(self, flow_uuid: str) -> dict[str, Any] | None:
        """Return the flow's saved state; inside a kickoff, first claim the flow for this kickoff.

        Raises ``fencedstate.ClaimHeldError`` if another kickoff keeps the flow for longer than
        ``claim_timeout`` seconds. Outside a kickoff this is a plain, lock-free read.
        """
        key = self.flow_key(flow_uuid)
        kickoff = KICKOFF.get()
        if kickoff is None:  # not inside a kickoff (hooks not run): a plain read
            with self._flow_locks.of(flow_uuid):
                snap = self.store.get(key)
                with self._detached_lock:
                    self._detached_versions[flow_uuid] = snap.version if snap else 0
            return state_of(snap)
        session = self._session(kickoff, flow_uuid, key)
        with session.lock:
            snap = session.claim.read()
            session.version = snap.version if snap else 0
        return state_of(snap)

    def save_state(
        self, flow_uuid: str, method_name: str, state_data: dict[str, Any] | BaseModel
    ) -> None:
        """Commit the state against the version the running method started from.

        Raises ``fencedstate.ConflictError`` when another method or writer committed since,
        ``fencedstate.FencedError`` when this kickoff's claim was reclaimed or expired. A
        pending-feedback marker already stored is kept (``clear_pending_feedback`` drops it).
        """
        value = {"state": to_json(state_data), "method": str(method_name)}
        self._commit_value(flow_uuid, value, keep_pending=True)

    def save_pending_feedback(
        self,
        flow_uuid: str,
        context: PendingFeedbackContext,
        state_data: dict[str, Any] | BaseModel,
    ) -> None:
        """Commit the state and the pending feedback context in one compare-and-set.

        Inside a kickoff (paused for feedback) the kickoff's claim on the flow is then given
        back, so ``from_pending(...).resume(...)`` in any process can take it.
        """
        state = to_json(state_data)
        pending = {"context": jsonable(context.to_dict()), "state": state}
        value = {"state": state, "method": str(context.method_name), "pending": pending}
        self._commit_value(flow_uuid, value, keep_pending=False)
        kickoff = KICKOFF.get()
        if kickoff is not None:
            skey: SessionKey = (id(self), flow_uuid)
            with kickoff.lock:
                session = kickoff.sessions.pop(skey, None)
                if session is not None:
                    kickoff.paused[skey] = session.version
            if session is not None:
                release(session)

    def load_pending_feedback(
        self, flow_uuid: str
    ) -> tuple[dict[str, Any], PendingFeedbackContext] | None:
        """The state and context saved by ``save_pending_feedback``; None if none is pending.

        Outside a kickoff (``Flow.from_pending``), later saves of this object commit against
        the version read here.
        """
        from crewai.flow.async_feedback.types import PendingFeedbackContext

        key = self.flow_key(flow_uuid)
        kickoff = KICKOFF.get()
        if kickoff is None:
            with self._flow_locks.of(flow_uuid):
                snap = self.store.get(key)
                with self._detached_lock:
                    self._detached_versions[flow_uuid] = snap.version if snap else 0
        else:
            session = self._session(kickoff, flow_uuid, key)
            with session.lock:
                snap = session.claim.read()
                session.version = snap.version if snap else 0
        pending = pending_of(snap)
        if pending is None:
            return None
        state = json.loads(json.dumps(pending["state"]))
        return state, PendingFeedbackContext.from_dict(pending["context"])

    def clear_pending_feedback(self, flow_uuid: str) -> None:
        """Drop the pending-feedback marker (the state stays); a no-op if none is stored."""
        key = self.flow_key(flow_uuid)
        kickoff = KICKOFF.get()
        if kickoff is None:
            with self._flow_locks.of(flow_uuid):
                snap = self.store.get(key)
                if pending_of(snap) is None:
                    return
        self._commit_value(flow_uuid, None, keep_pending=False)

    # ----------------------------------------------------------------- commits

    def _commit_value(
        self, flow_uuid: str, value: dict[str, Any] | None, *, keep_pending: bool
    ) -> None:
        """Commit ``value`` (None: the stored value without its pending marker).

        ``keep_pending`` carries a stored pending marker into ``value``. The stored value is
        read only when needed and only to copy the marker: the expected version is decided
        before, once, and a moved key fails the compare-and-set.
        """
        key = self.flow_key(flow_uuid)
        kickoff = KICKOFF.get()
        if kickoff is None:
            self._save_detached(flow_uuid, key, value, keep_pending)
            return
        skey: SessionKey = (id(self), flow_uuid)
        step = STEP.get()
        with kickoff.lock:
            fresh = skey not in kickoff.sessions
            paused = kickoff.paused.pop(skey, None) if fresh else None
        session = self._session(kickoff, flow_uuid, key)
        with session.lock:
            if step is not None and skey in step:
                expected = step[skey]
            elif paused is not None:
                # saved again after a pause (a provider saved, then CrewAI does): the version
                # this kickoff committed; anyone who took the flow since makes this conflict
                expected = paused
            elif step is not None or fresh:
                # This method began before the kickoff ever read the flow: only a new flow
                # is safe.
                expected = 0
            else:
                expected = session.version
            cur = session.claim.read()
            if value is None:  # clearing the marker derives from the stored value itself
                expected = cur.version if cur is not None else 0
            full = merged(cur, expected, value, keep_pending)
            if full is None:
                return
            snap = session.claim.commit(full, expected_version=expected)
            session.version = snap.version
        if step is not None:
            step[skey] = snap.version

    # ----------------------------------------------------------------- helpers

    def _session(self, kickoff: Kickoff, flow_uuid: str, key: str) -> Session:
        skey: SessionKey = (id(self), flow_uuid)
        with kickoff.lock:
            session = kickoff.sessions.get(skey)
            if session is not None:
                return session
        claim = self._claim(key)
        snap = claim.read()
        session = Session(key=key, claim=claim, version=snap.version if snap else 0)
        with kickoff.lock:
            existing = kickoff.sessions.get(skey)
            if existing is None:
                kickoff.sessions[skey] = session
        if existing is not None:  # lost a race with a sibling method of the same kickoff
            release(session)
            return existing
        self._track(session)
        return session

    def _claim(self, key: str) -> Any:
        owner = default_owner(self.writer)
        return self.store.claim(key, owner=owner, ttl=self.ttl, wait=self.claim_timeout)

    def _save_detached(
        self, flow_uuid: str, key: str, value: dict[str, Any] | None, keep_pending: bool
    ) -> None:
        with self._flow_locks.of(flow_uuid):
            with self._detached_lock:
                expected = self._detached_versions.get(flow_uuid, 0)
            with self._claim(key) as claim:
                cur = claim.read()
                if value is None:  # clearing the marker derives from the stored value itself
                    expected = cur.version if cur is not None else 0
                full = merged(cur, expected, value, keep_pending)
                if full is None:
                    return
                snap = claim.commit(full, expected_version=expected)
            with self._detached_lock:
                self._detached_versions[flow_uuid] = snap.version

    def _track(self, session: Session) -> None:
        """Keep ``session``'s lease alive from a daemon thread while its kickoff runs."""
        with self._hb_lock:
            self._hb_sessions[id(session)] = session
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._heartbeat = threading.Thread(
                    target=_heartbeat_loop,
                    args=(weakref.ref(self),),
                    name="fencedstate-crewai-heartbeat",
                    daemon=True,
                )
                self._heartbeat.start()

    def _renew_live(self) -> bool:
        with self._hb_lock:
            sessions = list(self._hb_sessions.values())
            for s in sessions:
                if s.released:
                    del self._hb_sessions[id(s)]
            if not self._hb_sessions:
                self._heartbeat = None
                return False
        for s in sessions:
            if s.released:
                continue
            with s.lock:
                if s.released:
                    continue
                try:
                    s.claim.renew()
                except fs.FencedStateError:
                    # Lost the claim (reclaimed or expired): the next save raises FencedError.
                    with self._hb_lock:
                        self._hb_sessions.pop(id(s), None)
        return True


def _heartbeat_loop(ref: weakref.ref[FencedFlowPersistence]) -> None:
    while True:
        persistence = ref()
        if persistence is None:
            return
        interval = persistence.ttl / 3.0
        del persistence
        time.sleep(interval)
        persistence = ref()
        if persistence is None or not persistence._renew_live():
            return
        del persistence
