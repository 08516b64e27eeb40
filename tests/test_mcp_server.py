"""fencedstate's MCP server with real MCP client processes (the official SDK's clients).

Runs unchanged on mcp 1.x and 2.x: `make test` runs this file in the co-installed .venv and in
the `mcp1` and `mcp2` environments of envs/matrix.toml.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _support.mcp_client import http_server, outcome, session

import fencedstate as fs

HERE = Path(__file__).resolve()


async def _client(store: str, sig: str, name: str, script: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with session(store) as s:
        await s.list_tools()
        if script == "race":
            Path(sig, f"ready-{name}").write_text("")
            while not Path(sig, "go").exists():
                await asyncio.sleep(0.01)
            res = await s.call_tool("put", {"key": "k", "value": name, "expected_version": 0})
            out.append(dict(zip(("isError", "body"), outcome(res), strict=True)))
        else:  # fence: claim, reclaim, commit under the old claim
            _, claim = outcome(await s.call_tool("claim", {"key": "f", "owner": name, "ttl": 60}))
            await s.call_tool("reclaim", {"key": "f"})
            args = {"key": "f", "owner": name, "epoch": claim["epoch"], "value": 1}
            res = await s.call_tool("commit", args | {"expected_version": 0})
            out.append(dict(zip(("isError", "body"), outcome(res), strict=True)))
            g = await s.call_tool("get", {"key": "f"})
            out.append(dict(zip(("isError", "body"), outcome(g), strict=True)))
    return out


def _spawn(store: Path | str, sig: Path, name: str, script: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(HERE), str(store), str(sig), name, script]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(p: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    res: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    return res


def _wait_ready(sig: Path, n: int, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 180
    while len(list(sig.glob("ready-*"))) < n:
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)


def test_two_clients_two_servers_one_dir_exactly_one_winner(tmp_path: Path) -> None:
    store, sig = tmp_path / "store", tmp_path / "sig"
    sig.mkdir()
    procs = [_spawn(store, sig, n, "race") for n in ("a", "b", "c")]
    _wait_ready(sig, 3, procs)
    (sig / "go").write_text("")
    results = [_result(p)[0] for p in procs]
    winners = [r for r in results if not r["isError"]]
    losers = [r["body"] for r in results if r["isError"]]
    assert len(winners) == 1 and len(losers) == 2
    assert all(e["error"] == "ConflictError" for e in losers)
    assert all(e["advice"] == fs.ConflictError.advice and e["retryable"] for e in losers)
    assert all(e["expected_version"] == 0 and e["actual_version"] == 1 for e in losers)


def test_two_http_clients_one_server_exactly_one_winner(tmp_path: Path) -> None:
    sig = tmp_path / "sig"
    sig.mkdir()
    with http_server(tmp_path / "s", tmp_path / "server.log") as url:
        procs = [_spawn(url, sig, n, "race") for n in ("a", "b")]
        _wait_ready(sig, 2, procs)
        (sig / "go").write_text("")
        results = [_result(p)[0] for p in procs]
    assert sorted(r["isError"] for r in results) == [False, True]
    loser = next(r["body"] for r in results if r["isError"])
    assert loser["error"] == "ConflictError" and loser["actual_version"] == 1


def test_reclaimed_claim_commit_is_fenced_with_new_claim_advice(tmp_path: Path) -> None:
    commit, get = _result(_spawn(tmp_path / "store", tmp_path, "w", "fence"))
    assert commit["isError"]
    err = commit["body"]
    assert err["error"] == "FencedError" and err["advice"] == fs.FencedError.advice
    assert "new claim" in err["advice"] and err["retryable"] is False
    assert err["claim_epoch"] < err["current_epoch"] and err["reason"] == "reclaimed"
    assert get == {"isError": False, "body": None}  # the fenced write did not land


async def test_every_error_is_parseable_json_with_its_own_advice(tmp_path: Path) -> None:
    """Held claims, bad keys, missing and wrong-typed arguments, unknown tools: JSON as is."""
    async with session(str(tmp_path / "s")) as s:
        await s.call_tool("claim", {"key": "k", "owner": "a", "ttl": 60})
        held = outcome(await s.call_tool("claim", {"key": "k", "owner": "b"}))
        missing = outcome(await s.call_tool("put", {"key": "k", "value": 1}))
        typed = outcome(
            await s.call_tool("put", {"key": "k", "value": 1, "expected_version": "one"})
        )
        badkey = outcome(await s.call_tool("get", {"key": "../etc"}))
        unknown = outcome(await s.call_tool("nosuchtool", {}))
        with fs.open_store(tmp_path / "s") as other:  # a claim taken outside this server
            other.claim("k2", owner="z", ttl=60)
        notours = outcome(
            await s.call_tool("commit", {"key": "k2", "owner": "z", "epoch": 1, "value": 1,
                                         "expected_version": 0})
        )  # fmt: skip
        never = outcome(
            await s.call_tool("commit", {"key": "k", "owner": "a", "epoch": 9, "value": 1,
                                         "expected_version": 0})
        )  # fmt: skip
    assert held[0] and held[1]["error"] == "ClaimHeldError"
    assert held[1]["advice"] == fs.ClaimHeldError.advice and held[1]["holder"] == "a"
    for is_error, body in (missing, typed):
        assert is_error and body["error"] == "InvalidArgumentError"
        assert body["advice"] == fs.InvalidArgumentError.advice and body["tool"] == "put"
        assert [p["argument"] for p in body["problems"]] == ["expected_version"]
    assert missing[1]["problems"][0]["problem"] == "missing"
    assert "'one'" not in typed[1]["message"]  # the rejected value is not echoed back
    assert badkey[0] and badkey[1]["error"] == "InvalidKeyError" and badkey[1]["key"] == "../etc"
    assert unknown[0] and unknown[1]["error"] == "InvalidArgumentError"
    assert notours[0] and "holds no claim on 'k2' for owner 'z'" in notours[1]["message"]
    assert never[0] and "epoch 9 of 'k' was never granted" in never[1]["message"]


async def test_a_damaged_key_is_named_by_its_file_in_the_store_not_the_server_path(
    tmp_path: Path,
) -> None:
    root = tmp_path / "s"
    with fs.open_store(root) as store:
        store.put("k", 1, expected_version=0)
    log = root / "data" / "k.jsonl"
    log.write_bytes(log.read_bytes() + b"garbage\n")
    async with session(str(root)) as s:
        got = [outcome(await s.call_tool(t, {"key": "k"})) for t in ("get", "history")]
    for is_error, body in got:
        assert is_error and body["error"] == "CorruptStateError", body
        assert body["path"] == "data/k.jsonl" and "data/k.jsonl" in body["message"]
        assert str(tmp_path) not in json.dumps(body)  # where the server keeps its files
        assert body["advice"] == fs.CorruptStateError.advice
    assert log.read_bytes().endswith(b"garbage\n")  # reported, never repaired


async def test_an_unknown_argument_is_refused_naming_the_nearest(tmp_path: Path) -> None:
    """A misspelt optional argument is refused, not dropped for its default (a 'ttl_s' of 600
    would have been a 30 s claim)."""
    async with session(str(tmp_path / "s")) as s:
        typo = outcome(await s.call_tool("claim", {"key": "k", "owner": "agent-7", "ttl_s": 600}))
        extra = outcome(await s.call_tool("get", {"key": "k", "verbose": True}))
        state = outcome(await s.call_tool("claim", {"key": "k", "owner": "agent-8"}))
    assert typo[0] and typo[1]["error"] == "InvalidArgumentError" and typo[1]["tool"] == "claim"
    assert typo[1]["advice"] == fs.InvalidArgumentError.advice
    assert typo[1]["problems"] == [
        {"argument": "ttl_s", "problem": "unknown argument (did you mean 'ttl'?)"}
    ]
    assert "it takes key, owner, ttl" in typo[1]["message"]
    assert extra[0] and extra[1]["problems"][0]["argument"] == "verbose"
    assert state[0] is False and state[1]["epoch"] == 1  # the refused claim took nothing


async def test_numbers_are_json_numbers_not_strings_or_booleans(tmp_path: Path) -> None:
    """A version is exact: "1", true and 1.0 are refused, not read as 1 (pydantic's lax mode
    would have taken them); ttl and timeout take any JSON number but not a string."""
    async with session(str(tmp_path / "s")) as s:
        refused = [
            outcome(await s.call_tool(tool, args))
            for tool, args in (
                ("put", {"key": "k", "value": 1, "expected_version": "0"}),
                ("put", {"key": "k", "value": 1, "expected_version": False}),
                ("put", {"key": "k", "value": 1, "expected_version": 0.0}),
                ("claim", {"key": "c", "owner": "a", "ttl": "60"}),
                ("history", {"key": "k", "limit": True}),
                ("watch_once", {"key": "k", "after_version": "0", "timeout": 1}),
            )
        ]
        unchanged = outcome(await s.call_tool("get", {"key": "k"}))
        free = outcome(await s.call_tool("claim", {"key": "c", "owner": "b", "ttl": 60}))
        put = outcome(await s.call_tool("put", {"key": "k", "value": 1, "expected_version": 0}))
    wrong = ["expected_version"] * 3 + ["ttl", "limit", "after_version"]
    for (is_error, body), argument in zip(refused, wrong, strict=True):
        assert is_error and body["error"] == "InvalidArgumentError", body
        assert [p["argument"] for p in body["problems"]] == [argument]
    assert unchanged == (False, None)  # nothing was written
    assert free[0] is False and free[1]["owner"] == "b"  # the refused claim took nothing
    assert put[0] is False and put[1]["version"] == 1


async def test_an_owner_that_does_not_hold_the_epoch_is_named(tmp_path: Path) -> None:
    async with session(str(tmp_path / "s")) as s:
        _, grant = outcome(await s.call_tool("claim", {"key": "k", "owner": "agent-7"}))
        wrong = [
            outcome(await s.call_tool(tool, {"key": "k", "owner": "agent-1", "epoch": 1} | more))
            for tool, more in (
                ("renew", {}),
                ("release", {}),
                ("commit", {"value": 1, "expected_version": 0}),
            )
        ]
        released = outcome(
            await s.call_tool("release", {"key": "k", "owner": "agent-7", "epoch": grant["epoch"]})
        )
    assert grant["epoch"] == 1
    for is_error, body in wrong:
        assert is_error and body["error"] == "InvalidArgumentError"
        assert "epoch 1 of 'k' is held by 'agent-7', not 'agent-1'" in body["message"]
    assert released == (False, {"key": "k", "owner": "agent-7", "epoch": 1, "released": True})


async def test_claim_and_renew_give_the_grant_the_cli_prints(tmp_path: Path) -> None:
    """One grant shape on both surfaces (was ``lease`` here, ``expires_in`` in the CLI)."""
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "fencedstate.cli",
            "claim",
            str(tmp_path / "s"),
            "j",
            "--owner",
            "a",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    async with session(str(tmp_path / "s")) as s:
        _, grant = outcome(await s.call_tool("claim", {"key": "k", "owner": "a", "ttl": 60}))
        args = {"key": "k", "owner": "a", "epoch": grant["epoch"]}
        _, renewed = outcome(await s.call_tool("renew", args))
    assert set(grant) == set(renewed) == set(json.loads(cli.stdout))
    assert (grant["key"], grant["owner"], grant["epoch"]) == ("k", "a", 1)
    assert 0 < grant["expires_in"] <= 60 < grant["expires_at"]
    assert renewed["epoch"] == 1 and renewed["expires_at"] >= grant["expires_at"]


async def test_release_of_a_reclaimed_claim_says_it_was_not_released(tmp_path: Path) -> None:
    """As the CLI's release does: a claim reclaimed before its release was no longer held."""
    async with session(str(tmp_path / "s")) as s:
        _, grant = outcome(await s.call_tool("claim", {"key": "k", "owner": "a", "ttl": 60}))
        await s.call_tool("reclaim", {"key": "k"})
        args = {"key": "k", "owner": "a", "epoch": grant["epoch"]}
        released = outcome(await s.call_tool("release", args))
        again = outcome(await s.call_tool("release", args))
    assert grant["epoch"] == 1
    assert released == (False, {"key": "k", "owner": "a", "epoch": 1, "released": False})
    assert again[0] and "holds no claim" in again[1]["message"]  # gone from the table too


