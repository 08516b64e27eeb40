"""The MCP server's watch: the ``watch_once`` tool and resource subscriptions, with a real MCP
client (the SDK's stdio client spawning the server) and commits from another process."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from _support.mcp_client import http_server, outcome, session
from _support.mcp_subscribe import LISTEN, eras, eventfds, server_pid, subscriber, until

import fencedstate as fs

COMMIT = (
    "import sys, fencedstate as fs\n"
    "s = fs.open_store(sys.argv[1])\n"
    "k, v, e = sys.argv[2], sys.argv[3], int(sys.argv[4])\n"
    "s.put(k, v, expected_version=e)\n"
)


def _commit(store: Path, key: str, value: str, expected: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", COMMIT, str(store), key, value, str(expected)], timeout=120
    )
    assert done.returncode == 0


async def test_watch_once_tool_wakes_on_a_commit_from_another_process(tmp_path: Path) -> None:
    store = tmp_path / "s"
    fs.open_store(store).put("plans/a", "v1", expected_version=0)
    async with session(str(store)) as s:
        call = asyncio.create_task(
            s.call_tool("watch_once", {"key": "plans/a", "after_version": 1, "timeout": 120})
        )
        await asyncio.sleep(0.2)
        assert not call.done()  # version 1 is not past 1
        await asyncio.to_thread(_commit, store, "plans/a", "v2", 1)
        is_error, body = outcome(await call)
        assert not is_error and body["version"] == 2 and body["value"] == "v2"
        assert body["deleted"] is False
        is_error, body = outcome(
            await s.call_tool("watch_once", {"key": "plans/a", "after_version": 2, "timeout": 0.1})
        )
        assert is_error and body["error"] == "WatchTimeoutError" and body["retryable"]
        assert body["advice"]
        is_error, body = outcome(
            await s.call_tool("watch_once", {"key": "plans/a", "after_version": 2, "timeout": 301})
        )
        assert is_error and body["error"] == "InvalidArgumentError"


@pytest.mark.parametrize("era", eras())
async def test_a_subscription_gets_resource_updated_for_commits(tmp_path: Path, era: str) -> None:
    store = tmp_path / "s"
    fs.open_store(store).put("plans/a", "v1", expected_version=0)
    uri = "fencedstate://plans%2Fa"
    async with subscriber(str(store), era) as sub:
        assert sub.advertised()
        pid = server_pid(store)
        idle = eventfds(pid)
        async with sub.subscribed(uri):
            assert eventfds(pid) == idle + 1  # the subscription's store watch, started
            await asyncio.to_thread(_commit, store, "plans/a", "v2", 1)
            assert await asyncio.wait_for(sub.updates.get(), 120) == uri
            body = (await sub.session.read_resource(uri)).contents[0].text
            assert '"version": 2' in body
            await asyncio.to_thread(_commit, store, "plans/ab", "other key", 0)
            await asyncio.to_thread(_commit, store, "plans/a", "v3", 2)
            assert await asyncio.wait_for(sub.updates.get(), 120) == uri  # v3
            with pytest.raises(TimeoutError):  # and only v3: plans/ab is another key
                await asyncio.wait_for(sub.updates.get(), 0.5)
        await until(lambda: eventfds(pid) == idle, "the watch outlived the subscription")
        await asyncio.to_thread(_commit, store, "plans/a", "v4", 3)
        got = await sub.session.call_tool("watch_once", {"key": "plans/a", "after_version": 3})
        assert not outcome(got)[0]  # the server saw v4...
        with pytest.raises(TimeoutError):  # ...and sent no update after the unsubscribe
            await asyncio.wait_for(sub.updates.get(), 0.5)


CLIENT = (
    "import asyncio, contextlib, sys\n"
    "sys.path.insert(0, sys.argv[3])\n"
    "from _support.mcp_subscribe import HANDSHAKE, subscriber\n"
    "async def main():\n"
    "    async with subscriber(sys.argv[1], sys.argv[2]) as sub:\n"
    "        async with contextlib.AsyncExitStack() as stack:\n"
    "            uri = 'fencedstate://plans%2Fa'\n"
    "            if sub.era == HANDSHAKE:  # subscribe, never unsubscribe\n"
    "                await sub.session.subscribe_resource(uri)\n"
    "            else:\n"
    "                await stack.enter_async_context(sub.subscribed(uri))\n"
    "            print('subscribed', flush=True)\n"
    "            await asyncio.to_thread(sys.stdin.readline)\n"
    "asyncio.run(main())\n"
)
# At 2026-07-28 a listen stream is one HTTP response: a client killed with it open is gone.
# At the 2025 versions a session outlives its HTTP connections (a client may come back with its
# Mcp-Session-Id), so there the subscription ends when the session does: the client leaves.
ENDINGS = [(era, "leaves") for era in eras()] + [(LISTEN, "killed")] * (LISTEN in eras())


@pytest.mark.parametrize(("era", "how"), ENDINGS)
async def test_a_subscriber_gone_leaves_no_watch_behind(tmp_path: Path, era: str, how: str) -> None:
    store = tmp_path / "s"
    fs.open_store(store).put("plans/a", "v1", expected_version=0)
    with http_server(store, tmp_path / "server.log") as url:
        pid = server_pid(store)
        idle = eventfds(pid)
        tests = str(Path(__file__).parent)
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, url, era, tests],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert client.stdin is not None and client.stdout is not None
            assert await asyncio.to_thread(client.stdout.readline) == "subscribed\n"
            assert eventfds(pid) == idle + 1  # its subscription's store watch
            if how == "killed":
                client.kill()  # SIGKILL: no unsubscribe, no goodbye
            else:
                client.stdin.write("\n")  # leave the session without unsubscribing
                client.stdin.flush()
            await asyncio.to_thread(client.wait, 120)
        finally:
            client.kill()
            client.wait(timeout=60)
        await until(lambda: eventfds(pid) == idle, f"the watch outlived a client that {how}")


@pytest.mark.parametrize("era", eras())
async def test_a_bad_or_foreign_uri_is_refused_with_the_errors_json(
    tmp_path: Path, era: str
) -> None:
    store = tmp_path / "s"
    fs.open_store(store).put("plans/a", "v1", expected_version=0)
    async with subscriber(str(store), era) as sub:
        pid = server_pid(store)
        idle = eventfds(pid)
        for uri, error in [
            ("fencedstate://", "InvalidKeyError"),
            ("file:///etc/passwd", "InvalidArgumentError"),
        ]:
            with pytest.raises(Exception) as refused:
                async with sub.subscribed(uri):
                    pass
            body = json.loads(refused.value.error.message)  # type: ignore[attr-defined]
            assert body["error"] == error and body["advice"]
        assert eventfds(pid) == idle  # nothing was watched
        async with sub.subscribed("fencedstate://plans%2Fa"):  # the session is still fine
            await asyncio.to_thread(_commit, store, "plans/a", "v2", 1)
            assert await asyncio.wait_for(sub.updates.get(), 120) == "fencedstate://plans%2Fa"


@pytest.mark.parametrize("era", eras())
async def test_a_token_subscribes_only_to_keys_it_may_get(tmp_path: Path, era: str) -> None:
    store = tmp_path / "s"
    fs.open_store(store).put("plans/a/x", "v1", expected_version=0)
    secret = secrets.token_urlsafe(24)
    tokens = tmp_path / "tokens.json"
    doc = {"tokens": [{"name": "agent-a", "token": secret, "access": "read", "prefix": "plans/a/"}]}
    tokens.write_text(json.dumps(doc))
    tokens.chmod(0o600)
    with http_server(store, tmp_path / "server.log", "--tokens", str(tokens)) as url:
        async with subscriber(url, era, token=secret) as sub:
            with pytest.raises(Exception) as refused:
                async with sub.subscribed("fencedstate://plans%2Fb"):
                    pass
            message = refused.value.error.message  # type: ignore[attr-defined]
            assert json.loads(message)["error"] == "NotPermittedError" and secret not in message
            async with sub.subscribed("fencedstate://plans%2Fa%2Fx"):  # read-only may watch
                await asyncio.to_thread(_commit, store, "plans/a/x", "v2", 1)
                got = await asyncio.wait_for(sub.updates.get(), 120)
                assert got == "fencedstate://plans%2Fa%2Fx"
