"""The console script as a new user meets it (issue 27): every command in --help, read-only
commands that never create a store, errors with advice (and as JSON), ``check`` with the full
hash and ``--salvage``."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.cli.main import build_parser
from fencedstate.file import keystate
from fencedstate.file.locking import KeyLocks

CLI = [sys.executable, "-m", "fencedstate.cli"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, input=stdin, check=False
    )


def _store(root: Path) -> None:
    store = fs.FileStore(root)
    for key in ("a", "b", "team/c"):
        v = 0
        for i in range(3):
            v = store.put(key, i, expected_version=v).version
    store.close()


def _damage(root: Path, key: str = "b") -> bytes:
    log = root / "data" / f"{key}.jsonl"
    bad = log.read_bytes() + b"garbage\n"
    log.write_bytes(bad)
    return bad


def test_help_lists_every_command_on_one_line_each() -> None:
    out = run("--help", stdin=None)
    assert out.returncode == 0
    parser = build_parser()
    [action] = [a for a in parser._actions if a.dest == "command"]
    commands = list(action.choices)  # type: ignore[union-attr]
    expected = {"demo", "inspect", "history", "copy", "check", "mcp", "catalog"}
    expected |= {"claim", "renew", "release", "reclaim", "commit"}
    assert expected <= set(commands)
    lines = out.stdout.splitlines()
    for name in commands:
        [line] = [x for x in lines if re.match(rf"^    {name}\s", x)]
        assert len(line.split(maxsplit=1)) == 2, f"{name} has no one-line help: {line!r}"
    text = " ".join(out.stdout.split())
    assert "exit codes: 0 ok, 1 damage found (check, inspect), 2 error" in text


def test_check_help_speaks_cli_not_python() -> None:
    out = run("check", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "``" not in text and "quarantine=True" not in text  # not the module's docstring
    assert "--quarantine moves each damaged log aside" in text
    assert "exit codes: 0 clean, 1 damage found, 2 could not run" in text


def test_read_only_commands_never_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nosuchdir"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    for target in (missing, plain):
        commands = (["inspect", str(target)], ["history", str(target), "k"], ["check", str(target)])
        for args in commands:
            out = run(*args)
            assert out.returncode == 2, (args, out)
            [line] = out.stderr.strip().splitlines()
            assert "is not a fencedstate store" in line and "never by a read-only command" in line
            assert "Traceback" not in out.stderr
        assert not missing.exists()
        assert sorted(p.name for p in plain.iterdir()) == ["notes.txt"]
    out = run("inspect", f"file://{missing}")
    assert out.returncode == 2 and not missing.exists()


def test_copy_from_a_path_that_is_not_a_store_creates_nothing(tmp_path: Path) -> None:
    missing, dst = tmp_path / "nosuchdir", tmp_path / "dst"
    out = run("copy", str(missing), str(dst))
    assert out.returncode == 2, out
    [line] = out.stderr.strip().splitlines()
    assert "is not a fencedstate store" in line
    assert not missing.exists() and not dst.exists()


def test_inspect_lists_a_damaged_key_and_goes_on(tmp_path: Path) -> None:
    _store(tmp_path)
    _damage(tmp_path)
    out = run("inspect", str(tmp_path))
    assert out.returncode == 1, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[2:]}
    assert rows["a"][1] == "3" and rows["team/c"][1] == "3"
    assert rows["b"][1] == "damaged"
    assert "fencedstate check" in out.stderr


def test_errors_are_one_line_with_advice_and_json_with_to_dict(tmp_path: Path) -> None:
    fs.open_store(tmp_path).close()
    out = run("history", str(tmp_path), "../etc/passwd")
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("fencedstate: error: invalid key '../etc/passwd'")
    assert fs.InvalidKeyError.advice in line
    out = run("history", "--json", str(tmp_path), "../etc/passwd")
    assert out.returncode == 2
    body = json.loads(out.stdout)
    assert body["error"] == "InvalidKeyError" and body["advice"] == fs.InvalidKeyError.advice
    assert body["key"] == "../etc/passwd"


def test_check_prints_the_full_hash_that_reset_takes(tmp_path: Path) -> None:
    _store(tmp_path)
    bad = _damage(tmp_path)
    digest = hashlib.sha256(bad).hexdigest()
    out = run("check", str(tmp_path))
    assert out.returncode == 1 and digest in out.stdout
    shown = re.search(r"sha256 ([0-9a-f]+)", out.stdout)
    assert shown is not None and shown.group(1) == digest
    done = run("check", str(tmp_path), "--reset", "b", shown.group(1))
    assert done.returncode == 0, done.stderr


def test_salvage_keeps_versions_and_epochs_and_the_key_goes_on(tmp_path: Path) -> None:
    store = fs.FileStore(tmp_path)
    store.put("k", "v1", expected_version=0)
    with store.claim("k", owner="w", ttl=60) as claim:
        claim.commit("v2")
    store.reclaim("k")  # epoch 2
    store.put("k", "v3", expected_version=2)
    log = tmp_path / "data" / "k.jsonl"
    good = log.read_bytes().rstrip(b" ")  # the lines (blank padding follows them)
    good_lines = good.count(b"\n")
    later = good.splitlines(keepends=True)[-1]
    log.write_bytes(good + later.replace(b'"v3"', b'"XX"') + later)  # a bad CRC, then more
    damaged = log.read_bytes()
    out = run("check", str(tmp_path), "--salvage", "k", "--json")
    assert out.returncode == 0, out.stderr
    kept = json.loads(out.stdout)
    # the valid lines, then the key moved past every version and epoch it had: 3 -> 4, 2 -> 3
    assert (kept["version"], kept["epoch"], kept["lines"]) == (4, 3, good_lines)
    assert Path(kept["aside"]).read_bytes() == damaged  # nothing is lost
    assert log.read_bytes().startswith(good) and log.read_bytes().count(b"\n") == good_lines + 1
    snap = store.get("k")  # the store object opened before the salvage reads it
    assert snap is not None and (snap.value, snap.version, snap.epoch) == ("v3", 4, 3)
    assert store.history("k")[-1].op == "reclaim"
    with pytest.raises(fs.ConflictError):
        store.put("k", "stale", expected_version=3)  # a writer from before the damage
    assert store.put("k", "v5", expected_version=4).version == 5
    assert fs.check(tmp_path).damaged == []
    # The key's shared state was derived again: it describes the new log, all of it durable.
    locks = KeyLocks(str(tmp_path / "locks"), 5.0)
    st = log.stat()
    ks = keystate.load(locks.state_fd("k"), st.st_ino, st.st_size)
    end = len(log.read_bytes().rstrip(b" "))
    assert ks is not None and ks.end == ks.wm == end and ks.size == st.st_size and not ks.broken
    locks.close()
    store.close()


def test_salvage_moves_past_versions_and_claims_only_the_damaged_part_held(
    tmp_path: Path,
) -> None:
    store = fs.FileStore(tmp_path)
    v = 0
    for i in range(5):
        v = store.put("k", i, expected_version=v).version
    late = store.claim("k", owner="late", ttl=600)  # epoch 1, taken after the damage point
    read_at_5 = store.get("k")
    assert read_at_5 is not None and read_at_5.version == 5
    log = tmp_path / "data" / "k.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"value":2', b'"value":9')  # bad CRC from line 3 on
    log.write_bytes(b"".join(lines))
    out = run("check", str(tmp_path), "--salvage", "k", "--json")
    assert out.returncode == 0, out.stderr
    kept = json.loads(out.stdout)
    assert (kept["lines"], kept["version"], kept["epoch"]) == (2, 6, 2)
    snap = store.get("k")
    # the newest intact line's value (the claim's, at version 5), not the prefix's: reads
    # returned it before the damage was found, and a repair does not roll it back
    assert snap is not None and (snap.value, snap.version) == (4, 6)
    with pytest.raises(fs.ConflictError):  # version 5 is never matched again
        store.put("k", "from v5", expected_version=read_at_5.version)
    with pytest.raises(fs.FencedError):  # the claim from the lost part is fenced
        late.commit("late")
    assert store.put("k", "fresh", expected_version=6).version == 7
    store.close()


def test_salvage_after_quarantine_keeps_the_value_reads_returned(tmp_path: Path) -> None:
    """A bad line further back: reads still return version 5; `check`, `--quarantine`, then
    `--salvage` (the advised repair) must not roll the key back to the prefix's value."""
    store = fs.FileStore(tmp_path)
    v = 0
    for i in range(5):
        v = store.put("k/a", {"i": i}, expected_version=v).version
    log = tmp_path / "data" / "k" / "a.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"i":3', b'"i":7')  # line 4 of 5 fails its checksum
    log.write_bytes(b"".join(lines))
    snap = store.get("k/a")
    assert snap is not None and (snap.value, snap.version) == ({"i": 4}, 5)
    assert run("check", str(tmp_path)).returncode == 1
    assert run("check", str(tmp_path), "--quarantine").returncode == 1
    out = run("check", str(tmp_path), "--salvage", "k/a")
    assert out.returncode == 0, out.stderr
    snap = store.get("k/a")
    assert snap is not None and (snap.value, snap.version) == ({"i": 4}, 6)
    assert [e.version for e in store.history("k/a", limit=None)] == [1, 2, 3, 6]
    assert fs.check(tmp_path).clean
    store.close()


