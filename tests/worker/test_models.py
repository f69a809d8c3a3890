"""A row's record as the store keeps it, and the digest that says whether a source enqueued
again under a batch id holds the same rows."""

from __future__ import annotations

from worker.models import RowRecord, RowsDigest, RowState


def record(**fields: object) -> RowRecord:
    values: dict[str, object] = {
        "seq": 1,
        "line": 2,
        "user_id": "organizer@contoso.example",
        "meeting_id": "MSo1N2Y5",
        "allowed_registrant": "everyone",
        "status": RowState.QUEUED,
    }
    return RowRecord(**{**values, **fields})  # type: ignore[arg-type]


def digest(*rows: RowRecord) -> str:
    rows_digest = RowsDigest()
    for row in rows:
        rows_digest.add(row)
    return rows_digest.hexdigest()


def test_a_record_reads_back_from_its_json() -> None:
    row = record(status=RowState.CREATED, http_status=201, extra={"note": "x"})
    assert RowRecord.from_json_dict(row.to_json_dict()) == row


def test_an_empty_http_status_and_unknown_fields_read_back_as_none_and_nothing() -> None:
    data = {**record().to_json_dict(), "http_status": "", "added_later": "ignored"}
    assert RowRecord.from_json_dict(data) == record()


def test_only_final_states_are_final() -> None:
    assert RowState.CREATED.is_final and RowState.FAILED.is_final
    assert not RowState.QUEUED.is_final and not RowState.RETRYING.is_final


def test_the_same_rows_make_the_same_digest_whatever_their_state() -> None:
    a, b = record(), record(seq=2, meeting_id="other")
    assert digest(a, b) == digest(record(status=RowState.CREATED), b)


def test_other_rows_or_another_order_make_another_digest() -> None:
    a, b = record(), record(seq=2, meeting_id="other")
    assert digest(a, b) != digest(b, a)
    # Each value's length goes first, so text that looks like the framing cannot make two
    # different rows read the same: without the user's length both would be "x3:1:y".
    assert digest(record(user_id="x", meeting_id="1:y")) != digest(
        record(user_id="x3:", meeting_id="y")
    )
