"""Catalog search on the DEV paraphrase set: the set search is tuned on (held-out stays unseen)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fencedstate import catalog
from fencedstate.catalog import learn, ranking

DEV = json.loads((Path(__file__).parent / "catalog_dev.json").read_text())["questions"]
HELDOUT = json.loads((Path(__file__).parent / "catalog_heldout.json").read_text())["questions"]
IDS = {e.id for e in catalog.load_entries()}
#: Measured (docs/catalog.md): with the learned re-rank (`ranking.WEIGHTS`, fitted on this whole
#: set, so in-sample) top-1 152/189 (a 54/65, b 11/17, c 6/10, d 81/97), top-3 177/189. Before it
#: (bm25 + the hand-weighted re-rank): top-1 141/189, top-3 170/189.
TOP1_FLOOR = 0.80
TOP3_FLOOR = 0.93
#: Cross-validated top-1 floor (5-fold; measured below, see the test's docstring).
CV_TOP1_FLOOR = 0.75


def test_dev_set_is_large_sourced_and_disjoint_from_heldout() -> None:
    assert len(DEV) >= 40
    for x in DEV:
        assert x["expected"] in IDS, x
        assert x["split"] in {"a", "b", "c", "d"}, x
        assert x["source"].startswith("https://github.com/"), x
    assert len({x["q"] for x in DEV}) == len(DEV)
    assert not {x["source"] for x in DEV} & {x["source"] for x in HELDOUT}
    assert not {x["q"] for x in DEV} & {x["q"] for x in HELDOUT}


def test_dev_top1_and_top3_meet_the_measured_floor(capsys: pytest.CaptureFixture[str]) -> None:
    top1 = top3 = 0
    misses = []
    by_split: dict[str, list[int]] = {k: [0, 0, 0] for k in "abcd"}
    for x in DEV:
        ids = [h.id for h in catalog.search(x["q"], limit=3)]
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
            f"\ncatalog dev search: top-1 {top1}/{n} ({top1 / n:.0%}), "
            f"top-3 {top3}/{n} ({top3 / n:.0%}); "
            + ", ".join(
                f"split {k} {a}/{c} top-1, {b}/{c} top-3" for k, (a, b, c) in by_split.items()
            )
        )
    assert top1 / n >= TOP1_FLOOR, misses
    assert top3 / n >= TOP3_FLOOR, misses


@pytest.fixture(scope="module")
def dev_rows() -> list[learn.Row]:
    return learn.dev_rows()


@pytest.mark.timeout(300)
def test_shipped_weights_are_the_fit_on_the_dev_set(dev_rows: list[learn.Row]) -> None:
    """`ranking.WEIGHTS` are what `learn.fit` gives on this set: refit after changing it."""
    refit = learn.fit(dev_rows)
    assert len(refit) == len(ranking.WEIGHTS) == len(ranking.FEATURES)
    assert all(abs(a - b) <= 2e-4 for a, b in zip(refit, ranking.WEIGHTS, strict=True)), refit


@pytest.mark.timeout(900)
def test_the_learned_rerank_beats_bm25_under_cross_validation(
    dev_rows: list[learn.Row], capsys: pytest.CaptureFixture[str]
) -> None:
    """5 folds: weights fitted on four folds rank the fifth (measured 148/189 against bm25
    alone 124/189; docs/catalog.md has the nested figures)."""
    top1, top3 = learn.cross_validate(dev_rows, folds=5)
    bm25 = sum(learn.rank_of(r, [1.0] + [0.0] * (len(ranking.FEATURES) - 1)) == 1 for r in dev_rows)
    n = len(dev_rows)
    with capsys.disabled():
        print(
            f"\ncatalog dev, learned re-rank 5-fold: top-1 {top1}/{n}, top-3 {top3}/{n}; "
            f"bm25 alone {bm25}/{n}"
        )
    assert top1 >= bm25 + 15
    assert top1 / n >= CV_TOP1_FLOOR
