"""``fencedstate effects DIR``: the effect ledger as a table (or JSON), in-doubt effects first."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..core.clock import wall_text
from ..effects import EffectLedger
from ..effects.listing import ORDER, rows
from ..errors import FencedStateError
from .errors import Parser, parse, report
from .table import render


def _when(ts: float | None) -> str:
    return wall_text(ts) if ts else "-"


def _short(value: object, width: int = 40) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fencedstate effects``."""
    parser = Parser(prog="fencedstate effects", description="List a store's effect ledger.")
    parser.add_argument("dir", help="a store directory (never created) or URL")
    parser.add_argument("--prefix", default="effects/", help="the ledger's prefix")
    parser.add_argument("--state", choices=sorted(ORDER), help="only effects in this state")
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of a table (errors too)"
    )
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    from .main import open_existing  # read-only: never creates a store

    try:
        ledger = EffectLedger(open_existing(args.dir), args.prefix)
        data = rows(ledger.store, ledger.prefix, args.state)
    except FencedStateError as exc:
        return report(exc, as_json=args.json)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    if not data:
        print(f"no effects under {args.prefix!r} in {args.dir}")
        return 0
    table = [
        [
            r["effect_id"],
            r["shown_state"],
            _short(r["attempt"]),
            _short(r["owner"]),
            _when(r["started_at"]),
            f"{r['lease_left']:.1f}s" if r["lease_left"] > 0 else "-",
            _short(r["probes"]),
            _short(r["result"] if r["shown_state"] == "completed" else r["reason"]),
        ]
        for r in data
    ]
    headers = ["effect", "state", "attempt", "owner", "started", "lease", "probes", "result/reason"]
    print(render(headers, table, indent=""))
    doubt = sum(r["shown_state"] == "in_doubt" for r in data)
    if doubt:
        print(
            f"\n{doubt} in doubt: they may have happened; settle each with a probe "
            "(ledger.run(..., probe=...)), never by running them again blindly."
        )
    foreign = sum(r["shown_state"] == "foreign" for r in data)
    if foreign:
        print(
            f"\n{foreign} foreign: a value under {args.prefix!r} that the ledger did not write; "
            "move it out of the prefix or give the ledger its own."
        )
    return 0
