"""Catalog loading, index generation, full-text search (SQLite FTS5, bm25) and link checks."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from fencedstate.catalog import ranking
from fencedstate.catalog import semantic as _semantic
from fencedstate.catalog.errors import (
    CatalogError,
    CatalogNotFoundError,
    EntryNotFoundError,
)
from fencedstate.catalog.model import Entry, Index
from fencedstate.catalog.parser import load_dir

#: Environment variable that points the catalog at another directory of entries.
ENV_DIR = "FENCEDSTATE_CATALOG_DIR"
#: `catalog/` at the root of a source checkout (editable install).
REPO_ROOT = Path(__file__).resolve().parents[3]
REPO_CATALOG = REPO_ROOT / "catalog"
#: The one committed index (generated from `catalog/*.md`), shipped inside the package and read
#: from an installed wheel, where `catalog/` does not exist.
PACKAGED_INDEX = "_data/index.json"


class SearchHit(BaseModel):
    """One ranked search result (lower score = better; `rank` starts at 1)."""

    model_config = ConfigDict(frozen=True)

    rank: int
    id: str
    name: str
    category: str
    summary: str
    score: float


def catalog_dir() -> Path | None:
    """The directory of markdown entries in use, or None when running from the packaged index."""
    env = os.environ.get(ENV_DIR)
    if env:
        p = Path(env)
        if not p.is_dir():
            raise CatalogNotFoundError(f"{ENV_DIR}={env!r} is not a directory")
        return p
    if REPO_CATALOG.is_dir() and any(REPO_CATALOG.glob("*.md")):
        return REPO_CATALOG
    return None


_CACHE: dict[str, tuple[tuple[tuple[str, int, int], ...], list[Entry]]] = {}


def _load_dir_cached(d: Path) -> list[Entry]:
    """``load_dir(d)``, parsed again only when a markdown file there changed (a search parses
    42 YAML headers otherwise: measured 1.7 s per query on a loaded 2-core machine)."""
    sig = tuple(
        sorted(
            (e.name, e.stat().st_mtime_ns, e.stat().st_size)
            for e in os.scandir(d)
            if e.name.endswith(".md")
        )
    )
    hit = _CACHE.get(str(d))
    if hit is None or hit[0] != sig:
        hit = (sig, load_dir(d))
        _CACHE[str(d)] = hit
    return list(hit[1])


def load_entries() -> list[Entry]:
    """All entries, from the markdown when a catalog directory exists, else the packaged index."""
    d = catalog_dir()
    if d is not None:
        return _load_dir_cached(d)
    try:
        raw = (resources.files("fencedstate.catalog") / PACKAGED_INDEX).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise CatalogNotFoundError(
            f"no catalog found: no markdown entries in {REPO_CATALOG} and no packaged index"
        ) from exc
    return list(Index.model_validate_json(raw).entries)


def build_index(entries: list[Entry]) -> Index:
    """The index generated from entries (sorted by id)."""
    return Index(entries=sorted(entries, key=lambda e: e.id))


def index_json(entries: list[Entry]) -> str:
    """Deterministic JSON text of the index (what `build` writes)."""
    data = build_index(entries).model_dump(mode="json")
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def schema_json() -> str:
    """The published JSON Schema of `index.json`."""
    schema: dict[str, Any] = Index.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://fencedstate.dev/catalog/schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def index_path(directory: Path) -> Path:
    """Where the index of ``directory`` lives: the packaged file for the repository's catalog
    (its only copy), ``<directory>/index.json`` for any other directory of entries."""
    if directory.resolve() == REPO_CATALOG.resolve():
        return Path(__file__).resolve().parent / PACKAGED_INDEX
    return directory / "index.json"


def vectors_path(directory: Path) -> Path | None:
    """Where the meaning vectors of ``directory``'s entries are stored: the packaged file for
    the repository's catalog; None for any other directory (embedded when first searched)."""
    if directory.resolve() == REPO_CATALOG.resolve():
        return Path(__file__).resolve().parent / _semantic.PACKAGED_VECTORS
    return None