def test_salvage_when_the_first_line_is_the_damaged_one(tmp_path: Path) -> None:
    """Reads returned version 3 (the lines after the bad first one are intact); after
    `--quarantine`, `--salvage` used to say "nothing to salvage" and leave only `--reset`."""
    store = fs.FileStore(tmp_path)
    v = 0
    for i in range(3):
        v = store.put("c", {"i": i}, expected_version=v).version
    log = tmp_path / "data" / "c.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b'"i":0', b'"i":9')  # line 1 of 3 fails its checksum
    log.write_bytes(b"".join(lines))
    assert run("check", str(tmp_path), "--quarantine").returncode == 1
    out = run("check", str(tmp_path), "--salvage", "c")
    assert out.returncode == 0, out.stderr
    assert "kept 0 valid lines; the key is now at version 4, epoch 1" in out.stdout
    snap = store.get("c")
    assert snap is not None and (snap.value, snap.version) == ({"i": 2}, 4)
    assert [e.version for e in store.history("c", limit=None)] == [4]
    assert fs.check(tmp_path).clean
    store.close()


def test_salvage_of_a_quarantined_key_and_refusals(tmp_path: Path) -> None:
    _store(tmp_path)
    _damage(tmp_path)
    assert run("check", str(tmp_path), "--quarantine").returncode == 1
    assert fs.check(tmp_path).quarantined_keys
    out = run("check", str(tmp_path), "--salvage", "b")
    assert out.returncode == 0, out.stderr
    assert "kept 3 valid lines; the key is now at version 4, epoch 1" in out.stdout
    store = fs.FileStore(tmp_path)
    snap = store.get("b")
    assert snap is not None and snap.version == 4 and snap.value == 2
    store.close()
    assert fs.check(tmp_path).clean
    out = run("check", str(tmp_path), "--salvage", "a")  # not damaged: refused
    assert out.returncode == 2 and "not damaged" in out.stderr
    (tmp_path / "data" / "a.jsonl").write_bytes(b"nonsense\n")  # no valid prefix
    out = run("check", str(tmp_path), "--salvage", "a")
    assert out.returncode == 2 and "--reset" in out.stderr


