"""The effect ledger's contract on every backend: replay, in doubt, probes, fencing, async."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import fencedstate as fs
from fencedstate.effects import EffectState, current_token


class World:
    """An outside system: counts each effect it performs."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, token: fs.EffectToken) -> dict[str, Any]:
        self.sent.append(token.id)
        return {"message_id": f"m-{len(self.sent)}", "attempt": token.attempt}


def test_first_run_records_and_later_runs_replay(store: fs.Store) -> None:
    world, ledger = World(), fs.EffectLedger(store)
    first = ledger.run("mail/1", world.send)
    assert first == {"message_id": "m-1", "attempt": 1}
    assert ledger.run("mail/1", world.send) == first
    assert fs.EffectLedger(store).run("mail/1", world.send) == first  # another ledger object
    assert world.sent == ["mail/1"]
    rec = ledger.get("mail/1")
    assert rec is not None and rec.state is EffectState.COMPLETED and rec.result == first
    assert [e.value["state"] for e in store.history("effects/mail/1")] == ["started", "completed"]


def test_result_is_returned_as_stored(store: fs.Store) -> None:
    ledger, calls = fs.EffectLedger(store), []

    def fire(token: fs.EffectToken) -> dict[str, Any]:
        calls.append(token.attempt)
        return {"ids": [1, 2], "ok": True}

    first = ledger.run("t", fire)
    assert first == ledger.run("t", fire) == {"ids": [1, 2], "ok": True} and calls == [1]
    # a result the store cannot hold exactly: a typed error, and the effect (it happened) is
    # left in doubt, never recorded as something else
    with pytest.raises(fs.InvalidValueError):
        ledger.run("tup", lambda t: (1, 2))
    rec = ledger.get("tup")
    assert rec is not None and rec.state is EffectState.IN_DOUBT


def test_fn_raising_leaves_it_in_doubt_and_never_reruns(store: fs.Store) -> None:
    ledger, calls = fs.EffectLedger(store, owner="agent-1"), []

    def flaky(token: fs.EffectToken) -> None:
        calls.append(token.attempt)
        raise TimeoutError("the API timed out after sending")

    with pytest.raises(TimeoutError):
        ledger.run("charge/9", flaky)
    with pytest.raises(fs.EffectInDoubtError) as info:
        ledger.run("charge/9", flaky)
    err = info.value
    assert (err.effect_id, err.owner, err.attempt) == ("charge/9", "agent-1", 1)
    assert err.started_at > 0 and "TimeoutError" in err.reason and err.advice
    assert calls == [1]


def test_probe_settles_in_doubt_as_done(store: fs.Store) -> None:
    ledger, world = fs.EffectLedger(store), World()

    def lost_reply(token: fs.EffectToken) -> None:
        world.send(token)
        raise ConnectionError("reply lost")

    with pytest.raises(ConnectionError):
        ledger.run("pr/1", lost_reply)
    seen: list[fs.EffectToken] = []

    def probe(token: fs.EffectToken) -> dict[str, str]:
        seen.append(token)
        assert token.id in world.sent
        return {"found": token.id}

    assert ledger.run("pr/1", world.send, probe=probe) == {"found": "pr/1"}
    assert ledger.run("pr/1", world.send) == {"found": "pr/1"}  # recorded: no probe needed
    assert world.sent == ["pr/1"] and seen == [fs.EffectToken("pr/1", None, 1)]


def test_probe_settles_in_doubt_as_not_applied_then_fn_runs_once(store: fs.Store) -> None:
    ledger, world = fs.EffectLedger(store), World()
    with pytest.raises(ConnectionError):
        ledger.run("pr/2", lambda t: (_ for _ in ()).throw(ConnectionError("refused")))

    def probe(token: fs.EffectToken) -> None:
        raise fs.EffectNotApplied("no such pull request")

    assert ledger.run("pr/2", world.send, probe=probe) == {"message_id": "m-1", "attempt": 2}
    assert ledger.run("pr/2", world.send, probe=probe) == {"message_id": "m-1", "attempt": 2}
    assert world.sent == ["pr/2"]


