"""Every Lua file compiles in a real Redis, every one is part of some script, and the
final states the row functions know are the ones worker/models.py has."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import redis

import jobs.nightly.job as nightly_job
import worker.ratelimit.limiter as limiter
import worker.store.batches as batches
import worker.store.chunks as chunks
import worker.store.leases as leases
import worker.store.meetings as meetings
import worker.store.rows as rows
from worker.models import RowState
from worker.redis.lua import LUA_FOLDER, LuaFile, files_read

ROOT = Path(__file__).resolve().parents[3]
# Each module that puts scripts together, and the names of the scripts it runs.
SCRIPTS = {
    batches: ["_FIRST_LINES"],
    rows: ["_SET_ROW"],
    meetings: ["_CLAIM", "_RECORD_POST", "_FINISH"],
    leases: ["_RENEW_LEASES", "_RELEASE_LEASES"],
    chunks: ["_HOLD_CHUNKS", "_CLAIM_EXPIRED"],
    limiter: ["_RESERVE", "_THROTTLED", "_RATE_NOW", "_PAUSE_LEFT"],
    nightly_job: ["_EXTEND", "_RELEASE"],
}


def lua_files_on_disk() -> dict[LuaFile, Path]:
    found = {}
    for top in ("worker", "jobs"):
        for path in (ROOT / top).rglob(f"{LUA_FOLDER}/*.lua"):
            package = ".".join(path.parent.parent.relative_to(ROOT).parts)
            found[LuaFile(package, path.stem)] = path
    return found


def test_every_lua_file_compiles(redis_client: redis.Redis) -> None:
    on_disk = lua_files_on_disk()
    assert len(on_disk) >= 20  # the walk found them
    for path in sorted(on_disk.values()):
        # SCRIPT LOAD compiles without running: a syntax error is refused here. Read from
        # the disk, not through the loader, which notes what it read for the next test.
        assert redis_client.script_load(path.read_text(encoding="utf-8")), path


def test_every_script_compiles(redis_client: redis.Redis) -> None:
    for module, names in SCRIPTS.items():
        for name in names:
            assert redis_client.script_load(getattr(module, name)), (module.__name__, name)


def test_every_lua_file_is_part_of_a_script() -> None:
    for module in SCRIPTS:
        importlib.import_module(module.__name__)  # its scripts are put together at import
    assert set(lua_files_on_disk()) <= files_read()


def test_the_row_functions_know_the_final_states_of_the_models() -> None:
    text = LuaFile("worker.store", "final_states").text()
    names = re.findall(r"'(\w+)'", text.split("local FINAL_NAMES", 1)[1])
    assert names == [str(state) for state in RowState if state.is_final]
