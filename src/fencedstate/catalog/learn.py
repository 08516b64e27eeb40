"""Fit and cross-validate the search re-rank's ``ranking.WEIGHTS`` on labelled questions.

A labelled question is a query and the entry id a maintainer would point to. ``fit`` is softmax
regression (the probability of the right entry among the candidates stage one found), L2
regularised, by plain gradient descent from zero: deterministic and pure Python. Refit after
changing the entries or the dev set with ``python -m fencedstate.catalog.learn`` (it prints the
weights to paste into ``ranking.WEIGHTS``) from a source checkout.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fencedstate.catalog import api, ranking

#: The dev set the shipped weights are fitted on (source checkout only).
DEV_SET = api.REPO_ROOT / "tests" / "catalog_dev.json"
ITERATIONS = 300
STEP = 0.5


@dataclass(frozen=True)
class Row:
    """One labelled question: its candidates' feature rows and which candidate is right."""

    question: str
    expected: str
    candidates: tuple[str, ...]  # entry ids, stage one's order
    features: tuple[tuple[float, ...], ...]

    @property
    def answer(self) -> int | None:
        """Index of the right entry among the candidates (None: stage one missed it)."""
        return self.candidates.index(self.expected) if self.expected in self.candidates else None


def rows(questions: Sequence[tuple[str, str]]) -> list[Row]:
    """Feature rows for (question, expected entry id) pairs."""
    entries = api.load_entries()
    out = []
    for q, expected in questions:
        words = ranking.content_words(q)
        cands = api.candidates(entries, words) if words else []
        feats = ranking.features(entries, words, cands) if cands else []
        out.append(
            Row(
                q,
                expected,
                tuple(entries[i].id for i, _ in cands),
                tuple(tuple(r) for r in feats),
            )
        )
    return out


def dev_rows(path: Path = DEV_SET) -> list[Row]:
    """``rows`` of the dev set."""
    data = json.loads(path.read_text(encoding="utf-8"))["questions"]
    return rows([(x["q"], x["expected"]) for x in data])


def fit(train: Sequence[Row], lam: float = ranking.LAMBDA) -> tuple[float, ...]:
    """Weights maximising the mean log-probability of the right candidate, minus lam/2 |w|^2."""
    usable = [(r.features, r.answer) for r in train if r.answer is not None and r.features]
    k = len(ranking.FEATURES)
    w = [0.0] * k
    n = len(usable) or 1
    for _ in range(ITERATIONS):
        grad = [lam * x for x in w]
        for feats, y in usable:
            scores = [sum(a * b for a, b in zip(w, f, strict=True)) for f in feats]
            top = max(scores)
            exp = [math.exp(s - top) for s in scores]
            z = sum(exp)
            for f, e in zip(feats, exp, strict=True):
                p = e / z / n
                if p:
                    for j, v in enumerate(f):
                        if v:
                            grad[j] += p * v
            for j, v in enumerate(feats[y]):
                grad[j] -= v / n
        w = [a - STEP * g for a, g in zip(w, grad, strict=True)]
    return tuple(round(x, 4) for x in w)


def rank_of(row: Row, weights: Sequence[float]) -> int | None:
    """1-based rank of the right entry under ``weights`` (ties keep stage one's order)."""
    if row.answer is None:
        return None
    scores = [sum(a * b for a, b in zip(weights, f, strict=True)) for f in row.features]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order.index(row.answer) + 1


def cross_validate(
    data: Sequence[Row], folds: int = 5, lam: float = ranking.LAMBDA
) -> tuple[int, int]:
    """(top-1, top-3) when each question is ranked by weights fitted on the other folds
    (question n is in fold n % folds; every dev question has its own source thread)."""
    top1 = top3 = 0
    for fold in range(folds):
        train = [r for n, r in enumerate(data) if n % folds != fold]
        w = fit(train, lam)
        for n, r in enumerate(data):
            if n % folds == fold:
                rank = rank_of(r, w)
                top1 += rank == 1
                top3 += rank is not None and rank <= 3
    return top1, top3


def main() -> int:
    """Print weights fitted on the dev set, ready for ``ranking.WEIGHTS``."""
    w = fit(dev_rows())
    sys.stdout.write("WEIGHTS: tuple[float, ...] = (\n")
    for name, x in zip(ranking.FEATURES, w, strict=True):
        sys.stdout.write(f"    {x!r},  # {name}\n")
    sys.stdout.write(")\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
