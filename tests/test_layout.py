"""The tests mirror the source: every module under worker/ and jobs/ with behaviour of its
own has a test module beside where it lives, so its tests are found from its name.

`worker/store/rows.py` is tested in `tests/worker/store/test_rows.py`. A module tested in
parts may have `test_rows_<aspect>.py` as well or instead; where two packages hold modules of
the same name, the test module adds its package's name (`tests/jobs/http/test_http_auth.py`
for jobs/http/auth.py), because pytest imports test modules by their basename, so basenames
must be unique across tests/. Cross-cutting suites (tests/pipeline, chaos, deploy, fuzz,
security) test many modules at once and count for none.

EXEMPT names the modules without behaviour of their own; UNTESTED the modules with behaviour
that still have no test module of their own, only the cross-cutting suites that reach them.
Both lists must stay true: an entry that no longer exists, or that now has its test module,
fails here until it is removed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
PACKAGES = ("worker", "jobs")

EXEMPT: dict[str, str] = {
    "jobs/__init__.py": "package marker",
    "jobs/cli/__init__.py": "package marker",
    "jobs/events/__init__.py": "package marker",
    "jobs/http/__init__.py": "package marker",
    "jobs/nightly/__init__.py": "package marker",
    "jobs/sources/__init__.py": "package marker",
    "worker/__init__.py": "package marker",
    "worker/graph/__init__.py": "re-exports the Graph client's public names",
    "worker/protocol/__init__.py": "package marker",
    "worker/protocol/targets/__init__.py": "package marker",
    "worker/ratelimit/__init__.py": "package marker",
    "worker/redis/__init__.py": "package marker",
    "worker/simulator/__init__.py": "re-exports the simulator's public names",
    "worker/simulator/__main__.py": "one line calling server.main (run in test_server.py)",
    "worker/store/__init__.py": "package marker",
    "worker/telemetry/__init__.py": "package marker",
    "worker/keys.py": "Redis key names and task names: constants and string formats",
    "worker/protocol/deps.py": "what the protocol is given: a Protocol and plain dataclasses",
    "worker/protocol/target.py": "the Target Protocol (tested: targets/test_meeting_registration)",
    "worker/simulator/config.py": "the simulator's settings as frozen pydantic models",
    "worker/store/outcome_store.py": "the store's parts on one client, nothing more",
}

# Behaviour tested only through the cross-cutting suites (and the CLI's tests) so far: each
# wants a test module of its own. The list may only shrink.
UNTESTED: dict[str, str] = {}


def source_modules() -> list[str]:
    return sorted(
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    )


def owner(test: Path, modules: list[str]) -> str | None:
    """The source module `test` is named after: the longest name it starts with, so
    `test_calendar_routes.py` is calendar_routes.py's, not calendar.py's."""
    folder = test.parent.relative_to(TESTS)
    best: tuple[int, str] | None = None
    for module in modules:
        source = Path(module)
        if source.parent != folder:
            continue
        for name in (source.stem, f"{folder.name}_{source.stem}"):
            named = test.stem == f"test_{name}" or test.stem.startswith(f"test_{name}_")
            if named and (best is None or len(name) > best[0]):
                best = (len(name), module)
    return best[1] if best else None


def mirrored_tests(module: str) -> list[str]:
    """The test modules of `module` (a path like `worker/store/rows.py`)."""
    modules = source_modules()
    folder = TESTS / Path(module).parent
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in folder.glob("test_*.py")
        if owner(path, modules) == module
    )


def test_every_module_with_behaviour_has_its_mirrored_test_module() -> None:
    missing = [
        module
        for module in source_modules()
        if module not in EXEMPT and module not in UNTESTED and not mirrored_tests(module)
    ]
    assert missing == [], f"no tests/<its path>/test_<its name>.py (nor an entry): {missing}"


def test_every_exempt_or_untested_module_exists() -> None:
    modules = set(source_modules())
    gone = [module for module in (*EXEMPT, *UNTESTED) if module not in modules]
    assert gone == [], "listed here but no longer in the source: drop the entry"


def test_no_exempt_or_untested_module_has_a_test_module() -> None:
    tested = {
        module: mirrored_tests(module) for module in (*EXEMPT, *UNTESTED) if mirrored_tests(module)
    }
    assert tested == {}, f"these modules have tests now: drop their entry: {tested}"


def test_no_module_is_both_exempt_and_untested() -> None:
    assert set(EXEMPT) & set(UNTESTED) == set()


def test_test_module_basenames_are_unique() -> None:
    basenames = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in basenames.items() if count > 1] == []
