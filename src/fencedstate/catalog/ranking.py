"""Second stage of catalog search: a learned linear re-rank of the entries bm25 matched.

Stage one (``api.search``) finds every entry sharing a word with the query (SQLite FTS5, bm25).
This module scores each of them with ``FEATURES``, all computed on Porter stems from the same
SQLite tokenizer, and ranks by the weighted sum with ``WEIGHTS``:

- ``fts``: stage one's bm25 (column weights ``FIELD_WEIGHTS``), relative to the best candidate;
- ``bm25f``: BM25F, the same field weights but each field's term frequency normalised by that
  field's own length (a long body no longer dilutes a short symptom line's match);
- ``line``, ``cover``, ``pairs``: the best short line's (name, alias, symptom) idf-weighted cosine,
  the share of the query's stems found in those lines, and adjacent stem pairs shared with them;
- ``bm25:<field>``: BM25 of each field alone, relative to the best candidate;
- ``sim:<kind>``: the best idf-weighted cosine of one line or sentence of each kind;
- ``cover:<field>``: the idf-weighted share of the query's stems found in each field;
- ``near:<field>``: query stem pairs (adjacent or one apart) found adjacent in each field.

``WEIGHTS`` are fitted by ``learn.fit`` (softmax regression) on tests/catalog_dev.json; the
feature set and the regularisation were chosen by nested cross-validation there, never on the
held-out questions (docs/catalog.md records the figures).
"""

from __future__ import annotations

import itertools
import math
import re
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from fencedstate.catalog.model import Entry

#: The fields of an entry, in the FTS5 table's column order.
FIELDS = ("id", "name", "aliases", "symptoms", "category", "summary", "body", "mitigations")
#: bm25 column weights (stage one and BM25F).
FIELD_WEIGHTS = (2.0, 6.0, 6.0, 4.0, 1.0, 3.0, 1.0, 0.5)
#: Kinds of line compared one at a time for ``sim:<kind>``.
KINDS = ("name", "aliases", "symptoms", "summary", "body", "mitigations")
FEATURES: tuple[str, ...] = (
    "fts",
    "bm25f",
    "line",
    "cover",
    "pairs",
    *(f"bm25:{f}" for f in FIELDS),
    *(f"sim:{k}" for k in KINDS),
    *(f"cover:{f}" for f in FIELDS),
    *(f"near:{f}" for f in FIELDS),
)
#: Fitted by ``learn.fit(learn.dev_rows(), LAMBDA)``; tests/test_catalog_dev.py checks that a refit
#: reproduces them.
LAMBDA = 0.003
WEIGHTS: tuple[float, ...] = (
    0.2058,  # fts
    1.8562,  # bm25f
    1.0185,  # line
    1.2777,  # cover
    0.8256,  # pairs
    0.1864,  # bm25:id
    0.0851,  # bm25:name
    1.4537,  # bm25:aliases
    2.0128,  # bm25:symptoms
    -0.2966,  # bm25:category
    0.7419,  # bm25:summary
    0.8562,  # bm25:body
    0.5064,  # bm25:mitigations
    0.16,  # sim:name
    0.9847,  # sim:aliases
    0.5072,  # sim:symptoms
    0.3046,  # sim:summary
    0.5398,  # sim:body
    0.3119,  # sim:mitigations
    0.0127,  # cover:id
    0.0167,  # cover:name
    0.2443,  # cover:aliases
    0.9494,  # cover:symptoms
    -0.0195,  # cover:category
    0.4405,  # cover:summary
    0.6786,  # cover:body
    0.5087,  # cover:mitigations
    0.0534,  # near:id
    0.1279,  # near:name
    0.4477,  # near:aliases
    0.7692,  # near:symptoms
    0.0,  # near:category
    0.2662,  # near:summary
    0.7239,  # near:body
    -0.0137,  # near:mitigations
)
_K1, _B = 1.2, 0.75

