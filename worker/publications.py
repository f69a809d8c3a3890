"""What makes a webinar publication request valid: `PublicationRequest` and
`validate_publication`.

A publication request asks Graph to publish one of the signed-in organizer's draft Teams
webinars (`POST /solutions/virtualEvents/webinars/{id}/publish`). Its one field is the
webinar's id; whether the webinar is a draft, published or canceled, and whether the
signed-in user organizes it, is Graph's to say (worker.protocol.targets.webinar_publication).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.validation import MAX_REPORTED_CHARS, InvalidRow, ValidRow, check_id

FIELDS = ("webinar_id",)


@dataclass(frozen=True, slots=True)
class PublicationRequest:
    """One webinar to publish."""

    webinar_id: str

    @property
    def dedup_key(self) -> tuple[str, str]:
        """What makes two rows the same request: the webinar."""
        return ("publish", self.webinar_id)


def validate_publication(webinar_id: object, line: int) -> ValidRow | InvalidRow:
    """A row naming `webinar_id` as a `ValidRow` holding a `PublicationRequest`, or an
    `InvalidRow` saying what is wrong. Never raises for bad values."""
    if not isinstance(webinar_id, str):
        return InvalidRow(line, "", "", "", "webinar_id must be a string")
    value = webinar_id.strip()
    problem = "webinar_id is required" if not value else ""
    if value:
        try:
            check_id(value, "webinar_id")
        except ValueError as exc:
            problem = str(exc)
    if problem:
        return InvalidRow(line, "", "", "", problem, webinar_id=value[:MAX_REPORTED_CHARS])
    return ValidRow(line, PublicationRequest(value))
