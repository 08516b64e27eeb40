"""`fencedstate catalog list|show ID|search TEXT|serve|build|check` (entry point: `main`)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO, get_args

from fencedstate.catalog.api import build, catalog_dir, check, list_entries, search, show
from fencedstate.catalog.errors import CatalogError, EntryNotFoundError
from fencedstate.catalog.model import Category, Entry
from fencedstate.errors import FencedStateError, InvalidArgumentError


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: TextIO) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out.write(line.rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in rows:
        out.write(
            "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() + "\n"
        )


def _wrap(text: str, indent: str = "  ") -> str:
    paras = [p for p in text.split("\n\n") if p.strip()]
    return "\n\n".join(
        textwrap.fill(
            " ".join(p.split()), width=96, initial_indent=indent, subsequent_indent=indent
        )
        for p in paras
    )


def _render(e: Entry, out: TextIO) -> None:
    out.write(f"{e.id}: {e.name}\n")
    out.write(f"category: {e.category}\n")
    if e.aliases:
        out.write(f"aliases:  {', '.join(e.aliases)}\n")
    if e.symptoms:
        out.write(f"symptoms: {'; '.join(e.symptoms)}\n")
    out.write(f"\nSummary\n{_wrap(e.summary)}\n")
    for title in ("reproduction", "impact", "detection"):
        out.write(f"\n{title.capitalize()}\n{_wrap(getattr(e, title))}\n")
    out.write("\nMitigations\n")
    for m in e.mitigations:
        out.write(f"  - {m.name}\n{_wrap(m.description, '      ')}\n")
        out.write(f"{_wrap('Tradeoffs: ' + m.tradeoffs, '      ')}\n")
        if m.code:
            out.write(f"      code:  {m.code}\n")
        if m.repro:
            out.write(f"      repro: {m.repro}\n")
    if e.related:
        out.write(f"\nRelated: {', '.join(e.related)}\n")
    maps = [(k, v) for k, v in e.mappings.model_dump().items() if v]
    if maps:
        out.write("\nMappings\n")
        for k, v in maps:
            out.write(f"  {k}: {'; '.join(v)}\n")
    out.write("\nReferences\n")
    if not e.references:
        out.write(f"  {e.incidents_note or 'none'}\n")
    for r in e.references:
        out.write(f"  - {r.title}\n    {r.url}\n    {r.symptom}\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fencedstate catalog", description="Catalog of coordination failure modes."
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    lp = sub.add_parser("list", help="list entries")
    lp.add_argument("--category", choices=list(get_args(Category)))
    lp.add_argument("--json", action="store_true", help="machine-readable output")
    sp = sub.add_parser("show", help="show one entry")
    sp.add_argument("id")
    sp.add_argument("--json", action="store_true")
    qp = sub.add_parser(
        "search", help="ranked search: by words, and by meaning with the catalog extra"
    )
    qp.add_argument("text")
    qp.add_argument("--limit", type=int, default=5)
    qp.add_argument(
        "--words", action="store_true", help="rank by words alone, even with the catalog extra"
    )
    qp.add_argument("--json", action="store_true")
    sub.add_parser("serve", help="run the MCP server on stdio (tools: search, show)")
    sub.add_parser(
        "build",
        help="regenerate the index, its meaning vectors and catalog/schema.json from catalog/*.md",
    )
    sub.add_parser("check", help="check links (code, repro, related) and generated files")
    return p


def main(argv: list[str]) -> int:
    """Run one catalog command; return the process exit status (0 ok, 1 check failed, 2 error)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    out = sys.stdout
    try:
        if args.cmd == "list":
            entries = list_entries(args.category)
            if args.json:
                json.dump(
                    [
                        {
                            "id": e.id,
                            "name": e.name,
                            "category": e.category,
                            "mitigated": e.mitigated,
                        }
                        for e in entries
                    ],
                    out,
                    indent=2,
                )
                out.write("\n")
            else:
                _table(
                    [(e.id, e.category, "yes" if e.mitigated else "-", e.name) for e in entries],
                    ("ID", "CATEGORY", "MITIGATED", "NAME"),
                    out,
                )
                out.write(f"\n{len(entries)} entries\n")
        elif args.cmd == "show":
            e = show(args.id)
            if args.json:
                out.write(e.model_dump_json(indent=2) + "\n")
            else:
                _render(e, out)
        elif args.cmd == "search":
            if args.limit < 1:
                raise InvalidArgumentError("--limit must be >= 1")
            hits = search(args.text, limit=args.limit, semantic=False if args.words else None)
            if args.json:
                json.dump([h.model_dump() for h in hits], out, indent=2)
                out.write("\n")
            elif not hits:
                out.write("no matching entries\n")
            else:
                _table(
                    [(str(h.rank), h.id, h.category, h.name) for h in hits],
                    ("#", "ID", "CATEGORY", "NAME"),
                    out,
                )
        elif args.cmd == "serve":
            from fencedstate.catalog.server import serve

            serve()
        elif args.cmd == "build":
            for path in build():
                out.write(f"wrote {path}\n")
        elif args.cmd == "check":
            problems = check()
            d = catalog_dir()
            if problems:
                for line in problems:
                    sys.stderr.write(f"error: {line}\n")
                sys.stderr.write(f"{len(problems)} problem(s) in {d}\n")
                return 1
            out.write(
                f"ok: {len(list_entries())} entries in {d}, all links and generated files valid\n"
            )
    except (CatalogError, ValueError, RuntimeError) as exc:
        if getattr(args, "json", False):  # as every --json command: the error's JSON on stdout
            err = exc if isinstance(exc, FencedStateError) else InvalidArgumentError(str(exc))
            out.write(json.dumps(err.to_dict()) + "\n")
            return 2
        hint = ""
        if isinstance(exc, EntryNotFoundError):
            hint = "; ids: `fencedstate catalog list`, or `fencedstate catalog search TEXT`"
        sys.stderr.write(f"fencedstate catalog: error: {exc}{hint}\n")
        return 2
    return 0
