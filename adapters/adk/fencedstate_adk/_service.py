"""``FencedSessionService``: ADK sessions in a fencedstate store, every append a compare-and-set.

Layout (``prefix`` defaults to ``"adk/"``; every id is one key segment, escaped by
``fencedstate.integrations.encode_segment``):

- ``{prefix}{app}/sessions/{user}/{session_id}``: ``{"id", "app_name", "user_id", "state",
  "events", "last_update_time"}``, the session-scoped state and the event list;
- ``{prefix}{app}/user_state/{user}``: the ``user:`` keys of one user (raw names);
- ``{prefix}{app}/app_state``: the ``app:`` keys of one app (raw names).
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from typing import Any

from google.adk.events import Event
from google.adk.sessions import BaseSessionService, Session
from google.adk.sessions.base_session_service import GetSessionConfig, ListSessionsResponse
from google.adk.sessions.state import State

import fencedstate as fs
from fencedstate.core import args
from fencedstate.errors import ConflictError
from fencedstate.integrations import (
    ClaimRegistry,
    KeyedLocks,
    SessionClaim,
    encode_segment,
    resolve_prefix,
    resolve_store,
    retry_conflicts,
)

from .errors import (
    SessionExistsError,
    SessionMissingError,
    SharedStateConflictError,
    StaleSessionError,
)

FORMAT = 1
_MISSING: Any = object()
# Attribute on a Session: {"version": int, "shared": {state key: value}, "versions": {key: int}}
_SEEN = "_fencedstate_seen"


def _segment(raw: object, what: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise fs.InvalidKeyError(raw, f"{what} must be a non-empty str")
    return encode_segment(raw)


def _state(state: object) -> dict[str, Any]:
    """``create_session``'s ``state``: a dict with str keys (None: empty)."""
    if state is None:
        return {}
    if not isinstance(state, dict):
        raise fs.InvalidArgumentError(
            f"state must be a dict of state keys to values, or None, got "
            f"{type(state).__name__}: {state!r}"
        )
    bad = [k for k in state if not isinstance(k, str)]
    if bad:
        raise fs.InvalidArgumentError(f"state keys must be strs, got {bad[0]!r}")
    return state


