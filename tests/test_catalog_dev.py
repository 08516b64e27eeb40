"""Catalog search on the DEV paraphrase set: the set search is tuned on (held-out stays unseen)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fencedstate import catalog
from fencedstate.catalog import ranking

DEV = json.loads((Path(__file__).parent / "catalog_dev.json").read_text())["questions"]
HELDOUT = json.loads((Path(__file__).parent / "catalog_heldout.json").read_text())["questions"]
IDS = {e.id for e in catalog.load_entries()}
#: Measured (docs/catalog.md): bm25 alone top-1 139/209, top-3 178/209; with the second-stage
#: re-rank (`ranking`) top-1 158/209 (split a 48/65, b 12/17, c 5/10, d 76/97, e 17/20), top-3
#: 188/209. Splits d and e were collected after the re-rank was chosen. Fused with the meaning
#: ranking (`semantic`, the default with the `catalog` extra): top-1 169/209 (a 54, b 14, c 6,
#: d 78, e 17), top-3 200/209. Floors per `semantic` setting: (top-1, top-3).
FLOORS = {False: (0.70, 0.89), True: (0.80, 0.95)}


def test_dev_set_is_large_sourced_and_disjoint_from_heldout() -> None:
    assert len(DEV) >= 40
    for x in DEV:
        assert x["expected"] in IDS, x
        assert x["split"] in {"a", "b", "c", "d", "e"}, x
        assert x["source"].startswith("https://github.com/"), x
    assert len({x["q"] for x in DEV}) == len(DEV)
    assert not {x["source"] for x in DEV} & {x["source"] for x in HELDOUT}
    assert not {x["q"] for x in DEV} & {x["q"] for x in HELDOUT}


@pytest.mark.parametrize("semantic", [False, True], ids=["words", "words+meaning"])
def test_dev_top1_and_top3_meet_the_measured_floor(
    semantic: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    top1 = top3 = 0
    misses = []
    by_split: dict[str, list[int]] = {k: [0, 0, 0] for k in "abcde"}
    for x in DEV:
        ids = [h.id for h in catalog.search(x["q"], limit=3, semantic=semantic)]
        hit1, hit3 = ids[:1] == [x["expected"]], x["expected"] in ids
        top1 += hit1
        top3 += hit3
        counts = by_split[x["split"]]
        counts[0] += hit1
        counts[1] += hit3
        counts[2] += 1
        if not hit1:
            misses.append((x["expected"], ids))
    n = len(DEV)
    with capsys.disabled():
        print(
            f"\ncatalog dev search (semantic={semantic}): top-1 {top1}/{n} ({top1 / n:.0%}), "
            f"top-3 {top3}/{n} ({top3 / n:.0%}); "
            + ", ".join(
                f"split {k} {a}/{c} top-1, {b}/{c} top-3" for k, (a, b, c) in by_split.items()
            )
        )
    assert top1 / n >= FLOORS[semantic][0], misses
    assert top3 / n >= FLOORS[semantic][1], misses


#: The re-rank's weight grid for the nested cross-validation: (line, cover, pairs); (0, 0, 0)
#: is bm25's own order.
GRID = [(line, x, x) for line in (0.0, 1.0, 2.0, 3.0) for x in (0.0, 0.5, 1.0)]


@pytest.mark.timeout(600)
def test_the_rerank_helps_under_nested_cross_validation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """5 folds: the re-rank's weights are chosen on four folds and measured on the fifth; the
    re-rank stays because this beats bm25 alone (measured on 209 questions: see docs/catalog.md)."""
    hits: dict[tuple[float, float, float], list[bool]] = {}
    for g in GRID:
        monkeypatch.setattr(ranking, "W_LINE", g[0])
        monkeypatch.setattr(ranking, "W_COVER", g[1])
        monkeypatch.setattr(ranking, "W_PAIRS", g[2])
        hits[g] = [
            [h.id for h in catalog.search(x["q"], limit=1, semantic=False)] == [x["expected"]]
            for x in DEV
        ]
    n = len(DEV)
    nested = 0
    for fold in range(5):
        train = [i for i in range(n) if i % 5 != fold]
        best = max(GRID, key=lambda g: (sum(hits[g][i] for i in train), -GRID.index(g)))
        nested += sum(hits[best][i] for i in range(n) if i % 5 == fold)
    bm25 = sum(hits[(0.0, 0.0, 0.0)])
    with capsys.disabled():
        print(
            f"\ncatalog dev, re-rank weights chosen per fold (5-fold): top-1 {nested}/{n}; "
            f"bm25 alone {bm25}/{n}"
        )
    assert nested > bm25
