"""The documentation's links lead somewhere: README.md and every page under docs/.

Every relative Markdown link must name a file of this repository, and a `#fragment` a
heading of that page (as GitHub makes heading anchors). Every `*.md` file a page names in
its text must exist in the repository too, and no page may point outside it: the pages
travel with the code, so a reader must never meet a file they cannot open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"(?<!!)\[(?:[^\]\n]*)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6}) +(.+?) *#*$", re.M)
_MD_NAME = re.compile(r"(?<![\w/.-])((?:\.{1,2}/)*[\w./-]*[\w-]\.md)\b")
_UPWARD = re.compile(r"(?<![\w.])\.\./[\w./-]*")


def _prose(text: str) -> str:
    """The page without its fenced code blocks: links there are examples, not links."""
    return _FENCE.sub("", text)


def links(text: str) -> Iterator[str]:
    """Every link target in the page's prose (code spans are left out, link text kept)."""
    prose = _prose(text)
    for match in _LINK.finditer(_CODE.sub("code", prose)):
        yield match.group(1)


def anchors(text: str) -> set[str]:
    """The heading anchors GitHub makes for a page: lower case, punctuation dropped,
    spaces to hyphens, `-1`, `-2`... for repeated headings."""
    made: set[str] = set()
    for match in _HEADING.finditer(_prose(text)):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2))  # a link: its text
        slug = re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in made:
            n += 1
            anchor = f"{slug}-{n}"
        made.add(anchor)
    return made


def _inside_repository(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def _repository_md_names() -> set[str]:
    names = {p.name for p in ROOT.glob("*.md")}
    for top in ROOT.iterdir():
        if top.is_dir() and not top.name.startswith("."):
            names.update(p.name for p in top.rglob("*.md"))
    return names


def test_the_pages_are_there() -> None:
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 10, "README.md and the docs/ pages"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in links(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not _inside_repository(dest) or not dest.exists():
            broken.append(f"{target}: no such file in the repository")
            continue
        headings = anchors(dest.read_text(encoding="utf-8")) if dest.suffix == ".md" else set()
        if fragment and dest.suffix == ".md" and fragment not in headings:
            broken.append(f"{target}: no heading #{fragment} in {dest.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def _leaves_repository(upward: str, page: Path, *, in_code: bool) -> bool:
    """Whether a `../` path points outside the repository. In prose it must name a file
    here; in a code span it may be an example (`../../users/x` as a hostile meeting id),
    but never something that exists beside the repository, read from the page or the root."""
    if not in_code:
        dest = page.parent / upward
        return not _inside_repository(dest) or not dest.exists()
    return any(
        not _inside_repository(base / upward) and (base / upward).exists()
        for base in (page.parent, ROOT)
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_names_only_files_of_this_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    known = _repository_md_names()
    strangers = {name for name in _MD_NAME.findall(text) if Path(name).name not in known}
    prose = _CODE.sub("code", _prose(text))
    code = " ".join(_CODE.findall(text)) + " ".join(_FENCE.findall(text))
    strangers |= {u for u in _UPWARD.findall(prose) if _leaves_repository(u, page, in_code=False)}
    strangers |= {u for u in _UPWARD.findall(code) if _leaves_repository(u, page, in_code=True)}
    assert not strangers, f"{page.relative_to(ROOT)} names what the repository lacks: {strangers}"


def test_the_anchors_are_made_as_github_makes_them() -> None:
    page = "# A `$batch` envelope\n## Undocumented, and how it is handled\n## Notes\n## Notes\n"
    assert anchors(page) == {
        "a-batch-envelope",
        "undocumented-and-how-it-is-handled",
        "notes",
        "notes-1",
    }
