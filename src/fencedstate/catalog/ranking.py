"""Second stage of catalog search: re-rank bm25's candidates by how builders' phrasings match.

Stage one (``api.search``) takes the best ``CANDIDATES`` entries by SQLite FTS5 bm25 over every
field. This module re-scores them with three signals computed on an entry's short, high-precision
lines (its name, each alias and each symptom line), stemmed by the same Porter tokenizer:

- ``line``: the best single line's idf-weighted cosine with the query (one symptom line that says
  what the user said beats many scattered word hits in a long summary);
- ``cover``: the idf-weighted share of the query's stems found anywhere in those lines;
- ``pairs``: idf-weighted adjacent stem pairs shared with those lines ("last write wins").

Weights were chosen on tests/catalog_dev.json (and a fresh validation set, see docs/catalog.md),
never on the held-out questions.
"""

from __future__ import annotations

import itertools
import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from fencedstate.catalog.model import Entry

#: How many bm25 candidates the second stage re-ranks.
CANDIDATES = 10
#: Weights of the combined score: bm25 normalised to the best candidate (1.0), then each signal.
W_LINE = 3.0
W_COVER = 0.5
W_PAIRS = 0.5


#: Words that carry no meaning for search (dropped from queries and from the lines compared).
STOP = frozenset(
    """a an and are as at be been but by can could do does did for from has have how i if in into
    is it its me my no not of on or our so than that the their them then there these they this to
    too up was we were what when where which while who why will with would you your""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[a-z0-9]+")


def content_words(text: str) -> list[str]:
    """The words of ``text``, lower-cased, stop words removed, in order."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP]


def stems(lines: Sequence[str]) -> list[list[str]]:
    """Each line's Porter stems in order, from SQLite's own ``porter unicode61`` tokenizer."""
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61')")
        con.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        con.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", enumerate(lines, start=1))
        out: list[list[str]] = [[] for _ in lines]
        for doc, term in con.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
            out[doc - 1].append(term)
        return out
    finally:
        con.close()


@dataclass(frozen=True)
class _Lines:
    """The stemmed high-precision lines of every entry, and stem idf over whole entries."""

    lines: tuple[tuple[tuple[str, ...], ...], ...]
    idf: dict[str, float]
    unseen: float

    @classmethod
    def build(cls, entries: Sequence[Entry]) -> _Lines:
        texts: list[str] = []
        owner: list[tuple[int, bool]] = []
        for i, e in enumerate(entries):
            short = [e.name, *e.aliases, *e.symptoms]
            body = [e.summary, e.reproduction, e.impact, e.detection]
            texts += short + body
            owner += [(i, True)] * len(short) + [(i, False)] * len(body)
        tokenized = stems([" ".join(content_words(t)) for t in texts])
        per_entry: list[list[tuple[str, ...]]] = [[] for _ in entries]
        seen: list[set[str]] = [set() for _ in entries]
        for toks, (i, is_short) in zip(tokenized, owner, strict=True):
            seen[i].update(toks)
            if is_short and toks:
                per_entry[i].append(tuple(toks))
        df: dict[str, int] = {}
        for s in seen:
            for t in s:
                df[t] = df.get(t, 0) + 1
        n = len(entries)
        return cls(
            lines=tuple(tuple(x) for x in per_entry),
            idf={t: math.log(1 + n / d) for t, d in df.items()},
            unseen=math.log(1 + n),
        )


_CACHE: dict[tuple[int, ...], tuple[Sequence[Entry], _Lines]] = {}


def _lines(entries: Sequence[Entry]) -> _Lines:
    key = tuple(map(id, entries))  # the parsed entries are cached upstream: same objects
    hit = _CACHE.get(key)
    if hit is None:
        _CACHE.clear()
        hit = (entries, _Lines.build(entries))  # keeps the entries alive: ids stay unique
        _CACHE[key] = hit
    return hit[1]


def rerank(
    entries: Sequence[Entry],
    words: Sequence[str],
    candidates: Sequence[tuple[int, float]],
) -> list[tuple[int, float]]:
    """``candidates`` (entry index, bm25 score: lower is better) re-scored, best first.

    ``words`` are the query's ``content_words``. Returned scores are the
    negated combined score, so lower is still better. Ties keep bm25's order.
    """
    if not candidates:
        return []
    model = _lines(entries)
    query = stems([" ".join(words)])[0]
    weight = {t: model.idf.get(t, model.unseen) for t in query}
    total = sum(weight.values()) or 1.0
    pairs = set(itertools.pairwise(query))
    best_bm25 = -candidates[0][1] or 1.0
    scored = []
    for rank, (i, bm25) in enumerate(candidates):
        lines = model.lines[i]
        covered = {t for line in lines for t in line}
        line_sim = max(
            (
                sum(weight[t] for t in set(line) if t in weight)
                / math.sqrt(total * sum(model.idf.get(t, model.unseen) for t in set(line)))
                for line in lines
            ),
            default=0.0,
        )
        shared = pairs & {p for line in lines for p in itertools.pairwise(line)}
        pair_w = sum(weight[a] + weight[b] for a, b in shared) / total
        cover = sum(w for t, w in weight.items() if t in covered) / total
        score = -bm25 / best_bm25 + W_LINE * line_sim + W_COVER * cover + W_PAIRS * pair_w
        scored.append((-score, rank, i))
    scored.sort()
    return [(i, s) for s, _, i in scored]
