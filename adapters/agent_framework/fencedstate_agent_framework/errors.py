"""Typed errors of the Agent Framework adapter (all ``fencedstate.FencedStateError`` subclasses)."""

from __future__ import annotations

from agent_framework.exceptions import WorkflowCheckpointException

from fencedstate.errors import ConflictError, FencedStateError


class StaleHistoryError(ConflictError):
    """Another runner saved messages to this session after this run loaded its history.

    Nothing of this run's messages was written. Retryable: run the turn again (the agent's
    next run reloads the history, now including the other runner's turn).
    """


class StaleSessionError(ConflictError):
    """``FencedSessionStore.set`` of a session snapshot that is not the stored one's head.

    Another continuation stored the session after this ``AgentSession`` was read (or the id
    already exists and this object was never read from the store). Nothing was written.
    Retryable: ``get`` the session again and rerun the turn, or ``set`` it under a new id.
    """


class CheckpointConflictError(ConflictError, WorkflowCheckpointException):
    """Another writer already saved a different checkpoint under this checkpoint id.

    The stored checkpoint is the first writer's, unchanged; nothing of this save was written.
    Also a ``WorkflowCheckpointException``, so the workflow runner's handling applies.
    """


class InvalidCheckpointError(FencedStateError, WorkflowCheckpointException):
    """A checkpoint cannot be encoded (or would not decode again); nothing was written."""

    def __init__(self, checkpoint_id: str, detail: str) -> None:
        super().__init__(
            f"checkpoint {checkpoint_id!r} cannot be stored: {detail}", checkpoint_id=checkpoint_id
        )


class CheckpointNotFoundError(FencedStateError, WorkflowCheckpointException):
    """No checkpoint is stored under this id."""

    def __init__(self, checkpoint_id: str) -> None:
        super().__init__(
            f"no checkpoint found with id {checkpoint_id!r}", checkpoint_id=checkpoint_id
        )
