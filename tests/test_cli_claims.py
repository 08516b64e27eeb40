"""Claims from the shell (issue 27): separate processes claim, renew, commit under, release and
reclaim by (key, owner, epoch), with exit codes a script can branch on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fencedstate as fs

CLI = [sys.executable, "-m", "fencedstate.cli"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, input=stdin, check=False
    )


def ok(*args: str, stdin: str | None = None) -> dict[str, object]:
    out = run(*args, stdin=stdin)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert isinstance(body, dict)
    return body


def test_claim_commit_renew_release_across_processes(tmp_path: Path) -> None:
    d = str(tmp_path / "s")
    grant = ok("claim", d, "plans/a", "--owner", "hook-1", "--ttl", "120")
    assert grant["epoch"] == 1 and grant["owner"] == "hook-1"
    assert 0 < float(grant["expires_in"]) <= 120  # type: ignore[arg-type]
    done = ok("commit", d, "plans/a", "--owner", "hook-1", "--epoch", "1", "--value", '{"x": 1}')
    assert (done["version"], done["epoch"], done["writer"]) == (1, 1, "hook-1")
    done = ok(
        "commit", d, "plans/a", "--owner", "hook-1", "--epoch", "1", "--value", "-",
        "--expected-version", "1", stdin='{"x": 2}',
    )  # fmt: skip
    assert done["version"] == 2
    renewed = ok("renew", d, "plans/a", "--owner", "hook-1", "--epoch", "1", "--ttl", "300")
    assert float(renewed["expires_in"]) > 120  # type: ignore[arg-type]
    store = fs.open_store(d)
    state = store.state("plans/a")
    assert state is not None and state.holder == "hook-1" and state.epoch == 1
    assert ok("release", d, "plans/a", "--owner", "hook-1", "--epoch", "1")["released"] is True
    assert ok("release", d, "plans/a", "--owner", "hook-1", "--epoch", "1")["released"] is False
    snap = store.get("plans/a")
    assert snap is not None and snap.value == {"x": 2}
    store.close()


def test_exit_codes_held_fenced_conflict(tmp_path: Path) -> None:
    d = str(tmp_path / "s")
    ok("claim", d, "k", "--owner", "a", "--ttl", "120")
    held = run("claim", d, "k", "--owner", "b", "--json")
    assert held.returncode == 3
    body = json.loads(held.stdout)
    assert body["error"] == "ClaimHeldError" and body["holder"] == "a"
    assert body["advice"] == fs.ClaimHeldError.advice
    line = run("claim", d, "k", "--owner", "b")
    assert line.returncode == 3 and "reclaim" in line.stderr
    # A stale version under a live claim: 5.
    conflict = run(
        "commit", d, "k", "--owner", "a", "--epoch", "1", "--value", "1", "--expected-version", "7"
    )
    assert conflict.returncode == 5 and "Re-read" in conflict.stderr
    assert ok("reclaim", d, "k", "--by", "ops")["epoch"] == 2
    fenced = run("commit", d, "k", "--owner", "a", "--epoch", "1", "--value", "1", "--json")
    assert fenced.returncode == 4
    body = json.loads(fenced.stdout)
    assert body["error"] == "FencedError" and body["reason"] == "reclaimed"
    assert run("renew", d, "k", "--owner", "a", "--epoch", "1").returncode == 4
    wrong = run("commit", d, "k", "--owner", "a", "--epoch", "1", "--value", "{nope")
    assert wrong.returncode == 2 and "must be JSON" in wrong.stderr
    grant = ok("claim", d, "k", "--owner", "b")
    assert grant["epoch"] == 3
    store = fs.open_store(d)
    assert store.get("k") is None  # nothing the fenced or refused commits sent landed
    store.close()
    assert run("renew", str(tmp_path / "none"), "k", "--owner", "a", "--epoch", "1").returncode == 2
    assert not (tmp_path / "none").exists()


def test_a_bad_command_line_with_json_is_a_json_error(tmp_path: Path) -> None:
    fs.open_store(tmp_path / "s").close()
    args = ["commit", str(tmp_path / "s"), "k", "--owner", "o", "--epoch", "", "--value", "1"]
    out = run(*args, "--json")  # e.g. an epoch from a jq that failed
    assert out.returncode == 2 and out.stderr == ""
    error = json.loads(out.stdout)
    assert error["error"] == "InvalidArgumentError" and "--epoch" in error["message"]
    assert error["advice"]
    for other in (["effects", str(tmp_path / "s"), "--state", "gone"], ["check", "--salvage"]):
        body = json.loads(run(*other, "--json").stdout)  # the commands with their own parsers
        assert body["error"] == "InvalidArgumentError" and other[0] in body["message"]
    plain = run(*args)  # without --json: argparse's usage and one error line, as before
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.startswith("usage: fencedstate commit")
    assert plain.stderr.splitlines()[-1].startswith("fencedstate commit: error: argument --epoch")


def test_a_mistyped_owner_is_named_not_called_reclaimed(tmp_path: Path) -> None:
    d = str(tmp_path / "s")
    grant = ok("claim", d, "k", "--owner", "agent-7", "--ttl", "120")
    for command in (["renew"], ["release"], ["commit", "--value", "1"]):
        out = run(
            command[0], d, "k", "--owner", "agent-1", "--epoch", str(grant["epoch"]), *command[1:]
        )
        assert out.returncode == 2, out
        [line] = out.stderr.splitlines()
        assert "epoch 1 of 'k' is held by 'agent-7', not 'agent-1'" in line
        assert "reclaimed" not in line
    assert ok("release", d, "k", "--owner", "agent-7", "--epoch", "1")["released"] is True


def test_an_epoch_never_granted_is_named_not_called_reclaimed(tmp_path: Path) -> None:
    """A mistyped --epoch past the key's, or any epoch on a key never claimed: exit 2, one
    line that names it, nothing written (was exit 4, "claim epoch 7 is reclaimed")."""
    d = str(tmp_path / "s")
    ok("claim", d, "k", "--owner", "hook-1", "--ttl", "120")
    for key, epoch, current in (("k", "7", 1), ("never-claimed", "1", 0)):
        for command in (["renew"], ["release"], ["commit", "--value", "1"]):
            out = run(command[0], d, key, "--owner", "hook-1", "--epoch", epoch, *command[1:])
            assert out.returncode == 2, out
            [line] = out.stderr.splitlines()
            assert (
                f"epoch {epoch} of {key!r} was never granted (the key is at epoch {current})"
                in line
            )
            assert "reclaimed" not in line
    store = fs.open_store(d)
    assert store.state("never-claimed") is None and store.get("k") is None
    store.close()


def test_a_second_claim_by_the_holder_names_its_epoch(tmp_path: Path) -> None:
    """The README's hook run twice within the lease: the error carries the grant's epoch."""
    d = str(tmp_path / "s")
    grant = ok("claim", d, "k", "--owner", "hook-1", "--ttl", "120")
    again = run("claim", d, "k", "--owner", "hook-1", "--json")
    assert again.returncode == 3
    body = json.loads(again.stdout)
    assert body["yours"] is True and body["epoch"] == grant["epoch"] == 1


def test_a_value_nested_past_any_limit_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """100,000 levels (past Python's own recursion limit) and 300 (past the store's 256) get
    the same one-line refusal, exit 2; nothing is written."""
    d = str(tmp_path / "s")
    ok("claim", d, "k", "--owner", "hook-1", "--ttl", "120")
    for depth in (300, 100_000):
        deep = "[" * depth + "]" * depth
        out = run("commit", d, "k", "--owner", "hook-1", "--epoch", "1", "--value", "-", stdin=deep)
        assert out.returncode == 2, out.stderr[-500:]
        [line] = out.stderr.splitlines()
        assert "nested deeper than 256 levels" in line and "Traceback" not in out.stderr
    store = fs.open_store(d)
    assert store.get("k") is None
    store.close()


def test_a_claim_that_creates_the_store_says_so_once(tmp_path: Path) -> None:
    """`claim` makes the store on a hook's first run; a mistyped DIR would otherwise start a
    second store without a word. A store that is there already gets no line."""
    typo = tmp_path / "stat3"
    first = run("claim", str(typo), "k", "--owner", "o")
    assert first.returncode == 0 and json.loads(first.stdout)["epoch"] == 1
    assert first.stderr.splitlines() == [
        f"fencedstate claim: no store was at {typo}: created a new, empty one at {typo}"
    ]
    again = run("claim", str(typo), "k2", "--owner", "o")
    assert again.returncode == 0 and again.stderr == ""


def test_a_bad_option_is_refused_by_name_before_any_store_is_created(tmp_path: Path) -> None:
    """The store's own checks run on the command line: a bad --wait no longer creates the store
    first and fails after, and the message names the flag."""
    new = tmp_path / "new"
    for args, says in (
        (["claim", str(new), "k", "--owner", "o", "--wait", "-1"], "argument --wait: wait must"),
        (["claim", str(new), "k", "--owner", "o", "--ttl", "nan"], "argument --ttl: ttl must"),
        (["claim", str(new), "k", "--owner", ""], "argument --owner: owner must"),
        (["reclaim", str(new), "k", "--by", ""], "argument --by: by must"),
        (["history", str(new), "k", "--limit", "-1"], "argument --limit: limit must be >= 0"),
    ):
        out = run(*args)
        assert out.returncode == 2 and out.stdout == "", args
        assert says in out.stderr.splitlines()[-1], out.stderr
        assert not new.exists(), args


def test_a_value_with_a_duplicate_object_key_is_refused_naming_it(tmp_path: Path) -> None:
    d = str(tmp_path / "s")
    ok("claim", d, "k", "--owner", "o", "--ttl", "120")
    commit = ("commit", d, "k", "--owner", "o", "--epoch", "1")
    out = run(*commit, "--value", '{"a":1,"a":2}')
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.splitlines()
    assert "InvalidArgument" not in line and "'a' more than once" in line
    nested = '{"x": [{"b": 1, "c": 2, "b": 1}]}'  # the same value twice too: still refused
    err = json.loads(run(*commit, "--value", "-", "--json", stdin=nested).stdout)
    assert err["error"] == "InvalidArgumentError" and "'b' more than once" in err["message"]
    store = fs.open_store(d)
    assert store.get("k") is None  # nothing was written
    store.close()
    ok(*commit, "--value", '{"a": {"a": 1}, "b": [{"a": 2}]}')  # one key per object: fine