def _plain_conflict(exc: ConflictError) -> bool:
    """A bare version conflict (a key moved between read and commit), not a semantic one."""
    return type(exc) is ConflictError


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
    - Errors are ADK's where ADK has one: ``create_session`` with an existing id raises
      ``SessionExistsError`` (an ADK ``AlreadyExistsError``), appending to a session that is not
      stored (never created, or deleted) raises ``SessionMissingError`` (an ADK
      ``SessionNotFoundError``).
    - An event delivered again (same id, same content) is stored once, as
      ``InMemorySessionService`` does; appends through one service object to one session run
      one at a time (threads and tasks alike).
    """

    def __init__(
        self, store: fs.Store | str, *, prefix: str = "adk/", writer: str | None = None
    ) -> None:
        """Keep sessions in ``store`` (a Store, or a directory/URL for ``fs.open_store``).

        ``prefix`` is a key prefix ending in ``/``; ``writer`` names this service in the key
        history (None: unnamed). A bad one raises ``fs.InvalidArgumentError`` naming it, before
        the store is opened.
        """
        self.prefix = resolve_prefix(prefix)
        self.writer = args.optional_actor("writer", writer)
        self.store: fs.Store = resolve_store(store)
        self._claims = ClaimRegistry()
        self._locks = KeyedLocks()

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
        return self._claims.hold(self.store, key, owner=owner, ttl=ttl, wait=wait)

    async def close(self) -> None:
        """Nothing to close: the store stays open for its other users (as ``async with`` ends)."""

    async def __aenter__(self) -> FencedSessionService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- BaseSessionService ----------------------------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session (``SessionExistsError`` if the id exists); shared deltas merged.

        ``state`` must be None or a dict with str keys: else ``fs.InvalidArgumentError``, nothing
        written.
        """
        return await asyncio.to_thread(
            self._create, app_name, user_id, _state(state), session_id or str(uuid.uuid4())
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
        """Delete a session (no error if it does not exist).

        A concurrent append is retried (with backoff) until the delete lands; the session is
        gone when this returns, or a typed error says why not.
        """
        key = self.session_key(app_name, user_id, session_id)

        def attempt() -> None:
            claim = self._claims.get(key)
            snap = claim.read() if claim is not None else self.store.get(key)
            if snap is None:
                return
            if claim is not None:
                claim.delete(expected_version=snap.version)
            else:
                self.store.delete(key, expected_version=snap.version, writer=self.writer)

        async with self._locks.of(key):
            await asyncio.to_thread(retry_conflicts, attempt)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The ``user:`` keys of one user, raw names."""
        snap = await asyncio.to_thread(self.store.get, self.user_state_key(app_name, user_id))
        return {} if snap is None else dict(snap.value)

    async def append_event(self, session: Session, event: Event) -> Event:
        """Persist ``event`` (compare-and-set; see the class docstring), then apply it in memory.

        ``session`` must be an ADK ``Session`` and ``event`` an ADK ``Event``: else
        ``fs.InvalidArgumentError``, nothing written.
        """
        if not isinstance(session, Session):
            raise fs.InvalidArgumentError(
                f"session must be an ADK Session, got {type(session).__name__}: {session!r} "
                "(load it with get_session, or create_session)"
            )
        if not isinstance(event, Event):
            raise fs.InvalidArgumentError(
                f"event must be an ADK Event, got {type(event).__name__}: {event!r}"
            )
        if event.partial:
            return event
        key = self.session_key(session.app_name, session.user_id, session.id)
        async with self._locks.of(key):
            self._apply_temp_state(session, event)
            event = self._trim_temp_delta_state(event)
            if not await asyncio.to_thread(self._persist, key, session, event):
                return event  # delivered before: already stored, already applied
            return self._commit_event_to_session(session, event)

    # -- implementation --------------------------------------------------------------------------

    def _build(
        self,
        rec: dict[str, Any],
        version: int,
        asnap: fs.Snapshot | None,
        usnap: fs.Snapshot | None,
        events: list[Any] | None,
    ) -> Session:
        app: dict[str, Any] = asnap.value if asnap is not None else {}
        user: dict[str, Any] = usnap.value if usnap is not None else {}
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
        versions = {
            self.app_state_key(rec["app_name"]): 0 if asnap is None else asnap.version,
            self.user_state_key(rec["app_name"], rec["user_id"]): 0
            if usnap is None
            else usnap.version,
        }
        setattr(session, _SEEN, {"version": version, "shared": shared, "versions": versions})
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

        def attempt() -> Session:
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
                    raise SessionExistsError(key, session_id, exc.actual_version) from exc
                raise  # a shared key moved: merge again (creation is last-writer-wins)
            return self._build(
                rec, done[key].version, done.get(akey, asnap), done.get(ukey, usnap), []
            )

        return retry_conflicts(attempt, retry_if=_plain_conflict)

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
        return self._build(snap.value, snap.version, asnap, usnap, events)

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
            out.append(self._build(snap.value, snap.version, asnap, usnap, []))
        out.sort(key=lambda s: s.last_update_time)
        return ListSessionsResponse(sessions=out)

    def _persist(self, key: str, session: Session, event: Event) -> bool:
        """Store ``event`` in the session; False if it was stored before (a re-delivery)."""
        seen = getattr(session, _SEEN, None)
        expected = None if seen is None else int(seen["version"])  # read once
        entry = event.model_dump(mode="json", exclude_none=True)
        delta = dict(event.actions.state_delta) if event.actions else {}
        app_d, user_d, sess_d = _split_delta(delta)
        akey, ukey = (
            self.app_state_key(session.app_name),
            self.user_state_key(session.app_name, session.user_id),
        )

        def attempt() -> tuple[int, dict[str, int]] | None:
            claim = self._claims.get(key)
            snap = claim.read() if claim is not None else self.store.get(key)
            if snap is None:
                raise SessionMissingError(key)
            if any(e == entry for e in snap.value["events"] if e.get("id") == event.id):
                return None  # the same event delivered again: stored once
            if seen is None or expected is None:
                raise fs.InvalidArgumentError(
                    f"session {key!r} was not loaded by a FencedSessionService (get_session first)"
                )
            if claim is not None:
                claim.renew()  # the fence first: FencedError if reclaimed, nothing written
            if snap.version != expected:
                raise StaleSessionError(key, expected, snap.version)
            rec = dict(snap.value)
            rec["state"] = {**rec["state"], **sess_d}
            rec["events"] = [*rec["events"], entry]
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
                ver = cur.version if cur is not None else 0
                for k, v in part.items():
                    now, was = doc.get(k, _MISSING), seen["shared"].get(prefix + k, _MISSING)
                    if (now is _MISSING) != (was is _MISSING) or (
                        now is not _MISSING and now != was
                    ):
                        loaded = int(seen.get("versions", {}).get(skey, 0))
                        raise SharedStateConflictError(skey, loaded, ver, state_key=prefix + k)
                    doc[k] = v
                writes[skey] = (doc, ver)
            done: dict[str, fs.Snapshot] = {}
            try:
                if claim is None:
                    done = self.store.put_many(
                        {key: (rec, snap.version), **writes}, writer=self.writer
                    )
                    version = done[key].version
                else:
                    if writes:
                        done = self.store.put_many(writes, writer=self.writer)
                    version = claim.commit(rec, expected_version=snap.version).version
            except ConflictError as exc:
                if exc.key == key:
                    raise StaleSessionError(key, expected, exc.actual_version) from exc
                raise  # a shared key moved: re-read and check it again (retried)
            session.last_update_time = rec["last_update_time"]
            return version, {k: done[k].version for k in writes}

        stored = retry_conflicts(attempt, retry_if=_plain_conflict)
        if stored is None:
            return False
        version, shared_versions = stored
        assert seen is not None
        seen.setdefault("versions", {}).update(shared_versions)
        shared = seen["shared"]
        shared.update({State.APP_PREFIX + k: copy.deepcopy(v) for k, v in app_d.items()})
        shared.update({State.USER_PREFIX + k: copy.deepcopy(v) for k, v in user_d.items()})
        seen["version"] = version
        session._storage_update_marker = str(version)
        return True
