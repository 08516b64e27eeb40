"""``python -m fencedstate.mcp_server DIR|URL [--http ...]``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
