"""``RemoteStore``: the commit loop of a server-backed store (PostgreSQL, etcd, Redis), once.

A commit is attempts until one lands. Each attempt has four phases, named the same in every
backend:

``read``    ``_read_for_commit(keys)``: every key's current state, its journal position and the
            server's clock, read together (a context: PostgreSQL holds the row locks in it)
``decide``  here: the step from ``fencedstate.core.rules`` on what was read; nothing changed: done
``send``    ``_send(read, changed, commit_id)``: the backend's atomic conditional write of the
            changed states and their journal events (lands only if nothing moved since read)
``settle``  ``_settle(read, changed, commit_id, lost)``: the reply to ``send`` was lost. Did the
            commit tagged ``commit_id`` land? The backend first makes sure it can never land
            later; when it cannot find out, ``OutcomeUnknownError``.

An attempt that certainly did not commit (a lost race, a refused send, a settled lost reply
that had not landed) raises ``NotCommitted``: the loop pauses (``backoff.delay``) and runs it
again, within ``_commit_deadline`` seconds and ``_max_attempts`` attempts.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from ..errors import OutcomeUnknownError, StorageError
from ..records import State
from ..store import Store
from . import backoff
from .backend import Step, StepMany
from .clock import Clock, FixedClock

__all__ = ["PRUNE_EVERY", "LostReply", "NotCommitted", "Read", "RemoteStore"]

PRUNE_EVERY = 64
"""A key's journal is cut back to ``history_limit`` events once every this many events."""


class NotCommitted(Exception):
    """The attempt certainly did not commit: run it again."""


class LostReply(Exception):
    """``send`` went out but its answer did not come back: the commit may have landed."""


@dataclass
class Read:
    """What the read phase saw: each key's state and event count (0: none), the server's time."""

    states: dict[str, State]
    seqs: dict[str, int]
    now: float


R = TypeVar("R", bound=Read)
T = TypeVar("T")


class RemoteStore(Store, Generic[R]):
    """A store whose commits are conditional writes to a server: the commit loop, the one-key
    wrapper, local turns and journal pruning, written once. A backend sets the retry policy
    below and implements ``_read_for_commit``, ``_send`` and ``_settle``."""

    _history_limit: int
    _commit_deadline: float = math.inf
    _max_attempts: float = math.inf
    _retry_first = 0.002  # backoff.delay(first=, cap=) between attempts
    _retry_cap = 0.1
    _local_turns = True
    """Writers through one store object take the keys in turn (sorted: no cycles), so a held
    update's function runs once against them; other clients race by compare. False where the
    server itself serialises writers of a key (PostgreSQL's row locks)."""

    def __init__(self, *, max_value_bytes: int, clock: Clock | None) -> None:
        self._turns_lock = threading.Lock()
        self._turns: dict[str, threading.Lock] = {}
        super().__init__(max_value_bytes=max_value_bytes, clock=clock)

    # -- the protocol: one key is a one-key transition_many -----------------------------------

    def transition(self, key: str, step: Step) -> State:
        def many(curs: dict[str, State], clock: Clock) -> dict[str, State]:
            nxt = step(curs[key], clock)
            return {key: curs[key] if nxt is None else nxt}

        return self.transition_many([key], many)[key]

    def transition_many(self, keys: list[str], step: StepMany) -> dict[str, State]:
        keys = sorted(set(keys))
        if not self._local_turns:
            return self._commit_loop(keys, step)
        with self._turns_lock:
            locks = [self._turns.setdefault(k, threading.Lock()) for k in keys]
        for lk in locks:
            lk.acquire()
        try:
            return self._commit_loop(keys, step)
        finally:
            for lk in reversed(locks):
                lk.release()

    # -- the loop and one attempt -------------------------------------------------------------

    def _commit_loop(self, keys: list[str], step: StepMany) -> dict[str, State]:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._attempt(keys, step)
            except NotCommitted as why:
                attempt += 1
                spent = time.monotonic() - started
                if attempt >= self._max_attempts or spent > self._commit_deadline:
                    raise StorageError(
                        keys[0], f"not committed after {attempt} attempts in {spent:.3g}s: {why}"
                    ) from None
            time.sleep(backoff.delay(attempt - 1, first=self._retry_first, cap=self._retry_cap))

    def _attempt(self, keys: list[str], step: StepMany) -> dict[str, State]:
        """read, decide, send (and settle a lost reply); ``NotCommitted`` if it did not land."""
        with self._read_for_commit(keys) as read:
            nxt = step(read.states, FixedClock(self.clock.boot_id, read.now))
            changed = {k: s for k, s in nxt.items() if s is not read.states[k]}
            if not changed:
                return read.states | nxt
            commit_id = uuid.uuid4().hex
            if len(changed) > 1:  # tag a multi-key commit's events with one id
                changed = {k: replace(s, txn=commit_id) for k, s in changed.items()}
            try:
                self._send(read, changed, commit_id)
            except LostReply as lost:
                if not self._settle(read, changed, commit_id, lost):
                    raise NotCommitted(f"{lost} (settled: it did not land)") from None
            return read.states | changed

    @abstractmethod
    def _read_for_commit(self, keys: list[str]) -> AbstractContextManager[R]:
        """Phase read: the keys' states, event counts and the server's time, as one read."""

    @abstractmethod
    def _send(self, read: R, changed: dict[str, State], commit_id: str) -> None:
        """Phase send: write ``changed`` (the ``seqs[k] + 1``-th event of each key) tagged
        ``commit_id``, only if nothing moved since ``read``. Returns once it landed;
        ``NotCommitted`` when it certainly did not; ``LostReply`` when the answer was lost."""

    @abstractmethod
    def _settle(self, read: R, changed: dict[str, State], commit_id: str, lost: LostReply) -> bool:
        """Phase settle: did the lost ``send`` land? Fence it first so it never lands later."""

    # -- helpers for the phases ---------------------------------------------------------------

    def _prune_through(self, seq: int) -> int:
        """The newest journal event that the commit writing event ``seq`` drops (0: none)."""
        if seq % PRUNE_EVERY == 0 and seq > self._history_limit:
            return seq - self._history_limit
        return 0

    def _until_answered(
        self,
        ask: Callable[[], T],
        unreachable: tuple[type[BaseException], ...],
        where: str,
        lost: LostReply,
    ) -> T:
        """``ask()``, asked again (backoff pauses) while the server cannot be reached; after
        ``_commit_deadline`` seconds ``OutcomeUnknownError`` (for settling a lost reply)."""
        deadline = time.monotonic() + self._commit_deadline
        attempt = 0
        while True:
            try:
                return ask()
            except unreachable as exc:
                if time.monotonic() > deadline:
                    raise OutcomeUnknownError(
                        where, f"{lost}; and the server stayed unreachable: {exc}"
                    ) from None
            time.sleep(backoff.delay(attempt, first=0.01, cap=0.2))
            attempt += 1


@contextmanager
def just(read: R) -> Iterator[R]:
    """A read phase that holds nothing open (etcd, Redis): the read itself as the context."""
    yield read
