"""The import rules that keep the code's plan visible (issue 20), read from the code's own
imports (module level, inside functions, and under TYPE_CHECKING alike: an import hidden
in a function body is still an arrow).

Today: only the adapters talk to providers (boto3, botocore, b2sdk, pynamodb), no handler
does, and no two modules import each other, directly or round a longer circle. The
floors of DESIGN.md (domain, services, adapters, wiring) add their rules here as the
layer moves into them.
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
# The modules of the deployed layer that may talk to a provider: the adapters.
ADAPTERS = {
    "shelflife.backends.b2",
    "shelflife.backends.s3",
    "shelflife.operations",  # LambdaInvoker: the admin runs invoke the other functions
    "shelflife.queues",
    "shelflife.streams",
    "shelflife.table.dynamo",
    "shelflife.table.models",
}


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
    assert talking == ADAPTERS  # a new adapter is added above, on purpose


def test_no_handler_imports_a_provider_sdk() -> None:
    for module, path in modules().items():
        if module.startswith("functions."):
            assert not [n for n in imports(path, module) if n.split(".")[0] in PROVIDERS], module


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
    assert "shelflife.table.records" in edges["shelflife.ingest"]
    assert "shelflife.table.dynamo" in edges["shelflife.wiring"]
    assert circles(edges) == []


# The services: they take their collaborators in their constructors (wiring builds them).
SERVICES = {
    "shelflife.capacity",
    "shelflife.cleanup",
    "shelflife.ingest",
    "shelflife.lifecycle",
    "shelflife.photos",
    "shelflife.placement",
    "shelflife.reconcile",
    "shelflife.stats",
}


def test_no_service_builds_or_imports_a_provider_adapter() -> None:
    # Before issue 20 five services built their adapters in a from_settings, importing
    # them inside the function body; shelflife.wiring does it for all now.
    known = modules()
    for module in sorted(SERVICES):
        used = set(imports(known[module], module, at_run_time=True))
        assert not used & ADAPTERS, (module, sorted(used & ADAPTERS))
    wired = set(imports(known["shelflife.wiring"], "shelflife.wiring"))
    assert {"shelflife.table.dynamo", "shelflife.queues", "shelflife.streams"} <= wired


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
