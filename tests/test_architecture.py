"""The package's shape: the core below the chapters, each chapter in one folder importing only the core
and earlier chapters, the course tooling above them all, and nothing else at the top level."""

from __future__ import annotations

import ast
from pathlib import Path

from mtrec_helpers.core.paths import project_root
from mtrec_helpers.core.stages import STAGES

PACKAGE = project_root() / "mtrec_helpers"
CHAPTERS = {
    "01": "data",
    "02": "pretraining",
    "02b": "text",
    "03": "multitask",
    "03b": "multi_scenario",
    "04": "rl",
    "05": "distill",
    "06": "ensemble",
}
"""Each chapter's package, in reading order."""


def _imports(path: Path) -> set[str]:
    """The mtrec_helpers packages a module imports (at any depth of the file: function-level too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.split(".")[1] for name in names if name.startswith("mtrec_helpers.")}
    return found


def _package_imports() -> dict[str, set[str]]:
    """Package (core, course, a chapter) → the other packages its modules import. A chapter's
    ``__main__`` (its launcher for several processes) is a command on top of everything and may use
    the course's command line; it is left out."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) > 1 and path.name != "__main__.py":
            graph.setdefault(parts[0], set()).update(_imports(path) - {parts[0]})
    return graph


def test_the_top_level_holds_only_the_packages() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert modules == ["__init__.py"]
    assert packages == sorted(["core", "course", *CHAPTERS.values()])


def test_the_chapters_are_the_stage_table_in_order() -> None:
    assert [stage.number for stage in STAGES] == list(CHAPTERS)


def test_the_core_imports_no_chapter_and_a_chapter_only_the_core_and_earlier_chapters() -> None:
    graph = _package_imports()
    assert graph["core"] == set(), f"the core imports {graph['core']}"
    order = list(CHAPTERS.values())
    for number, chapter in CHAPTERS.items():
        allowed = {"core", *order[: order.index(chapter)]}
        assert graph.get(chapter, set()) <= allowed, (
            f"chapter {number} ({chapter}/) imports {graph[chapter] - allowed}: not the core, not earlier"
        )
    users_of_course = sorted(p for p, imported in graph.items() if "course" in imported and p != "course")
    assert users_of_course == [], f"{users_of_course} import the course tooling"
