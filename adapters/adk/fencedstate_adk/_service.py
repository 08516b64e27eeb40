"""``FencedSessionService``: ADK sessions in a fencedstate store, every append a compare-and-set.

Layout (``prefix`` defaults to ``"adk/"``; ids that are not valid key segments are encoded):

- ``{prefix}{app}/sessions/{user}/{session_id}``: ``{"id", "app_name", "user_id", "state",
  "events", "last_update_time"}``, the session-scoped state and the event list;
- ``{prefix}{app}/user_state/{user}``: the ``user:`` keys of one user (raw names);
- ``{prefix}{app}/app_state``: the ``app:`` keys of one app (raw names).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import re
import time
import uuid
from typing import Any

from google.adk.events import Event
from google.adk.sessions import BaseSessionService, Session
from google.adk.sessions.base_session_service import GetSessionConfig, ListSessionsResponse
from google.adk.sessions.state import State

import fencedstate as fs
from fencedstate.claim import Claim
from fencedstate.errors import ConflictError

from .errors import SessionMissingError, SharedStateConflictError, StaleSessionError

FORMAT = 1
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_MISSING: Any = object()
_SEEN = "_fencedstate_seen"  # attribute on a Session: {"version": int, "shared": {...}}


def _segment(raw: str, what: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise fs.InvalidKeyError(raw, f"{what} must be a non-empty str")
    if _SEGMENT.fullmatch(raw) and not raw.startswith("b64-"):
        return raw
    return "b64-" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _split_delta(delta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    sess: dict[str, Any] = {}
    for k, v in delta.items():
        if k.startswith(State.TEMP_PREFIX):
            continue
        if k.startswith(State.APP_PREFIX):
            app[k[len(State.APP_PREFIX) :]] = v
        elif k.startswith(State.USER_PREFIX):
            user[k[len(State.USER_PREFIX) :]] = v
        else:
            sess[k] = v
    return app, user, sess


class SessionClaim:
    """A held claim on one session (from ``FencedSessionService.claim_session``).

    While held, this service's appends to the session commit under the claim: other runners
    (other services, other processes) get ``ClaimHeldError``, and after a ``store.reclaim`` of
    the session key this holder's next append raises ``FencedError`` and writes nothing.
    """

    def __init__(self, service: FencedSessionService, key: str, claim: Claim) -> None:
        self.key = key
        self.claim = claim
        self._service = service

    def renew(self, ttl: float | None = None) -> None:
        """Extend the lease (``FencedError`` if it was reclaimed or expired)."""
        self.claim.renew(ttl)

    def release(self) -> None:
        """Give the claim up (idempotent)."""
        self._service._claims.pop(self.key, None)
        self.claim.release()

    def __enter__(self) -> SessionClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class FencedSessionService(BaseSessionService):
    """An ADK session service on a fencedstate store, safe to share between processes.

    - ``append_event`` is a compare-and-set against the version the ``Session`` object was
      loaded (or last appended) at: if another runner appended since, it raises
      ``StaleSessionError`` (a fencedstate ``ConflictError`` and an ADK ``StaleSessionError``)
      and writes nothing. Reload with ``get_session`` and run the turn again.
    - ``app:`` / ``user:`` state deltas are checked per key against the value the session
      loaded; a key someone else changed meanwhile raises ``SharedStateConflictError`` and
      nothing is written, so two sessions incrementing one ``user:`` counter both land (after
      the loser retries). Without a claim the session record and the shared keys commit in
      one atomic multi-key compare-and-set.
    - ``claim_session(...)`` holds an epoch-fenced claim on one session (see ``SessionClaim``).
    """

    def __init__(
        self, store: fs.Store | str, *, prefix: str = "adk/", writer: str | None = None
    ) -> None:
        self.store: fs.Store = fs.open_store(store) if isinstance(store, str) else store
        if not isinstance(self.store, fs.Store):
            raise fs.InvalidArgumentError(
                f"store must be a fencedstate Store or a path/URL, got {store!r}"
            )
        self.prefix = prefix
        self.writer = writer
        self._claims: dict[str, Claim] = {}

    # -- keys ----------------------------------------------------------------------------------

    def session_key(self, app_name: str, user_id: str, session_id: str) -> str:
        """The store key holding one session."""
        return (
            f"{self.prefix}{_segment(app_name, 'app_name')}/sessions/"
            f"{_segment(user_id, 'user_id')}/{_segment(session_id, 'session_id')}"
        )

    def user_state_key(self, app_name: str, user_id: str) -> str:
        """The store key holding the ``user:`` state of one user."""
        app, user = _segment(app_name, "app_name"), _segment(user_id, "user_id")
        return f"{self.prefix}{app}/user_state/{user}"

    def app_state_key(self, app_name: str) -> str:
        """The store key holding the ``app:`` state of one app."""
        return f"{self.prefix}{_segment(app_name, 'app_name')}/app_state"

    # -- claims --------------------------------------------------------------------------------

    def claim_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        owner: str,
        ttl: float = 30.0,
        wait: float = 0.0,
    ) -> SessionClaim:
        """Claim a session for this service's runner; use as a context manager to release it."""
        key = self.session_key(app_name, user_id, session_id)
        claim = self.store.claim(key, owner=owner, ttl=ttl, wait=wait)
        self._claims[key] = claim
        return SessionClaim(self, key, claim)

    # -- BaseSessionService ----------------------------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session (``ConflictError`` if the id exists); shared deltas are merged."""
        return await asyncio.to_thread(
            self._create, app_name, user_id, state or {}, session_id or str(uuid.uuid4())
        )

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """Load a session with its merged ``app:``/``user:`` state, or ``None``."""
        return await asyncio.to_thread(self._load, app_name, user_id, session_id, config)

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """List sessions (no events; merged state), oldest update first."""
        return await asyncio.to_thread(self._list, app_name, user_id)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete a session (no error if it does not exist)."""
        key = self.session_key(app_name, user_id, session_id)
        claim = self._claims.get(key)

        def run() -> None:
            if claim is not None:
                snap = claim.read()
                if snap is not None:
                    claim.delete(expected_version=snap.version)
                return
            for _ in range(100):
                snap = self.store.get(key)
                if snap is None:
                    return
                try:
                    self.store.delete(key, expected_version=snap.version)
                    return
                except ConflictError:
                    continue

        await asyncio.to_thread(run)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The ``user:`` keys of one user, raw names."""
        snap = await asyncio.to_thread(self.store.get, self.user_state_key(app_name, user_id))
        return {} if snap is None else dict(snap.value)

    async def append_event(self, session: Session, event: Event) -> Event:
        """Persist ``event`` (compare-and-set; see the class docstring), then apply it in memory."""
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        await asyncio.to_thread(self._persist, session, event)
        return self._commit_event_to_session(session, event)

    # -- implementation --------------------------------------------------------------------------

    def _build(
        self,
        rec: dict[str, Any],
        version: int,
        app: dict[str, Any],
        user: dict[str, Any],
        events: list[Any] | None,
    ) -> Session:
        state = dict(rec["state"])
        state.update({State.APP_PREFIX + k: v for k, v in app.items()})
        state.update({State.USER_PREFIX + k: v for k, v in user.items()})
        session = Session(
            id=rec["id"],
            app_name=rec["app_name"],
            user_id=rec["user_id"],
            state=state,
            events=[Event.model_validate(e) for e in (events or [])],
            last_update_time=rec["last_update_time"],
        )
        session._storage_update_marker = str(version)
        shared = {State.APP_PREFIX + k: copy.deepcopy(v) for k, v in app.items()}
        shared.update({State.USER_PREFIX + k: copy.deepcopy(v) for k, v in user.items()})
        setattr(session, _SEEN, {"version": version, "shared": shared})
        return session

    def _shared(self, app_name: str, user_id: str) -> tuple[fs.Snapshot | None, fs.Snapshot | None]:
        return (
            self.store.get(self.app_state_key(app_name)),
            self.store.get(self.user_state_key(app_name, user_id)),
        )

    def _create(
        self, app_name: str, user_id: str, state: dict[str, Any], session_id: str
    ) -> Session:
        key = self.session_key(app_name, user_id, session_id)
        app_d, user_d, sess_d = _split_delta(state)
        rec = {
            "format": FORMAT,
            "id": session_id,
            "app_name": app_name,
            "user_id": user_id,
            "state": sess_d,
            "events": [],
            "last_update_time": time.time(),
        }
        akey, ukey = self.app_state_key(app_name), self.user_state_key(app_name, user_id)
        while True:
            asnap, usnap = self._shared(app_name, user_id)
            app = {**(asnap.value if asnap else {}), **app_d}
            user = {**(usnap.value if usnap else {}), **user_d}
            writes: dict[str, tuple[Any, int | None]] = {key: (rec, 0)}
            if app_d:
                writes[akey] = (app, asnap.version if asnap else 0)
            if user_d:
                writes[ukey] = (user, usnap.version if usnap else 0)
            try:
                done = self.store.put_many(writes, writer=self.writer)
            except ConflictError as exc:
                if exc.key == key:
                    raise
                continue  # a shared key moved: merge again (creation is last-writer-wins)
            return self._build(rec, done[key].version, app, user, [])

    def _load(
        self, app_name: str, user_id: str, session_id: str, config: GetSessionConfig | None
    ) -> Session | None:
        snap = self.store.get(self.session_key(app_name, user_id, session_id))
        if snap is None:
            return None
        asnap, usnap = self._shared(app_name, user_id)
        events: list[Any] = list(snap.value["events"])
        if config is not None:
            if config.after_timestamp is not None:
                events = [e for e in events if e.get("timestamp", 0) >= config.after_timestamp]
            if config.num_recent_events is not None:
                n = config.num_recent_events
                events = events[-n:] if n > 0 else []
        return self._build(
            snap.value,
            snap.version,
            asnap.value if asnap else {},
            usnap.value if usnap else {},
            events,
        )

    def _list(self, app_name: str, user_id: str | None) -> ListSessionsResponse:
        base = f"{self.prefix}{_segment(app_name, 'app_name')}/sessions/"
        if user_id is not None:
            base += _segment(user_id, "user_id") + "/"
        out: list[Session] = []
        asnap = self.store.get(self.app_state_key(app_name))
        for key in self.store.keys(prefix=base):
            snap = self.store.get(key)
            if snap is None:
                continue
            usnap = self.store.get(self.user_state_key(app_name, snap.value["user_id"]))
            out.append(
                self._build(
                    snap.value,
                    snap.version,
                    asnap.value if asnap else {},
                    usnap.value if usnap else {},
                    [],
                )
            )
        out.sort(key=lambda s: s.last_update_time)
        return ListSessionsResponse(sessions=out)

    def _persist(self, session: Session, event: Event) -> None:
        key = self.session_key(session.app_name, session.user_id, session.id)
        seen = getattr(session, _SEEN, None)
        if seen is None:
            raise fs.InvalidArgumentError(
                f"session {key!r} was not loaded by a FencedSessionService (get_session first)"
            )
        delta = dict(event.actions.state_delta) if event.actions else {}
        app_d, user_d, sess_d = _split_delta(delta)
        claim = self._claims.get(key)
        akey, ukey = (
            self.app_state_key(session.app_name),
            self.user_state_key(session.app_name, session.user_id),
        )
        for _ in range(1000):
            snap = claim.read() if claim is not None else self.store.get(key)
            if snap is None:
                raise SessionMissingError(key)
            if snap.version != seen["version"]:
                raise StaleSessionError(key, seen["version"], snap.version)
            rec = dict(snap.value)
            rec["state"] = {**rec["state"], **sess_d}
            rec["events"] = [*rec["events"], event.model_dump(mode="json", exclude_none=True)]
            rec["last_update_time"] = max(
                time.time(), float(event.timestamp or 0.0), rec["last_update_time"] + 1e-6
            )
            asnap, usnap = self._shared(session.app_name, session.user_id)
            writes: dict[str, tuple[Any, int | None]] = {}
            for skey, part, cur, prefix in (
                (akey, app_d, asnap, State.APP_PREFIX),
                (ukey, user_d, usnap, State.USER_PREFIX),
            ):
                if not part:
                    continue
                doc = dict(cur.value) if cur is not None else {}
                for k, v in part.items():
                    now, was = doc.get(k, _MISSING), seen["shared"].get(prefix + k, _MISSING)
                    if (now is _MISSING) != (was is _MISSING) or (
                        now is not _MISSING and now != was
                    ):
                        ver = cur.version if cur is not None else 0
                        raise SharedStateConflictError(skey, ver, ver, state_key=prefix + k)
                    doc[k] = v
                writes[skey] = (doc, cur.version if cur is not None else 0)
            try:
                if claim is None:
                    done = self.store.put_many(
                        {key: (rec, snap.version), **writes}, writer=self.writer
                    )
                    version = done[key].version
                else:
                    claim.renew()  # FencedError here if reclaimed: nothing written
                    if writes:
                        self.store.put_many(writes, writer=self.writer)
                    version = claim.commit(rec, expected_version=snap.version).version
            except ConflictError as exc:
                if exc.key == key:
                    raise StaleSessionError(key, seen["version"], exc.actual_version) from exc
                continue  # a shared key moved: re-read and check it again
            shared = seen["shared"]
            shared.update({State.APP_PREFIX + k: copy.deepcopy(v) for k, v in app_d.items()})
            shared.update({State.USER_PREFIX + k: copy.deepcopy(v) for k, v in user_d.items()})
            seen["version"] = version
            session._storage_update_marker = str(version)
            session.last_update_time = rec["last_update_time"]
            return
        raise SharedStateConflictError(akey, 0, 0, state_key="")  # pragma: no cover
