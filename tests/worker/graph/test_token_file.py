"""The delegated token cache file: created private, refused where others could read it,
write beside it, swap it for a link, or where it belongs to another user."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.graph.token_file import TokenCacheFile


def test_the_cache_file_is_created_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "new" / "cache.json"
    old = os.umask(0)
    try:
        TokenCacheFile(path).write('{"a": 1}')
        TokenCacheFile(path).write('{"a": 2}')  # replaced, not appended
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert TokenCacheFile(path).read() == '{"a": 2}'
    assert [p.name for p in path.parent.iterdir()] == ["cache.json"]  # no temporary left


def test_a_cache_file_others_may_read_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text("{}")
    path.chmod(0o644)
    with pytest.raises(ConfigError) as refused:
        TokenCacheFile(path).read()
    message = str(refused.value)
    assert "\n" not in message
    assert f"{path} has mode 0644" in message and f"chmod 600 {path}" in message
    assert TokenCacheFile(tmp_path / "absent.json").read() is None


def refusal(action: Callable[[], object]) -> str:
    with pytest.raises(ConfigError) as refused:
        action()
    message = str(refused.value)
    assert "\n" not in message and message.startswith("MEETREG_TOKEN_CACHE: ")
    return message


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777], ids=["0770", "0707", "0777"])
def test_a_cache_folder_others_may_write_to_is_refused_and_left_as_it_is(
    tmp_path: Path, mode: int
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    path = folder / "cache.json"
    cache = TokenCacheFile(path)

    assert f"chmod 700 {folder}" in refusal(lambda: cache.write('{"a": 1}'))
    assert not path.exists()  # nothing written where others could swap it
    assert stat.S_IMODE(folder.stat().st_mode) == mode

    path.write_text("{}")
    path.chmod(0o600)
    assert f"{folder} is writable by group or others" in refusal(cache.read)


def test_a_cache_file_that_is_a_symbolic_link_is_neither_read_nor_written_through(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text('{"planted": true}')
    elsewhere.chmod(0o600)
    folder = tmp_path / "meetreg"
    folder.mkdir(mode=0o700)
    path = folder / "cache.json"
    path.symlink_to(elsewhere)
    cache = TokenCacheFile(path)

    assert "is a symbolic link" in refusal(cache.read)
    assert "is a symbolic link" in refusal(lambda: cache.write('{"a": 1}'))
    assert elsewhere.read_text() == '{"planted": true}'
    assert path.is_symlink()


def test_a_cache_file_or_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "meetreg"
    folder.mkdir(mode=0o700)
    path = folder / "cache.json"
    TokenCacheFile(path).write('{"a": 1}')
    someone_else = os.geteuid() + 1  # what our own files are to another user

    as_another = TokenCacheFile(path, owner_uid=someone_else)
    assert f"{folder} belongs to uid {os.geteuid()}" in refusal(as_another.read)
    assert f"{folder} belongs to uid {os.geteuid()}" in refusal(lambda: as_another.write("{}"))
    assert path.read_text() == '{"a": 1}'
