"""`python -m fencedstate.catalog ...` runs the catalog CLI, as `fencedstate catalog ...` does
(through the console script's entry point: a reader gone early ends it quietly with 141)."""

import sys

from fencedstate.cli.main import main

sys.exit(main(["catalog", *sys.argv[1:]]))
