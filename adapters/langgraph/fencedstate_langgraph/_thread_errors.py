"""The typed errors of ``FencedCheckpointSaver``: a fork refused, a thread run by another."""

from __future__ import annotations

import fencedstate as fs
from fencedstate.errors import FencedStateError

__all__ = ["CheckpointForkError", "ThreadClaimedError"]


class CheckpointForkError(fs.ConflictError):
    """The checkpoint's parent is no longer the thread's latest: committing would fork it.

    Fields: ``thread_id``, ``checkpoint_ns``, ``parent_checkpoint_id`` (what the runner built
    on), ``head_checkpoint_id`` (the thread's latest), plus ``ConflictError``'s fields.
    """

    thread_id: str
    checkpoint_ns: str
    parent_checkpoint_id: str | None
    head_checkpoint_id: str | None

    def __init__(
        self,
        key: str,
        expected_version: int,
        actual_version: int,
        *,
        thread_id: str,
        checkpoint_ns: str,
        parent_checkpoint_id: str | None,
        head_checkpoint_id: str | None,
    ) -> None:
        FencedStateError.__init__(
            self,
            f"thread {thread_id!r} ns {checkpoint_ns!r}: checkpoint built on "
            f"{parent_checkpoint_id!r} but the latest is {head_checkpoint_id!r}; refusing to fork",
            key=key,
            expected_version=expected_version,
            actual_version=actual_version,
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            parent_checkpoint_id=parent_checkpoint_id,
            head_checkpoint_id=head_checkpoint_id,
        )


class ThreadClaimedError(fs.ClaimHeldError):
    """Another runner holds the thread's claim. Fields: ``thread_id``, ``key``, ``holder``,
    ``expires_in``."""

    thread_id: str

    def __init__(self, key: str, holder: str, expires_in: float, *, thread_id: str) -> None:
        FencedStateError.__init__(
            self,
            f"thread {thread_id!r} is being run by {holder!r} (claim on {key!r} for another "
            f"{expires_in:.3f}s)",
            key=key,
            holder=holder,
            expires_in=expires_in,
            thread_id=thread_id,
        )
