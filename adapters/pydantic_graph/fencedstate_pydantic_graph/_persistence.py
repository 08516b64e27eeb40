"""`FencedStatePersistence`: a pydantic-graph `BaseStatePersistence` on a fencedstate store.

One run id is one key (``{prefix}`` + the run id escaped into one key segment) holding the run's
snapshot list. Every write is a compare-and-set on that key. ``load_next`` and ``record_run``
take a fencedstate claim on the key and keep it until the run ends (``snapshot_end``) or
``release()`` is called, so a second process resuming the same run id gets ``RunClaimedError``
instead of running the node again, and a stalled holder whose claim was reclaimed gets
``fs.FencedError`` on its next write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, ClassVar

import anyio.to_thread
import pydantic
from pydantic_graph import BaseNode, End, exceptions
from pydantic_graph.persistence import (
    BaseStatePersistence,
    EndSnapshot,
    NodeSnapshot,
    RunEndT,
    Snapshot,
    StateT,
    build_snapshot_list_type_adapter,
)

import fencedstate as fs
from fencedstate.core import args
from fencedstate.integrations import (
    default_owner,
    encode_segment,
    resolve_prefix,
    resolve_store,
)

Snapshots = list[Snapshot[Any, Any]]


class RunClaimedError(fs.ClaimHeldError, exceptions.GraphRuntimeError):
    """Another live owner holds this graph run (``holder``, ``expires_in``); nothing was written.

    Raised by every call that would advance or write the run while another owner's claim on it
    is live (``load_next``, ``record_run``, and the unclaimed snapshot writes of
    ``graph.initialize``). Also a pydantic-graph ``GraphRuntimeError``, the error a graph run
    raises when it cannot go on.
    """

    advice: ClassVar[str] = (
        "Another process is running this graph run: let it finish, wait for its lease "
        "(expires_in), or call recover() if its holder is dead or stalled."
    )


def _run_claimed(e: fs.ClaimHeldError) -> RunClaimedError:
    """``e`` as the adapter's ``RunClaimedError`` (same key, holder and lease)."""
    return RunClaimedError(e.key, e.holder, e.expires_in)


def _now_utc() -> datetime:
    return datetime.now(tz=UTC)


