"""Benchmark fencedstate against the peers a user would otherwise pick (issues 8, 13, 26).

One command: ``python bench/peers [--quick]``. Every configuration runs in real OS processes
(multiprocessing, fork) on the same disk in the same run, is repeated, and the median
repetition (by commit rate) is kept. The report goes to ``bench/results/`` as markdown tables
(``peers.md``) and PNG plots; everything measured, latency samples included, goes to
``raw/peers.json`` beside them (git-ignored). ``--baseline SRC`` also runs the fencedstate
rows with the package imported from another ``src/`` tree and adds a before/after table.
The targets the report checks are data: ``targets.toml``. See ``bench/README.md``.

Modules: ``ops`` (each approach's commit operation), ``approaches`` (the table of them),
``baseline`` (importing fencedstate from --baseline SRC), ``runner`` (real-process runs),
``readscale`` (reads and scale), ``profiling`` (--profile), ``probe`` (the machine line),
``targets`` (targets.toml evaluated), ``report`` (peers.md), ``plots``, ``cli``.
"""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