def _updater(root: str, n: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    store = fs.FileStore(root)
    versions = []
    while len(versions) < n:
        try:
            versions.append(store.update("b", lambda v: v + 1, writer=f"p{os.getpid()}").version)
        except fs.CorruptStateError:
            continue  # refused until the key is salvaged
    out.put(versions)


def test_salvage_under_concurrent_writers_keeps_every_commit(tmp_path: Path) -> None:
    _store(tmp_path)  # b = 2 at version 3
    _damage(tmp_path)
    ctx = mp.get_context("fork")
    results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_updater, args=(str(tmp_path), 15, results)) for _ in range(3)]
    for p in procs:
        p.start()
    out = run("check", str(tmp_path), "--salvage", "b")
    assert out.returncode == 0, out.stderr
    got = sorted(v for _ in procs for v in results.get(timeout=300))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert got == list(range(5, 5 + 45))  # on from the salvaged 4, none twice, none lost
    store = fs.FileStore(tmp_path)
    snap = store.get("b")
    assert snap is not None and snap.value == 2 + 45 and snap.version == 49
    store.close()
    assert fs.check(tmp_path).clean


HIDE_FRAMEWORKS = """
import importlib.abc, sys
HIDDEN = {"langgraph", "crewai", "autogen", "autogen_agentchat", "autogen_core", "agents",
          "google", "agent_framework", "pydantic_graph", "pydantic_ai"}
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Hide())
from fencedstate.cli.main import main
raise SystemExit(main(["demo", "--frameworks"]))
"""