async def test_a_list_result_is_one_json_array_as_text(tmp_path: Path) -> None:
    """keys/history/effects: the text is the whole list as JSON ('[]' when empty), as for
    every other result, not one text block per item (a client reading the text saw one key)."""
    async with session(str(tmp_path / "s")) as s:
        empty = await s.call_tool("keys", {})
        no_effects = await s.call_tool("effects", {})
        for key in ("b", "a"):
            await s.call_tool("put", {"key": key, "value": {"n": 1}, "expected_version": 0})
        await s.call_tool("put", {"key": "a", "value": 2, "expected_version": 1})
        listed = await s.call_tool("keys", {})
        events = await s.call_tool("history", {"key": "a"})
    for res in (empty, no_effects):
        assert [json.loads(c.text) for c in res.content] == [[]]
    assert [json.loads(c.text) for c in listed.content] == [["a", "b"]]
    [text] = [json.loads(c.text) for c in events.content]
    assert text == outcome(events)[1]
    assert [(e["op"], e["version"], e["value"]) for e in text] == [
        ("put", 1, {"n": 1}),
        ("put", 2, 2),
    ]
    assert all(isinstance(e["at"], float) and e["at"] > 1e9 for e in text)


async def test_a_missing_key_is_null_as_text_not_an_empty_content(tmp_path: Path) -> None:
    """A client that passes only the text to the model sees "null", not nothing."""
    async with session(str(tmp_path / "s")) as s:
        res = await s.call_tool("get", {"key": "nope"})
    assert not getattr(res, "is_error", getattr(res, "isError", None))
    assert [(c.type, c.text) for c in res.content] == [("text", "null")]
    assert outcome(res) == (False, None)


