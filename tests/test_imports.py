"""The package's imports run one way: no module of etl/ imports one that imports it back, however indirectly,
and the README's module map is the floors the imports make (each module imports only modules below it).

Drawn from the source with `ast`, not by importing it: an import inside a function or under TYPE_CHECKING
is an import too (a lazy import only delays a circle).
"""

import ast
import re
from functools import cache
from pathlib import Path

from conftest import REPO_DIR

PACKAGE = "etl"
MAP_HEADING = "### Module map"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.AST, package: str, modules: set[str]) -> list[str]:
    """The package's modules one import statement loads: `from a import b` loads a.b when b is a module,
    else a; a relative import is resolved against the importing module's package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
    module = ".".join([*base, *([node.module] if node.module else [])])
    return [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each module of the package at `root` and the package's modules it imports."""
    paths = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        names = (n for node in ast.walk(tree) for n in imported_modules(node, package, set(paths)))
        graph[name] = {n for n in names if n in paths and n != name}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the modules along it back to the first, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once all below it are seen

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported]
            if imported not in state and (circle := visit(imported, [*path, imported])):
                return circle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module, [module])):
            return circle
    return None


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor: 0 for a module that imports none of the package, else one above the highest
    module it imports. The graph must have no circle."""

    @cache
    def floor(module: str) -> int:
        return 1 + max((floor(imported) for imported in graph[module]), default=-1)

    return {module: floor(module) for module in graph}


def render_map(graph: dict[str, set[str]], package: str) -> str:
    """The map as the README draws it: the top floor first, each floor's modules without the package name."""
    by_floor: dict[int, list[str]] = {}
    for module, floor in floors(graph).items():
        by_floor.setdefault(floor, []).append(module.removeprefix(package).removeprefix(".") or "__init__")
    return "".join(f"{floor:>2}  {'  '.join(sorted(by_floor[floor]))}\n" for floor in sorted(by_floor)[::-1])


def readme_map() -> str:
    readme = (REPO_DIR / "README.md").read_text()
    section = readme.partition(f"\n{MAP_HEADING}\n")[2]
    found = re.search(r"```text\n(.*?)```", section, re.S)
    assert found, f"README.md has no {MAP_HEADING} section with a ```text block"
    return found.group(1)


def write_package(root: Path, modules: dict[str, str]) -> Path:
    for name, source in modules.items():
        path = root / "pkg" / f"{name.replace('.', '/')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "pkg"


def test_etl_has_no_import_circle():
    circle = find_circle(import_graph(REPO_DIR / PACKAGE))
    assert circle is None, f"import circle: {' -> '.join(circle)}"


def test_the_readme_module_map_is_the_floors_the_imports_make():
    drawn = render_map(import_graph(REPO_DIR / PACKAGE), PACKAGE)
    assert readme_map() == drawn, f"README.md's {MAP_HEADING} is out of date; the code draws:\n{drawn}"


def test_a_circle_through_a_lazy_relative_import_is_found(tmp_path):
    """Negative control: the circle the check exists for, hidden as the old ones were (inside a function)."""
    root = write_package(
        tmp_path,
        {
            "__init__": "",
            "a": "from pkg import b\n",
            "b": "from pkg.lake import c\n",
            "lake.__init__": "",
            "lake.c": "def f():\n    from .. import a\n",
        },
    )
    assert find_circle(import_graph(root)) == ["pkg.a", "pkg.b", "pkg.lake.c", "pkg.a"]


def test_a_package_without_a_circle_has_floors(tmp_path):
    root = write_package(
        tmp_path,
        {
            "__init__": "",
            "top": "import pkg.low\nfrom pkg import mid\n",
            "mid": "from .low import x\n",
            "low": "",
        },
    )
    graph = import_graph(root)
    assert find_circle(graph) is None
    assert render_map(graph, "pkg") == " 2  top\n 1  mid\n 0  __init__  low\n"