def test_demo_frameworks_in_a_core_only_install_prints_install_lines() -> None:
    """The frameworks hidden from the import system (as in a core-only install): every
    example gets its install line, no traceback, exit 0."""
    from fencedstate.cli import frameworks

    out = subprocess.run(
        [sys.executable, "-c", HIDE_FRAMEWORKS], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    for _, _, extra, _ in frameworks.EXAMPLES:
        assert f"not installed: pip install -e '.[{extra}]'" in out.stdout


@pytest.mark.parametrize(
    "args", [("catalog", "list"), ("catalog", "show", "phantom-acceptance"), ("inspect", "STORE")]
)
def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, args: tuple[str, ...]) -> None:
    _store(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: `... | head -0`
    proc = subprocess.run(
        [*CLI, *(str(tmp_path) if a == "STORE" else a for a in args)],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        check=False,
    )
    os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"


def test_mcp_stdio_server_ends_cleanly_when_its_client_closes(tmp_path: Path) -> None:
    fs.open_store(tmp_path / "s").close()
    proc = run("mcp", str(tmp_path / "s"), stdin="")  # the client is gone at once: stdio ends
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("made", [False, True], ids=["missing", "empty-dir"])
def test_mcp_on_a_path_with_no_store_says_it_made_a_new_empty_one(
    tmp_path: Path, made: bool
) -> None:
    """A mistyped DIR would otherwise serve an empty store to every agent without a word; an
    existing empty directory has no store in it either (a store is known by its marker)."""
    typo = tmp_path / "stat"
    if made:
        typo.mkdir()
    proc = run("mcp", str(typo), stdin="")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"fencedstate mcp: no store was at {typo}: created a new, empty one at {typo}"
    ]
    assert (typo / "fencedstate.json").is_file()


WITHOUT_MCP = """
import importlib.metadata as md, sys
sys.modules["mcp"] = None  # the extra is not installed: neither the module ...
found = md.version
def version(name):  # ... nor its metadata
    if name == "mcp":
        raise md.PackageNotFoundError(name)
    return found(name)
md.version = version
from fencedstate.cli.main import main as fencedstate
from fencedstate.mcp_server import main as fencedstate_mcp
script, argv = sys.argv[1], sys.argv[2:]
sys.exit(fencedstate(argv) if script == "fencedstate" else fencedstate_mcp(argv[1:]))
"""


@pytest.mark.parametrize("script", ["fencedstate", "fencedstate-mcp"])
def test_mcp_without_the_extra_names_it_and_creates_nothing(tmp_path: Path, script: str) -> None:
    target = tmp_path / "state"
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_MCP, script, "mcp", str(target)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "fencedstate mcp: the MCP server needs the 'mcp' extra: pip install 'fencedstate[mcp]'"
    ]
    assert not target.exists()


def test_check_takes_a_file_url_and_refuses_a_server_url(tmp_path: Path) -> None:
    _store(tmp_path)
    out = run("check", f"file://{tmp_path}")
    assert out.returncode == 0 and "clean" in out.stdout, out
    out = run("check", "postgresql://agent@127.0.0.1:1/fleet")
    assert out.returncode == 2
    [line] = out.stderr.splitlines()
    assert "postgresql:// stores are checked by their server" in line
    assert not Path("postgresql:").exists()
    out = run("check", str(tmp_path), "--salvage", "no/such")
    assert out.returncode == 2 and "has no log: nothing to repair" in out.stderr


def test_an_unreachable_server_is_one_line_that_says_so() -> None:
    out = run("inspect", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert out.returncode == 2
    [line] = out.stderr.splitlines()
    assert line.startswith("fencedstate: error: storage error: cannot reach redis server")
    assert "a server that cannot be reached" in line
    assert ".." not in line and "?." not in line


def test_python_dash_m_fencedstate_is_the_command(tmp_path: Path) -> None:
    """Without the console script on PATH (a venv not activated, a source tree) a user tries
    ``python -m fencedstate``: it was 'No module named fencedstate.__main__'."""
    done = subprocess.run(
        [sys.executable, "-m", "fencedstate", "get", str(tmp_path / "nowhere"), "k"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "is not a fencedstate store" in done.stderr, done.stderr
    assert not (tmp_path / "nowhere").exists()


def test_catalog_module_entry_point_into_a_closed_pipe_ends_quietly() -> None:
    """`python -m fencedstate.catalog show ID | head -2` (docs/catalog.md: it "does the same" as
    `fencedstate catalog`) ended in a BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run(
        [sys.executable, "-m", "fencedstate.catalog", "show", "phantom-acceptance"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        check=False,
    )
    os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
