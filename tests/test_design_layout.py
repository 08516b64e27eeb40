"""docs/design.md's layout names every module of src/fencedstate and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "fencedstate"


def _layout() -> str:
    text = (ROOT / "docs" / "design.md").read_text()
    return text[text.index("## Layout") : text.index("## The backend contract")]


def _modules() -> set[str]:
    found = set()
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if path.name in ("__init__.py", "__main__.py") and rel != "__init__.py":
            continue
        found.add(rel)
    return found


def _named(layout: str) -> set[str]:
    """Every `x.py` or `dir/` named, with a row's folder prefixed to the files it lists."""
    named: set[str] = set()
    for row in layout.splitlines():
        cells = row.split("|")
        if len(cells) < 3 or cells[1].strip() in ("where", "---"):
            continue
        where = re.findall(r"`([\w/.]+)`", cells[1])
        folder = where[0] if where and where[0].endswith("/") else ""
        named.update(w for w in where if w.endswith(".py"))
        for name in re.findall(r"`([\w/]+\.py)`", cells[2]):
            named.add(name if "/" in name or not folder else folder + name)
    return named


def test_layout_names_every_module() -> None:
    missing = sorted(_modules() - _named(_layout()))
    assert not missing, f"docs/design.md's layout does not name: {missing}"


def test_layout_names_no_module_that_is_gone() -> None:
    gone = sorted(n for n in _named(_layout()) if not (PKG / n).is_file())
    assert not gone, f"docs/design.md's layout names modules that do not exist: {gone}"


def test_the_example_log_line_is_what_the_store_writes() -> None:
    from fencedstate.records import decode_line, encode_state

    text = (ROOT / "docs" / "design.md").read_text()
    section = text[text.index("Each line of a key's log") :]
    line = section.split("```\n", 2)[1].strip().encode()
    state = decode_line(line, "docs/design.md")
    assert state.key == "plans/alpha" and state.holder == "w1"
    assert encode_state(state) == line + b"\n"


def test_lock_files_are_made_as_keys_need_them_as_the_docs_say() -> None:
    """README's "On disk" and design.md say up to STRIPES lock files, made as keys lock them
    (a store with two keys has at most two), not a fixed set of 64."""
    import tempfile

    import fencedstate as fs
    from fencedstate.file.locking import STRIPES

    with tempfile.TemporaryDirectory() as d, fs.open_store(d) as store:
        assert list(Path(d, "locks").glob("stripe-*.lock")) == []
        store.put("a", 1, expected_version=0)
        store.put("b", 1, expected_version=0)
        assert 1 <= len(list(Path(d, "locks").glob("stripe-*.lock"))) <= 2
    said = f"up to {STRIPES} lock files shared by all keys, each made when a key first locks it"
    assert said in (ROOT / "README.md").read_text()
    assert (
        f"up to {STRIPES} one-byte lock files (NN: hex), each made when a key first locks"
        in (ROOT / "docs" / "design.md").read_text()
    )


def test_the_on_disk_block_says_what_the_store_writes(tmp_path: Path) -> None:
    """The on-disk format block: its constants are the code's, and every file a store makes
    matches one of its lines (it once put the state table at ``(inode % 2**32) * 128``)."""
    import fencedstate as fs
    from fencedstate.file import keystate, layout, locking

    text = (ROOT / "docs" / "design.md").read_text()
    block = text.split("## On-disk format", 1)[1].split("```", 2)[1]
    assert f'{{"format": {layout.FORMAT_VERSION}, ...}}' in block
    assert f"{locking.STRIPES} one-byte lock files" in block
    per = keystate.PER_FILE
    assert (
        f"{keystate.SIZE} bytes at (inode % {per}) * {keystate.SIZE} of state-<inode // {per}"
        in (" ".join(block.split()))
    )
    store = fs.open_store(tmp_path)
    store.put("plans/alpha", {"step": 1}, expected_version=0)
    store.claim("plans/alpha", "w1").commit({"step": 2})
    store.close()
    patterns = [
        r"fencedstate\.json",
        r"data/plans/alpha\.jsonl",
        r"locks/stripe-[0-9a-f]{2}\.lock",
        r"locks/state-[0-9a-f]+\.tbl",
    ]
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert made and all(any(re.fullmatch(p, f) for p in patterns) for f in made), made
    ino = (tmp_path / "data" / "plans" / "alpha.jsonl").stat().st_ino
    assert (tmp_path / "locks" / f"state-{ino // per:x}.tbl").exists()
