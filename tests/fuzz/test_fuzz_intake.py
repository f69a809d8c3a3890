"""Hostile JSON intake bodies: any bytes, any JSON, deep nesting, odd types.

Each body is a clear refusal (InputError, RejectedItems naming every bad item) or valid
rows; nothing else escapes.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.sources.intake import RejectedItems, read_requests
from worker.errors import InputError
from worker.validation import ValidRow

GUID = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [GUID, "m-1", "everyone", "https://teams.microsoft.com/l/x", "../..", "%2e%2e"]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "user_id",
                    "userId",
                    "meeting_id",
                    "meetingId",
                    "join_web_url",
                    "allowed_registrant",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


def check(body: bytes) -> None:
    try:
        rows = read_requests(body)
    except RejectedItems as exc:
        assert exc.errors and all(error.error for error in exc.errors)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert rows and all(isinstance(row, ValidRow) for row in rows)


@settings(max_examples=400, deadline=2000)
@given(body=st.binary(max_size=500))
def test_any_bytes_are_refused_or_read(body: bytes) -> None:
    check(body)


@settings(max_examples=400, deadline=2000)
@given(value=JSON)
def test_any_json_is_refused_or_read(value: object) -> None:
    check(json.dumps(value).encode())


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_refused_not_a_crash(depth: int) -> None:
    with pytest.raises(InputError):
        read_requests(b"[" * depth + b"]" * depth)
