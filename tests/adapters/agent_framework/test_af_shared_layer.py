"""Issue 21 for Agent Framework: ``skip_excluded``, re-delivered messages stored once (as the
reference history providers do), one provider shared by threads, claims released by epoch."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from agent_framework import InMemoryHistoryProvider, Message
from fencedstate_agent_framework import FencedHistoryProvider, FencedSessionStore

import fencedstate as fs


def _msg(text: str, role: str = "user", **props: object) -> Message:
    return Message(role=role, contents=[text], additional_properties=dict(props))


def _texts(messages: list[Message]) -> list[str]:
    return [m.text for m in messages]


async def test_skip_excluded_like_the_reference_provider(tmp_path: Path) -> None:
    batch = [_msg("keep"), _msg("compacted", role="assistant", _excluded=True), _msg("also")]
    ours_all = FencedHistoryProvider(str(tmp_path))
    ours_skip = FencedHistoryProvider(str(tmp_path), skip_excluded=True)
    await ours_all.save_messages("s", batch)
    ref_state: dict[str, object] = {}
    ref_skip = InMemoryHistoryProvider(skip_excluded=True)
    await ref_skip.save_messages("s", batch, state=ref_state)
    want = _texts(await ref_skip.get_messages("s", state=ref_state))
    assert want == ["keep", "also"]
    assert _texts(await ours_skip.get_messages("s")) == want
    assert _texts(await ours_all.get_messages("s")) == ["keep", "compacted", "also"]
    assert ours_skip.skip_excluded and not ours_all.skip_excluded


@pytest.mark.parametrize(
    "deliveries",
    [
        [["a", "b"], ["a", "b"]],  # the same batch delivered twice
        [["a", "b"], ["a", "b", "c"]],  # the whole transcript replayed plus one new message
        [["a", "b"], ["b", "c"]],  # an overlapping tail
        [["q"], ["q"]],  # a repeated user input without an id is kept (reference behaviour)
    ],
)
async def test_redelivered_messages_are_stored_as_the_reference_stores_them(
    tmp_path: Path, deliveries: list[list[str]]
) -> None:
    ours = FencedHistoryProvider(str(tmp_path))
    ref = InMemoryHistoryProvider()
    state: dict[str, object] = {}
    for texts in deliveries:
        batch = [_msg(t, role="user" if t == "q" else "assistant") for t in texts]
        await ours.save_messages("s", batch)
        await ref.save_messages("s", batch, state=state)
    assert _texts(await ours.get_messages("s")) == _texts(await ref.get_messages("s", state=state))


async def test_a_message_redelivered_with_its_id_is_stored_once(tmp_path: Path) -> None:
    ours = FencedHistoryProvider(str(tmp_path))
    m = Message(role="user", contents=["hi"], message_id="m-1")
    await ours.save_messages("s", [m])
    await ours.save_messages("s", [Message(role="user", contents=["hi"], message_id="m-1")])
    assert _texts(await ours.get_messages("s")) == ["hi"]


def test_one_provider_shared_by_threads_stores_every_message(tmp_path: Path) -> None:
    provider = FencedHistoryProvider(str(tmp_path))

    def worker(t: int) -> None:
        async def run() -> None:
            for i in range(10):
                await provider.save_messages("s", [_msg(f"t{t}-{i}")])

        asyncio.run(run())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    got = _texts(provider.load_history("s")[0])
    assert sorted(got) == sorted(f"t{t}-{i}" for t in range(4) for i in range(10))


async def test_releasing_an_old_claim_keeps_the_newer_one(tmp_path: Path) -> None:
    sessions = FencedSessionStore(str(tmp_path))
    old = sessions.claim_session("s", owner="r1")
    sessions.store.reclaim(old.key)
    new = sessions.claim_session("s", owner="r1")
    assert old.release() is False
    from agent_framework import AgentSession

    other = FencedSessionStore(sessions.store)
    with pytest.raises(fs.ClaimHeldError):
        await other.set("s", AgentSession(session_id="s"))
    await sessions.set("s", AgentSession(session_id="s"))  # under the newer claim
    assert new.release() is True


async def test_one_session_object_stored_by_many_tasks_is_never_refused(tmp_path: Path) -> None:
    from agent_framework import AgentSession

    sessions = FencedSessionStore(str(tmp_path))
    session = AgentSession(session_id="s")
    await sessions.set("s", session)

    async def store_again(i: int) -> None:
        await sessions.set("s", session)

    await asyncio.gather(*(store_again(i) for i in range(20)))
    assert sessions.version_of(session) == 21
    stale = FencedSessionStore(sessions.store)
    with pytest.raises(fs.ConflictError):  # another object's blind set is still refused
        await stale.set("s", AgentSession(session_id="s"))
