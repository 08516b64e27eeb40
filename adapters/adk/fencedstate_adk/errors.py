"""Typed errors of the ADK adapter (all ``fencedstate.FencedStateError`` subclasses)."""

from __future__ import annotations

from google.adk.errors import StaleSessionError as AdkStaleSessionError

from fencedstate.errors import ConflictError, FencedStateError


class StaleSessionError(ConflictError, AdkStaleSessionError):
    """Another runner appended to the session since this ``Session`` object was loaded.

    Retryable: reload the session (``get_session``) and run the turn again. Also an ADK
    ``StaleSessionError`` (a ``ValueError``), so ADK's own handling of stale sessions applies.
    """


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


class SessionMissingError(FencedStateError):
    """The session does not exist in the store (never created, or deleted)."""

    key: str

    def __init__(self, key: str) -> None:
        super().__init__(f"no ADK session stored at {key!r}", key=key)
