"""The webinar publication target: what a look makes of each status of the webinar, what a
create sends, and its words (its calls run against the simulator in tests/pipeline)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from worker.errors import GraphPermanent
from worker.graph.webinars import Published, Webinar
from worker.models import RowRecord, RowState
from worker.protocol.target import GO
from worker.protocol.targets.webinar_publication import WebinarPublication, resource_key
from worker.protocol.targets.webinar_registration import resource_key as registrant_key

WEBINAR = "8d62b9a1-1c2d-4e5f-8a9b-0c1d2e3f4a5b@6e5d4c3b-2a19-4807-9f6e-5d4c3b2a1908"


class Api:
    """The publication's calls, answered from data; counts the POSTs."""

    def __init__(self, status: str | None) -> None:
        self.status = status
        self.published: list[str] = []

    def start_webinar(self, webinar_id: str) -> Callable[[], Webinar | None]:
        if self.status is None:
            return lambda: None
        return lambda: Webinar(webinar_id, str(self.status), "everyone", (), 200, "rid-get")

    def start_publish(self, webinar_id: str) -> Callable[[], Published]:
        self.published.append(webinar_id)
        return lambda: Published(webinar_id, "published", 204, "rid-post")


def row() -> RowRecord:
    return RowRecord(1, 2, "", "", "", RowState.QUEUED, webinar_id=WEBINAR)


@pytest.mark.parametrize(
    ("status", "looked"),
    [
        ("published", "found"),
        ("draft", "absent"),
        ("", "absent"),  # a status Graph does not give: the publish decides
        ("canceled", "the webinar was canceled"),
        (None, f"webinar {WEBINAR} not found"),
    ],
)
def test_a_look_tells_published_from_draft_and_fails_canceled_or_unknown_webinars(
    status: str | None, looked: str
) -> None:
    target = WebinarPublication(Api(status))
    place = target.place(row())
    if looked in ("found", "absent"):
        found = target.look(place, row())
        assert (found is not None) == (looked == "found")
        if found is not None:
            assert (found.id, found.kind, found.status) == (WEBINAR, "published", 200)
            assert target.mismatch(found) == ""
        return
    with pytest.raises(GraphPermanent) as failed:
        target.look(place, row())
    assert failed.value.message == looked


def test_a_create_posts_the_publish_and_every_row_goes_ahead_unjudged() -> None:
    api = Api("draft")
    target = WebinarPublication(api)
    place = target.place(row())
    assert target.verdict("b1", row()) is GO
    made = target.create(place, row())
    assert api.published == [WEBINAR]
    assert (made.kind, made.status, made.request_id) == ("published", 204, "rid-post")
    assert target.is_ours(made, row())  # after our POST, the publication is ours
    assert target.always_looks_first and 400 in target.confirm_statuses


def test_a_webinars_publication_is_kept_apart_from_its_registrants_in_the_store() -> None:
    target = WebinarPublication(Api("draft"))
    assert target.place(row()).key == resource_key(WEBINAR)
    assert resource_key(WEBINAR) != registrant_key(WEBINAR, "")
    assert target.place(row()).owner == WEBINAR


def test_a_publication_has_no_undo() -> None:
    target = WebinarPublication(Api("published"))
    with pytest.raises(GraphPermanent, match="cannot be unpublished"):
        target.undo(target.place(row()), Published(WEBINAR, "published", 200, None))
