"""worker.simulator.directory: Graph's rules for users, meetings and registrations, as
plain data (the routes' HTTP tests are in test_graph_routes.py)."""

from __future__ import annotations

import pytest
from sim_helpers import EXTERNAL, MEETING, ORGANIZER, ORGANIZER_UPN, OTHER_USER

from worker.simulator.directory import Directory
from worker.simulator.errors import GraphFailure

TENANT = "contoso-tenant"


@pytest.fixture
def directory() -> Directory:
    seeded = Directory(TENANT)
    seeded.add_user(ORGANIZER, upn=ORGANIZER_UPN)
    seeded.add_meeting(ORGANIZER, MEETING)
    return seeded


def failure_of(call, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(GraphFailure) as failure:
        call(*args, **kwargs)
    return failure.value.status, failure.value.code


def test_a_user_is_found_by_object_id_or_upn_in_any_case(directory):
    assert directory.find_user(ORGANIZER.upper()).object_id == ORGANIZER
    assert directory.find_user(ORGANIZER_UPN.upper()).object_id == ORGANIZER
    assert failure_of(directory.find_user, "nobody@contoso.example") == (
        404,
        "Request_ResourceNotFound",
    )


def test_replacing_a_user_forgets_its_old_upn(directory):
    directory.add_user(ORGANIZER, upn="ada.new@contoso.example")

    assert directory.find_user("ada.new@contoso.example").object_id == ORGANIZER
    assert failure_of(directory.find_user, ORGANIZER_UPN)[0] == 404


def test_a_meeting_of_an_unknown_organizer_adds_the_organizer_with_the_policy(directory):
    directory.add_meeting(OTHER_USER, "m-2")

    assert directory.users[OTHER_USER].access_policy
    assert directory.get_meeting(OTHER_USER, "m-2").organizer_id == OTHER_USER


@pytest.mark.parametrize(
    ("conflict", "second"),
    [("409", (409, "Conflict")), ("400", (400, "BadRequest")), ("replace", None)],
)
def test_a_second_registration_follows_the_conflict_mode(directory, conflict, second):
    first = directory.register(ORGANIZER, MEETING, EXTERNAL, conflict)

    if second is None:
        replaced = directory.register(ORGANIZER, MEETING, EXTERNAL, conflict)
        assert replaced.registration_id != first.registration_id
        assert directory.creations[MEETING] == 2
    else:
        assert failure_of(directory.register, ORGANIZER, MEETING, EXTERNAL, conflict) == second
        assert directory.creations[MEETING] == 1


def test_a_seeded_registration_is_not_a_creation_and_replacing_the_meeting_clears_it(directory):
    directory.add_meeting(ORGANIZER, MEETING, existing="microsoft")

    assert directory.get_registration(ORGANIZER, MEETING).kind == "microsoft"
    assert directory.creations[MEETING] == 0
    directory.add_meeting(ORGANIZER, MEETING)
    assert failure_of(directory.get_registration, ORGANIZER, MEETING) == (404, "NotFound")


def test_without_the_access_policy_or_as_another_user_it_is_403(directory):
    directory.add_user(OTHER_USER, access_policy=False)
    directory.add_meeting(OTHER_USER, "theirs")

    assert failure_of(directory.get_meeting, OTHER_USER, "theirs") == (403, "Forbidden")
    assert failure_of(directory.get_meeting, ORGANIZER, MEETING, acting=OTHER_USER) == (
        403,
        "Forbidden",
    )
    assert directory.get_meeting(ORGANIZER, MEETING, acting=ORGANIZER).meeting_id == MEETING


def test_a_join_link_finds_its_meeting_only_for_its_organizer(directory):
    url = directory.meetings[MEETING].join_web_url
    directory.add_user(OTHER_USER)

    assert [m.meeting_id for m in directory.find_meetings(ORGANIZER, url)] == [MEETING]
    assert directory.find_meetings(ORGANIZER, "https://teams.example/unknown") == []
    assert failure_of(directory.find_meetings, OTHER_USER, url) == (403, "Forbidden")


def test_delete_removes_the_registration_once(directory):
    directory.register(ORGANIZER, MEETING, EXTERNAL, "409")

    directory.delete_registration(ORGANIZER, MEETING)

    assert failure_of(directory.delete_registration, ORGANIZER, MEETING) == (404, "NotFound")