def build(directory: Path | None = None) -> list[Path]:
    """Write the index (see `index_path`), `schema.json` and, for the repository's catalog, the
    meaning vectors (needs the ``catalog`` extra); return the paths."""
    d = directory or catalog_dir()
    if d is None:
        raise CatalogNotFoundError("build needs the markdown entries (a source checkout)")
    vectors = vectors_path(d)
    if vectors is not None and not _semantic.available():
        raise _semantic.SemanticSearchUnavailable()
    entries = load_dir(d)
    written = [index_path(d), d / "schema.json"]
    written[0].parent.mkdir(parents=True, exist_ok=True)
    written[0].write_text(index_json(entries), encoding="utf-8")
    written[1].write_text(schema_json(), encoding="utf-8")
    if vectors is not None:
        _semantic.write_vectors(entries, vectors)
        written.append(vectors)
    return written


def list_entries(category: str | None = None) -> list[Entry]:
    """Entries sorted by id, optionally only one category."""
    entries = load_entries()
    if category is not None:
        entries = [e for e in entries if e.category == category]
    return entries


def show(entry_id: str) -> Entry:
    """The entry with this id; `EntryNotFoundError` (with close ids as suggestions) otherwise."""
    entries = load_entries()
    for e in entries:
        if e.id == entry_id:
            return e
    ids = [e.id for e in entries]
    raise EntryNotFoundError(entry_id, difflib.get_close_matches(entry_id, ids, n=3, cutoff=0.4))


# column weights for bm25: id, name, aliases, symptoms, category, summary, body, mitigations
_WEIGHTS = (2.0, 6.0, 6.0, 4.0, 1.0, 3.0, 1.0, 0.5)


def _fts(entries: list[Entry]) -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.execute(
        "CREATE VIRTUAL TABLE e USING fts5(id, name, aliases, symptoms, category, summary, body,"
        " mitigations,"
        " tokenize='porter unicode61')"
    )
    rows = [
        (
            n,
            e.id.replace("-", " "),
            e.name,
            " ; ".join(e.aliases),
            " ; ".join(e.symptoms),
            e.category,
            e.summary,
            "\n".join((e.reproduction, e.impact, e.detection)),
            "\n".join(f"{m.name}. {m.description}" for m in e.mitigations),
        )
        for n, e in enumerate(entries, start=1)
    ]
    con.executemany(
        "INSERT INTO e(rowid, id, name, aliases, symptoms, category, summary, body,"
        " mitigations) VALUES (?,?,?,?,?,?,?,?,?)",
        rows,
    )
    return con