async def test_same_tools_and_resources_on_this_sdk_major(tmp_path: Path) -> None:
    async with session(str(tmp_path / "s")) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        await s.call_tool("put", {"key": "plans/a", "value": {"x": 1}, "expected_version": 0})
        r = await s.read_resource("fencedstate://plans%2Fa")
        with pytest.raises(Exception) as bad:
            await s.read_resource("fencedstate://..hidden")
    assert sorted(tools) == sorted(
        [
            "get",
            "put",
            "delete",
            "claim",
            "commit",
            "renew",
            "release",
            "reclaim",
            "keys",
            "history",
            "watch_once",
            "effects",
        ]
    )
    schema = getattr(tools["put"], "input_schema", None) or tools["put"].inputSchema
    assert set(schema["required"]) == {"key", "value", "expected_version"}
    read_only = {
        n
        for n, t in tools.items()
        if getattr(t.annotations, "read_only_hint", getattr(t.annotations, "readOnlyHint", None))
    }
    assert read_only == {"get", "keys", "history", "watch_once", "effects"}
    body = json.loads(r.contents[0].text)
    assert body["value"] == {"x": 1} and body["version"] == 1
    data = bad.value.error.data  # type: ignore[attr-defined]
    assert data["error"] == "InvalidKeyError" and json.loads(bad.value.error.message) == data  # type: ignore[attr-defined]


def test_docs_tools_table_matches_the_server() -> None:
    from fencedstate.mcp_server.auth import READ_TOOLS
    from fencedstate.mcp_server.tools import StateTools

    doc = (HERE.parent.parent / "docs" / "mcp.md").read_text()
    rows = [ln.split("|") for ln in doc.splitlines() if ln.startswith("| `")]
    documented = {r[1].strip().strip("`"): r[4].strip() == "yes" for r in rows}
    assert sorted(documented) == sorted(StateTools.NAMES)
    assert {n for n, ro in documented.items() if ro} == READ_TOOLS
    [access] = re.findall(r"^- `access`: .*?\)\.$", doc, re.M | re.S)  # what a read token may do
    assert set(re.findall(r"`(\w+)`", access.split("`read`")[1])) == READ_TOOLS


async def test_catalog_server_runs_on_this_sdk_major() -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "fencedstate.catalog", "serve"]
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        assert {"search", "show"} <= {t.name for t in (await s.list_tools()).tools}
        is_error, body = outcome(await s.call_tool("show", {"id": "zombie-writer"}))
    assert not is_error and body["id"] == "zombie-writer"


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_client(*sys.argv[1:5]))), flush=True)
