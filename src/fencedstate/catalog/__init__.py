"""Catalog of coordination failure modes in multi-agent systems: entries, search, MCP server.

Entries are markdown files with YAML front matter (`catalog/<id>.md`); the packaged index
(`_data/index.json`) and `catalog/schema.json` are generated from them by
`python -m fencedstate.catalog build`.
"""

from fencedstate.catalog.api import (
    SearchHit,
    build,
    build_index,
    catalog_dir,
    check,
    list_entries,
    load_entries,
    search,
    show,
)
from fencedstate.catalog.errors import (
    CatalogError,
    CatalogFormatError,
    CatalogNotFoundError,
    EntryNotFoundError,
)
from fencedstate.catalog.model import Entry, Index, Mappings, Mitigation, Reference

__all__ = [
    "CatalogError",
    "CatalogFormatError",
    "CatalogNotFoundError",
    "Entry",
    "EntryNotFoundError",
    "Index",
    "Mappings",
    "Mitigation",
    "Reference",
    "SearchHit",
    "build",
    "build_index",
    "catalog_dir",
    "check",
    "list_entries",
    "load_entries",
    "search",
    "show",
]
