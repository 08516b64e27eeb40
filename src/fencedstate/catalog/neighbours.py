"""Third signal of catalog search: the votes of the nearest labelled real questions.

`catalog/questions.json` holds questions builders asked in public threads, each labelled with
the entry that answers it (shipped in the packaged index). A query's ``K`` nearest questions by
SQLite FTS5 bm25 (porter stemming, any-word match) vote for their entries, each with its bm25
score relative to the nearest one; the votes are scaled so the best entry gets 1.0 and are added,
weighted by ``W_VOTE``, to the second stage's score (`api.rank`). K and the weight were chosen by
leave-one-thread-out cross-validation on those questions (docs/catalog.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

#: How many nearest questions vote.
K = 5
#: Weight of the (0..1) vote in the combined score.
W_VOTE = 0.5


def votes(match: str, questions: Sequence[tuple[str, int]]) -> dict[int, float]:
    """Entry index -> vote in (0, 1] from the ``K`` questions nearest the FTS5 query ``match``.

    ``questions`` are (text, entry index) pairs. Entries with no vote are absent.
    """
    if not questions:
        return {}
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE VIRTUAL TABLE q USING fts5(x, tokenize='porter unicode61')")
        con.executemany(
            "INSERT INTO q(rowid, x) VALUES (?, ?)",
            ((n, text) for n, (text, _) in enumerate(questions, start=1)),
        )
        rows = con.execute(
            "SELECT rowid, bm25(q) AS s FROM q WHERE q MATCH ? ORDER BY s, rowid LIMIT ?",
            (match, K),
        ).fetchall()
    finally:
        con.close()
    if not rows:
        return {}
    nearest = -float(rows[0][1]) or 1.0
    out: dict[int, float] = {}
    for rowid, s in rows:
        entry = questions[rowid - 1][1]
        out[entry] = out.get(entry, 0.0) + -float(s) / nearest
    top = max(out.values()) or 1.0
    return {i: v / top for i, v in out.items()}
