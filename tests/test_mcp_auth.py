"""Bearer tokens on the MCP server's HTTP transport: real server processes, real SDK clients.

A missing or wrong token never reaches a tool (HTTP 401 from the SDK's auth middleware); a
read-only token cannot write; a prefix token cannot touch a key outside its prefix; beyond
loopback the server refuses to start without tokens; no secret appears in any error, log or repr.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _support.mcp_client import http_server, outcome, session

import fencedstate as fs
from fencedstate.mcp_server import Grant, NotPermittedError, TokenTable
from fencedstate.mcp_server.cli import is_loopback

FULL, READ, AGENT, WRONG = (secrets.token_urlsafe(24) for _ in range(4))
SECRETS = (FULL, READ, AGENT, WRONG)


def _tokens_file(tmp_path: Path) -> Path:
    doc = {
        "tokens": [
            {"name": "admin", "token": FULL, "access": "full"},
            {
                "name": "viewer",
                "sha256": hashlib.sha256(READ.encode()).hexdigest(),
                "access": "read",
            },
            {"name": "agent-a", "token": AGENT, "access": "full", "prefix": "plans/a/"},
        ]
    }
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return path


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def _refused(url: str, token: str | None) -> str:
    """``token`` gets HTTP 401 before any MCP message is read, and the SDK client fails to
    connect; returns everything the caller saw."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}},
    }  # fmt: skip
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(initialize).encode(), headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(req, timeout=60)
    assert http.value.code == 401
    assert http.value.headers.get("WWW-Authenticate", "").startswith("Bearer")  # the SDK's own
    seen = http.value.read().decode() + str(http.value.headers)
    assert "invalid_token" in seen
    with pytest.raises(BaseException) as info:
        async with session(url, token=token) as s:
            await s.call_tool("put", {"key": "plans/a/x", "value": 0, "expected_version": 0})
    seen += repr(info.value) + str(info.value)
    for sub in getattr(info.value, "exceptions", ()):
        seen += repr(sub) + str(sub)
    return seen


async def test_http_tokens_full_read_only_and_prefix(tmp_path: Path) -> None:
    store = tmp_path / "s"
    fs.open_store(store).put("other/x", 1, expected_version=0)
    log = tmp_path / "server.log"
    seen: list[str] = []
    with http_server(store, log, "--tokens", str(_tokens_file(tmp_path))) as url:
        seen.append(await _refused(url, None))
        seen.append(await _refused(url, WRONG))
        assert fs.open_store(store).get("plans/a/x") is None  # the refused puts did not land
        async with session(url, token=FULL) as admin:
            ok = outcome(await admin.call_tool("put", {"key": "plans/a/x", "value": 1,
                                                       "expected_version": 0}))  # fmt: skip
        async with session(url, token=READ) as viewer:
            read = outcome(await viewer.call_tool("get", {"key": "plans/a/x"}))
            wrote = outcome(
                await viewer.call_tool(
                    "put", {"key": "plans/a/x", "value": 2, "expected_version": 1}
                )
            )
            claimed = outcome(await viewer.call_tool("claim", {"key": "plans/a/x", "owner": "v"}))
        async with session(url, token=AGENT) as agent:
            inside = outcome(
                await agent.call_tool(
                    "put", {"key": "plans/a/x", "value": 3, "expected_version": 1}
                )
            )
            outside = outcome(
                await agent.call_tool("put", {"key": "other/x", "value": 3, "expected_version": 1})
            )
            peek = outcome(await agent.call_tool("get", {"key": "other/x"}))
            listed = outcome(await agent.call_tool("keys", {}))
            wide = outcome(await agent.call_tool("keys", {"prefix": "other/"}))
            with pytest.raises(Exception) as res_err:
                await agent.read_resource("fencedstate://other%2Fx")
            own = await agent.read_resource("fencedstate://plans%2Fa%2Fx")
    assert ok[0] is False and ok[1]["version"] == 1
    assert read == (False, read[1]) and read[1]["value"] == 1
    for is_error, body in (wrote, claimed):
        assert is_error and body["error"] == "NotPermittedError"
        assert body["grant"] == "viewer" and "read-only" in body["reason"]
        assert body["advice"] == NotPermittedError.advice
    assert inside[0] is False and inside[1]["version"] == 2
    for (is_error, body), key in ((outside, "other/x"), (peek, "other/x"), (wide, "other/")):
        assert is_error and body["error"] == "NotPermittedError" and body["key"] == key
        assert body["grant"] == "agent-a" and "plans/a/" in body["reason"]
    assert listed == (False, listed[1]) and "other/x" not in json.dumps(listed[1])
    assert res_err.value.error.data["error"] == "NotPermittedError"  # type: ignore[attr-defined]
    assert json.loads(own.contents[0].text)["version"] == 2
    after = fs.open_store(store)
    assert after.get("other/x").value == 1 and after.get("plans/a/x").value == 3  # type: ignore[union-attr]
    for text in [*seen, log.read_text(), json.dumps([wrote, claimed, outside, peek, wide])]:
        _no_secret(text)
    _no_secret(str(res_err.value))


