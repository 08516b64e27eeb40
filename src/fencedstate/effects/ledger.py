"""``EffectLedger``: a side effect (send, charge, open a PR) runs at most once per effect id.

One record per effect id under ``<prefix><effect_id>``, changed only by compare-and-set:

    (none | not_applied) --Start--> started --Record--> completed | in_doubt | not_applied
    started --lease runs out--> in_doubt --probe--> completed | not_applied

A run that finds ``completed`` replays the result; ``started`` with a live lease waits for it;
an expired ``started`` or ``in_doubt`` raises ``EffectInDoubtError`` unless ``probe`` settles
it. With ``claim=`` the ``started`` record is committed in one atomic step with a check that the
claim is still the grant of its key (the work key the agent holds, never the effect key), so a
reclaimed zombie gets ``FencedError`` before ``fn`` runs; each read checks the claim too, so the
zombie gets ``FencedError`` rather than a replay of what the new holder did. Each step is an
action of ``specs/EffectLedger.tla`` (the action table in specs/README.md).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fencedstate.core import args, rules
from fencedstate.core.keys import validate_key
from fencedstate.errors import (
    ConflictError,
    FencedError,
    InvalidArgumentError,
    InvalidKeyError,
    InvalidValueError,
)

from .calls import T, decorator, on_loop
from .errors import EffectInDoubtError, EffectNotApplied, EffectPendingError
from .record import _CURRENT, EffectRecord, EffectState, EffectToken
from .wait import wait_for_change

if TYPE_CHECKING:
    from fencedstate.claim import Claim
    from fencedstate.core.clock import Clock
    from fencedstate.records import Snapshot, State
    from fencedstate.store import Store

Fn = Callable[[EffectToken], Any]
_MAX_CAS = 100  # compare-and-set retries of one ledger write (each loss means progress)


@dataclass(frozen=True, slots=True)
class Begun:
    """What ``EffectLedger.begin`` decided: ``token`` None means replay ``result``."""

    token: EffectToken | None
    result: Any = None


@dataclass(frozen=True, slots=True)
class _Replay:
    result: Any


def default_owner() -> str:
    """``host:pid``, the name a run records as the starter of an attempt."""
    return f"{socket.gethostname()}:{os.getpid()}"


_PLACEHOLDER = EffectToken("-", None, 1)  # what a signature check binds in place of a token


def _check_function(what: str, f: object) -> None:
    """``InvalidArgumentError`` unless ``f`` can be called as ``f(token)``: before an attempt is
    recorded, so a function of the wrong shape puts nothing in doubt."""
    args.takes(what, f, "the effect's token", f"{what}(token)", _PLACEHOLDER)


def _check_functions(fn: object, probe: object) -> None:
    _check_function("fn", fn)
    if probe is not None:
        _check_function("probe", probe)


class EffectLedger:
    """Fenced, replayable side effects, one record per effect id in ``store``."""

    def __init__(self, store: Store, prefix: str = "effects/", *, owner: str | None = None) -> None:
        from fencedstate.store import Store as _Store  # at run time (imports would cycle)

        if not isinstance(store, _Store):
            raise InvalidArgumentError(
                f"store must be a Store (fs.open_store(...)), not {type(store).__name__}"
            )
        if not isinstance(prefix, str) or not prefix.endswith("/"):
            raise InvalidArgumentError("prefix must be a str ending with '/'")
        try:
            validate_key(prefix + "x")  # every effect id appended to it makes a valid key
        except InvalidKeyError as exc:
            raise InvalidKeyError(prefix, f"the ledger's prefix: {exc.reason}") from None
        self.store = store
        self.prefix = prefix
        self.owner = args.actor("owner", owner if owner is not None else default_owner())

    # -- reads --------------------------------------------------------------------------------

    def key(self, effect_id: str) -> str:
        """The store key of ``effect_id`` (``InvalidKeyError`` if the id breaks the grammar)."""
        if not isinstance(effect_id, str) or not effect_id:
            raise InvalidArgumentError("effect_id must be a non-empty str")
        return validate_key(self.prefix + effect_id)

    def get(self, effect_id: str) -> EffectRecord | None:
        """The effect's record, or None if it never started."""
        key = self.key(effect_id)
        snap = self.store.get(key)
        return None if snap is None else EffectRecord.from_value(key, snap.value)

    def records(self) -> list[EffectRecord]:
        """Every effect record under the prefix, sorted by id."""
        out = []
        for key in self.store.keys(prefix=self.prefix):
            snap = self.store.get(key)
            if snap is not None:
                out.append(EffectRecord.from_value(key, snap.value))
        return out

    def lease_left(self, rec: EffectRecord) -> float:
        """Seconds left on ``rec``'s lease as this process sees it."""
        return rec.lease_left(self.store.clock)

    # -- the run ------------------------------------------------------------------------------

    def run(
        self,
        effect_id: str,
        fn: Fn,
        *,
        claim: Claim | None = None,
        probe: Fn | None = None,
        ttl: float = 60.0,
        wait: float | None = None,
        description: str | None = None,
    ) -> Any:
        """Run ``fn(token)`` at most once for ``effect_id`` and return its (recorded) result.

        A completed effect returns the recorded result without calling ``fn``. A live attempt
        elsewhere is waited for (up to its lease, or ``wait`` seconds: ``EffectPendingError``).
        An attempt that may have happened raises ``EffectInDoubtError`` unless ``probe(token)``
        settles it: a result (recorded completed) or ``EffectNotApplied`` (then ``fn`` runs as
        a new attempt). ``fn`` raising anything but ``EffectNotApplied`` leaves it in doubt.
        With ``claim=`` a claim that is no longer its key's grant gets ``FencedError``, even when
        the effect is already completed (a reclaimed zombie learns it, rather than replaying).
        ``fn`` must finish within ``ttl`` seconds, or other runs will find the effect in doubt.
        """
        key = self.key(effect_id)
        ttl = args.ttl(ttl)
        _check_functions(fn, probe)  # before an attempt is recorded: a bad fn puts nothing in doubt
        outcome = self._begin(key, effect_id, claim, probe, ttl, wait, description)
        if isinstance(outcome, _Replay):
            return outcome.result
        rec, t0 = outcome
        return self._execute(key, effect_id, rec, t0, ttl, fn)

    def begin(
        self,
        effect_id: str,
        *,
        claim: Claim | None = None,
        probe: Fn | None = None,
        ttl: float = 60.0,
        wait: float | None = None,
        description: str | None = None,
    ) -> Begun:
        """The first half of ``run``, for frameworks whose hooks surround the tool call.

        Returns ``Begun(token=None, result=...)`` when the effect is already recorded
        (replay it, do not run it), or ``Begun(token=...)`` when a new attempt was started:
        perform the effect, then call ``finish`` with that token. Raises what ``run`` raises.
        """
        key = self.key(effect_id)
        if probe is not None:
            _check_function("probe", probe)
        outcome = self._begin(key, effect_id, claim, probe, args.ttl(ttl), wait, description)
        if isinstance(outcome, _Replay):
            return Begun(None, outcome.result)
        return Begun(outcome[0].token(effect_id))

    def finish(
        self,
        effect_id: str,
        token: EffectToken,
        *,
        result: Any = None,
        error: BaseException | None = None,
    ) -> Any:
        """The second half of ``run``: record what the attempt ``token`` did.

        With ``error=None`` the effect completed with ``result`` (returned as stored); an
        ``EffectNotApplied`` error records not applied; any other error leaves it in doubt.
        """
        key = self.key(effect_id)
        if not isinstance(token, EffectToken):
            raise InvalidArgumentError(
                f"finish takes the token begin() returned (Begun.token), not {type(token).__name__}"
            )
        if error is not None and not isinstance(error, BaseException):
            raise InvalidArgumentError(f"error must be an exception, not {type(error).__name__}")
        if token.id != effect_id:
            raise InvalidArgumentError(f"token is for {token.id!r}, not {effect_id!r}")
        if isinstance(error, EffectNotApplied):
            self._record(key, token.attempt, EffectState.NOT_APPLIED, reason=error.reason)
            return None
        if error is not None:
            self._record(key, token.attempt, EffectState.IN_DOUBT, reason=f"raised {error!r}")
            return None
        return self._complete(key, token.attempt, result)

    def _begin(
        self,
        key: str,
        effect_id: str,
        claim: Claim | None,
        probe: Fn | None,
        ttl: float,
        wait: float | None,
        description: str | None,
    ) -> _Replay | tuple[EffectRecord, float]:
        """Read until the effect is replayable (``_Replay``) or a new attempt is started
        (its record and the lease clock reading before the start); raise the rest."""
        from fencedstate.claim import Claim as _Claim  # at run time (imports would cycle)

        if claim is not None and not isinstance(claim, _Claim):
            raise InvalidArgumentError(
                "claim= must be a Claim from store.claim(...) on the work key, or None"
            )
        if claim is not None and claim.key == key:
            raise InvalidArgumentError("claim= is the work key's claim, not the effect key's")
        give_up = None if wait is None else time.monotonic() + args.wait(wait)
        polls = 0
        while True:
            snap = self.store.get(key)  # Read
            rec = None if snap is None else EffectRecord.from_value(key, snap.value)
            version = 0 if snap is None else snap.version
            if claim is not None:  # fence first: a reclaimed zombie learns it, even on a replay
                self._check_claim(claim)
            if rec is None or rec.state is EffectState.NOT_APPLIED:
                try:
                    return self._start(key, effect_id, version, rec, claim, ttl, description)
                except ConflictError:
                    continue  # another run started it first: read again
            if rec.state is EffectState.COMPLETED:
                return _Replay(rec.result)  # Replay
            left = self.lease_left(rec)
            if rec.state is EffectState.STARTED and left > 0:
                if give_up is not None and time.monotonic() >= give_up:
                    raise EffectPendingError(effect_id, rec.owner, left)
                budget = left if give_up is None else min(left, give_up - time.monotonic())
                wait_for_change(self.store, key, version, max(budget, 0.0), polls)  # Wait
                polls += 1
                continue
            try:
                rec, version = self._mark_in_doubt(key, rec, version)
            except ConflictError:
                continue
            if probe is None:
                raise EffectInDoubtError(
                    effect_id, rec.owner, rec.started_at, rec.attempt, rec.reason or "in doubt"
                )
            settled = self._probe(key, effect_id, rec, version, probe)
            if settled is not None:
                return _Replay(settled.result)
            # not applied (or the record moved on): read again, and start a new attempt

    def _check_claim(self, claim: Claim) -> None:
        """``FencedError`` unless ``claim`` is still the live grant of its key. Read after the
        effect's record, so a replay happens while the claim held (a fenced claim never
        becomes live again); ``_fenced_put`` checks it again atomically with "started"."""
        cur = self.store.state(claim.key)
        if cur is None:
            raise FencedError(claim.key, claim.epoch, 0, "released")
        rules.check_fence(cur, (claim.epoch, claim.owner), self.store.clock)

    def _start(
        self,
        key: str,
        effect_id: str,
        version: int,
        prev: EffectRecord | None,
        claim: Claim | None,
        ttl: float,
        description: str | None,
    ) -> tuple[EffectRecord, float]:
        """Action ``Start``: commit a new attempt's "started" record at ``version`` (CAS),
        fenced by ``claim``; returns it and the lease clock reading taken before the commit."""
        clock = self.store.clock
        t0 = clock.now()
        now = clock.wall()
        rec = EffectRecord(
            effect_id=effect_id,
            state=EffectState.STARTED,
            attempt=(prev.attempt if prev is not None else 0) + 1,
            owner=self.owner,
            started_at=now,
            expires_at=now + ttl,
            boot=clock.boot_id,
            deadline=t0 + ttl,
            epoch=None if claim is None else claim.epoch,
            claim_key=None if claim is None else claim.key,
            description=description
            if description is not None or prev is None
            else prev.description,
            probes=0 if prev is None else prev.probes,
            updated_at=now,
            updated_by=self.owner,
        )
        if claim is None:
            self.store.put(key, rec.to_value(), expected_version=version, writer=self.owner)
        else:
            self._fenced_put(key, rec.to_value(), version, claim)
        return rec, t0

    def _fenced_put(self, key: str, value: Any, version: int, claim: Claim) -> Snapshot:
        """Commit ``value`` on ``key`` at ``version`` in one atomic step with a check that
        ``claim`` is still the live grant of its own key (``FencedError`` otherwise).

        Uses the multi-key primitive every backend implements: the claim's key is read and
        checked (``rules.check_fence``), not written; only the effect key changes.
        """
        store = self.store
        decoded, text = store._encode(key, value)
        ref: rules.ClaimRef = (claim.epoch, claim.owner)
        writer = self.owner

        def step(curs: dict[str, State], clock: Clock) -> dict[str, State]:
            rules.check_fence(curs[claim.key], ref, clock)
            new = rules.commit(
                curs[key],
                value=decoded,
                value_json=text,
                expected_version=version,
                writer=writer,
                claim=None,
                clock=clock,
            )
            return {claim.key: curs[claim.key], key: new}

        states = store.transition_many(sorted([claim.key, key]), step)
        return states[key].snapshot()

    def _execute(
        self, key: str, effect_id: str, rec: EffectRecord, t0: float, ttl: float, fn: Fn
    ) -> Any:
        """Actions ``PreFire``, ``Fire``, ``Record``: call ``fn`` unless our lease already ran
        out, then record what it did on our attempt."""
        token = self._prefire(key, effect_id, rec, t0, ttl)
        reset = _CURRENT.set(token)
        try:
            result = fn(token)  # Fire
        except BaseException as exc:
            self._failed(key, rec.attempt, exc)
            raise
        finally:
            _CURRENT.reset(reset)
        return self._complete(key, rec.attempt, result)

    def _prefire(
        self, key: str, effect_id: str, rec: EffectRecord, t0: float, ttl: float
    ) -> EffectToken:
        """Action ``PreFire``: the token to fire with, or (the starter stalled after Start for
        longer than its lease, so others may treat the attempt as in doubt) record not applied
        and raise ``EffectNotApplied``."""
        if self.store.clock.now() - t0 >= ttl:
            self._record(key, rec.attempt, EffectState.NOT_APPLIED, reason="lease ran out")
            raise EffectNotApplied(f"the lease of {effect_id!r} ran out before fn was called")
        return rec.token(effect_id)

    def _failed(self, key: str, attempt: int, exc: BaseException) -> None:
        """Record an attempt whose ``fn`` raised: not applied for ``EffectNotApplied``, else in
        doubt (it may have happened before the error)."""
        if isinstance(exc, EffectNotApplied):
            self._record(key, attempt, EffectState.NOT_APPLIED, reason=exc.reason)
        else:
            self._record(key, attempt, EffectState.IN_DOUBT, reason=f"fn raised {exc!r}")

    def _complete(self, key: str, attempt: int, result: Any) -> Any:
        """Record ``result`` as completed; returns it as stored (what every replay returns)."""
        try:
            self.store._encode(key, {"result": result})
        except InvalidValueError as exc:
            self._record(key, attempt, EffectState.IN_DOUBT, reason=f"result not stored: {exc}")
            raise
        done = self._record(key, attempt, EffectState.COMPLETED, result=result)
        if done is not None and done.state is EffectState.COMPLETED and done.attempt == attempt:
            return done.result
        return result  # the record moved on (a probe ruled on it): still ours to return

    def _record(
        self,
        key: str,
        attempt: int,
        state: EffectState,
        *,
        result: Any = None,
        reason: str | None = None,
    ) -> EffectRecord | None:
        """Action ``Record``: move ``attempt``'s record (started or in doubt) to ``state`` by
        compare-and-set; a record that moved on to another attempt is left alone."""
        for _ in range(_MAX_CAS):
            snap = self.store.get(key)
            if snap is None:
                return None
            cur = EffectRecord.from_value(key, snap.value)
            if cur.attempt != attempt or cur.state not in (
                EffectState.STARTED,
                EffectState.IN_DOUBT,
            ):
                return cur
            new = cur.but(
                state=state,
                result=result,
                reason=reason,
                updated_at=self.store.clock.wall(),
                updated_by=self.owner,
            )
            try:
                stored = self.store.put(
                    key, new.to_value(), expected_version=snap.version, writer=self.owner
                )
            except ConflictError:
                continue
            return EffectRecord.from_value(key, stored.value)
        raise ConflictError(key, -1, -1)  # pragma: no cover - 100 losses in a row

    def _mark_in_doubt(self, key: str, rec: EffectRecord, version: int) -> tuple[EffectRecord, int]:
        """Action ``MarkInDoubt``: an expired "started" becomes "in_doubt" (CAS at
        ``version``); ``ConflictError`` if the record moved meanwhile."""
        if rec.state is EffectState.IN_DOUBT:
            return rec, version
        new = rec.but(
            state=EffectState.IN_DOUBT,
            reason="its lease ran out before an outcome was recorded",
            updated_at=self.store.clock.wall(),
            updated_by=self.owner,
        )
        snap = self.store.put(key, new.to_value(), expected_version=version, writer=self.owner)
        return new, snap.version

    def _probe(
        self, key: str, effect_id: str, rec: EffectRecord, version: int, probe: Fn
    ) -> EffectRecord | None:
        """Action ``Probe``: ask the outside world; record completed (returned) or not_applied
        (None) by CAS at ``version``. A probe that raises anything else leaves it in doubt."""
        token = rec.token(effect_id)
        reset = _CURRENT.set(token)
        try:
            observed = probe(token)
        except EffectNotApplied as exc:
            new = rec.but(state=EffectState.NOT_APPLIED, reason=f"probe: {exc.reason}")
        else:
            new = rec.but(state=EffectState.COMPLETED, result=observed, reason=None)
        finally:
            _CURRENT.reset(reset)
        new = new.but(
            probes=rec.probes + 1, updated_at=self.store.clock.wall(), updated_by=self.owner
        )
        try:
            snap = self.store.put(key, new.to_value(), expected_version=version, writer=self.owner)
        except ConflictError:
            return None  # another run settled it first: read again
        settled = EffectRecord.from_value(key, snap.value)
        return settled if settled.state is EffectState.COMPLETED else None

    # -- async and decorator forms ------------------------------------------------------------

    async def arun(
        self,
        effect_id: str,
        fn: Callable[[EffectToken], Any],
        *,
        claim: Claim | None = None,
        probe: Callable[[EffectToken], Any] | None = None,
        ttl: float = 60.0,
        wait: float | None = None,
        description: str | None = None,
    ) -> Any:
        """Awaitable ``run``. ``fn`` and ``probe`` may be coroutine functions: ``fn`` runs in
        the calling task (a plain ``fn`` in a worker thread), ``probe`` on this event loop; the
        ledger's reads, writes and waits run off the loop. A cancelled ``fn`` is in doubt."""
        key = self.key(effect_id)
        ttl = args.ttl(ttl)
        _check_functions(fn, probe)
        loop = asyncio.get_running_loop()
        outcome = await asyncio.to_thread(
            self._begin,
            key,
            effect_id,
            claim,
            None if probe is None else on_loop(probe, loop),
            ttl,
            wait,
            description,
        )
        if isinstance(outcome, _Replay):
            return outcome.result
        rec, t0 = outcome
        token = await asyncio.to_thread(self._prefire, key, effect_id, rec, t0, ttl)
        reset = _CURRENT.set(token)
        try:
            if inspect.iscoroutinefunction(fn):
                result = await fn(token)  # Fire
            else:
                result = await asyncio.to_thread(fn, token)
                if inspect.isawaitable(result):
                    result = await result
        except BaseException as exc:
            await asyncio.to_thread(self._failed, key, rec.attempt, exc)
            raise
        finally:
            _CURRENT.reset(reset)
        return await asyncio.to_thread(self._complete, key, rec.attempt, result)

    def effect(
        self,
        *,
        id: str | Callable[..., str],
        claim: Claim | None = None,
        probe: Callable[..., Any] | None = None,
        ttl: float = 60.0,
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorate a tool function so each call is one effect.

        ``id`` is a format string filled with the call's arguments (``"mail-{to}-{subject}"``)
        or a function of them returning the id. The function keeps its signature; inside it,
        ``fencedstate.effects.current_token()`` gives the token. ``probe`` is called with the
        same arguments. Works on ``async def`` functions too.
        """

        return decorator(self, id, claim, probe, ttl)
