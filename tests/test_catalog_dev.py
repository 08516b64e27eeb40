"""Catalog search on the DEV set, the labelled real questions search learns from
(`catalog/questions.json`), measured by leave-one-thread-out cross-validation: each question is
ranked with the questions of every other thread as training data, never its own."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from fencedstate import catalog
from fencedstate.catalog import api

DEV = api.load_questions_file(api.REPO_CATALOG)
HELDOUT = json.loads((Path(__file__).parent / "catalog_heldout.json").read_text())["questions"]
ENTRIES = catalog.load_entries()
IDS = {e.id for e in ENTRIES}
#: Measured (docs/catalog.md), leave-one-thread-out: with the nearest-question vote top-1 68/92,
#: top-3 85/92; without it (re-rank only, no training data) top-1 65/92, top-3 82/92.
TOP1_FLOOR = 0.73
TOP3_FLOOR = 0.92


def test_dev_set_is_large_sourced_and_disjoint_from_heldout() -> None:
    assert len(DEV) >= 40
    for x in DEV:
        assert x.expected in IDS, x
        assert x.split in {"a", "b", "c"}, x
        assert x.source.startswith("https://github.com/"), x
    assert len({x.q for x in DEV}) == len(DEV)
    assert not {x.source for x in DEV} & {x["source"] for x in HELDOUT}
    assert not {x.q for x in DEV} & {x["q"] for x in HELDOUT}


def test_the_package_learns_from_exactly_the_dev_set() -> None:
    assert catalog.load_questions() == DEV


def _ranked(q: str, training: list[catalog.Question]) -> list[str]:
    return [ENTRIES[i].id for i, _ in api.rank(q, ENTRIES, training)[:3]]


def test_cross_validated_top1_and_top3_meet_the_measured_floor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    top1 = top3 = base1 = 0
    misses = []
    for x in DEV:
        training = [y for y in DEV if y.source != x.source]
        ids = _ranked(x.q, training)
        top1 += ids[:1] == [x.expected]
        top3 += x.expected in ids
        base1 += _ranked(x.q, [])[:1] == [x.expected]
        if ids[:1] != [x.expected]:
            misses.append((x.expected, ids))
    n = len(DEV)
    with capsys.disabled():
        print(
            f"\ncatalog dev search, leave-one-thread-out: top-1 {top1}/{n} ({top1 / n:.0%}), "
            f"top-3 {top3}/{n} ({top3 / n:.0%}); without training questions top-1 {base1}/{n}"
        )
    assert top1 / n >= TOP1_FLOOR, misses
    assert top3 / n >= TOP3_FLOOR, misses
    assert top1 > base1  # the training questions are what lifts it


def test_a_question_seen_in_training_is_answered_by_its_label() -> None:
    """The shipped questions are used: training on a question itself answers most of them
    (measured 77/92; 65/92 with no training questions)."""
    hits = sum(_ranked(x.q, DEV)[:1] == [x.expected] for x in DEV)
    assert hits >= 0.83 * len(DEV)


def test_search_is_fast_and_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    catalog.search("warm up")
    times, first = [], []
    for x in DEV:
        t = time.perf_counter()
        first.append(catalog.search(x.q))
        times.append(time.perf_counter() - t)
    assert [catalog.search(x.q) for x in DEV] == first
    with capsys.disabled():
        print(
            f"\ncatalog search over {len(DEV)} dev questions: median "
            f"{statistics.median(times) * 1000:.1f} ms, worst {max(times) * 1000:.1f} ms"
        )