async def test_tokens_from_the_environment(tmp_path: Path) -> None:
    doc = json.dumps([{"name": "envtok", "token": FULL, "access": "read"}])
    log = tmp_path / "server.log"
    with http_server(tmp_path / "s", log, env={"FENCEDSTATE_MCP_TOKENS": doc}) as url:
        await _refused(url, None)
        async with session(url, token=FULL) as s:
            denied = outcome(
                await s.call_tool("put", {"key": "k", "value": 1, "expected_version": 0})
            )
    assert denied[0] and denied[1]["grant"] == "envtok"
    _no_secret(log.read_text())


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    cmd = [sys.executable, "-m", "fencedstate.mcp_server", str(tmp_path / "s"), "--http", *args]
    run_env = {k: v for k, v in os.environ.items() if k != "FENCEDSTATE_MCP_TOKENS"}
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env=run_env | (env or {})
    )


def test_refuses_a_non_loopback_address_without_tokens(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        r = _serve(tmp_path, "--host", host, "--port", "1")
        assert r.returncode == 2, r
        assert "refusing to serve" in r.stderr and "--tokens" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org"))


def test_tokens_without_http_is_a_usage_error(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "fencedstate.mcp_server", str(tmp_path / "s")]
    r = subprocess.run([*cmd, "--tokens", str(_tokens_file(tmp_path))], capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.returncode == 2 and "--tokens applies to --http" in r.stderr


@pytest.mark.parametrize(("flag", "value"), [("--port", "8799"), ("--host", "0.0.0.0")])
def test_an_address_without_http_is_a_usage_error(tmp_path: Path, flag: str, value: str) -> None:
    """Not a stdio server that silently ignores where it was told to listen."""
    cmd = [sys.executable, "-m", "fencedstate.mcp_server", str(tmp_path / "s"), flag, value]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [f"fencedstate mcp: {flag} applies to --http only (stdio "
                                     "listens on no address)"]  # fmt: skip
    assert not (tmp_path / "s").exists()


def test_help_shows_the_http_address_defaults() -> None:
    cmd = [sys.executable, "-m", "fencedstate.mcp_server", "--help"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    said = " ".join(r.stdout.split())  # argparse wraps at the terminal's width
    assert "(default 127.0.0.1, loopback)" in said and "(default 8000)" in said


def test_bad_tokens_files_are_refused_without_showing_a_token(tmp_path: Path) -> None:
    path = _tokens_file(tmp_path)
    path.chmod(0o644)
    r = _serve(tmp_path, "--tokens", str(path))
    assert r.returncode == 2 and "chmod 600" in r.stderr
    cases: list[Any] = [
        {"tokens": [{"name": "a", "token": FULL, "access": "admin"}]},
        {"tokens": [{"name": "a", "token": FULL}, {"name": "a", "token": READ}]},
        {"tokens": [{"name": "a", "token": FULL}, {"name": "b", "token": FULL}]},
        {"tokens": [{"name": "a", "token": FULL, "sha256": "00" * 32}]},
        {"tokens": [{"name": "a", "token": FULL[:8]}]},
        {"tokens": [{"name": "a", "token": FULL, "extra": READ}]},
        {"tokens": []},
        f"[{FULL}",
    ]
    for case in cases:
        text = case if isinstance(case, str) else json.dumps(case)
        with pytest.raises(fs.InvalidArgumentError) as e:
            TokenTable.parse(text, source="t")
        _no_secret(str(e.value) + repr(e.value) + json.dumps(e.value.to_dict()))
        assert FULL[:8] not in str(e.value)


def test_reprs_never_show_a_secret(tmp_path: Path) -> None:
    from fencedstate.mcp_server.auth import TokenVerifier

    table = TokenTable.load(_tokens_file(tmp_path))
    verifier = TokenVerifier(table)
    grant = table.lookup(AGENT)
    assert grant == Grant("agent-a", "full", "plans/a/") and table.lookup(WRONG) is None
    _no_secret(repr(table) + repr(verifier) + repr(grant) + repr(vars(verifier)))
    assert "admin" in repr(table)


def test_a_port_it_cannot_listen_on_is_one_line_and_opens_no_store(tmp_path: Path) -> None:
    """An out-of-range port was a pydantic traceback, a port in use uvicorn's exit 3 (which
    means ClaimHeldError to a script); both after the store had been created."""
    tokens = str(_tokens_file(tmp_path))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = str(taken.getsockname()[1])
        for port, says in (("99999", "0-65535"), ("-1", "0-65535"), (busy, "already in use")):
            r = _serve(tmp_path, "--port", port, "--tokens", tokens)
            assert r.returncode == 2, r
            [line] = r.stderr.strip().splitlines()
            assert port in line and says in line
        r = _serve(tmp_path, "--host", "no-such-host.invalid", "--tokens", tokens)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r
    assert not (tmp_path / "s").exists()


def test_serves_ipv6_loopback_with_tokens(tmp_path: Path) -> None:
    """``--host ::1`` (loopback, docs/mcp.md) with tokens was a pydantic traceback: the SDK's
    issuer URL needs the address in brackets."""
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "fencedstate.mcp_server", str(tmp_path / "s"), "--http"]
    proc = subprocess.Popen(
        [*cmd, "--host", "::1", "--port", str(port), "--tokens", str(_tokens_file(tmp_path))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while True:  # until it listens, or dies
            assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
            with socket.socket(socket.AF_INET6) as probe:
                if probe.connect_ex(("::1", port)) == 0:
                    break
            time.sleep(0.01)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://[::1]:{port}/mcp", timeout=30)
        assert refused.value.code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=60)
