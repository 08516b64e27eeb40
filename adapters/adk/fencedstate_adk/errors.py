"""Typed errors of the ADK adapter (all ``fencedstate.FencedStateError`` subclasses)."""

from __future__ import annotations

from typing import ClassVar

from google.adk.errors import StaleSessionError as AdkStaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError

from fencedstate.errors import ConflictError, FencedStateError


class StaleSessionError(ConflictError, AdkStaleSessionError):
    """Another runner appended to the session since this ``Session`` object was loaded.

    Retryable: reload the session (``get_session``) and run the turn again. Also an ADK
    ``StaleSessionError`` (a ``ValueError``) whose message starts with the sentence ADK's own
    services use, so ADK's handling of stale sessions (and code matching it) applies.
    """

    def __init__(self, key: str, expected_version: int, actual_version: int) -> None:
        super().__init__(key, expected_version, actual_version)
        self.args = (
            "The session has been modified in storage since it was loaded. Please reload the "
            f"session before appending more events. ({self.args[0]})",
        )


class SharedStateConflictError(ConflictError):
    """An ``app:`` / ``user:`` key changed since the session loaded it; nothing was written.

    ``state_key`` names the ADK state key. Retryable: reload the session and run the turn again.
    """

    state_key: str

    def __init__(
        self, key: str, expected_version: int, actual_version: int, state_key: str = ""
    ) -> None:
        super().__init__(key, expected_version, actual_version)
        self.state_key = state_key
        self._fields["state_key"] = state_key
        self.args = (
            f"{self.args[0]} (shared state key {state_key!r} changed since the "
            "session was loaded; reload the session and retry)",
        )


class SessionExistsError(ConflictError, AlreadyExistsError):
    """``create_session`` with an id that is already stored; nothing was written.

    A ``fencedstate.ConflictError`` (the creation's compare-and-set against "absent" lost) and
    ADK's ``AlreadyExistsError``, which ``InMemorySessionService`` raises in this case.
    """

    retryable: ClassVar[bool] = False
    advice: ClassVar[str] = (
        "A session with this id exists: load it with get_session, or create one with a new id."
    )
    session_id: str

    def __init__(self, key: str, session_id: str, actual_version: int) -> None:
        super().__init__(key, 0, actual_version)
        self.session_id = session_id
        self._fields["session_id"] = session_id
        self.message = f"session {session_id!r} already exists (stored at {key!r})"
        self.args = (self.message,)


class SessionMissingError(FencedStateError, SessionNotFoundError):
    """The session does not exist in the store (never created, or deleted); nothing written.

    Also ADK's ``SessionNotFoundError`` (a ``ValueError``), which the default services raise.
    """

    advice: ClassVar[str] = (
        "Create the session (create_session) or load an existing one before appending."
    )
    key: str

    def __init__(self, key: str) -> None:
        super().__init__(f"no ADK session stored at {key!r}", key=key)
