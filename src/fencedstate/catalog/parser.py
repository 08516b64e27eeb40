"""Parse `catalog/<id>.md` (YAML front matter + fixed markdown sections) into an `Entry`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fencedstate.catalog.errors import CatalogFormatError
from fencedstate.catalog.model import Entry

#: The body of every entry has exactly these level-2 sections, in this order.
SECTIONS: tuple[str, ...] = ("Reproduction", "Impact", "Detection")

_FRONT = re.compile(r"\A---\n(?P<yaml>.*?)\n---\n(?P<body>.*)\Z", re.S)
_HEADING = re.compile(r"^## (?P<title>.+?)\s*$", re.M)


def parse_text(text: str, source: str = "<text>") -> Entry:
    """Parse one entry's markdown text; raise `CatalogFormatError` naming the file and problem."""
    m = _FRONT.match(text.replace("\r\n", "\n"))
    if m is None:
        raise CatalogFormatError(f"{source}: must start with '---' YAML front matter '---'")
    try:
        meta = yaml.safe_load(m.group("yaml"))
    except yaml.YAMLError as exc:
        raise CatalogFormatError(f"{source}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise CatalogFormatError(f"{source}: front matter must be a YAML mapping")
    body = m.group("body")
    heads = list(_HEADING.finditer(body))
    titles = tuple(h.group("title") for h in heads)
    if titles != SECTIONS:
        raise CatalogFormatError(
            f"{source}: body sections must be exactly {list(SECTIONS)} in order, "
            f"found {list(titles)}"
        )
    data: dict[str, Any] = dict(meta)
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        field = h.group("title").lower()
        if field in data:
            raise CatalogFormatError(
                f"{source}: '{field}' given both in front matter and as a section"
            )
        data[field] = body[h.end() : end].strip()
    try:
        entry = Entry.model_validate(data)
    except ValidationError as exc:
        raise CatalogFormatError(f"{source}: {exc}") from exc
    return entry


def parse_file(path: Path) -> Entry:
    """Parse one file and check that its `id` matches its file name."""
    entry = parse_text(path.read_text(encoding="utf-8"), source=str(path))
    if entry.id != path.stem:
        raise CatalogFormatError(f"{path}: id {entry.id!r} does not match file name {path.stem!r}")
    return entry


def load_dir(directory: Path) -> list[Entry]:
    """Parse every `*.md` entry in `directory` (README.md excluded), sorted by id."""
    files = sorted(p for p in directory.glob("*.md") if p.name != "README.md")
    entries = [parse_file(p) for p in files]
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise CatalogFormatError(f"duplicate entry id {e.id!r}")
        seen.add(e.id)
    return sorted(entries, key=lambda e: e.id)
