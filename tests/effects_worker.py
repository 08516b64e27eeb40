"""A worker process for the effect-ledger tests: runs one effect and reports what happened.

The "side effect" appends one line to a world file (what an email server or a payment API would
record); the tests count its lines.

Usage: python effects_worker.py MODE STORE_DIR EFFECT_ID WORLD OUT [TTL]
  hang   fn appends its line, touches OUT, then hangs (the test kills it with -9)
  run    runs the effect; OUT gets {"result": ...} or the error's to_dict()
  probe  like run, with a probe that looks for the effect's line in the world file
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import fencedstate as fs


def main() -> None:
    mode, store_dir, effect_id, world, out = sys.argv[1:6]
    ttl = float(sys.argv[6]) if len(sys.argv) > 6 else 60.0
    ledger = fs.EffectLedger(fs.open_store(store_dir))

    def fire(token: fs.EffectToken) -> dict[str, Any]:
        with open(world, "a") as f:
            f.write(f"{token.id} attempt={token.attempt} pid={os.getpid()}\n")
            f.flush()
            os.fsync(f.fileno())
        if mode == "hang":
            Path(out).touch()
            time.sleep(600)
        return {"sent_by": os.getpid(), "attempt": token.attempt}

    def probe(token: fs.EffectToken) -> dict[str, Any]:
        lines = Path(world).read_text().splitlines() if Path(world).exists() else []
        mine = [ln for ln in lines if ln.startswith(f"{token.id} ")]
        if not mine:
            raise fs.EffectNotApplied("no line for it in the world file")
        return {"observed": mine[0]}

    try:
        result = ledger.run(effect_id, fire, probe=probe if mode == "probe" else None, ttl=ttl)
        report: dict[str, Any] = {"result": result}
    except fs.FencedStateError as exc:
        report = exc.to_dict()
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
