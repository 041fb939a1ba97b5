"""The rooms hold: what each may import, no import cycle, and the size limits of the guide.

Imports are read from the source (every ``import`` statement, also inside functions), so a
lazy import that crosses a wall fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "engine_scripting"
MAX_PYTHON_LINES = 400
MAX_LUA_LINES = 600

# room -> what it must not import (module prefixes)
WALLS = {
    "engine_scripting.engine": ("esper", "engine_scripting.manager", "engine_scripting.ecs",
                                "engine_scripting.permissions", "engine_scripting.demo",
                                "engine_scripting.bench", "engine_scripting.cli"),
    "engine_scripting.manager": ("esper", "engine_scripting.ecs", "engine_scripting.demo",
                                 "engine_scripting.bench", "engine_scripting.cli"),
    "engine_scripting.ecs": ("engine_scripting.demo", "engine_scripting.bench",
                             "engine_scripting.cli"),
    "engine_scripting.errors": ("engine_scripting.", "esper", "lupa"),
    "engine_scripting.permissions": ("engine_scripting.", "esper", "lupa"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def _crosses(imported: str, banned: str) -> bool:
    return imported == banned.rstrip(".") or imported.startswith(banned.rstrip(".") + ".")


@pytest.mark.parametrize("room", sorted(WALLS))
def test_each_room_imports_only_what_it_may(room: str) -> None:
    crossings = sorted(
        f"{module} imports {imported}"
        for module, imports in MODULES.items()
        if module == room or module.startswith(room + ".")
        for imported in imports
        for banned in WALLS[room]
        if _crosses(imported, banned) and not _crosses(imported, module)
    )
    assert crossings == []


def test_rooms_reach_each_others_private_modules_only_through_their_public_surface() -> None:
    rooms = ("engine_scripting.engine", "engine_scripting.manager", "engine_scripting.ecs")
    reaching = sorted(
        f"{module} imports {imported}"
        for module, imports in MODULES.items()
        for imported in imports
        for room in rooms
        if imported.startswith(room + "._") and not module.startswith(room)
        and module.startswith(("engine_scripting.manager", "engine_scripting.ecs",
                               "engine_scripting.engine"))
    )
    assert reaching == []


def test_there_is_no_import_cycle() -> None:
    graph = {module: {other for other in MODULES if other != module and any(
        imported == other or imported.startswith(other + ".") for imported in imports)}
        for module, imports in MODULES.items()}
    # a package's __init__ re-exporting its own modules is not a cycle of rooms
    for module, edges in graph.items():
        graph[module] = {other for other in edges
                         if not (other.startswith(module + ".") or module.startswith(other + "."))}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting[visiting.index(module):], module])
        visiting.append(module)
        for other in sorted(graph[module]):
            visit(other)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_implementation_modules_are_private() -> None:
    public = sorted(
        module for module in MODULES
        if module.startswith(("engine_scripting.engine.", "engine_scripting.manager.",
                              "engine_scripting.ecs."))
        and not module.rsplit(".", 1)[-1].startswith("_")
    )
    assert public == []


def test_no_module_is_over_the_size_limits() -> None:
    too_long = sorted(
        f"{path.relative_to(PACKAGE.parent)}: {lines} lines"
        for pattern, limit in (("*.py", MAX_PYTHON_LINES), ("*.lua", MAX_LUA_LINES))
        for path in PACKAGE.rglob(pattern)
        if (lines := len(path.read_text().splitlines())) > limit
    )
    assert too_long == []
