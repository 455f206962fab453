"""The import rules that keep the code's plan visible (issue 20), read from the code's own
imports (module level, inside functions, and under TYPE_CHECKING alike: an import hidden
in a function body is still an arrow).

The floors (docs/ARCHITECTURE.md): ``shelflife.domain`` imports neither services nor
adapters; ``shelflife.services`` import no adapter, not even for annotations; adapters
import no service; only the adapters talk to providers (boto3, botocore, b2sdk,
pynamodb); ``shelflife.wiring`` alone knows which adapter backs which port; no handler
talks to a provider; and no two modules import each other, directly or round a longer
circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.template import ROOT

PACKAGES = {
    "shelflife": ROOT / "layers" / "shelflife" / "shelflife",
    "shelflife_tools": ROOT / "tools" / "shelflife_tools",
    "functions": ROOT / "functions",
}
PROVIDERS = ("boto3", "botocore", "b2sdk", "pynamodb")
DOMAIN = "shelflife.domain"
SERVICES = "shelflife.services"
ADAPTERS = "shelflife.adapters"
WIRING = "shelflife.wiring"


def on(module: str, floor: str) -> bool:
    return module == floor or module.startswith(f"{floor}.")


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _type_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:``: imports for annotations only."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden |= {id(inner) for child in node.body for inner in ast.walk(child)}
    return hidden


def imports(path: Path, module: str, *, at_run_time: bool = False) -> Iterator[str]:
    """Every module ``path`` imports, wherever in the file (relative imports resolved);
    ``at_run_time``: leave out what only type checking imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    hidden = _type_only(tree) if at_run_time else set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from package import module` names a module too.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        module: {name for name in imports(path, module) if name in known and name != module}
        for module, path in known.items()
    }


def test_only_the_adapters_talk_to_providers() -> None:
    talking = {
        module
        for module, path in modules().items()
        if module.startswith(("shelflife.", "functions."))
        and any(name.split(".")[0] in PROVIDERS for name in imports(path, module))
    }
    assert talking, "the adapters talk to providers: the test must see them"
    assert {module for module in talking if not on(module, ADAPTERS)} == set()
    # The adapters that talk today, so a test that stops reading imports fails here.
    assert {"shelflife.adapters.backends.s3", "shelflife.adapters.table.dynamo"} <= talking


def test_no_handler_imports_a_provider_sdk() -> None:
    for module, path in modules().items():
        if module.startswith("functions."):
            assert not [n for n in imports(path, module) if n.split(".")[0] in PROVIDERS], module


def crossings(floor: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """The imports from modules of ``floor`` into any of the ``forbidden`` floors,
    type-only imports included (an annotation names an adapter as surely as a call)."""
    edges = graph()
    return {
        module: sorted(t for t in targets if any(on(t, f) for f in forbidden))
        for module, targets in edges.items()
        if on(module, floor) and any(on(t, f) for t in targets for f in forbidden)
    }


def test_the_domain_imports_no_service_no_adapter_and_no_wiring() -> None:
    assert crossings(DOMAIN, (SERVICES, ADAPTERS, WIRING)) == {}


def test_services_import_no_adapter_and_no_wiring() -> None:
    assert crossings(SERVICES, (ADAPTERS, WIRING)) == {}


def test_adapters_import_no_service_and_no_wiring() -> None:
    assert crossings(ADAPTERS, (SERVICES, WIRING)) == {}


def test_the_floor_rules_see_a_crossing() -> None:
    # The rules read real imports: one added to a copy of the graph is caught.
    edges = graph()
    edges["shelflife.services.ingest"].add("shelflife.adapters.table.dynamo")
    found = {
        module
        for module, targets in edges.items()
        if on(module, SERVICES) and any(on(t, ADAPTERS) for t in targets)
    }
    assert found == {"shelflife.services.ingest"}


def test_every_layer_module_stands_on_a_floor() -> None:
    # Besides the floors: the package's face, the wiring, the reconciler's shell
    # command (which needs the wiring) and the simulator (which composes services and
    # in-memory adapters, as the wiring composes the real ones).
    loose = {
        module
        for module in modules()
        if on(module, "shelflife")
        and not any(on(module, floor) for floor in (DOMAIN, SERVICES, ADAPTERS))
    }
    assert loose == {"shelflife", WIRING, "shelflife.reconcile_command", "shelflife.simulation"}


def test_handlers_get_their_services_from_the_wiring() -> None:
    known = modules()
    handlers = [m for m in known if m.startswith("functions.") and m.endswith(".app")]
    assert len(handlers) == 7  # api, audit, capacity, cleanup, imports, ingest, lifecycle
    for module in handlers:
        assert WIRING in set(imports(known[module], module)), module
    for module in [m for m in known if m.startswith("functions.")]:
        used = set(imports(known[module], module))
        # The one adapter a handler uses itself: publishing through its own Powertools
        # Metrics object (CloudWatch's embedded format goes to the log, no SDK call).
        used -= {"shelflife.adapters.metrics", "shelflife.adapters.metrics.publish"}
        assert not {n for n in used if on(n, ADAPTERS)}, module


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_two_modules_import_each_other() -> None:
    edges = graph()
    # The graph holds what the files import, nested imports included.
    assert "shelflife.domain.records" in edges["shelflife.services.ingest"]
    assert "shelflife.adapters.table.dynamo" in edges["shelflife.wiring"]
    assert circles(edges) == []


def test_only_the_wiring_builds_adapters_for_the_functions() -> None:
    known = modules()
    wired = set(imports(known[WIRING], WIRING))
    assert {
        "shelflife.adapters.table.dynamo",
        "shelflife.adapters.queues",
        "shelflife.adapters.streams",
        "shelflife.adapters.invocation",
    } <= wired


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}}, []),
    ],
)
def test_the_circle_finder_finds_circles(
    edges: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert circles(edges) == expected


# A handler reads its event, calls its services and answers; anything longer is work
# that belongs to a service (issue 20). The api's resolver includes its routers.
HANDLER_LINES = {"api": 120}


def test_handlers_are_thin() -> None:
    handlers = sorted((ROOT / "functions").glob("*/app.py"))
    assert len(handlers) == 7  # api, audit, capacity, cleanup, imports, ingest, lifecycle
    for path in handlers:
        limit = HANDLER_LINES.get(path.parent.name, 60)
        lines = len(path.read_text().splitlines())
        assert lines <= limit, (path.parent.name, lines, limit)


def test_the_api_routes_live_in_routers() -> None:
    app = (ROOT / "functions" / "api" / "app.py").read_text()
    routes = sorted((ROOT / "functions" / "api" / "routes").glob("[!_]*.py"))
    assert [path.stem for path in routes] == [
        "admin",
        "audit",
        "dashboard",
        "gallery",
        "photos",
        "stats",
        "uploads",
    ]
    for path in routes:
        assert "router = Router()" in path.read_text(), path
    # Only the public routes are the resolver's own.
    assert app.count("@app.get(") == 2
    assert "app.include_router(group.router)" in app


# Imports inside a function body hide an arrow from whoever reads a module's head. The
# one that stays: Powertools' parameters utility, imported only by a function that
# reads the R2/B2 secret, so a function on S3 alone never pays for it at cold start.
NESTED_IMPORTS_ALLOWED = {"shelflife.adapters.credentials"}


def test_the_layer_imports_at_the_top() -> None:
    nested: set[str] = set()
    for module, path in modules().items():
        if not module.startswith(("shelflife.", "functions.")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                isinstance(inner, ast.Import | ast.ImportFrom) for inner in ast.walk(node)
            ):
                nested.add(module)
    assert nested == NESTED_IMPORTS_ALLOWED
