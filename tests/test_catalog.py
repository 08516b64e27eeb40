"""The failure-mode catalog: generated files, links, search quality, CLI and MCP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from fencedstate import catalog
from fencedstate.catalog import api, cli
from fencedstate.catalog.errors import CatalogFormatError, EntryNotFoundError
from fencedstate.catalog.parser import parse_text

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "catalog"
ENTRIES = catalog.load_entries()
IDS = {e.id for e in ENTRIES}

REQUIRED = {
    "concurrent-lost-update",
    "zombie-writer",
    "phantom-acceptance",
    "duplicate-work-without-claims",
    "write-skew",
    "aba-version-reuse",
    "check-then-act-shared-file",
    "orphaned-lock-after-crash",
    "lease-expiry-clock-jump",
    "retry-storm-livelock",
    "stale-read-reasoned-over",
    "format-drift-phantom-corruption",
    "torn-write-after-crash",
    "split-brain-two-coordinators",
    "lost-handoff-message",
    "duplicate-delivery-applied-twice",
    "out-of-order-updates",
    "lost-wakeup",
    "memory-pollution-unvalidated-writes",
    "hallucination-amplification-shared-workspace",
    "token-waste-uncommittable-work",
    "action-done-unverified",
    "unbounded-history-growth",
}

QUERIES = [
    ("two agents accepted the same task", "phantom-acceptance"),
    (
        "both writes returned success but one of them is missing afterwards",
        "concurrent-lost-update",
    ),
    (
        "a stalled process woke up after its lease was reclaimed and overwrote newer state",
        "zombie-writer",
    ),
    ("workers keep redoing items someone else already finished", "duplicate-work-without-claims"),
    ("each agent checked the other was on call and both went off call", "write-skew"),
    (
        "task deleted and recreated under the same key, old writer's version check still passed",
        "aba-version-reuse",
    ),
    (
        "if the file does not exist create it, but two processes both created it",
        "check-then-act-shared-file",
    ),
    (
        "process killed with kill -9 left a lock file and now everything waits forever",
        "orphaned-lock-after-crash",
    ),
    ("NTP stepped the wall clock and the lease expired early", "lease-expiry-clock-jump"),
    ("thundering herd of optimistic retries never succeeds on a hot key", "retry-storm-livelock"),
    (
        "the agent did not see its own write and reasoned over the old plan",
        "stale-read-reasoned-over",
    ),
    (
        "two agents write one key in different JSON shapes and the reader breaks",
        "format-drift-phantom-corruption",
    ),
    (
        "the state file was truncated to half after a crash in the middle of writing",
        "torn-write-after-crash",
    ),
    ("two orchestrators both think they are the leader", "split-brain-two-coordinators"),
    ("the subagent finished but its result never reached the parent", "lost-handoff-message"),
    (
        "the retried message was applied twice and the balance doubled",
        "duplicate-delivery-applied-twice",
    ),
    ("a delayed older event overwrote the newer status", "out-of-order-updates"),
    ("notification fired before the agent started waiting, so it waits forever", "lost-wakeup"),
    (
        "workers store guesses as facts in shared long-term memory",
        "memory-pollution-unvalidated-writes",
    ),
    (
        "ungrounded notes on a shared whiteboard get reused as evidence and hallucinations spread",
        "hallucination-amplification-shared-workspace",
    ),
    (
        "tokens burned on a summary that was thrown away at commit because someone else owned it",
        "token-waste-uncommittable-work",
    ),
    (
        "tool returned ok, step marked done, but the ticket was never created",
        "action-done-unverified",
    ),
    (
        "checkpoint database keeps growing, hundreds of gigabytes, nothing is pruned",
        "unbounded-history-growth",
    ),
    (
        "late write after delete_thread brings the deleted thread back",
        "late-write-resurrects-deleted",
    ),
    (
        "parse error on load returned empty state and the next save wiped the memory file",
        "corrupt-state-read-as-empty",
    ),
    (
        "two coroutines both saw session id None and created two conversations",
        "double-lazy-initialization",
    ),
    ("InvalidUpdateError can receive only one value per step", "parallel-branch-same-key-conflict"),
    ("Executor is already running when two async tasks use one agent", "concurrent-run-reentry"),
]


def test_at_least_30_entries_cover_the_required_modes() -> None:
    assert len(ENTRIES) >= 30
    assert REQUIRED <= IDS, REQUIRED - IDS


PACKAGED = Path(api.__file__).parent / api.PACKAGED_INDEX


def test_the_one_committed_index_equals_what_the_markdown_generates() -> None:
    assert api.index_path(CATALOG) == PACKAGED
    assert PACKAGED.read_text() == api.index_json(ENTRIES)
    assert (CATALOG / "schema.json").read_text() == api.schema_json()
    assert not (CATALOG / "index.json").exists()  # one copy only (issue 22)


def test_index_validates_against_the_published_schema() -> None:
    schema = json.loads((CATALOG / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(PACKAGED.read_text()), schema)
    catalog.Index.model_validate_json(PACKAGED.read_text())


def test_build_writes_a_foreign_directory_its_own_index(tmp_path: Path) -> None:
    (tmp_path / "write-skew.md").write_text((CATALOG / "write-skew.md").read_text())
    assert catalog.build(tmp_path) == [tmp_path / "index.json", tmp_path / "schema.json"]
    index = catalog.Index.model_validate_json((tmp_path / "index.json").read_text())
    assert [e.id for e in index.entries] == ["write-skew"]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_links(entry: catalog.Entry) -> None:
    for r in entry.related:
        assert r in IDS and r != entry.id
    for m in entry.mitigations:
        if m.code:
            assert api._code_exists(m.code), m.code
            assert m.repro, f"{m.code} has no repro"
        if m.repro:
            assert api._repro_exists(m.repro, ROOT), m.repro
    assert entry.references or entry.incidents_note
    for ref in entry.references:
        assert str(ref.url).startswith(("https://", "http://"))


def test_check_reports_no_problems_and_catches_broken_links(tmp_path: Path) -> None:
    assert catalog.check() == []
    bad = (
        (CATALOG / "write-skew.md")
        .read_text()
        .replace("related: [concurrent-lost-update", "related: [no-such-entry")
        .replace("code: fencedstate.store.Store.update", "code: fencedstate.store.Store.nope")
    )
    (tmp_path / "write-skew.md").write_text(bad)
    problems = catalog.check(tmp_path, root=ROOT)
    assert any("no-such-entry" in p for p in problems)
    assert any("does not exist" in p for p in problems)
    assert any("stale or missing" in p for p in problems)


def test_code_paths_are_resolved_from_source_without_importing() -> None:
    assert api._code_exists("fencedstate.schema.ValidatedStore")
    assert api._code_exists("fencedstate.Store.claim")  # re-exported, then a method
    assert api._code_exists("fencedstate.file.filestore")  # a module
    assert api._code_exists("fencedstate.file.FileStore")  # `from .filestore import FileStore`
    assert not api._code_exists("fencedstate.schema.NoSuchThing")
    assert not api._code_exists("fencedstate.Store.nope")
    assert not api._code_exists("no_such_module.thing")
    # nothing is imported: the pydantic-graph 1.x adapter does not import beside pydantic-ai 2.x
    # (the `all` extra), and its code path is checked all the same
    assert api._code_exists("fencedstate_pydantic_graph.FencedStatePersistence")
    assert not api._code_exists("fencedstate_pydantic_graph.NoSuchPersistence")
    assert not api._repro_exists("tests/test_catalog.py::test_nope", ROOT)


@pytest.mark.parametrize(("query", "expected"), QUERIES, ids=[q[1] for q in QUERIES])
def test_paraphrased_query_ranks_the_right_entry_first(query: str, expected: str) -> None:
    hits = catalog.search(query)
    assert hits and hits[0].id == expected, [h.id for h in hits]


def test_search_edge_cases() -> None:
    assert catalog.search("the and of") == []
    assert len(catalog.search("write", limit=3)) == 3
    with pytest.raises(ValueError):
        catalog.search("x", limit=0)


def test_parser_rejects_malformed_entries() -> None:
    good = (CATALOG / "zombie-writer.md").read_text()
    with pytest.raises(CatalogFormatError, match="front matter"):
        parse_text("no front matter")
    with pytest.raises(CatalogFormatError, match="sections"):
        parse_text(good.replace("## Impact", "## Consequences"))
    with pytest.raises(CatalogFormatError, match="category"):
        parse_text(good.replace("category: race condition", "category: bad luck"))
    with pytest.raises(CatalogFormatError, match="repro"):
        parse_text(good.replace("tests/repros/test_zombie_writer.py::test_repro", "zombie"))


def test_show_unknown_id_suggests() -> None:
    with pytest.raises(EntryNotFoundError, match="zombie-writer"):
        catalog.show("zombie-writr")


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "zombie-writer" in out and f"{len(ENTRIES)} entries" in out
    assert cli.main(["search", "two agents accepted the same task", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == "phantom-acceptance"
    assert cli.main(["show", "zombie-writer"]) == 0
    assert "fencedstate.claim.Claim.commit" in capsys.readouterr().out
    assert cli.main(["show", "nope"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("fencedstate catalog: error: no catalog entry 'nope'")
    assert line.endswith("`fencedstate catalog list`, or `fencedstate catalog search TEXT`")
    assert cli.main(["check"]) == 0
    assert cli.main(["bogus"]) == 2


def test_packaged_index_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "REPO_CATALOG", Path("/nonexistent"))
    monkeypatch.delenv(api.ENV_DIR, raising=False)
    assert api.catalog_dir() is None
    assert {e.id for e in api.load_entries()} == IDS


@pytest.mark.timeout(120)
async def test_mcp_server_answers_a_real_client_over_stdio() -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(  # the whole environment: PYTHONPATH picks the code tested
        command=sys.executable, args=["-m", "fencedstate.catalog", "serve"], env=dict(os.environ)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name for t in (await session.list_tools()).tools}
        assert {"search", "show"} <= tools
        res = await session.call_tool("search", {"query": "two agents accepted the same task"})
        assert not res.isError
        hits = (
            res.structuredContent["result"]
            if res.structuredContent
            else json.loads(res.content[0].text)
        )  # type: ignore[union-attr]
        assert hits[0]["id"] == "phantom-acceptance"
        res = await session.call_tool("show", {"id": "zombie-writer"})
        assert not res.isError
        body = res.structuredContent or json.loads(res.content[0].text)  # type: ignore[union-attr]
        assert body["id"] == "zombie-writer" and body["mitigations"][0]["code"]
        res = await session.call_tool("show", {"id": "nope"})
        assert res.isError
        unknown = await session.call_tool("show", {"id": "zombie-writr"})
        too_many = await session.call_tool("search", {"query": "zombie", "limit": 0})
    # a failed call's text is the error's JSON, as on the state server (and mcp 2.x keeps it)
    for err in (unknown, too_many):
        assert err.isError and len(err.content) == 1
    body = json.loads(unknown.content[0].text)  # type: ignore[union-attr]
    assert body["error"] == "EntryNotFoundError" and body["entry_id"] == "zombie-writr"
    assert "did you mean: zombie-writer" in body["message"]
    assert body["advice"] == EntryNotFoundError.advice and "search" in body["advice"]
    body = json.loads(too_many.content[0].text)  # type: ignore[union-attr]
    assert body["error"] == "InvalidArgumentError" and "limit" in body["message"]


def test_module_entry_point_runs() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "fencedstate.catalog", "search", "zombie"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "zombie-writer" in r.stdout


def test_ranking_stems_with_sqlite_porter_and_reranks_deterministically() -> None:
    from fencedstate.catalog import ranking

    assert ranking.stems(["agents overwrote writes", "locked", ""]) == [
        ["agent", "overwrot", "write"],
        ["lock"],
        [],
    ]
    assert ranking.content_words("The agent and THE lock") == ["agent", "lock"]
    assert ranking.rerank(ENTRIES, ["zombie"], []) == []
    # the symptom line "process paused past its lease, resumed and overwrote newer data" lifts
    # zombie-writer above a candidate that bm25 ranked first
    ids = [e.id for e in ENTRIES]
    order = ranking.rerank(
        ENTRIES,
        ranking.content_words("paused past its lease then resumed and overwrote newer data"),
        [(ids.index("lease-expiry-clock-jump"), -10.0), (ids.index("zombie-writer"), -9.0)],
    )
    assert [ids[i] for i, _ in order] == ["zombie-writer", "lease-expiry-clock-jump"]
    assert order[0][1] < order[1][1]  # lower is better, as bm25
    first = [h.model_dump() for h in catalog.search("message sent twice after a retry", limit=5)]
    assert first == [h.model_dump() for h in catalog.search("message sent twice after a retry", 5)]


def test_docs_state_the_number_of_entries() -> None:
    docs = (ROOT / "docs" / "catalog.md").read_text(encoding="utf-8")
    assert f"`catalog/` holds {len(ENTRIES)} failure modes" in docs


def test_cli_json_errors_are_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """`catalog show --json ID` with an unknown id printed text on stderr and nothing on
    stdout, unlike every other `--json` command (README: "the error as a JSON object on
    stdout") and the catalog's own MCP server."""
    assert cli.main(["show", "zombie-writr", "--json"]) == 2
    out, err = capsys.readouterr()
    body = json.loads(out)
    assert err == ""
    assert body["error"] == "EntryNotFoundError" and body["entry_id"] == "zombie-writr"
    assert "did you mean: zombie-writer" in body["message"]
    assert body["advice"] == EntryNotFoundError.advice
    assert cli.main(["search", "zombie", "--limit", "0", "--json"]) == 2
    out, err = capsys.readouterr()
    body = json.loads(out)
    assert err == "" and body["error"] == "InvalidArgumentError"
    assert body["message"] == "--limit must be >= 1"
    # without --json: one line on stderr, as before
    assert cli.main(["show", "zombie-writr"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("fencedstate catalog: error: no catalog entry")


def test_an_unknown_huge_id_is_not_echoed_in_full() -> None:
    """A 100 KB id came back twice in the error (message and entry_id): 200 KB to an agent."""
    huge = "zombie-writer " * 8000
    with pytest.raises(EntryNotFoundError) as info:
        catalog.show(huge)
    body = info.value.to_dict()
    assert len(json.dumps(body)) < 1000
    assert body["entry_id"].startswith("zombie-writer zombie-writer") and "112000 chars" in str(
        body["message"]
    )