class FencedStatePersistence(BaseStatePersistence[StateT, RunEndT]):
    """Graph run persistence on a fencedstate store: CAS writes, one fenced owner per run."""

    def __init__(
        self,
        store: fs.Store | str | os.PathLike[str],
        run_id: str,
        *,
        owner: str | None = None,
        ttl: float = 30.0,
        prefix: str = "pydantic_graph/runs/",
    ) -> None:
        """Persist run ``run_id`` in ``store`` (a Store, or a directory/URL for ``fs.open_store``).

        ``owner`` names this process in claims (default: a fresh unique name); ``ttl`` is the
        claim lease in seconds, renewed on each recorded node run; ``prefix`` is a key prefix
        ending in ``/``. A bad argument raises ``fs.InvalidArgumentError`` naming it, before
        anything is opened or written.
        """
        if not isinstance(run_id, str) or not run_id:
            raise fs.InvalidArgumentError(f"run_id must be a non-empty str, got {run_id!r}")
        self.ttl = args.ttl(ttl)
        self.owner = args.optional_actor("owner", owner) or default_owner("pydantic-graph")
        self.key = f"{resolve_prefix(prefix)}{encode_segment(run_id)}"
        self.run_id = run_id
        self.store: fs.Store = resolve_store(store)
        self._claim: Any = None
        # one object shared by threads and tasks: its callers take turns (claim and read-commit)
        self._lock = threading.RLock()
        self._adapter: pydantic.TypeAdapter[Snapshots] | None = None

    # -- types -----------------------------------------------------------------------------
    def should_set_types(self) -> bool:
        """True until the graph's state and end types are known."""
        return self._adapter is None

    def set_types(self, state_type: type[StateT], run_end_type: type[RunEndT]) -> None:
        """Build the snapshot list (de)serialiser for this graph's types."""
        self._adapter = build_snapshot_list_type_adapter(state_type, run_end_type)

    def _ta(self) -> pydantic.TypeAdapter[Snapshots]:
        if self._adapter is None:
            raise fs.InvalidArgumentError(
                "graph types not set: pass this persistence to a Graph run"
            )
        return self._adapter

    # -- claim -----------------------------------------------------------------------------
    @property
    def epoch(self) -> int | None:
        """The epoch of the claim this instance holds, or None."""
        return None if self._claim is None else int(self._claim.epoch)

    def _acquire_sync(self) -> None:
        with self._lock:
            if self._claim is not None:
                return
            try:
                self._claim = self.store.claim(self.key, owner=self.owner, ttl=self.ttl)
            except fs.ClaimHeldError as e:
                raise _run_claimed(e) from e

    def _renew_sync(self) -> None:
        with self._lock:
            if self._claim is not None:
                self._claim.renew()

    def release(self) -> None:
        """Give up this instance's claim on the run (no-op when none is held)."""
        with self._lock:
            claim, self._claim = self._claim, None
            if claim is not None:
                with suppress(fs.FencedError):
                    claim.release()

    def recover(self, by: str = "recovery") -> int:
        """Revoke whoever holds the run (epoch bump) and reset its unfinished node to 'created'.

        Use it when the holder is known dead or stalled: its later writes fail with
        ``fs.FencedError``, and the run can be resumed with ``iter_from_persistence``.
        Returns the new epoch.
        """
        self.release()
        epoch = self.store.reclaim(self.key, by=by)

        def reset(s: Snapshots) -> None:
            for x in s:
                if isinstance(x, NodeSnapshot) and x.status in ("pending", "running"):
                    x.status = "created"
                    x.start_ts = None

        self._mutate_sync(reset)
        return int(epoch)

    # -- storage ---------------------------------------------------------------------------
    def _read_sync(self) -> tuple[Snapshots, int]:
        snap = self._claim.read() if self._claim is not None else self.store.get(self.key)
        if snap is None:
            return [], 0
        return self._ta().validate_python(snap.value), int(snap.version)

    def _mutate_sync(self, fn: Callable[[Snapshots], Any]) -> Any:
        with self._lock:  # the version read here is the one committed against, once
            snapshots, version = self._read_sync()
            result = fn(snapshots)
            value = self._ta().dump_python(snapshots, mode="json")
            if self._claim is not None:
                self._claim.commit(value, expected_version=version)
                return result
            try:
                self.store.put(self.key, value, expected_version=version, writer=self.owner)
            except fs.ClaimHeldError as e:  # another owner is running it (e.g. initialize)
                raise _run_claimed(e) from e
            return result

    async def _mutate(self, fn: Callable[[Snapshots], Any]) -> Any:
        return await anyio.to_thread.run_sync(self._mutate_sync, fn)

    # -- BaseStatePersistence --------------------------------------------------------------
    async def snapshot_node(self, state: StateT, next_node: BaseNode[StateT, Any, RunEndT]) -> None:
        """Append a node snapshot (compare-and-set)."""
        await self._mutate(lambda s: s.append(NodeSnapshot(state=state, node=next_node)))

    async def snapshot_node_if_new(
        self, snapshot_id: str, state: StateT, next_node: BaseNode[StateT, Any, RunEndT]
    ) -> None:
        """Append a node snapshot unless ``snapshot_id`` is already stored (one CAS)."""

        def add(s: Snapshots) -> None:
            if not any(x.id == snapshot_id for x in s):
                s.append(NodeSnapshot(state=state, node=next_node))

        await self._mutate(add)

    async def snapshot_end(self, state: StateT, end: End[RunEndT]) -> None:
        """Append the end snapshot, then release the run's claim."""
        await self._mutate(lambda s: s.append(EndSnapshot(state=state, result=end)))
        await anyio.to_thread.run_sync(self.release)

    @asynccontextmanager
    async def record_run(self, snapshot_id: str) -> AsyncGenerator[None]:
        """Mark a node running under this instance's claim, then success or error."""
        await anyio.to_thread.run_sync(self._acquire_sync)

        def start(s: Snapshots) -> None:
            snap = next((x for x in s if x.id == snapshot_id), None)
            if snap is None:
                raise LookupError(f"No snapshot found with id={snapshot_id!r}")
            if not isinstance(snap, NodeSnapshot):
                raise exceptions.GraphRuntimeError("Only NodeSnapshot can be recorded")
            exceptions.GraphNodeStatusError.check(snap.status)
            snap.status = "running"
            snap.start_ts = _now_utc()

        await anyio.to_thread.run_sync(self._renew_sync)
        await self._mutate(start)
        t0 = perf_counter()

        def finish(status: Any) -> Callable[[Snapshots], None]:
            def f(s: Snapshots) -> None:
                snap = next(x for x in s if x.id == snapshot_id)
                assert isinstance(snap, NodeSnapshot)
                snap.status = status
                snap.duration = perf_counter() - t0

            return f

        try:
            yield
        except Exception:
            await self._mutate(finish("error"))
            raise
        await self._mutate(finish("success"))

    async def load_next(self) -> NodeSnapshot[StateT, RunEndT] | None:
        """Claim the run, then move the first 'created' node snapshot to 'pending'."""
        await anyio.to_thread.run_sync(self._acquire_sync)

        def take(s: Snapshots) -> NodeSnapshot[Any, Any] | None:
            for x in s:
                if isinstance(x, NodeSnapshot) and x.status == "created":
                    x.status = "pending"
                    return x
            return None

        found: NodeSnapshot[StateT, RunEndT] | None = await self._mutate(take)
        if found is None:
            await anyio.to_thread.run_sync(self.release)
        return found

    async def load_all(self) -> list[Snapshot[StateT, RunEndT]]:
        """All snapshots of the run, oldest first."""

        def read() -> Snapshots:
            return self._read_sync()[0]

        return await anyio.to_thread.run_sync(read)
