"""The segmentation package's import graph: no circles, no project imports hidden in function
bodies, and dependencies that point down (http → segments → upkeep → messaging → people,
auth, changes → definitions → storage → engine; the core modules at the very bottom, vocabulary
and the event summaries among them: storage never imports the engine)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "segmentation" / "segmentation"
# Each package may import itself and what lies below it, never what lies above.
LAYERS: list[set[str]] = [
    {"http"},
    {"segments"},
    {"upkeep"},
    {"messaging"},
    {"people", "auth", "changes"},
    {"definitions"},
    {"storage"},
    {"engine", "jobs", "values"},
    {"errors", "settings", "clock", "health", "handler_wiring", "vocabulary", "event_summaries"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> tuple[set[str], list[str]]:
    """(project modules imported at module level, project imports found inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    hidden: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        names = _project_names(node)
        if not names:
            continue
        inside_function = any(
            isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef) for parent in _parents(tree, node)
        )
        if inside_function:
            hidden.extend(names)
        elif not _type_checking_only(tree, node):
            top.update(names)
    return top, hidden


def _project_names(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.split(".")[0] == "segmentation"}
    if node.module is None or node.module.split(".")[0] != "segmentation":
        return set()
    found = set()
    for alias in node.names:
        candidate = f"{node.module}.{alias.name}"
        found.add(candidate if _exists(candidate) else node.module)
    return found


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def _parents(tree: ast.AST, target: ast.AST) -> list[ast.AST]:
    path: list[ast.AST] = []

    def visit(node: ast.AST) -> bool:
        if node is target:
            return True
        for child in ast.iter_child_nodes(node):
            if visit(child):
                path.append(node)
                return True
        return False

    visit(tree)
    return path


def _type_checking_only(tree: ast.AST, node: ast.AST) -> bool:
    return any(
        isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test)
        for parent in _parents(tree, node)
    )


def _graph() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    edges: dict[str, set[str]] = {}
    hidden: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        top, inside = _imports(path)
        edges[name] = {imported for imported in top if imported != name}
        if inside:
            hidden[name] = inside
    return edges, hidden


def _capability(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "segmentation"


def _layer(capability: str) -> int:
    return next(index for index, members in enumerate(LAYERS) if capability in members)


def test_no_project_module_is_imported_inside_a_function() -> None:
    _, hidden = _graph()
    assert hidden == {}


def test_the_import_graph_has_no_circle() -> None:
    edges, _ = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for child in sorted(edges.get(node, ())):
            if state.get(child) == 1:
                cycles.append([*path[path.index(child) :], child] if child in path else [node, child])
            elif child not in state:
                visit(child, [*path, child])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_dependencies_point_down() -> None:
    edges, _ = _graph()
    upward = sorted(
        f"{module} imports {imported}"
        for module, imported_set in edges.items()
        for imported in imported_set
        if _capability(module) != "segmentation"
        and _layer(_capability(imported)) < _layer(_capability(module))
    )
    assert upward == []


def test_every_package_is_placed_in_a_layer() -> None:
    edges, _ = _graph()
    capabilities = {_capability(module) for module in edges} - {"segmentation"}
    placed = set().union(*LAYERS)
    assert capabilities - placed == set()


def test_handlers_call_capabilities_never_storage() -> None:
    """functions/*/app.py wire a capability to its trigger; the tables and queues are storage's."""
    handlers = sorted((PACKAGE.parents[2] / "functions").glob("*/app.py"))
    assert len(handlers) > 10
    reaching = []
    for handler in handlers:
        for node in ast.walk(ast.parse(handler.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            reaching += [
                f"{handler.parent.name}: {name}" for name in names if name.startswith("segmentation.storage")
            ]
    assert reaching == []


def test_storage_never_imports_the_engine() -> None:
    """Storage talks to tables: the compiled definitions live above it (segmentation.definitions),
    the words both share below both (segmentation.vocabulary, segmentation.event_summaries). Any
    import counts here, also one made only for type checking."""
    reaching = []
    for path in sorted((PACKAGE / "storage").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                engine = sorted(name for name in _project_names(node) if _is_engine(name))
                reaching += [f"{_module_name(path)} imports {name}" for name in engine]
    assert reaching == []


def _is_engine(module: str) -> bool:
    return module == "segmentation.engine" or module.startswith("segmentation.engine.")
