"""The start of a benchmark child process (``python -c PRELUDE + body SRC ROOT DURABILITY ...``):
fencedstate imported from the ``src/`` tree in argv[1] (checked, so a before/after pair cannot
measure one tree twice), a store opened at argv[2] with argv[3] ("default" or a durability),
and one key, ``bench/own``, created; ``v`` is its version."""

PRELUDE = """
import json, os, sys, time
src = os.path.realpath(sys.argv[1])
sys.path.insert(0, src)
import fencedstate as fs
if not os.path.realpath(fs.__file__).startswith(src + os.sep):
    raise SystemExit(f"imported fencedstate from {fs.__file__}, not from {src}")
root, durability = sys.argv[2], sys.argv[3]
store = fs.open_store(root) if durability == "default" else fs.open_store(
    root, durability=durability
)
v = store.put("bench/own", {"n": 0}, expected_version=0).version
"""
