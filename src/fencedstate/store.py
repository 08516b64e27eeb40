"""``Store``: the public API, independent of where the bytes live.

A backend implements the protocol of ``fencedstate.core.backend`` (``Backend``: ``read_state``,
``read_history``, ``read_keys``, ``transition``, ``transition_many``, and optionally
``read_all_keys``, ``in_flight``, ``load_key``, ``watch_feed``). Everything else (validation,
encoding, retries with backoff, claims, the async twins) lives here, once.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import telemetry
from . import watch as _watch
from .claim import Claim, ClaimRequest
from .core import args, backoff, rules, values
from .core.backend import Backend, Step, StepMany
from .core.clock import Clock
from .core.keys import validate_key, validate_prefix
from .core.values import MAX_VALUE_DEPTH as MAX_VALUE_DEPTH
from .errors import (
    ClaimHeldError,
    ConflictError,
    FencedError,
    InvalidArgumentError,
)
from .records import Event, Snapshot, State

DEFAULT_MAX_VALUE_BYTES = 8 * 1024 * 1024
CONTENDED_S = 1.0
"""Seconds after a conflict during which ``update`` of that key takes the held step first."""
_MAX_CONTENDED = 4096  # keys remembered as contended per store object (then forgotten at once)


@dataclass
class Stats:
    """In-process counters of this store object (not shared between processes)."""

    commits: int = 0
    conflicts: int = 0
    retries: int = 0
    fenced: int = 0
    claims: int = 0
    backend: str = field(default="", repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        """Increment counter ``name`` by ``n`` (thread-safe; and its OpenTelemetry counter, if
        ``fencedstate.telemetry`` is on)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)
        tel = telemetry.ACTIVE
        if tel is not None:
            tel.count(name, n, self.backend)


