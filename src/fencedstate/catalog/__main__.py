"""`python -m fencedstate.catalog ...` runs the catalog CLI."""

import sys

from fencedstate.catalog.cli import main

sys.exit(main(sys.argv[1:]))
