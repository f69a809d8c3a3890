"""A webinar publication request: a webinar id, checked as every id is."""

from __future__ import annotations

from worker.publications import PublicationRequest, validate_publication
from worker.validation import InvalidRow, ValidRow

WEBINAR = "8d62b9a1-1c2d-4e5f-8a9b-0c1d2e3f4a5b@6e5d4c3b-2a19-4807-9f6e-5d4c3b2a1908"


def test_a_webinar_id_makes_a_request_trimmed() -> None:
    made = validate_publication(f"  {WEBINAR} ", 3)
    assert made == ValidRow(3, PublicationRequest(WEBINAR))
    assert made.request.dedup_key == PublicationRequest(WEBINAR).dedup_key


def test_an_empty_or_unusable_webinar_id_is_an_invalid_row_saying_why() -> None:
    empty = validate_publication("  ", 2)
    dots = validate_publication("..", 3)
    not_text = validate_publication(7, 4)
    assert isinstance(empty, InvalidRow) and empty.error == "webinar_id is required"
    assert isinstance(dots, InvalidRow) and dots.webinar_id == ".." and "webinar_id" in dots.error
    assert isinstance(not_text, InvalidRow) and not_text.error == "webinar_id must be a string"
