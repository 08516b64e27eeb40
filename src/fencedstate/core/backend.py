"""The backend protocol: the methods every store backend implements (file, PostgreSQL, etcd,
Redis), and the only ones ``Store``, ``Claim``, ``copy``, the watch loops and the CLI call.

Keys reaching these methods are already validated and values already encoded. A commit is a
``Step`` (or ``StepMany``) built from ``fencedstate.core.rules``: the backend reads the current
state, runs the step with its lease clock, and persists what the step returns as one atomic,
durable action. A backend's only job is that read-step-persist is atomic and durable; the checks
are the same code everywhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError
from ..records import State
from .clock import Clock

if TYPE_CHECKING:
    from ..watch import WatchFeed

__all__ = ["Backend", "Step", "StepMany"]

Step = Callable[[State, Clock], "State | None"]
"""A transition of one key: its current state and the lease clock in, the next state out (None:
no change). It runs while the backend holds the key, so its checks are atomic with the persist."""

StepMany = Callable[[dict[str, State], Clock], dict[str, State]]
"""A transition of several keys at once: every key's current state in, every key's next state
out (the same object as the current one: that key does not change)."""


class Backend(ABC):
    """What a backend implements; ``Store`` builds the public API on it, once."""

    @abstractmethod
    def read_state(self, key: str) -> State | None:
        """The key's current state (claim holder and lease included), None if it has none."""

    @abstractmethod
    def read_history(self, key: str) -> list[State]:
        """Every retained state of the key, oldest first."""

    @abstractmethod
    def read_keys(self, prefix: str) -> list[str]:
        """Sorted keys that currently exist and start with ``prefix``."""

    def read_all_keys(self) -> list[str]:
        """Every key with any state (deleted and claim-only keys too), sorted: for copying."""
        return self.read_keys("")

    @abstractmethod
    def transition(self, key: str, step: Step) -> State:
        """Atomically apply ``step`` to the key's current state and persist the result.

        Returns the persisted state (or the current one when ``step`` returns None). Errors
        raised by ``step`` propagate and nothing is written.
        """

    @abstractmethod
    def transition_many(self, keys: list[str], step: StepMany) -> dict[str, State]:
        """Like ``transition`` for several keys at once: all persist, or none."""

    def in_flight(self) -> bool:
        """True while a multi-key commit is half applied (a backend with intents overrides)."""
        return False

    def load_key(self, key: str, history: list[State]) -> None:
        """Write ``history`` (oldest first) as the whole past of a key that has no state yet.

        Used by ``fencedstate.copy``; a key that already has state is an
        ``InvalidArgumentError`` and nothing is written.
        """
        raise InvalidArgumentError(
            f"{type(self).__name__} cannot be a copy destination (it has no copy-in): copy "
            "into a directory, PostgreSQL or Redis"
        )

    def watch_feed(self, prefix: str, exact: bool, since: str | None) -> WatchFeed:
        """A feed of the durable changes of the keys under ``prefix`` (of the key ``prefix``
        alone when ``exact``), after ``since`` (a cursor this backend made) or from now. See
        ``fencedstate.watch.WatchFeed`` and docs/watch.md."""
        raise InvalidArgumentError(f"{type(self).__name__} does not support watching keys")
