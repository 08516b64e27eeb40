"""``python -m fencedstate``: the ``fencedstate`` command (``fencedstate.cli``)."""

from .cli import main

raise SystemExit(main())
