"""``python bench/peers ...``: run the peers benchmark.

The one place this package sets up ``sys.path``: Python puts this directory first on it when
running a directory, which would let the package's modules import as top-level modules; it is
replaced by ``bench/`` (so they import as ``peers.*``, also in ``spawn`` children, which inherit
the path), and the checkout's ``src/`` is added after it so a checkout without an install runs.
The only other change to ``sys.path`` is the --baseline feature itself (``baseline.use_src``
puts SRC first in a baseline worker).
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parents[1]
sys.path[0] = str(_BENCH)
if str(_BENCH.parent / "src") not in sys.path:
    sys.path.insert(1, str(_BENCH.parent / "src"))

from peers.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
