"""``FencedSessionStore``: Agent Framework session snapshots in fencedstate keys, sets are CAS.

Layout (``prefix`` defaults to ``"agent_framework/sessions/"``): ``{prefix}{id}`` holds
``{"format": 1, "session": AgentSession.to_dict()}``. Ids are escaped into one key segment
(``encode_segment``).
"""

from __future__ import annotations

import asyncio
import warnings
import weakref

from agent_framework import AgentSession, SessionStore
from agent_framework._feature_stage import ExperimentalWarning

import fencedstate as fs
from fencedstate.core import args
from fencedstate.errors import ConflictError
from fencedstate.integrations import ClaimRegistry, KeyedLocks, retry_conflicts

from ._common import FORMAT, ClaimsMixin, SessionClaim, resolve_prefix, resolve_store, segment
from .errors import StaleSessionError

# The (key, version) each AgentSession object was read or last stored at, per process.
_SEEN: weakref.WeakKeyDictionary[AgentSession, tuple[str, int]] = weakref.WeakKeyDictionary()


# Subclassing the experimental SessionStore warns once at import; docs/agent_framework.md says so.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ExperimentalWarning)

    class FencedSessionStore(ClaimsMixin, SessionStore):
        """A ``SessionStore`` on a fencedstate store, safe to share between processes.

        ``get`` returns an independent copy and remembers the version it was read at; ``set`` is
        a compare-and-set against that version (a session object never read from this store must
        be new: its id must not exist). A continuation that lost the race gets
        ``StaleSessionError`` (a ``fencedstate.ConflictError``) and nothing is written, where
        ``FileSessionStore`` keeps only the last writer's snapshot. ``claim_session`` holds an
        epoch-fenced claim on one id (see ``SessionClaim``). Sets through one store object on
        one id run one at a time (threads and tasks), so one ``AgentSession`` stored again and
        again from several callers is never refused against its own earlier store.
        """

        def __init__(
            self,
            store: fs.Store | str,
            *,
            prefix: str = "agent_framework/sessions/",
            writer: str | None = None,
        ) -> None:
            """Keep sessions in ``store`` (a Store, or a directory/URL for ``fs.open_store``).

            ``prefix`` ends in ``/``; ``writer`` names this store in the key history. A bad
            option raises ``fs.InvalidArgumentError`` naming it, before the store is opened.
            """
            super().__init__()
            self.prefix = resolve_prefix(prefix)
            self.writer = args.optional_actor("writer", writer)
            self.store = resolve_store(store)
            self._claims = ClaimRegistry()
            self._locks = KeyedLocks()

        def session_key(self, session_id: str) -> str:
            """The store key holding one session snapshot."""
            return f"{self.prefix}{segment(session_id, 'session_id')}"

        def claim_session(
            self, session_id: str, *, owner: str, ttl: float = 30.0, wait: float = 0.0
        ) -> SessionClaim:
            """Claim one session id for this store's ``set``/``delete``; a context manager."""
            return self._hold(self.session_key(session_id), owner, ttl, wait)

        def version_of(self, session: AgentSession) -> int | None:
            """The stored version ``session`` was read or last stored at (None: not from here)."""
            seen = _SEEN.get(session)
            return None if seen is None else seen[1]

        def _get(self, session_id: str) -> AgentSession | None:
            key = self.session_key(session_id)
            snap = self._read(key)
            if snap is None:
                return None
            session = AgentSession.from_dict(snap.value["session"])
            _SEEN[session] = (key, snap.version)
            return session

        def _set(self, session_id: str, session: AgentSession) -> None:
            if not isinstance(session, AgentSession):
                raise fs.InvalidArgumentError(f"session must be an AgentSession, got {session!r}")
            key = self.session_key(session_id)
            with self._locks.of(key):  # this store's callers on one id, one at a time
                self._set_locked(key, session)

        def _set_locked(self, key: str, session: AgentSession) -> None:
            seen = _SEEN.get(session)  # read once: the compare-and-set uses this version
            expected = seen[1] if seen is not None and seen[0] == key else 0
            value = {"format": FORMAT, "session": session.to_dict()}
            try:
                snap = self._commit(key, value, expected)
            except ConflictError as exc:
                raise StaleSessionError(key, expected, exc.actual_version) from exc
            _SEEN[session] = (key, snap.version)

        def _delete(self, session_id: str) -> None:
            key = self.session_key(session_id)

            def attempt() -> None:
                snap = self._read(key)
                if snap is not None:
                    self._remove(key, snap.version)

            retry_conflicts(attempt)  # a concurrent set: delete the newer snapshot too

        async def get(self, session_id: str) -> AgentSession | None:
            """An independent copy of the stored session, or ``None``."""
            return await asyncio.to_thread(self._get, session_id)

        async def set(self, session_id: str, session: AgentSession) -> None:
            """Store ``session`` if the stored one is still the version it was read at."""
            await asyncio.to_thread(self._set, session_id, session)

        async def delete(self, session_id: str) -> None:
            """Delete the stored session, if present."""
            await asyncio.to_thread(self._delete, session_id)