def search(text: str, limit: int = 5, *, semantic: bool | None = None) -> list[SearchHit]:
    """Ranked search over all entries: bm25 candidates (FTS5, porter stemming, any-word match)
    re-ranked by how well an entry's name, aliases and symptom lines match (`ranking`), then
    fused with a ranking by meaning (`semantic`).

    ``semantic``: None uses meaning when the ``catalog`` extra is installed; True requires it
    (`SemanticSearchUnavailable` otherwise); False ranks by words alone."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    words = ranking.content_words(text)
    if not words:
        return []
    by_meaning = _semantic.available() if semantic is None else semantic
    query = " OR ".join(f'"{w}"' for w in dict.fromkeys(words))
    entries = load_entries()
    con = _fts(entries)
    try:
        weights = ",".join(str(w) for w in _WEIGHTS)
        rows = con.execute(
            f"SELECT rowid, bm25(e, {weights}) AS s FROM e WHERE e MATCH ? ORDER BY s LIMIT ?",
            (query, len(entries) if by_meaning else max(limit, ranking.CANDIDATES)),
        ).fetchall()
    finally:
        con.close()
    ranked = ranking.rerank(entries, words, [(rowid - 1, float(s)) for rowid, s in rows])
    if by_meaning:
        ranked = _semantic.fuse(entries, text, ranked)
    return [
        SearchHit(
            rank=n,
            id=entries[i].id,
            name=entries[i].name,
            category=entries[i].category,
            summary=entries[i].summary,
            score=round(score, 4),
        )
        for n, (i, score) in enumerate(ranked[:limit], start=1)
    ]


def _repro_exists(node_id: str, root: Path) -> bool:
    path_s, _, rest = node_id.partition("::")
    path = root / path_s
    if not path.is_file():
        return False
    parts = rest.split("::")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scope: list[ast.stmt] = tree.body
    for i, name in enumerate(parts):
        found = None
        for node in scope:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and (
                node.name == name
            ):
                found = node
        if found is None:
            return False
        if i < len(parts) - 1:
            if not isinstance(found, ast.ClassDef):
                return False
            scope = found.body
    return True


def _module_file(dotted: str) -> Path | None:
    """Source file of module ``dotted``, found on the import path without importing anything."""
    head, *rest = dotted.split(".")
    try:
        spec = importlib.util.find_spec(head)  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin)
    for part in rest:
        if path.name != "__init__.py":
            return None
        pkg = path.parent
        path = pkg / f"{part}.py" if (pkg / f"{part}.py").is_file() else pkg / part / "__init__.py"
        if not path.is_file():
            return None
    return path if path.suffix == ".py" else None


def _names(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """Names bound at the top of ``body`` (defs, classes, assignments, imports), also inside
    ``if``, ``try`` and ``with`` blocks."""
    out: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody"):
                out.update(_names(getattr(node, block, [])))
            for handler in getattr(node, "handlers", []):
                out.update(_names(handler.body))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out.update((t.id, node) for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            out.update(((a.asname or a.name), node) for a in node.names)
    return out


def _code_exists(dotted: str) -> bool:
    """Does ``dotted`` name a module, or something defined or re-exported in one?

    Read from the source, never imported: an adapter whose framework is not installed here (one
    whose extra cannot be co-installed) is checked like any other. Names are followed through
    module-level defs, classes (their own body, not base classes) and ``from x import y``.
    """
    parts = dotted.split(".")
    cut = next((i for i in range(len(parts), 0, -1) if _module_file(".".join(parts[:i]))), 0)
    return cut > 0 and _defined(".".join(parts[:cut]), parts[cut:], depth=0)


def _defined(module: str, attrs: list[str], depth: int) -> bool:
    """Is the chain ``attrs`` defined in ``module`` (an existing module)?"""
    path = _module_file(module)
    if path is None or depth > 10:
        return False
    scope = ast.parse(path.read_text(encoding="utf-8")).body
    for i, name in enumerate(attrs):
        node = _names(scope).get(name)
        if isinstance(node, ast.ImportFrom):
            base = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            src = ".".join(p for p in (base if node.level else "", node.module or "") if p)
            orig = next(a.name for a in node.names if (a.asname or a.name) == name)
            if _module_file(f"{src}.{orig}"):  # `from pkg import submodule`
                return _defined(f"{src}.{orig}", attrs[i + 1 :], depth + 1)
            return _defined(src, [orig, *attrs[i + 1 :]], depth + 1)
        if node is None:
            return False
        scope = node.body if isinstance(node, ast.ClassDef) else []
    return True


def check(directory: Path | None = None, root: Path | None = None) -> list[str]:
    """Every broken link or stale generated file, as one line each (empty list: all good)."""
    d = directory or catalog_dir()
    if d is None:
        raise CatalogNotFoundError("check needs the markdown entries (a source checkout)")
    root = root or d.parent
    problems: list[str] = []
    try:
        entries = load_dir(d)
    except CatalogError as exc:
        return [str(exc)]
    ids = {e.id for e in entries}
    for e in entries:
        for r in e.related:
            if r not in ids:
                problems.append(f"{e.id}: related id {r!r} does not exist")
            if r == e.id:
                problems.append(f"{e.id}: lists itself as related")
        for m in e.mitigations:
            if m.code and not _code_exists(m.code):
                problems.append(f"{e.id}: code path {m.code!r} does not exist")
            if m.repro and not _repro_exists(m.repro, root):
                problems.append(f"{e.id}: repro node {m.repro!r} does not exist")
            if m.code and not m.repro:
                problems.append(f"{e.id}: mitigation {m.name!r} has code but no repro")
        if not e.references and not e.incidents_note:
            problems.append(f"{e.id}: no references and no incidents_note saying none were found")
    stale = "stale or missing; run `python -m fencedstate.catalog build`"
    for p, expected in ((index_path(d), index_json(entries)), (d / "schema.json", schema_json())):
        if not p.is_file() or p.read_text(encoding="utf-8") != expected:
            problems.append(f"{p}: {stale}")
    vectors = vectors_path(d)
    if vectors is not None:
        want = {_semantic.key(t) for t in _semantic.texts(entries)}
        try:
            if _semantic.stored_keys(vectors) != want:
                problems.append(f"{vectors}: {stale}")
        except _semantic.SemanticSearchUnavailable as exc:
            problems.append(f"{vectors}: not checked: {exc}")
    return problems
