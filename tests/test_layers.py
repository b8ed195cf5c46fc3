"""The package's layers hold: imports point down, no import circle, consumers use public names.

docs/design.md ("Layers") draws them. Every ``import`` in the library is read (module-level and
the lazy ones inside functions), so a shortcut taken anywhere fails here, not in review.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "procfound"

# Lower numbers sit lower: a module may import its own layer and the layers below it.
VOCABULARY, ENGINE, CALL, BRIDGE, SERVICES, API, CONSUMERS = range(7)
LAYER_OF_FOLDER = {
    "engine": ENGINE,
    "call": CALL,
    "bridge": BRIDGE,
    "services": SERVICES,
    "linux": SERVICES,  # process-wide helpers over the call layer's checks
    "cli": CONSUMERS,
}
LAYER_OF_MODULE = {
    "procfound": API,
    "procfound.__main__": CONSUMERS,
    "procfound.pytest_plugin": CONSUMERS,
    "procfound.errors": VOCABULARY,
    "procfound.result": VOCABULARY,
    "procfound.usage": VOCABULARY,
    "procfound.lifecycle": VOCABULARY,
}
# The upward imports, and why they are there.
ALLOWED_UPWARD = {
    # CompletedProcess.check_returncode raises the error run(check=True) raises (a pipeline's
    # naming its failing stage), worded once below; imported when it is called, so the result
    # type stays importable alone.
    ("procfound.result", "procfound.call.failures"),
    ("procfound.result", "procfound.engine.pipeline"),
}
MAX_LINES = 600
MAX_TOP_LEVEL = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    if module in LAYER_OF_MODULE:
        return LAYER_OF_MODULE[module]
    # run, shell, streaming, pipes, exit: the public coroutines and helpers
    return LAYER_OF_FOLDER.get(module.split(".")[1], API)


def imports(module: str) -> Iterator[tuple[str, list[str]]]:
    """Each procfound module that ``module`` imports, with the names it takes from it."""
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "procfound":
                    yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "procfound":
                continue
            names = [alias.name for alias in node.names]
            if node.module == "procfound":  # the public names (procfound.run is a function)
                yield node.module, names
                continue
            submodules = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in MODULES]
            if submodules:
                yield from ((each, []) for each in submodules)
            else:
                yield node.module, names


def test_every_import_points_down() -> None:
    wrong = [
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module in MODULES
        for target, _ in imports(module)
        if target in MODULES
        and layer(target) > layer(module)
        and (module, target) not in ALLOWED_UPWARD
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_circle() -> None:
    graph = {
        module: {t for t, _ in imports(module) if t in MODULES and t != module}
        for module in MODULES
    }
    # A package's __init__ re-exporting its children is not a circle through them.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


@pytest.mark.parametrize("consumer", sorted(m for m in MODULES if layer(m) == CONSUMERS))
def test_consumers_use_the_public_api_only(consumer: str) -> None:
    own = consumer if MODULES[consumer].name == "__init__.py" else consumer.rpartition(".")[0]
    for target, names in imports(consumer):
        if target == own or target.startswith("procfound.cli"):
            continue  # the CLI's own modules
        assert target == "procfound", f"{consumer} imports {target}"
        private = [name for name in names if name.startswith("_")]
        assert not private, f"{consumer} imports private names {private}"


def test_modules_stay_small_and_the_top_level_short() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert max(sizes.values()) <= MAX_LINES, max(sizes.items(), key=lambda item: item[1])
    top = [p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_LEVEL, sorted(p.name for p in top)
