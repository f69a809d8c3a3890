"""Every final state, reached for the right reason, with the right http_status and error.

The real protocol, the real Graph client and MSAL, the simulator over HTTPS, real Redis.
"""

from __future__ import annotations

import dataclasses

import pytest
from pipeline_helpers import (
    HEADER,
    NO_POLICY_USER,
    ORGANIZER,
    UPN,
    Batch,
    Work,
    only_row,
    posts,
    rows,
)

from jobs.enqueue import DEDUP_PAGE, requeue_failed
from worker import keys
from worker.models import RowState
from worker.runtime import Runtime
from worker.simulator import SimulatorServer


def test_new_registration_is_created_with_graphs_id_and_request_id(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    status = work(batch(f"{HEADER}{ORGANIZER},m-1,organization\n"))
    row = only_row(runtime, status.batch_id)
    registration = sim.state.registration("m-1")
    assert registration is not None
    assert (row.status, row.http_status, row.error) == (RowState.CREATED, 201, "")
    assert row.registration_id == registration["id"]
    assert registration["allowedRegistrant"] == "organization"
    assert row.request_id and row.attempts == 2  # the GET that found nothing, then the POST
    assert status.finished and status.counts["created"] == 1


def test_meeting_with_a_registration_is_already_enabled_without_a_post(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    existing = sim.state.add_meeting(ORGANIZER, "m-1", existing="external")
    assert existing
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.ALREADY_ENABLED, 200)
    assert row.registration_id == sim.state.registration("m-1")["id"]  # type: ignore[index]
    assert posts(sim) == 0


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep", "alone"])
@pytest.mark.parametrize("conflict", ["409", "400"])
def test_conflicting_post_is_confirmed_by_get_as_already_enabled(
    conflict: str, lockstep: bool, sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    runtime.deps.policy = dataclasses.replace(
        runtime.deps.policy, get_before_post=False, in_waves=lockstep
    )
    sim.state.set_conflict(conflict)  # type: ignore[arg-type]
    sim.state.add_meeting(ORGANIZER, "m-1", existing="external")
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.ALREADY_ENABLED, int(conflict))
    assert sum(sim.state.creations.values()) == 0


def test_microsoft_hosted_registration_counts_as_enabled_and_says_so(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1", existing="microsoft")
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert row.status is RowState.ALREADY_ENABLED
    assert "meetingRegistration" in row.error
    assert posts(sim) == 0


def test_organizer_without_access_policy_fails_with_403_and_graphs_words(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(NO_POLICY_USER, "m-1")
    row = only_row(runtime, work(batch(f"{HEADER}{NO_POLICY_USER},m-1,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.FAILED, 403)
    assert row.error.startswith("Forbidden: No Application Access Policy")
    assert row.request_id


def test_unknown_meeting_fails_with_404_at_once(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},no-such-meeting,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.FAILED, 404)
    assert row.error.startswith("NotFound:")
    assert posts(sim) == 1  # one POST, no retries


def test_bad_request_without_a_registration_behind_it_fails_with_400(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    sim.state.script("m-1", [{"status": 404}, {"status": 400}])  # GET: none; POST: 400
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-1,\n")).batch_id)
    assert (row.status, row.http_status) == (RowState.FAILED, 400)
    assert sim.state.registration("m-1") is None


def test_invalid_and_duplicate_rows_are_final_without_a_call(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    status = work(
        batch(
            f"{HEADER}{ORGANIZER},m-1,\nnot a user,m-2,\n{ORGANIZER},m-1,\n{ORGANIZER},m-3,anyone\n"
        )
    )
    first, invalid_user, duplicate, invalid_registrant = rows(runtime, status.batch_id)
    assert first.status is RowState.CREATED
    assert (invalid_user.status, invalid_user.line) == (RowState.INVALID, 3)
    assert "user_id" in invalid_user.error
    assert (duplicate.status, duplicate.error) == (RowState.SKIPPED, "duplicate of line 2")
    assert (
        invalid_registrant.status is RowState.INVALID
        and "allowed_registrant" in invalid_registrant.error
    )
    assert posts(sim) == 1


def test_a_duplicate_pages_after_its_first_row_is_still_skipped(
    batch: Batch, runtime: Runtime
) -> None:
    # Duplicates are looked up in Redis a page at a time: the first row of a pair may be
    # in an earlier page, or in the same one.
    meetings = [f"m-{n}" for n in range(DEDUP_PAGE + 5)] + ["m-0", "m-1000", "m-1000"]
    batch_id = batch(HEADER + "".join(f"{ORGANIZER},{meeting},\n" for meeting in meetings))
    skipped = [
        (row.line, row.error) for row in rows(runtime, batch_id) if row.status is RowState.SKIPPED
    ]
    last = DEDUP_PAGE + 6  # the last distinct row's line (the header is line 1)
    assert skipped == [
        (last + 1, "duplicate of line 2"),
        (last + 2, f"duplicate of line {1000 + 2}"),
        (last + 3, f"duplicate of line {1000 + 2}"),
    ]
    assert runtime.store.batch_status(batch_id).counts["skipped"] == 3
    assert not runtime.store.redis.exists(keys.first_lines(batch_id))  # nothing left behind


def test_meeting_done_by_an_earlier_batch_is_skipped_without_a_call(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    csv_text = f"{HEADER}{ORGANIZER},m-1,\n"
    first = only_row(runtime, work(batch(csv_text)).batch_id)
    requests_before = len(sim.state.requests)
    again = only_row(runtime, work(batch(csv_text)).batch_id)
    assert first.status is RowState.CREATED
    assert again.status is RowState.SKIPPED
    assert again.registration_id == first.registration_id
    assert len(sim.state.requests) == requests_before  # not even a GET


def test_upn_and_join_link_are_resolved_to_ids(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    meeting = sim.state.add_meeting(ORGANIZER, "m-1")
    status = work(batch(f"user_id,join_web_url\n{UPN},{meeting['joinWebUrl']}\n"))
    row = only_row(runtime, status.batch_id)
    assert row.status is RowState.CREATED
    assert row.meeting_id == "m-1"
    assert sim.state.registration("m-1") is not None


def test_expired_token_is_refreshed_and_the_row_goes_through(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    sim.state.add_meeting(ORGANIZER, "m-2")
    work(batch(f"{HEADER}{ORGANIZER},m-1,\n"))
    issued = sim.state.stats()["tokens_issued"]
    sim.state.expire_tokens()
    row = only_row(runtime, work(batch(f"{HEADER}{ORGANIZER},m-2,\n")).batch_id)
    assert row.status is RowState.CREATED
    assert sim.state.stats()["tokens_issued"] == issued + 1


def test_retry_sends_failed_rows_again_and_leaves_the_others(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime, queued: list
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-ok")
    sim.state.add_meeting(NO_POLICY_USER, "m-forbidden")
    batch_id = batch(f"{HEADER}{ORGANIZER},m-ok,\n{NO_POLICY_USER},m-forbidden,\n")
    assert work(batch_id).counts["failed"] == 1
    sim.state.add_user(NO_POLICY_USER, access_policy=True)  # the admin granted the policy

    assert requeue_failed(runtime.store, batch_id, publish=queued.extend) == 1
    status = work(batch_id)
    ok, forbidden = rows(runtime, batch_id)
    assert (status.counts["created"], status.counts["failed"]) == (2, 0)
    assert forbidden.status is RowState.CREATED and forbidden.error == ""
    assert ok.attempts == 2  # not sent again