def test_a_probe_that_fails_leaves_it_in_doubt(store: fs.Store) -> None:
    ledger = fs.EffectLedger(store)
    with pytest.raises(RuntimeError):
        ledger.run("x", lambda t: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(OSError):
        ledger.run("x", lambda t: 1, probe=lambda t: (_ for _ in ()).throw(OSError("down")))
    with pytest.raises(fs.EffectInDoubtError):
        ledger.run("x", lambda t: 1)


def test_effect_not_applied_from_fn_allows_a_later_run(store: fs.Store) -> None:
    ledger, world = fs.EffectLedger(store), World()

    def declined(token: fs.EffectToken) -> None:
        raise fs.EffectNotApplied("card declined before charging")

    with pytest.raises(fs.EffectNotApplied) as info:
        ledger.run("charge/1", declined)
    assert info.value.retryable and info.value.reason == "card declined before charging"
    rec = ledger.get("charge/1")
    assert rec is not None and rec.state is EffectState.NOT_APPLIED
    assert ledger.run("charge/1", world.send)["attempt"] == 2
    assert world.sent == ["charge/1"]


def test_live_attempt_is_waited_for_and_its_result_returned(store: fs.Store) -> None:
    ledger, world = fs.EffectLedger(store), World()
    entered, release = threading.Event(), threading.Event()

    def slow(token: fs.EffectToken) -> dict[str, Any]:
        entered.set()
        assert release.wait(60)
        return world.send(token)

    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(ledger.run("slow", slow, ttl=60)))
    t.start()
    assert entered.wait(60)
    with pytest.raises(fs.EffectPendingError) as info:
        ledger.run("slow", world.send, wait=0.05)  # bounded: a typed error, retryable
    assert info.value.retryable and info.value.expires_in > 0
    waiter: list[Any] = []
    w = threading.Thread(target=lambda: waiter.append(ledger.run("slow", world.send)))
    w.start()
    release.set()
    t.join(60)
    w.join(60)
    assert out == waiter == [{"message_id": "m-1", "attempt": 1}]
    assert world.sent == ["slow"]


def test_claim_fences_the_start(store: fs.Store) -> None:
    ledger, world = fs.EffectLedger(store), World()
    claim = store.claim("tasks/7", owner="a", ttl=30)
    assert ledger.run("tasks/7/mail", lambda t: t.epoch, claim=claim) == claim.epoch
    store.reclaim("tasks/7")
    with pytest.raises(fs.FencedError) as info:
        ledger.run("tasks/7/other", world.send, claim=claim)
    assert info.value.key == "tasks/7" and info.value.reason == "reclaimed"
    assert world.sent == [] and ledger.get("tasks/7/other") is None
    # a completed effect is not replayed to the zombie either: it learns it lost the grant
    with pytest.raises(fs.FencedError, match="reclaimed"):
        ledger.run("tasks/7/mail", world.send, claim=claim)
    claim.release()
    new = store.claim("tasks/7", owner="b", ttl=30)
    assert ledger.run("tasks/7/other", world.send, claim=new)["attempt"] == 1
    released = store.claim("tasks/8", owner="c", ttl=30)
    released.release()
    with pytest.raises(fs.FencedError):
        ledger.run("tasks/8/mail", world.send, claim=released)
    assert world.sent == ["tasks/7/other"]


def test_a_reclaimed_zombie_is_fenced_even_when_the_new_holder_completed_it(
    store: fs.Store,
) -> None:
    """A zombie whose claim was reclaimed got the new holder's recorded result back (the README
    promised FencedError): now every run with claim= checks it, replay and probe included."""
    ledger, world, probed = fs.EffectLedger(store), World(), []
    stale = store.claim("tasks/7", owner="agent-a", ttl=30)
    store.reclaim("tasks/7", by="recovery")
    with store.claim("tasks/7", owner="agent-b", ttl=30) as new:
        done = ledger.run("mail/7", world.send, claim=new)
        with pytest.raises(TimeoutError):
            ledger.run("mail/8", lambda t: (_ for _ in ()).throw(TimeoutError()), claim=new)
        before = {k: store.get(k).version for k in store.keys("effects/")}  # type: ignore[union-attr]
        with pytest.raises(fs.FencedError) as info:
            ledger.run("mail/7", world.send, claim=stale)
        assert (info.value.key, info.value.claim_epoch, info.value.reason) == (
            "tasks/7",
            1,
            "reclaimed",
        )
        with pytest.raises(fs.FencedError):  # in doubt: the zombie does not probe or mark it
            ledger.run("mail/8", world.send, claim=stale, probe=lambda t: probed.append(t))
        with pytest.raises(fs.FencedError):
            ledger.begin("mail/7", claim=stale)
        with pytest.raises(fs.FencedError):
            asyncio.run(ledger.arun("mail/7", world.send, claim=stale))
        assert world.sent == ["mail/7"] and probed == []
        assert {k: store.get(k).version for k in store.keys("effects/")} == before  # type: ignore[union-attr]
        assert ledger.run("mail/7", world.send, claim=new) == done  # the holder still replays
        assert ledger.run("mail/7", world.send) == done  # and so does a run without a claim
    with pytest.raises(fs.FencedError, match="released"):  # new was released on leaving
        ledger.run("mail/7", world.send, claim=new)


