"""A JSON body from the network: its value, or one clear refusal, whatever the bytes."""

from __future__ import annotations

import pytest

from jobs.http.json_body import load_json
from worker.errors import InputError


def test_a_json_body_is_its_value() -> None:
    assert load_json('{"rows": [1, "é"]}'.encode()) == {"rows": [1, "é"]}


@pytest.mark.parametrize("body", [b"", b"not json", b"{'single': 1}", b"\xff\xfe{}"])
def test_anything_but_utf8_json_is_refused_in_one_line(body: bytes) -> None:
    with pytest.raises(InputError, match="the body is not JSON"):
        load_json(body)


def test_a_body_nested_too_deeply_is_refused_not_a_crash() -> None:
    with pytest.raises(InputError, match="nested too deeply"):
        load_json(b"[" * 100_000 + b"]" * 100_000)
