"""The import graph keeps the design's one-way arrows.

`jobs` (the producer side) builds on `worker`'s core; `worker` never reaches back into `jobs`,
except from the Celery task module, the one composition root, which nothing imports. And no
module imports, even indirectly, one that imports it: each can be read, tested and changed from
the bottom up. The graph is read from the source (every `import`, including those inside
functions), so a late import cannot hide an arrow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("worker", "jobs")
COMPOSITION_ROOT = "worker.tasks"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported_names(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The project modules `path` imports: `from a.b import c` names `a.b.c` when that is a
    module, else `a.b`."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            # The longest project module the name starts with (a.b.c -> a.b when c is a name).
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != here:
                yield name


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: set(imported_names(path, modules)) for name, path in modules.items()}


GRAPH = import_graph()


def test_the_graph_sees_the_project() -> None:
    # A reader that found nothing would make every test below pass.
    assert len(GRAPH) > 80
    assert any(target.startswith("worker.store") for target in GRAPH["jobs.enqueue"])
    assert "jobs.events.calendar_events" in GRAPH[COMPOSITION_ROOT]


def test_worker_does_not_import_jobs_outside_the_task_module() -> None:
    reaching_back = sorted(
        f"{source} -> {target}"
        for source, targets in GRAPH.items()
        if source.startswith("worker.") and source != COMPOSITION_ROOT
        for target in targets
        if target.startswith("jobs.") or target == "jobs"
    )
    assert reaching_back == []


def test_nothing_imports_the_task_module() -> None:
    importers = sorted(source for source, targets in GRAPH.items() if COMPOSITION_ROOT in targets)
    assert importers == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the modules along it, or None (a depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("graph", "has_cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"b"}, "b": {"a"}}, True),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, False),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], has_cycle: bool) -> None:
    assert (find_cycle(graph) is not None) is has_cycle
