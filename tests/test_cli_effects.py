"""``fencedstate effects DIR``: the ledger as a table and as JSON, in-doubt effects first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.cli.main import main
from fencedstate.outcomes import OutcomeLedger


def _ledger(path: Path) -> None:
    ledger = fs.EffectLedger(fs.open_store(str(path)))
    ledger.run("mail/ann-hi", lambda t: {"message_id": 7})
    with pytest.raises(ZeroDivisionError):
        ledger.run("charge/9", lambda t: 1 / 0)

    def declined(t: fs.EffectToken) -> None:
        raise fs.EffectNotApplied("card declined")

    with pytest.raises(fs.EffectNotApplied):
        ledger.run("charge/10", declined)


def test_table_lists_in_doubt_first_with_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ledger(tmp_path / "s")
    assert main(["effects", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "effect", "state", "attempt", "owner", "started", "lease", "probes", "result/reason"
    ]  # fmt: skip
    assert [ln.split()[:3] for ln in out[2:5]] == [
        ["charge/9", "in_doubt", "1"],
        ["charge/10", "not_applied", "1"],
        ["mail/ann-hi", "completed", "1"],
    ]
    assert (
        "ZeroDivisionError" in out[2] and "card declined" in out[3] and '"message_id": 7' in out[4]
    )
    assert out[-1].startswith("1 in doubt: they may have happened; settle each with a probe")


def test_json_and_state_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _ledger(tmp_path / "s")
    assert main(["effects", str(tmp_path / "s"), "--json", "--state", "completed"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["effect_id"], r["state"], r["result"]) for r in data] == [
        ("mail/ann-hi", "completed", {"message_id": 7})
    ]


def test_a_started_effect_whose_lease_ran_out_shows_in_doubt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = fs.open_store(str(tmp_path / "s"))
    # what a starter killed inside fn leaves: "started", lease expired
    OutcomeLedger(store, prefix="effects/").begin("deploy/1", "deploy", writer="w")
    assert main(["effects", str(tmp_path / "s"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["state"], row["shown_state"], row["lease_left"]) == ("started", "in_doubt", 0.0)


def test_empty_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fs.open_store(str(tmp_path / "s"))
    assert main(["effects", str(tmp_path / "s")]) == 0
    assert "no effects under 'effects/'" in capsys.readouterr().out
    assert main(["effects", str(tmp_path / "s"), "--prefix", "nope"]) == 2
    assert capsys.readouterr().err.startswith("fencedstate: error: prefix must be")
    assert main(["effects", str(tmp_path / "s"), "--prefix", "../"]) == 2
    err = capsys.readouterr().err  # names the prefix as typed, not the probe key '../x'
    assert err.startswith("fencedstate: error: invalid key '../': the ledger's prefix: segment")
    # read-only: a path that is not a store is an error, and nothing is created there
    assert main(["effects", str(tmp_path / "typo"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "NotAStoreError"
    assert not (tmp_path / "typo").exists()


def test_a_value_the_ledger_did_not_write_is_listed_as_foreign_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One stray put under the prefix used to fail the whole listing with CorruptStateError and
    the advice to run `check` (which finds nothing): now it is a row, and the rest is listed."""
    _ledger(tmp_path / "s")
    with fs.open_store(tmp_path / "s") as store:
        store.put("effects/notes", 1, expected_version=0)
        ledger = fs.EffectLedger(store)
        with pytest.raises(fs.ForeignValueError) as err:
            ledger.run("notes", lambda t: "never runs")
    assert isinstance(err.value, fs.CorruptStateError)  # what callers caught before
    assert "effects/notes holds a value that is not an effect record" in str(err.value)
    assert "fencedstate check" not in err.value.advice and "prefix" in err.value.advice
    assert main(["effects", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    rows = {ln.split()[0]: ln.split()[1] for ln in out.splitlines()[2:] if ln.strip()[:1].isalpha()}
    assert rows["notes"] == "foreign" and rows["mail/ann-hi"] == "completed"
    assert "1 foreign: a value under 'effects/' that the ledger did not write" in out
    assert main(["effects", str(tmp_path / "s"), "--json", "--state", "foreign"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["effect_id"] == "notes" and row["attempt"] is None
    assert row["reason"].startswith("not an effect record")


def test_a_value_shaped_like_a_record_with_wrong_field_types_is_foreign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value with every record field but the wrong types crashed the listing with a raw
    TypeError, replayed as completed (run returned None) or raised TypeError from the lease:
    now each is listed as foreign and the ledger's calls raise ForeignValueError."""
    _ledger(tmp_path / "s")
    base = {"effect_id": "x", "attempt": 1, "owner": "w", "started_at": 1.0}
    weird = {
        "weird": {"effect_id": "weird", "state": "completed", "attempt": "one", "owner": 5,
                  "started_at": "x"},
        "soon": {**base, "state": "started", "boot": "b", "deadline": "soon", "expires_at": 9.0},
        "bogus": {**base, "state": "finished"},
        "flag": {**base, "state": "completed", "attempt": True},
        "nulls": {**base, "state": "in_doubt", "probes": None},
        "moved": {**base, "state": "completed"},  # effect_id "x": copied from another key
    }  # fmt: skip
    calls: list[str] = []
    with fs.open_store(tmp_path / "s") as store:
        for name, value in weird.items():
            store.put(f"effects/{name}", value, expected_version=0)
        ledger = fs.EffectLedger(store)
        for name in weird:
            with pytest.raises(fs.ForeignValueError, match="not an effect record"):
                ledger.run(name, lambda t: calls.append(t.id), probe=lambda t: "seen")
            with pytest.raises(fs.ForeignValueError):
                ledger.get(name)
        assert calls == [] and [store.get(f"effects/{n}").version for n in weird] == [1] * 6  # type: ignore[union-attr]
        # a record of sound types whose time the platform cannot show is listed, not fatal
        store.put(
            "effects/far",
            {**base, "effect_id": "far", "state": "completed", "started_at": 1e300},
            expected_version=0,
        )
    with pytest.raises(fs.ForeignValueError, match=r"\(attempt is a str 'one', not an int\)"):
        fs.effects.EffectRecord.from_value("effects/weird", weird["weird"])
    with pytest.raises(fs.ForeignValueError, match=r"state is 'finished', not one of started"):
        fs.effects.EffectRecord.from_value("effects/bogus", weird["bogus"])
    assert main(["effects", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    rows = {ln.split()[0]: ln.split()[1] for ln in out.splitlines()[2:] if ln.strip()[:1].isalpha()}
    assert {n: rows[n] for n in weird} == dict.fromkeys(weird, "foreign")
    assert rows["mail/ann-hi"] == rows["far"] == "completed" and "6 foreign: a value under" in out
    assert "1e+300" in out
    assert main(["effects", str(tmp_path / "s"), "--json", "--state", "foreign"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["effect_id"] for r in listed) == sorted(weird)
    assert all(r["attempt"] is None and r["reason"].startswith("not an effect record (")
               for r in listed)  # fmt: skip