class Store(Backend):
    """A fenced key-value store. Use ``fencedstate.open_store`` to get one."""

    def __init__(
        self, *, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES, clock: Clock | None = None
    ) -> None:
        if type(max_value_bytes) is not int or max_value_bytes <= 0:
            raise InvalidArgumentError("max_value_bytes must be a positive int")
        self.max_value_bytes = max_value_bytes
        self.clock = clock if clock is not None else Clock()
        self.stats = Stats(backend=type(self).__name__)
        self._contended: dict[str, float] = {}  # key -> monotonic time of its last conflict

    def close(self) -> None:
        """Release resources held by the store object (the data stays)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def aclose(self) -> None:
        """Awaitable ``close``."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- validation ---------------------------------------------------------------------------

    def _encode(self, key: str, value: Any) -> tuple[Any, str]:
        """``(decoded, text)`` of a value this store accepts (``values.encode``)."""
        return values.encode(key, value, self.max_value_bytes)

    # -- reads --------------------------------------------------------------------------------

    def state(self, key: str) -> State | None:
        """The key's full current state, including claim holder and lease (for inspection)."""
        return self.read_state(validate_key(key))

    def get(self, key: str) -> Snapshot | None:
        """The key's latest committed value, or None if it does not exist."""
        state = self.read_state(validate_key(key))
        return state.snapshot() if state is not None and state.exists else None

    def keys(self, prefix: str = "") -> list[str]:
        """Sorted keys that exist and start with ``prefix``."""
        return self.read_keys(validate_prefix(prefix))

    def history(self, key: str, limit: int | None = 50) -> list[Event]:
        """The key's journal events (newest ``limit``, None for all retained), oldest first."""
        states = self.read_history(validate_key(key))
        limit = args.optional_limit(limit)
        if limit is not None:
            states = states[-limit:] if limit else []
        return [s.event() for s in states]

    # -- writes -------------------------------------------------------------------------------

    def put(
        self,
        key: str,
        value: Any,
        *,
        expected_version: int | None,
        writer: str | None = None,
        idempotency_key: str | None = None,
    ) -> Snapshot:
        """Compare-and-set: commit ``value`` if the key is at ``expected_version``.

        ``expected_version=0`` means the key must not exist; ``None`` skips the check (last
        writer wins: only for writers that own the key by design). A retried put with the same
        ``idempotency_key`` returns the original commit instead of applying twice.
        """
        key = validate_key(key)
        expected = args.optional_expected_version(expected_version)
        idem = args.optional_name("idempotency_key", idempotency_key)
        return self._commit(key, value, expected, writer, None, idem)

    def _commit(
        self,
        key: str,
        value: Any,
        expected_version: int | None,
        writer: str | None,
        claim: rules.ClaimRef | None,
        idem: str | None = None,
        op: str = "put",
    ) -> Snapshot:
        tel = telemetry.ACTIVE
        if tel is None:
            return self._commit_now(key, value, expected_version, writer, claim, idem)
        with tel.commit(op if claim is None else "commit", key, self.stats.backend) as out:
            snap = self._commit_now(key, value, expected_version, writer, claim, idem)
            out["version"] = snap.version
            return snap

    def _commit_now(
        self,
        key: str,
        value: Any,
        expected_version: int | None,
        writer: str | None,
        claim: rules.ClaimRef | None,
        idem: str | None = None,
    ) -> Snapshot:
        writer = args.optional_actor("writer", writer)
        decoded, text = self._encode(key, value)

        def step(cur: State, clock: Clock) -> State | None:
            if idem is not None and cur.idem == idem:
                return None
            return rules.commit(
                cur,
                value=decoded,
                value_json=text,
                expected_version=expected_version,
                writer=writer,
                claim=claim,
                clock=clock,
                idem=idem,
            )

        try:
            state = self.transition(key, step)
        except ConflictError:
            self.stats.add("conflicts")
            if idem is not None:
                for old in reversed(self.read_history(key)):
                    if old.idem == idem:
                        return old.snapshot()
            raise
        except FencedError:
            self.stats.add("fenced")
            raise
        self.stats.add("commits")
        return state.snapshot()

    def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        writer: str | None = None,
        max_retries: int = 20,
    ) -> Snapshot:
        """Read fresh, ``fn(old_value_or_None)``, commit; on ``ConflictError`` retry.

        The first attempt is optimistic: ``fn`` runs outside any lock. A retry runs ``fn``
        while the backend holds the key (read, compute, commit as one step), so it cannot lose
        again: under contention an update costs at most one retry and cannot livelock. For
        ``CONTENDED_S`` seconds after a conflict on a key, this store object's updates of that
        key skip the optimistic attempt and go straight to the held step (a hot key would
        make most optimistic attempts lose). ``fn`` must therefore be quick and must not
        write the same key itself. With ``max_retries=0`` every update is optimistic and the
        first ``ConflictError`` is raised.
        """
        key = validate_key(key)
        writer = args.optional_actor("writer", writer)
        args.function("fn", fn, "the old value (or None)")
        args.max_retries(max_retries)
        last_conflict = self._contended.get(key)
        if (
            max_retries > 0
            and last_conflict is not None
            and time.monotonic() - last_conflict < CONTENDED_S
        ):
            return self._update_holding_key(key, fn, writer)
        snap = self.get(key)
        try:
            return self._commit(
                key,
                fn(None if snap is None else snap.value),
                0 if snap is None else snap.version,
                writer,
                None,
                op="update",  # the optimistic attempt is the update's, in telemetry too
            )
        except ConflictError:
            if max_retries <= 0:
                raise
            self.stats.add("retries")
            if len(self._contended) >= _MAX_CONTENDED:
                self._contended.clear()
            self._contended[key] = time.monotonic()
        return self._update_holding_key(key, fn, writer)

    def _update_holding_key(
        self, key: str, fn: Callable[[Any], Any], writer: str | None
    ) -> Snapshot:
        tel = telemetry.ACTIVE
        if tel is None:
            return self._update_holding_key_now(key, fn, writer)
        with tel.commit("update", key, self.stats.backend) as out:
            snap = self._update_holding_key_now(key, fn, writer)
            out["version"] = snap.version
            return snap

    def _update_holding_key_now(
        self, key: str, fn: Callable[[Any], Any], writer: str | None
    ) -> Snapshot:
        def step(cur: State, clock: Clock) -> State:
            decoded, text = self._encode(key, fn(cur.value if cur.exists else None))
            return rules.commit(
                cur,
                value=decoded,
                value_json=text,
                expected_version=cur.visible_version,
                writer=writer,
                claim=None,
                clock=clock,
            )

        state = self.transition(key, step)
        self.stats.add("commits")
        return state.snapshot()

    def delete(self, key: str, *, expected_version: int | None, writer: str | None = None) -> int:
        """Delete if at ``expected_version``; returns the tombstone's version."""
        key = validate_key(key)
        return self._delete(key, args.optional_expected_version(expected_version), writer, None)

    def _delete(
        self,
        key: str,
        expected_version: int | None,
        writer: str | None,
        claim: rules.ClaimRef | None,
    ) -> int:
        writer = args.optional_actor("writer", writer)

        def step(cur: State, clock: Clock) -> State:
            return rules.delete(
                cur, expected_version=expected_version, writer=writer, claim=claim, clock=clock
            )

        tel = telemetry.ACTIVE
        if tel is None:
            return self._transition_counted(key, step).version
        with tel.commit("delete", key, self.stats.backend) as out:
            out["version"] = version = self._transition_counted(key, step).version
            return version

    def _transition_counted(self, key: str, step: Step) -> State:
        """``transition`` of a one-key commit, counted in ``stats``."""
        try:
            state = self.transition(key, step)
        except ConflictError:
            self.stats.add("conflicts")
            raise
        except FencedError:
            self.stats.add("fenced")
            raise
        self.stats.add("commits")
        return state

    def put_many(
        self, writes: Mapping[str, tuple[Any, int | None]], *, writer: str | None = None
    ) -> dict[str, Snapshot]:
        """Atomic multi-key compare-and-set: ``{key: (value, expected_version)}``.

        Either every key is at its expected version and all commit, or ``ConflictError`` names
        the first key that moved and nothing is written (guards against write skew).
        """
        writer = args.optional_actor("writer", writer)
        if not isinstance(writes, Mapping):
            raise InvalidArgumentError("put_many takes a dict {key: (value, expected_version)}")
        prepared: dict[str, tuple[Any, str, int | None]] = {}
        for key, entry in writes.items():
            k = validate_key(key)
            value, expected = args.write_pair(k, entry)
            prepared[k] = (*self._encode(k, value), args.optional_expected_version(expected))
        if not prepared:
            return {}

        def step(curs: dict[str, State], clock: Clock) -> dict[str, State]:
            return {
                k: rules.commit(
                    curs[k],
                    value=v,
                    value_json=t,
                    expected_version=e,
                    writer=writer,
                    claim=None,
                    clock=clock,
                )
                for k, (v, t, e) in sorted(prepared.items())
            }

        tel = telemetry.ACTIVE
        if tel is None:
            return self._put_many_now(prepared, step)
        with tel.commit("put_many", ",".join(sorted(prepared)), self.stats.backend) as out:
            snaps = self._put_many_now(prepared, step)
            out["version"] = max(s.version for s in snaps.values())
            return snaps

    def _put_many_now(
        self,
        prepared: dict[str, tuple[Any, str, int | None]],
        step: StepMany,
    ) -> dict[str, Snapshot]:
        try:
            states = self.transition_many(sorted(prepared), step)
        except ConflictError:
            self.stats.add("conflicts")
            raise
        self.stats.add("commits", len(states))
        return {k: s.snapshot() for k, s in states.items()}

    # -- claims -------------------------------------------------------------------------------

    def claim(self, key: str, owner: str, ttl: float = 30.0, *, wait: float = 0.0) -> Claim:
        """Take the key's write grant for ``ttl`` seconds.

        While someone else holds a live claim, retry with backoff for up to ``wait`` seconds,
        then raise ``ClaimHeldError``.
        """
        key = validate_key(key)
        owner_ = args.actor("owner", owner)
        ttl = args.ttl(ttl)
        wait = args.wait(wait)
        deadline = time.monotonic() + wait
        attempt = 0
        while True:
            try:
                state = self.transition(
                    key, lambda cur, clock: rules.grant(cur, owner=owner_, ttl=ttl, clock=clock)
                )
                break
            except ClaimHeldError as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                pause = backoff.delay(attempt, first=0.005, cap=0.25)
                time.sleep(min(pause, left, max(exc.expires_in, 0.001)))
                attempt += 1
        assert state.lease is not None
        self.stats.add("claims")
        return Claim(self, key, owner_, state.epoch, state.lease)

    def reclaim(self, key: str, by: str = "recovery") -> int:
        """Revoke any holder and bump the key's epoch, fencing older claims; returns it."""
        key = validate_key(key)
        by_ = args.actor("by", by)
        return self.transition(
            key, lambda cur, clock: rules.reclaim(cur, by=by_, clock=clock)
        ).epoch

    # -- async twins --------------------------------------------------------------------------

    async def aget(self, key: str) -> Snapshot | None:
        """Awaitable ``get``."""
        return await asyncio.to_thread(self.get, key)

    async def akeys(self, prefix: str = "") -> list[str]:
        """Awaitable ``keys``."""
        return await asyncio.to_thread(self.keys, prefix)

    async def ahistory(self, key: str, limit: int | None = 50) -> list[Event]:
        """Awaitable ``history``."""
        return await asyncio.to_thread(self.history, key, limit)

    async def aput(
        self,
        key: str,
        value: Any,
        *,
        expected_version: int | None,
        writer: str | None = None,
        idempotency_key: str | None = None,
    ) -> Snapshot:
        """Awaitable ``put``."""
        return await asyncio.to_thread(
            lambda: self.put(
                key,
                value,
                expected_version=expected_version,
                writer=writer,
                idempotency_key=idempotency_key,
            )
        )

    async def aput_many(
        self, writes: Mapping[str, tuple[Any, int | None]], *, writer: str | None = None
    ) -> dict[str, Snapshot]:
        """Awaitable ``put_many``."""
        return await asyncio.to_thread(lambda: self.put_many(writes, writer=writer))

    async def aupdate(
        self,
        key: str,
        fn: Callable[[Any], Any | Awaitable[Any]],
        *,
        writer: str | None = None,
        max_retries: int = 20,
    ) -> Snapshot:
        """Awaitable ``update``. A coroutine ``fn`` cannot run while the key is held, so it is
        retried optimistically (jittered backoff, at most ``max_retries`` retries)."""
        args.function("fn", fn, "the old value (or None)")
        args.max_retries(max_retries)
        if not inspect.iscoroutinefunction(fn):
            return await asyncio.to_thread(
                lambda: self.update(key, fn, writer=writer, max_retries=max_retries)
            )
        key = validate_key(key)
        for attempt in range(max_retries + 1):
            snap = await self.aget(key)
            new_value = await fn(None if snap is None else snap.value)
            try:
                return await asyncio.to_thread(
                    self._commit, key, new_value, 0 if snap is None else snap.version, writer, None
                )
            except ConflictError:
                if attempt == max_retries:
                    raise
                self.stats.add("retries")
                await asyncio.sleep(backoff.delay(attempt, first=0.0005, cap=0.05))
        raise AssertionError("unreachable")

    async def adelete(
        self, key: str, *, expected_version: int | None, writer: str | None = None
    ) -> int:
        """Awaitable ``delete``."""
        return await asyncio.to_thread(
            lambda: self.delete(key, expected_version=expected_version, writer=writer)
        )

    def aclaim(self, key: str, owner: str, ttl: float = 30.0, *, wait: float = 0.0) -> ClaimRequest:
        """Awaitable ``claim`` (waiting, if asked, off the event loop): ``await`` it for the
        ``Claim``, or ``async with store.aclaim(...) as claim:`` to release it on exit."""

        async def start() -> Claim:
            return await asyncio.to_thread(lambda: self.claim(key, owner, ttl, wait=wait))

        return ClaimRequest(start)

    async def areclaim(self, key: str, by: str = "recovery") -> int:
        """Awaitable ``reclaim``."""
        return await asyncio.to_thread(self.reclaim, key, by)

    # -- watch: wait for durable changes (docs/watch.md; the loops live in watch.py) ----------

    def watch_once(self, key: str, *, after_version: int, timeout: float | None = None) -> Snapshot:
        """Wait until the key's durable version is past ``after_version`` and return it.

        Returns at once if it already is. A delete counts: it returns a ``Tombstone`` (a
        ``Snapshot`` with ``value`` None). ``WatchTimeoutError`` after ``timeout`` seconds.
        """
        key = validate_key(key)
        after = _watch.check_version(after_version)
        return _watch.watch_once(self, key, after, _watch.check_timeout(timeout))

    def watch(self, prefix: str = "", *, since: str | None = None) -> _watch.Watch:
        """Every durable change of the keys under ``prefix``, per key in journal order, each
        once: from now (``since=None``) or right after a ``Change.cursor`` (``since``)."""
        prefix = validate_prefix(prefix)
        return _watch.Watch(self.watch_feed(prefix, False, since))

    async def awatch_once(
        self, key: str, *, after_version: int, timeout: float | None = None
    ) -> Snapshot:
        """Awaitable ``watch_once`` (the event loop waits; no thread is held meanwhile)."""
        key = validate_key(key)
        after = _watch.check_version(after_version)
        return await _watch.awatch_once(self, key, after, _watch.check_timeout(timeout))

    def awatch(self, prefix: str = "", *, since: str | None = None) -> _watch.AsyncWatch:
        """Async twin of ``watch``: an async iterator, started by ``async with`` or the first
        ``async for`` step; ``aclose()`` releases everything it holds."""
        prefix = validate_prefix(prefix)
        return _watch.AsyncWatch(lambda: self.watch_feed(prefix, False, since))