#: Words that carry no meaning for search (dropped from queries and from the lines compared).
STOP = frozenset(
    """a an and are as at be been but by can could do does did for from has have how i if in into
    is it its me my no not of on or our so than that the their them then there these they this to
    too up was we were what when where which while who why will with would you your""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.;:!?])\s+|\n+")


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


def field_texts(e: Entry) -> list[str]:
    """An entry's text per field of ``FIELDS`` (what stage one indexes)."""
    return [
        e.id.replace("-", " "),
        e.name,
        " ; ".join(e.aliases),
        " ; ".join(e.symptoms),
        e.category,
        e.summary,
        "\n".join((e.reproduction, e.impact, e.detection)),
        "\n".join(f"{m.name}. {m.description}" for m in e.mitigations),
    ]


def _kind_lines(e: Entry) -> list[list[str]]:
    def sentences(t: str) -> list[str]:
        return [s for s in _SENTENCE.split(t) if s.strip()]

    return [
        [e.name],
        list(e.aliases),
        list(e.symptoms),
        sentences(e.summary),
        sentences("\n".join((e.reproduction, e.impact, e.detection))),
        [f"{m.name}. {m.description}" for m in e.mitigations],
    ]


Line = tuple[str, ...]


@dataclass(frozen=True)
class _Model:
    """Everything about the entries that scoring a query needs, stemmed once."""

    short: tuple[tuple[Line, ...], ...]  # name, aliases, symptoms per entry
    kinds: tuple[tuple[tuple[Line, ...], ...], ...]  # per entry, per kind
    tf: tuple[tuple[Counter[str], ...], ...]  # per entry, per field
    length: tuple[tuple[int, ...], ...]
    avg: tuple[float, ...]
    adjacent: tuple[tuple[frozenset[tuple[str, str]], ...], ...]
    idf: dict[str, float]  # line idf: log(1 + n / df) over whole entries
    unseen: float
    bm25_idf: dict[str, float]

    @classmethod
    def build(cls, entries: Sequence[Entry]) -> _Model:
        n = len(entries)
        fields = [field_texts(e) for e in entries]
        kinds = [_kind_lines(e) for e in entries]
        flat = [" ".join(content_words(t)) for f in fields for t in f]
        flat += [" ".join(content_words(t)) for k in kinds for lines in k for t in lines]
        st = stems(flat)
        per_field = [st[i * len(FIELDS) : (i + 1) * len(FIELDS)] for i in range(n)]
        pos = n * len(FIELDS)
        kind_stems: list[list[list[Line]]] = []
        for k in kinds:
            ek: list[list[Line]] = []
            for lines in k:
                ek.append([tuple(s) for s in st[pos : pos + len(lines)] if s])
                pos += len(lines)
            kind_stems.append(ek)
        df: Counter[str] = Counter()
        for f in per_field:
            df.update({t for toks in f for t in toks})
        length = tuple(tuple(len(t) for t in f) for f in per_field)
        return cls(
            short=tuple(tuple(ek[0] + ek[1] + ek[2]) for ek in kind_stems),
            kinds=tuple(tuple(tuple(lines) for lines in ek) for ek in kind_stems),
            tf=tuple(tuple(Counter(t) for t in f) for f in per_field),
            length=length,
            avg=tuple(
                (sum(ln[j] for ln in length) / n if n else 0.0) or 1.0 for j in range(len(FIELDS))
            ),
            adjacent=tuple(tuple(frozenset(itertools.pairwise(t)) for t in f) for f in per_field),
            idf={t: math.log(1 + n / d) for t, d in df.items()},
            unseen=math.log(1 + n),
            bm25_idf={t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()},
        )


_CACHE: dict[tuple[int, ...], tuple[Sequence[Entry], _Model]] = {}


def _model(entries: Sequence[Entry]) -> _Model:
    key = tuple(map(id, entries))  # the parsed entries are cached upstream: same objects
    hit = _CACHE.get(key)
    if hit is None:
        _CACHE.clear()
        hit = (entries, _Model.build(entries))  # keeps the entries alive: ids stay unique
        _CACHE[key] = hit
    return hit[1]


def _relative(values: list[float]) -> list[float]:
    best = max(values, default=0.0)
    return [v / best for v in values] if best > 0 else values


def features(
    entries: Sequence[Entry], words: Sequence[str], candidates: Sequence[tuple[int, float]]
) -> list[list[float]]:
    """One row of ``FEATURES`` per candidate (entry index, bm25 score: lower is better)."""
    m = _model(entries)
    query = stems([" ".join(words)])[0]
    weight = {t: m.idf.get(t, m.unseen) for t in query}
    total = sum(weight.values()) or 1.0
    pairs = set(itertools.pairwise(query))
    near = pairs | {(query[i], query[i + 2]) for i in range(len(query) - 2)}
    terms = [(t, m.bm25_idf[t]) for t in dict.fromkeys(query) if t in m.bm25_idf]

    def cosine(lines: Sequence[Line]) -> float:
        return max(
            (
                sum(weight[t] for t in set(line) if t in weight)
                / math.sqrt(total * sum(m.idf.get(t, m.unseen) for t in set(line)))
                for line in lines
            ),
            default=0.0,
        )

    rows: list[list[float]] = []
    bm25f: list[float] = []
    per_field: list[list[float]] = [[] for _ in FIELDS]
    for i, _ in candidates:
        tf, length = m.tf[i], m.length[i]
        norm = [1 - _B + _B * length[j] / m.avg[j] for j in range(len(FIELDS))]
        f_score = 0.0
        field_scores = [0.0] * len(FIELDS)
        for t, idf in terms:
            combined = 0.0
            for j, counts in enumerate(tf):
                c = counts.get(t)
                if c:
                    x = c / norm[j]
                    combined += FIELD_WEIGHTS[j] * x
                    field_scores[j] += idf * x / (_K1 + x)
            if combined:
                f_score += idf * combined / (_K1 + combined)
        bm25f.append(f_score)
        for j in range(len(FIELDS)):
            per_field[j].append(field_scores[j])
        covered = {t for line in m.short[i] for t in line}
        shared = pairs & {p for line in m.short[i] for p in itertools.pairwise(line)}
        row = [
            0.0,
            0.0,
            cosine(m.short[i]),
            sum(w for t, w in weight.items() if t in covered) / total,
            sum(weight[a] + weight[b] for a, b in shared) / total,
        ]
        row += [0.0] * len(FIELDS)
        row += [cosine(lines) for lines in m.kinds[i]]
        row += [sum(w for t, w in weight.items() if t in counts) / total for counts in tf]
        row += [sum(weight[a] + weight[b] for a, b in near & adj) / total for adj in m.adjacent[i]]
        rows.append(row)
    fts = _relative([-s for _, s in candidates])
    bm25f = _relative(bm25f)
    per_field = [_relative(v) for v in per_field]
    for n, row in enumerate(rows):
        row[0], row[1] = fts[n], bm25f[n]
        for j in range(len(FIELDS)):
            row[5 + j] = per_field[j][n]
    return rows


def rerank(
    entries: Sequence[Entry],
    words: Sequence[str],
    candidates: Sequence[tuple[int, float]],
    weights: Sequence[float] | None = None,
) -> list[tuple[int, float]]:
    """``candidates`` (entry index, bm25 score: lower is better) re-scored, best first.

    ``words`` are the query's ``content_words``. Returned scores are the negated weighted sum
    of ``features`` (``WEIGHTS`` unless ``weights`` is given), so lower is still better. Ties keep
    bm25's order.
    """
    if not candidates:
        return []
    w = WEIGHTS if weights is None else weights
    rows = features(entries, words, candidates)
    scored = sorted(
        (-sum(a * b for a, b in zip(w, row, strict=True)), rank, i)
        for rank, ((i, _), row) in enumerate(zip(candidates, rows, strict=True))
    )
    return [(i, s) for s, _, i in scored]