def test_bad_input_is_a_typed_error_and_writes_nothing(store: fs.Store) -> None:
    ledger = fs.EffectLedger(store)
    with pytest.raises(fs.InvalidKeyError):
        ledger.run("bad id!", lambda t: 1)
    with pytest.raises(fs.InvalidArgumentError):
        ledger.run("ok", lambda t: 1, ttl=0)
    with pytest.raises(fs.InvalidArgumentError):
        ledger.run("ok", lambda t: 1, wait=-1)
    with pytest.raises(fs.InvalidArgumentError):
        fs.EffectLedger(store, prefix="effects")
    claim = store.claim("effects/ok", owner="a", ttl=30)
    with pytest.raises(fs.InvalidArgumentError):
        ledger.run("ok", lambda t: 1, claim=claim)
    # not a function: refused before an attempt is recorded, so the id is not left in doubt
    with pytest.raises(fs.InvalidArgumentError, match="fn must be a function of the effect's"):
        ledger.run("mail", "send")  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="probe must be a function"):
        ledger.run("mail", lambda t: 1, probe=True)  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="fn must be a function"):
        asyncio.run(ledger.arun("mail", None))  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="probe must be a function"):
        ledger.begin("mail", probe=1)  # type: ignore[arg-type]
    assert store.keys("effects/") == []
    assert ledger.run("mail", lambda t: "sent") == "sent"
    # a result that cannot be stored: the effect happened, so it is left in doubt
    with pytest.raises(fs.InvalidValueError):
        ledger.run("obj", lambda t: object())
    rec = ledger.get("obj")
    assert rec is not None and rec.state is EffectState.IN_DOUBT and "not stored" in str(rec.reason)
    store.put("effects/junk", [1, 2], expected_version=0)
    with pytest.raises(fs.CorruptStateError):
        ledger.run("junk", lambda t: 1)


def test_a_function_of_the_wrong_shape_is_refused_before_an_attempt(store: fs.Store) -> None:
    """fn=lambda: 1 was only checked for being callable: its TypeError came from inside the
    attempt, which stayed in doubt for good. Now fn and probe must fit fn(token) (and a
    decorated function's call its signature) before anything is recorded."""
    ledger = fs.EffectLedger(store)
    fits = r"fn must be a function of the effect's token, called as fn\(token\); .*\(\) does not"
    for bad in (lambda: 1, lambda a, b: 1, lambda *, token: 1):
        with pytest.raises(fs.InvalidArgumentError, match=r"fn must be .* called as fn\(token\)"):
            ledger.run("x", bad)
    with pytest.raises(fs.InvalidArgumentError, match=fits):
        ledger.run("x", lambda: 1)
    with pytest.raises(fs.InvalidArgumentError, match=r"probe must .* called as probe\(token\)"):
        ledger.run("x", lambda t: 1, probe=lambda: "seen")
    with pytest.raises(fs.InvalidArgumentError, match="probe must"):
        ledger.begin("x", probe=lambda: "seen")

    async def fire() -> int:
        return 1

    with pytest.raises(fs.InvalidArgumentError, match="fn must"):
        asyncio.run(ledger.arun("x", fire))  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="probe must"):
        asyncio.run(ledger.arun("x", lambda t: 1, probe=fire))  # type: ignore[arg-type]

    @ledger.effect(id=lambda to, *_: f"mail-{to}")
    def send(to: str, subject: str) -> str:
        return f"sent {subject} to {to}"

    @ledger.effect(id=lambda to, *_: f"amail-{to}")
    async def asend(to: str, subject: str) -> str:
        return f"sent {subject} to {to}"

    @ledger.effect(id="seen-{to}", probe=lambda: "seen")
    def probed(to: str) -> str:
        return "sent"

    with pytest.raises(fs.InvalidArgumentError, match=r"send\(to, subject\) cannot"):
        send("ann")  # type: ignore[call-arg]
    with pytest.raises(fs.InvalidArgumentError, match=r"asend\(to, subject\) cannot be called"):
        asyncio.run(asend("ann", "hi", "extra"))  # type: ignore[call-arg]
    with pytest.raises(fs.InvalidArgumentError, match="probe must be a function of probed's"):
        probed("ann")
    with pytest.raises(fs.InvalidArgumentError, match="probe must be a function"):
        ledger.effect(id="p", probe="seen")  # type: ignore[arg-type]
    assert store.keys("effects/") == []  # nothing recorded, so nothing is in doubt
    assert ledger.run("x", lambda t: t.attempt) == 1 and send("ann", "hi") == "sent hi to ann"
    assert ledger.run("b", str).startswith("EffectToken(")  # no signature to check: accepted


