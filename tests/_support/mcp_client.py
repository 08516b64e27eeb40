"""A real MCP client session on either SDK major: stdio (spawning the server) or streamable HTTP.

mcp 1.x and 2.x keep ``ClientSession`` and ``stdio_client``; the HTTP transport takes a
pre-built HTTP client on both (httpx on 1.x, httpx2 on 2.x) and yields three streams on 1.x, two
on 2.x.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any


@contextlib.asynccontextmanager
async def session(
    target: str, *, token: str | None = None, message_handler: Any = None, modern: bool = False
) -> AsyncIterator[Any]:
    """An initialised ``ClientSession``: ``target`` is a store dir (stdio) or an http:// URL.

    ``modern`` (SDK 2.x only): connect at the 2026-07-28 protocol (``server/discover``) instead
    of the ``initialize`` handshake (2025 versions)."""
    from mcp import ClientSession

    async with contextlib.AsyncExitStack() as stack:
        if target.startswith("http://"):
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            headers = {"Authorization": f"Bearer {token}"} if token is not None else None
            http = await stack.enter_async_context(create_mcp_http_client(headers=headers))
            streams = await stack.enter_async_context(
                streamable_http_client(target, http_client=http)
            )
        else:
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            params = StdioServerParameters(
                command=sys.executable,
                args=["-m", "fencedstate.mcp_server", target],
                env=dict(os.environ),
            )
            streams = await stack.enter_async_context(stdio_client(params))
        s = await stack.enter_async_context(
            ClientSession(streams[0], streams[1], message_handler=message_handler)
        )
        s.fs_ready = await (s.discover() if modern else s.initialize())  # the server's answer
        yield s


def outcome(res: Any) -> tuple[bool, Any]:
    """(is_error, body) of a tool result on either major: an error's text parsed as JSON as it
    is, a success's structured content (a non-object result arrives wrapped as ``result``)."""
    is_error = bool(getattr(res, "is_error", getattr(res, "isError", False)))
    if is_error:
        return True, json.loads(res.content[0].text)
    data = getattr(res, "structured_content", getattr(res, "structuredContent", None))
    if data is None:
        return False, json.loads(res.content[0].text) if res.content else None
    if isinstance(data, dict) and list(data) == ["result"]:
        return False, data["result"]
    return False, data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def http_server(
    store: Path, log: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``fencedstate mcp STORE --http`` as a real process (output to ``log``); yields its URL
    once it accepts connections."""
    port = free_port()
    cmd = [sys.executable, "-m", "fencedstate.mcp_server", str(store), "--http"]
    with log.open("a") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + 180
        while True:  # wait for the server to accept connections (or to die)
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: {log.read_text()}")
            assert time.monotonic() < deadline, "server did not start listening"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=60)
