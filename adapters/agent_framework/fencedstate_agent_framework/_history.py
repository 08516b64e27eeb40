"""``FencedHistoryProvider``: one session's messages in one fencedstate key, every save a CAS.

Layout (``prefix`` defaults to ``"agent_framework/history/"``): ``{prefix}sessions/{id}`` holds
``{"format": 1, "session_id": id, "messages": [Message.to_dict(), ...]}``; a ``None`` session id
uses ``{prefix}default``. Ids are escaped into one key segment (``encode_segment``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, ClassVar

from agent_framework import AgentSession, HistoryProvider, Message, SessionContext, SupportsAgentRun
from agent_framework._sessions import filter_new_messages

import fencedstate as fs
from fencedstate.core import args
from fencedstate.errors import ConflictError
from fencedstate.integrations import ClaimRegistry

from ._common import (
    FORMAT,
    ClaimsMixin,
    SessionClaim,
    resolve_prefix,
    resolve_store,
    segment,
)
from .errors import StaleHistoryError

_VIEW_ATTR = "_fencedstate_history_version"  # set on a run's SessionContext by before_run
_RUN_VIEW: ContextVar[int | None] = ContextVar("fencedstate_history_view", default=None)
_LOADED: ContextVar[list[int] | None] = ContextVar("fencedstate_history_loaded", default=None)


def _messages(messages: object) -> list[Message]:
    """``messages`` as a list, if it is a sequence of ``Message``; ``InvalidArgumentError`` else."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise fs.InvalidArgumentError(
            f"messages must be a sequence of agent_framework Message, got {type(messages).__name__}"
        )
    for i, m in enumerate(messages):
        if not isinstance(m, Message):
            raise fs.InvalidArgumentError(
                f"messages[{i}] must be an agent_framework Message, got {type(m).__name__}: {m!r}"
            )
    return list(messages)


