"""Lua scripts, read from the `.lua` files beside the code that runs them.

Each file lives in the `lua/` folder of its package (worker/store/lua/claim.lua) and is
read once per process through importlib.resources, so it is found in a wheel as in a
checkout. A script is one file, or several concatenated in order: a function other
scripts share is a file of its own (worker/ratelimit/lua/reserve_slot_function.lua), and a
script that uses it lists that file before its own body. `lua_script` is that one way of
putting a script together; redis-py's `register_script` then runs it by its SHA, and
`RegisteredScript` is the one way a class holds a script for its client.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any, NamedTuple, Protocol, Self, overload

import redis
from redis.commands.core import Script

LUA_FOLDER = "lua"


class LuaFile(NamedTuple):
    """`<package>/lua/<name>.lua`."""

    package: str  # "worker.store"
    name: str  # "claim"

    def text(self) -> str:
        return _read(self)


_files_read: set[LuaFile] = set()


@cache
def _read(lua_file: LuaFile) -> str:
    _files_read.add(lua_file)
    source = files(lua_file.package) / LUA_FOLDER / f"{lua_file.name}.lua"
    return source.read_text(encoding="utf-8")


def lua_script(*parts: LuaFile) -> str:
    """The script made of `parts`, in order: shared functions first, its body last."""
    return "".join(part.text() for part in parts)


def files_read() -> frozenset[LuaFile]:
    """Every file some script of this process was made from (a test checks that none of
    the files on disk is left unused)."""
    return frozenset(_files_read)


class _HasRedis(Protocol):
    redis: redis.Redis


class RegisteredScript:
    """A class attribute: the script `source`, registered with the instance's `redis`
    client on first use and kept by the instance (registering reads no file and sends
    nothing: redis-py loads the script on its first call)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}_script"

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, instance: _HasRedis, owner: type) -> Script: ...
    def __get__(self, instance: _HasRedis | None, owner: type) -> Self | Script:
        if instance is None:
            return self
        held: dict[str, Any] = instance.__dict__
        script = held.get(self.slot)
        if script is None:
            script = held[self.slot] = instance.redis.register_script(self.source)
        return script
