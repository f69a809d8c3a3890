"""Reading a JSON body that came over the network: anything but JSON is one clear refusal."""

from __future__ import annotations

import json
from typing import Any

from worker.errors import InputError


def load_json(body: bytes) -> Any:
    """The body's JSON value. Raises InputError when it is not UTF-8 JSON, and when it is
    nested too deeply to read (json raises RecursionError there, not ValueError)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the body is not JSON (UTF-8)") from None
    except RecursionError:
        raise InputError("the body is nested too deeply") from None
