"""The code map in docs/architecture.md names every source file, and only files that exist.

The map is a tree: a folder's line ends in `/`, and each level is indented two spaces
more than its folder. A file added, moved or removed without its line fails here, so
the map a newcomer reads is the tree they will find.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"
PACKAGES = ("worker", "jobs")
SOURCE_SUFFIXES = {".py", ".lua", ".css", ".js"}
DESCRIPTION_COLUMN = 33  # a line indented this far continues the description above it


def code_map_block(page: str) -> str:
    section = page.split("## Code map", 1)[1]
    return section.split("```", 2)[1]


def files_in_map(block: str) -> set[str]:
    folders: list[str] = []
    files = set()
    for line in block.splitlines():
        entry = re.match(r"^( *)(\S+)", line)
        if entry is None or len(entry.group(1)) >= DESCRIPTION_COLUMN:
            continue
        depth = len(entry.group(1)) // 2
        name = entry.group(2)
        del folders[depth:]
        if name.endswith("/"):
            folders.append(name)
        else:
            files.add("".join(folders) + name)
    return files


def source_files() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.suffix in SOURCE_SUFFIXES
    }


def test_the_map_reader_reads_a_tree() -> None:
    continued = " " * DESCRIPTION_COLUMN + "more of two"
    block = "\n".join(
        ["worker/   the core", "  a.py    one", "  sub/", "    b.lua two", continued, "  c.py"]
    )
    assert files_in_map(block) == {"worker/a.py", "worker/sub/b.lua", "worker/c.py"}


def test_the_code_map_names_every_source_file_and_no_other() -> None:
    listed = files_in_map(code_map_block(PAGE.read_text(encoding="utf-8")))
    on_disk = source_files()
    assert sorted(on_disk - listed) == [], "source files the code map does not name"
    assert sorted(listed - on_disk) == [], "files the code map names that do not exist"
