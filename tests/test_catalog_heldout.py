"""Catalog search on held-out paraphrases from incident threads; MCP answers equal the CLI's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fencedstate import catalog

HELDOUT = json.loads((Path(__file__).parent / "catalog_heldout.json").read_text())["questions"]
IDS = {e.id for e in catalog.load_entries()}
#: Floors measured on this set (85 questions, issue 27): top-1 73 (86 %), top-3 78 (92 %) with
#: symptoms + bm25 (the first 46 alone: top-1 37 before, 40 after). The issue's target is top-1
#: 90 %: not met yet (see the misses this test prints on failure). With issue 24's two entries
#: and its three questions (88; the #8039 question now expects duplicate-side-effect-on-resume):
#: top-1 75 (85 %), top-3 80 (91 %). With the second-stage re-rank (`ranking`, chosen on
#: tests/catalog_dev.json, checked here once at the end): top-1 74 (84 %), top-3 80 (91 %). The
#: target (90 %) is not met; see docs/catalog.md for what was tried and measured. A vote of the
#: nearest labelled dev questions (commit 828ba54, chosen by cross-validation on the dev set)
#: measured top-1 71 (81 %), top-3 81 here and was reverted. A learned linear re-rank (commit
#: 933cef9, chosen by cross-validation on a dev set grown to 189, then 209 questions) measured
#: top-1 71, top-3 83 here and was reverted too; the shipped ranking measured 74 / 80 again after.
#: Fused with the meaning ranking (`semantic`, chosen on the dev set alone; the default with the
#: `catalog` extra): top-1 73 (83 %), top-3 83 (94 %). (A first version that also embedded the
#: entries' cited incidents, 38 of which are sources of these questions, measured 74 / 84; it
#: was not kept, so as not to index the held-out set's sources.) The floors leave one question
#: for float rounding on another CPU. Floors per `semantic` setting: (top-1, top-3).
FLOORS = {False: (0.84, 0.90), True: (0.82, 0.93)}


def test_heldout_set_is_large_sourced_and_points_at_real_entries() -> None:
    assert len(HELDOUT) >= 80
    for x in HELDOUT:
        assert x["expected"] in IDS, x
        assert x["source"].startswith("https://"), x
    assert len({x["q"] for x in HELDOUT}) == len(HELDOUT)


@pytest.mark.parametrize("semantic", [False, True], ids=["words", "words+meaning"])
def test_heldout_top1_and_top3_meet_the_measured_floor(
    semantic: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    top1 = top3 = 0
    misses = []
    for x in HELDOUT:
        ids = [h.id for h in catalog.search(x["q"], limit=3, semantic=semantic)]
        top1 += ids[:1] == [x["expected"]]
        top3 += x["expected"] in ids
        if ids[:1] != [x["expected"]]:
            misses.append((x["expected"], ids))
    n = len(HELDOUT)
    with capsys.disabled():
        print(
            f"\ncatalog held-out search (semantic={semantic}): top-1 {top1}/{n} "
            f"({top1 / n:.0%}), top-3 {top3}/{n} ({top3 / n:.0%})"
        )
    assert top1 / n >= FLOORS[semantic][0], misses
    assert top3 / n >= FLOORS[semantic][1], misses


def _cli_search(query: str, limit: int) -> list[dict[str, Any]]:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fencedstate.catalog",
            "search",
            query,
            "--limit",
            str(limit),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    hits: list[dict[str, Any]] = json.loads(r.stdout)
    return hits


@pytest.mark.timeout(300)
async def test_mcp_search_and_show_equal_the_cli_on_heldout_questions() -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    questions = [x["q"] for x in HELDOUT[::5]]  # every fifth question: 10 CLI processes
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "fencedstate.catalog", "serve"]
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for q in questions:
            res = await session.call_tool("search", {"query": q, "limit": 5})
            assert not res.isError
            hits = (
                res.structuredContent["result"]
                if res.structuredContent
                else json.loads(res.content[0].text)
            )  # type: ignore[union-attr]
            assert hits == _cli_search(q, 5), q
            top = hits[0]["id"]
            res = await session.call_tool("show", {"id": top})
            assert not res.isError
            body = res.structuredContent or json.loads(res.content[0].text)  # type: ignore[union-attr]
            r = subprocess.run(
                [sys.executable, "-m", "fencedstate.catalog", "show", top, "--json"],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            assert body == json.loads(r.stdout)