def test_a_wrong_claim_store_or_id_template_is_refused_up_front(store: fs.Store) -> None:
    """claim='x' was an AttributeError, EffectLedger('state/') was accepted, and an id naming
    no argument was a bare KeyError at every call; now each is InvalidArgumentError at once."""
    ledger = fs.EffectLedger(store)
    with pytest.raises(fs.InvalidArgumentError, match="claim= must be a Claim"):
        ledger.run("mail", lambda t: 1, claim="tasks/7")  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="store must be a Store"):
        fs.EffectLedger("state/")  # type: ignore[arg-type]

    def send(to: str, subject: str) -> None: ...

    with pytest.raises(fs.InvalidArgumentError, match=r"names \{too\}.*it takes to, subject"):
        ledger.effect(id="mail-{too}-{subject}")(send)
    with pytest.raises(fs.InvalidArgumentError, match="not a format string"):
        ledger.effect(id="mail-{to")(send)
    assert store.keys("effects/") == []  # nothing was started

    @ledger.effect(id="mail-{to}-{opts[kind]}")  # an item or attribute of an argument is fine
    def notify(to: str, opts: dict[str, str]) -> str:
        return "sent"

    assert notify("ann", {"kind": "ping"}) == "sent"
    assert store.keys("effects/") == ["effects/mail-ann-ping"]


def test_decorator_keys_each_call_and_exposes_the_token(store: fs.Store) -> None:
    ledger, sent = fs.EffectLedger(store), []

    @ledger.effect(id="mail-{to}-{subject}")
    def send_mail(to: str, subject: str, body: str = "") -> str:
        token = current_token()
        assert token is not None
        sent.append((to, subject, token.id))
        return f"sent {subject} to {to}"

    assert send_mail("ann", "hi") == "sent hi to ann"
    assert send_mail(to="ann", subject="hi", body="again") == "sent hi to ann"
    assert send_mail("bob", "hi") == "sent hi to bob"
    assert sent == [("ann", "hi", "mail-ann-hi"), ("bob", "hi", "mail-bob-hi")]
    assert send_mail.__name__ == "send_mail" and current_token() is None

    @ledger.effect(id=lambda n: f"n-{n * 2}")
    def double(n: int) -> int:
        return n * 2

    assert double(3) == 6 and ledger.get("n-6") is not None


def test_async_twins(store: fs.Store) -> None:
    ledger, calls = fs.EffectLedger(store), []

    async def send(token: fs.EffectToken) -> str:
        calls.append(token.id)
        assert current_token() == token
        await asyncio.sleep(0.05)
        return f"sent {token.id}"

    @ledger.effect(id="a-{n}")
    async def tool(n: int) -> str:
        calls.append(f"tool {n}")
        token = current_token()
        assert token is not None and token.id == f"a-{n}"
        return f"tool {n}"

    async def main() -> list[Any]:
        together = await asyncio.gather(*(ledger.arun("a1", send) for _ in range(4)))
        probed = await ledger.arun("a1", send, probe=send)
        return [*together, probed, await tool(1), await tool(1)]

    assert asyncio.run(main()) == ["sent a1"] * 5 + ["tool 1", "tool 1"]
    assert calls == ["a1", "tool 1"]


