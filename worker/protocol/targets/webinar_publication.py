"""A Teams webinar's publication: meetreg's third target, for the signed-in organizer.

A row names a webinar (its id only). The webinar is read first (`GET .../webinars/{id}`):
published already, the row is done; a draft is published with `POST .../webinars/{id}/
publish` (no body, 204); a canceled webinar cannot be published, and one Graph does not
know cannot either: both rows fail without a POST. Graph allows the publication with a
delegated token only, and to the webinar's organizer only (403 to anyone else).

Publishing cannot be undone: a publication batch has no undo batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from worker.errors import GraphError, GraphPermanent
from worker.graph.webinars import Published, Webinar
from worker.models import RowRecord
from worker.protocol.target import GO, Caller, Found, Place, Removal, Verdict

CONFIRM_STATUSES = (400, 409)  # a publish refused: a look tells "published already"
PUBLISHED = "published"


class PublicationApi(Protocol):
    """The Graph calls of this target; `worker.graph.webinars.WebinarClient` is one."""

    def start_webinar(self, webinar_id: str) -> Callable[[], Webinar | None]: ...

    def start_publish(self, webinar_id: str) -> Callable[[], Published]: ...


def resource_key(webinar_id: str) -> str:
    """The store's name for one webinar's publication (apart from its registrants')."""
    return f"webinar-publication\x1f{webinar_id}"


@dataclass(slots=True)
class WebinarPublication:
    """The Target (worker.protocol.target) for webinar publications."""

    api: PublicationApi
    confirm_statuses: tuple[int, ...] = CONFIRM_STATUSES
    # What Graph does with a publish of a published webinar is not documented: look first.
    always_looks_first: bool = True

    def place(self, row: RowRecord) -> Place:
        return Place(row.webinar_id, "", resource_key(row.webinar_id))

    def locate(self, row: RowRecord, caller: Caller) -> Place:
        return self.place(row)

    def verdict(self, batch_id: str, row: RowRecord) -> Verdict:
        return GO  # the look reads the webinar itself: nothing to judge apart

    def judge(self, batch_id: str, row: RowRecord, caller: Caller) -> Verdict:
        return GO

    def look(self, place: Place, row: RowRecord) -> Published | None:
        return self.start_look(place, row)()

    def start_look(self, place: Place, row: RowRecord) -> Callable[[], Published | None]:
        """The webinar published: found; a draft: None (to publish); canceled or not
        there: a permanent failure, no POST."""
        answer = self.api.start_webinar(place.owner)

        def looked() -> Published | None:
            webinar = answer()
            if webinar is None:
                raise GraphPermanent(f"webinar {place.owner} not found", status=404)
            if webinar.status == "canceled":
                raise GraphPermanent(
                    "the webinar was canceled",
                    status=webinar.http_status,
                    request_id=webinar.request_id,
                )
            if webinar.status == PUBLISHED:
                return Published(webinar.id, PUBLISHED, webinar.http_status, webinar.request_id)
            return None  # a draft (or a status Graph adds later): the publish decides

        return looked

    def create(self, place: Place, row: RowRecord) -> Published:
        return self.start_create(place, row)()

    def start_create(self, place: Place, row: RowRecord) -> Callable[[], Published]:
        return self.api.start_publish(place.owner)

    def undo(self, place: Place, found: Found) -> Removal:
        # `meetreg disable` refuses a publication batch before any row is made.
        raise GraphPermanent("a published webinar cannot be unpublished")

    def is_ours(self, found: Found, row: RowRecord) -> bool:
        return True  # one webinar, one publication: after our POST, it is that POST's doing

    def mismatch(self, found: Found) -> str:
        return "" if found.kind == PUBLISHED else f"Graph lists the webinar as {found.kind}"

    def retirement(self, error: GraphError) -> str | None:
        return None  # the webinar API is today's; its refusals are each webinar's own

    def replaced(self, found: Found, row: RowRecord) -> str:
        return ""
