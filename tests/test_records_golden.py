"""Every backend's wire format decodes the bytes older releases wrote, and writes them again
byte for byte (tests/data/records_golden.json: the file log line, the etcd and Redis record
text, the PostgreSQL row and the copy checksum, as written before the record codec was shared).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import fencedstate as fs
from fencedstate.copy import key_checksum
from fencedstate.etcd.store import _decode as etcd_decode
from fencedstate.file import keylog
from fencedstate.postgres.store import _COLS, _row_state, _state_params
from fencedstate.records import (
    RECORD_FIELDS,
    State,
    decode_line,
    encode_state,
    encode_tagged,
    from_record,
    to_record,
)
from fencedstate.redis import codec

GOLDEN = json.loads((Path(__file__).parent / "data" / "records_golden.json").read_text())
CASES: list[dict[str, Any]] = GOLDEN["states"]


def _line_state(case: dict[str, Any]) -> State:
    return decode_line(case["file_line"].encode().rstrip(b"\n"), "golden")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seq{c['seq']}")
def test_every_wire_format_reads_the_old_bytes_and_writes_them_again(case: dict[str, Any]) -> None:
    state = _line_state(case)
    assert encode_state(state) == case["file_line"].encode()
    # the line frames as the hot read path expects (keylog checks the head without decoding)
    assert keylog._FRAME.fullmatch(case["file_line"].encode().rstrip(b"\n"))

    seq, cid = case["seq"], case["commit_id"]
    for blob, decode in (
        (case["etcd_record"], etcd_decode),
        (case["redis_record"], codec.decode),
    ):
        got, got_seq, got_cid = decode(state.key, blob.encode())
        assert (got_seq, got_cid) == (seq, cid)
        assert to_record(got) == to_record(state) and got.value == state.value
    assert encode_tagged(state, seq, cid) == case["etcd_record"].encode()
    assert codec.encode(state, seq, cid) == case["redis_record"].encode()

    row = list(case["postgres_row"])
    row[_COLS.index("commit_id")] = uuid.UUID(row[_COLS.index("commit_id")])
    from_row = _row_state(row)
    assert to_record(from_row) == to_record(state) and from_row.value == state.value
    assert list(_state_params(from_row, seq, uuid.UUID(cid))) == row


def test_the_copy_checksum_is_unchanged() -> None:
    assert key_checksum([_line_state(c) for c in CASES]) == GOLDEN["checksum"]


def test_a_record_lists_every_field_of_state_once() -> None:
    names = [f for f in State.__dataclass_fields__ if f != "value_json"]
    assert list(RECORD_FIELDS) == names
    state = _line_state(CASES[0])
    assert list(to_record(state)) == names
    back = from_record(to_record(state), "here")
    assert to_record(back) == to_record(state) and back.value == state.value


def test_a_record_that_is_not_one_is_a_typed_error() -> None:
    rec = to_record(_line_state(CASES[0]))
    for broken in (
        {**rec, "version": "x"},
        {**rec, "value": 3},
        {k: rec[k] for k in rec if k != "op"},
    ):
        with pytest.raises(fs.CorruptStateError):
            from_record(broken, "here")
    with pytest.raises(fs.CorruptStateError):
        codec.decode("another/key", CASES[0]["redis_record"].encode())
