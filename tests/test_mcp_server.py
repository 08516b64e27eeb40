"""fencedstate's MCP server with real MCP client processes (the official SDK's stdio client)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


async def _client(store: str, sig: str, name: str, script: str) -> list[dict[str, Any]]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "fencedstate.mcp_server", store], env=dict(os.environ)
    )
    out: list[dict[str, Any]] = []
    async with contextlib.AsyncExitStack() as stack:
        if store.startswith("http://"):
            from mcp.client.streamable_http import streamablehttp_client

            r, w, _ = await stack.enter_async_context(streamablehttp_client(store))
        else:
            r, w = await stack.enter_async_context(stdio_client(params))
        s = await stack.enter_async_context(ClientSession(r, w))
        await s.initialize()
        await s.list_tools()
        if script == "race":
            Path(sig, f"ready-{name}").write_text("")
            while not Path(sig, "go").exists():
                await asyncio.sleep(0.01)
            res = await s.call_tool("put", {"key": "k", "value": name, "expected_version": 0})
            out.append({"isError": res.isError, "text": res.content[0].text})  # type: ignore[union-attr]
        else:  # fence: claim, reclaim, commit under the old claim
            c = await s.call_tool("claim", {"key": "f", "owner": name, "ttl": 60})
            claim = json.loads(c.content[0].text)  # type: ignore[union-attr]
            await s.call_tool("reclaim", {"key": "f"})
            args = {"key": "f", "owner": name, "epoch": claim["epoch"], "value": 1}
            res = await s.call_tool("commit", args | {"expected_version": 0})
            out.append({"isError": res.isError, "text": res.content[0].text})  # type: ignore[union-attr]
            g = await s.call_tool("get", {"key": "f"})
            out.append({"isError": g.isError, "text": g.content[0].text if g.content else "null"})  # type: ignore[union-attr]
    return out


def _err(text: str) -> dict[str, Any]:
    """The JSON body of a tool error (FastMCP prefixes "Error executing tool NAME: ")."""
    assert text.startswith("Error executing tool ")
    body: dict[str, Any] = json.loads(text[text.index("{") :])
    return body


def _spawn(store: Path | str, sig: Path, name: str, script: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(HERE), str(store), str(sig), name, script]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(p: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    res: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    return res


def test_two_clients_two_servers_one_dir_exactly_one_winner(tmp_path: Path) -> None:
    store, sig = tmp_path / "store", tmp_path / "sig"
    sig.mkdir()
    procs = [_spawn(store, sig, n, "race") for n in ("a", "b", "c")]
    deadline = time.monotonic() + 180
    while len(list(sig.glob("ready-*"))) < 3:
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (sig / "go").write_text("")
    results = [_result(p)[0] for p in procs]
    winners = [r for r in results if not r["isError"]]
    losers = [_err(r["text"]) for r in results if r["isError"]]
    assert len(winners) == 1 and len(losers) == 2
    assert all(e["error"] == "ConflictError" and e["advice"] == "re-read and retry" for e in losers)
    assert all(e["expected_version"] == 0 and e["actual_version"] == 1 for e in losers)


def test_two_http_clients_one_server_exactly_one_winner(tmp_path: Path) -> None:
    sig = tmp_path / "sig"
    sig.mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "fencedstate.mcp_server", str(tmp_path / "s"), "--http"]
    server = subprocess.Popen([*cmd, "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:  # wait for the server to accept connections
            assert server.poll() is None and time.monotonic() < deadline
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}/mcp"
        procs = [_spawn(url, sig, n, "race") for n in ("a", "b")]
        while len(list(sig.glob("ready-*"))) < 2:
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.01)
        (sig / "go").write_text("")
        results = [_result(p)[0] for p in procs]
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert sorted(r["isError"] for r in results) == [False, True]
    loser = next(_err(r["text"]) for r in results if r["isError"])
    assert loser["error"] == "ConflictError" and loser["actual_version"] == 1


def test_reclaimed_claim_commit_is_fenced(tmp_path: Path) -> None:
    commit, get = _result(_spawn(tmp_path / "store", tmp_path, "w", "fence"))
    assert commit["isError"]
    err = _err(commit["text"])
    assert err["error"] == "FencedError" and err["advice"] == "re-read and retry"
    assert err["claim_epoch"] < err["current_epoch"]
    assert json.loads(get["text"]) is None  # the fenced write did not land


def test_resources_serve_keys_including_slashes(tmp_path: Path) -> None:
    from mcp.shared.memory import create_connected_server_and_client_session

    import fencedstate as fs
    from fencedstate.mcp_server import create_server

    store = fs.open_store(tmp_path / "s")
    store.put("plans/a", {"x": 1}, expected_version=0)

    async def read() -> list[str]:
        server = create_server(store)._mcp_server
        async with create_connected_server_and_client_session(server) as s:
            r = await s.read_resource("fencedstate://plans%2Fa")  # type: ignore[arg-type]
            return [c.text for c in r.contents]  # type: ignore[union-attr]

    (text,) = asyncio.run(read())
    assert json.loads(text)["value"] == {"x": 1} and json.loads(text)["version"] == 1


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_client(*sys.argv[1:5]))), flush=True)
