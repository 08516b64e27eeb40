"""The MCP server's read-only ``effects`` tool: the effect ledger, in-doubt first, within the
caller's token (real MCP client sessions, stdio and HTTP)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from _support.mcp_client import http_server, outcome, session

import fencedstate as fs


def _ledger(store: Path) -> None:
    s = fs.open_store(store)
    ledger = fs.EffectLedger(s)
    ledger.run("team-a/mail-1", lambda t: {"message_id": 7})
    with pytest.raises(TimeoutError):
        ledger.run("team-b/charge-9", lambda t: (_ for _ in ()).throw(TimeoutError("lost")))
    s.put("plans/a/x", 1, expected_version=0)


async def test_effects_tool_lists_the_ledger_in_doubt_first(tmp_path: Path) -> None:
    _ledger(tmp_path / "s")
    async with session(str(tmp_path / "s")) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        listed = outcome(await s.call_tool("effects", {}))
        done = outcome(await s.call_tool("effects", {"state": "completed"}))
        bad = outcome(await s.call_tool("effects", {"state": "finished"}))
        wrong = outcome(await s.call_tool("effects", {"prefix": "plans/"}))
    ann = tools["effects"].annotations
    assert getattr(ann, "read_only_hint", getattr(ann, "readOnlyHint", None)) is True
    assert listed[0] is False
    assert [(r["effect_id"], r["shown_state"]) for r in listed[1]] == [
        ("team-b/charge-9", "in_doubt"),
        ("team-a/mail-1", "completed"),
    ]
    assert listed[1][0]["attempt"] == 1 and "TimeoutError" in listed[1][0]["reason"]
    assert [r["result"] for r in done[1]] == [{"message_id": 7}]
    assert bad[0] and bad[1]["error"] == "InvalidArgumentError"
    assert wrong[0] is False and wrong[1]  # values the ledger did not write: listed as such
    assert {(r["shown_state"], r["reason"][:22]) for r in wrong[1]} == {
        ("foreign", "not an effect record (")
    }


async def test_effects_tool_stays_within_the_token(tmp_path: Path) -> None:
    _ledger(tmp_path / "s")
    viewer, team_a, plans = (secrets.token_urlsafe(24) for _ in range(3))
    doc = {
        "tokens": [
            {"name": "viewer", "token": viewer, "access": "read"},
            {"name": "team-a", "token": team_a, "access": "read", "prefix": "effects/team-a/"},
            {"name": "plans", "token": plans, "access": "full", "prefix": "plans/a/"},
        ]
    }
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(doc))
    tokens.chmod(0o600)
    with http_server(tmp_path / "s", tmp_path / "log", "--tokens", str(tokens)) as url:
        async with session(url, token=viewer) as s:
            everything = outcome(await s.call_tool("effects", {}))
        async with session(url, token=team_a) as s:
            own = outcome(await s.call_tool("effects", {}))
        async with session(url, token=plans) as s:
            refused = outcome(await s.call_tool("effects", {}))
    assert len(everything[1]) == 2  # a read-only token may read the ledger
    assert [r["effect_id"] for r in own[1]] == ["team-a/mail-1"]  # narrowed to its prefix
    assert refused[0] and refused[1]["error"] == "NotPermittedError"
    assert refused[1]["key"] == "effects/"