class FencedHistoryProvider(ClaimsMixin, HistoryProvider):
    """An Agent Framework history provider on a fencedstate store, safe to share between processes.

    - A run's save is a compare-and-set against the version its ``before_run`` loaded: if
      another runner saved to the session in between, the save raises ``StaleHistoryError``
      (a ``fencedstate.ConflictError``) from ``agent.run`` and nothing of this run is stored.
      Run the turn again: the next run loads the other runner's turn first.
    - ``save_messages`` called without a loaded view (``load_messages=False``, or a direct
      call without ``expected_version``) appends atomically (CAS-append with retry): both
      writers' messages land, each batch contiguous, none lost.
    - ``claim_session(...)`` holds an epoch-fenced claim: this provider's saves to the session
      commit under it; after ``store.reclaim(session_key(id))`` they raise ``FencedError``.
    - Messages delivered again (the stored history's tail replayed, or a message with the same
      id) are stored once, as the reference providers do (``filter_new_messages``, applied to
      the freshly read history inside the compare-and-set). ``skip_excluded=True`` leaves out
      of ``get_messages`` the messages a compaction marked ``_excluded``, as they do.
    """

    DEFAULT_SOURCE_ID: ClassVar[str] = "fencedstate_history"

    def __init__(
        self,
        store: fs.Store | str,
        *,
        source_id: str = DEFAULT_SOURCE_ID,
        prefix: str = "agent_framework/history/",
        writer: str | None = None,
        load_messages: bool = True,
        store_inputs: bool = True,
        store_context_messages: bool = False,
        store_context_from: set[str] | None = None,
        store_outputs: bool = True,
        skip_excluded: bool = False,
    ) -> None:
        """Keep histories in ``store`` (a Store, or a directory/URL for ``fs.open_store``).

        ``source_id`` is a non-empty str; ``prefix`` ends in ``/``; ``writer`` names this
        provider in the key history; the flags are bools; ``store_context_from`` is None or a
        collection of source ids. A bad option raises ``fs.InvalidArgumentError`` naming it,
        before the store is opened.
        """
        context_from = args.names("store_context_from", store_context_from)
        super().__init__(
            source_id=args.name("source_id", source_id),
            load_messages=args.flag("load_messages", load_messages),
            store_inputs=args.flag("store_inputs", store_inputs),
            store_context_messages=args.flag("store_context_messages", store_context_messages),
            store_context_from=None if context_from is None else set(context_from),
            store_outputs=args.flag("store_outputs", store_outputs),
        )
        self.skip_excluded = args.flag("skip_excluded", skip_excluded)
        self.prefix = resolve_prefix(prefix)
        self.writer = args.optional_actor("writer", writer)
        self.store = resolve_store(store)
        self._claims = ClaimRegistry()

    def session_key(self, session_id: str | None) -> str:
        """The store key holding one session's messages."""
        if session_id is None:
            return f"{self.prefix}default"
        return f"{self.prefix}sessions/{segment(session_id, 'session_id')}"

    def claim_session(
        self, session_id: str | None, *, owner: str, ttl: float = 30.0, wait: float = 0.0
    ) -> SessionClaim:
        """Claim one session for this provider's saves; use as a context manager to release it."""
        return self._hold(self.session_key(session_id), owner, ttl, wait)

    # -- reads ---------------------------------------------------------------------------------

    def load_history(self, session_id: str | None) -> tuple[list[Message], int]:
        """The session's messages and the version they were read at (0: no history yet)."""
        snap = self._read(self.session_key(session_id))
        if snap is None:
            return [], 0
        return [Message.from_dict(m) for m in snap.value["messages"]], snap.version

    async def get_messages(
        self, session_id: str | None, *, state: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Message]:
        """The session's stored messages, oldest first (``skip_excluded``: without excluded)."""
        messages, version = await asyncio.to_thread(self.load_history, session_id)
        sink = _LOADED.get()
        if sink is not None:  # inside before_run: remember the version this run's view is at
            sink.append(version)
        if self.skip_excluded:
            messages = [m for m in messages if not m.additional_properties.get("_excluded", False)]
        return messages

    # -- writes --------------------------------------------------------------------------------

    def append(
        self,
        session_id: str | None,
        messages: Sequence[Message],
        *,
        expected_version: int | None = None,
    ) -> int:
        """Append ``messages``; returns the new version.

        With ``expected_version``, a compare-and-set: ``StaleHistoryError`` if the session is
        at another version (nothing written). Without it, an atomic append (``store.update``,
        re-read and retried on a concurrent save), so no writer's messages are lost; under a
        held claim, a commit under the claim (``FencedError`` once it was reclaimed).
        ``messages`` must be a sequence of ``Message``: anything else raises
        ``fs.InvalidArgumentError`` and nothing is written.
        """
        key = self.session_key(session_id)
        incoming = _messages(messages)

        def add(doc: Any) -> dict[str, Any]:
            old: list[Any] = [] if doc is None else doc["messages"]
            existing = [Message.from_dict(m) for m in old]
            new = [m.to_dict() for m in filter_new_messages(existing, incoming)]
            return {"format": FORMAT, "session_id": session_id, "messages": [*old, *new]}

        if expected_version is None and key not in self._claims:
            return self.store.update(key, add, writer=self.writer).version  # CAS-append
        snap = self._read(key)
        expected = (
            (0 if snap is None else snap.version) if expected_version is None else expected_version
        )
        try:  # the store checks the claim's epoch before the version: a zombie is fenced
            return self._commit(key, add(None if snap is None else snap.value), expected).version
        except ConflictError as exc:  # not at the version loaded (or moved since the read)
            raise StaleHistoryError(key, expected, exc.actual_version) from exc

    async def save_messages(
        self,
        session_id: str | None,
        messages: Sequence[Message],
        *,
        state: dict[str, Any] | None = None,
        expected_version: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Persist ``messages`` (see ``append``; inside a run, checked against its loaded view)."""
        if not _messages(messages):
            return
        if expected_version is None:
            expected_version = _RUN_VIEW.get()
        await asyncio.to_thread(
            self.append, session_id, messages, expected_version=expected_version
        )

    # -- the run hooks ----------------------------------------------------------------------------

    async def before_run(
        self,
        *,
        agent: SupportsAgentRun,
        session: AgentSession,
        context: SessionContext,
        state: dict[str, Any],
    ) -> None:
        """Load the history into the run's context and remember the version it was read at."""
        sink: list[int] = []
        token = _LOADED.set(sink)
        try:
            await super().before_run(agent=agent, session=session, context=context, state=state)
        finally:
            _LOADED.reset(token)
        if sink:
            setattr(context, _VIEW_ATTR, sink[0])

    async def after_run(
        self,
        *,
        agent: SupportsAgentRun,
        session: AgentSession,
        context: SessionContext,
        state: dict[str, Any],
    ) -> None:
        """Store the run's messages, as a compare-and-set against the version it loaded."""
        token = _RUN_VIEW.set(getattr(context, _VIEW_ATTR, None))
        try:
            await super().after_run(agent=agent, session=session, context=context, state=state)
        finally:
            _RUN_VIEW.reset(token)