def test_async_probe_settles_in_doubt(store: fs.Store) -> None:
    ledger = fs.EffectLedger(store)
    with pytest.raises(RuntimeError):
        ledger.run("b", lambda t: (_ for _ in ()).throw(RuntimeError("x")))

    async def probe(token: fs.EffectToken) -> str:
        await asyncio.sleep(0)
        raise fs.EffectNotApplied("not there")

    async def fire(token: fs.EffectToken) -> int:
        return token.attempt

    assert asyncio.run(ledger.arun("b", fire, probe=probe)) == 2


def test_begin_and_finish_split_a_run_around_a_framework_hook(store: fs.Store) -> None:
    ledger = fs.EffectLedger(store)
    begun = ledger.begin("hook/1")
    assert begun.token == fs.EffectToken("hook/1", None, 1) and begun.result is None
    with pytest.raises(fs.InvalidArgumentError):
        ledger.finish("hook/2", begun.token, result="x")
    assert ledger.finish("hook/1", begun.token, result=["done"]) == ["done"]
    assert ledger.begin("hook/1") == fs.effects.Begun(None, ["done"])
    failed = ledger.begin("hook/3")
    assert failed.token is not None
    ledger.finish("hook/3", failed.token, error=fs.EffectNotApplied("refused"))
    again = ledger.begin("hook/3")
    assert again.token is not None and again.token.attempt == 2
    ledger.finish("hook/3", again.token, error=TimeoutError("lost"))
    with pytest.raises(fs.EffectInDoubtError):
        ledger.begin("hook/3")


def test_a_cancelled_async_effect_is_in_doubt(store: fs.Store) -> None:
    ledger = fs.EffectLedger(store)

    async def main() -> None:
        started = asyncio.Event()

        async def slow(token: fs.EffectToken) -> str:
            started.set()
            await asyncio.sleep(60)
            return "late"

        task = asyncio.create_task(ledger.arun("slow-async", slow))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    rec = ledger.get("slow-async")
    assert (
        rec is not None
        and rec.state is EffectState.IN_DOUBT
        and "CancelledError" in str(rec.reason)
    )


def test_in_doubt_message_shows_a_utc_time_and_keeps_the_epoch_seconds() -> None:
    """The message showed a raw epoch float ('started at 1796599832.089'): now a UTC time as
    `fencedstate effects` shows dates; the field keeps the float."""
    err = fs.EffectInDoubtError("mail/7", "host:1", 1796599832.089, 1, "fn raised")
    assert "started at 2026-12-06 23:30:32 UTC and recorded no outcome (fn raised)" in str(err)
    assert "1796599832" not in str(err)
    assert err.started_at == err.to_dict()["started_at"] == 1796599832.089
    far = fs.EffectInDoubtError("x", "o", 1e300, 1, "r")  # a time no platform can show
    assert "started at 1e+300 and" in str(far)


def test_errors_are_typed_with_advice_and_cross_processes() -> None:
    import pickle

    errors = [
        fs.EffectInDoubtError("e", "host:1", 1.5, 2, "fn raised"),
        fs.EffectNotApplied("declined"),
        fs.EffectPendingError("e", "host:1", 3.0),
    ]
    for err in errors:
        assert isinstance(err, fs.FencedStateError)
        assert type(err).advice != fs.FencedStateError.advice
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and back.to_dict() == err.to_dict()
    assert errors[0].to_dict()["started_at"] == 1.5 and not errors[0].retryable
    assert errors[1].retryable and errors[2].retryable


def test_finish_with_something_that_is_not_a_token_is_refused_and_changes_nothing(
    store: fs.Store,
) -> None:
    """``finish("mail", 1)`` was an AttributeError; now InvalidArgumentError, the attempt intact."""
    ledger = fs.EffectLedger(store)
    begun = ledger.begin("mail")
    assert begun.token is not None
    before = store.get("effects/mail")
    with pytest.raises(fs.InvalidArgumentError, match=r"the token begin\(\) returned"):
        ledger.finish("mail", 1)  # type: ignore[arg-type]
    with pytest.raises(fs.InvalidArgumentError, match="error must be an exception"):
        ledger.finish("mail", begun.token, error="timeout")  # type: ignore[arg-type]
    assert store.get("effects/mail") == before
    assert ledger.finish("mail", begun.token, result="sent") == "sent"
