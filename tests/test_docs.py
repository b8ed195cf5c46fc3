"""The documentation: the MkDocs site builds strictly, and every docstring Example runs.

Process-wide helpers (process name and title, prctl flags) would change the test runner itself,
so their modules' doctests run in a fresh interpreter, started without ``PYTEST_CURRENT_TEST``
so the title helpers are not in test mode there.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import procfound

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

# Public modules whose examples are safe in the test process.
IN_PROCESS = [
    "procfound.run",
    "procfound.shell",
    "procfound.streaming",
    "procfound.call.observe",
    "procfound.pipes",
    "procfound.services.managed",
    "procfound.services.talking",
    "procfound.services.reading",
    "procfound.services.probes",
    "procfound.services.handle",
    "procfound.services.waits",
    "procfound.services.group",
    "procfound.errors",
    "procfound.result",
    "procfound.call.options",
    "procfound.call.checks",
    "procfound.call.stop",
    "procfound.engine.kill",
    "procfound.engine.expect",
    "procfound.usage",
    "procfound.exit",  # the exit helpers raise SystemExit, which doctest catches
]
# Public modules that change the whole process: run in a fresh interpreter.
FRESH_PROCESS = ["procfound.linux.prctl", "procfound.linux.title"]
# Public modules without examples of their own (the doctests of the names they re-export run
# in the modules above).
NO_EXAMPLES = ["procfound", "procfound.cli"]

_RUN_DOCTESTS = textwrap.dedent(
    """
    import doctest, importlib, json, sys
    module = importlib.import_module(sys.argv[1])
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failed, attempted = doctest.testmod(module, optionflags=flags)
    print(json.dumps({"failed": failed, "attempted": attempted}))
    """
)


def _missing_docs_tooling() -> list[str]:
    missing = []
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package is missing
            found = False
        if not found:
            missing.append(module)
    return missing


def test_mkdocs_site_builds_strictly(tmp_path: Path) -> None:
    missing = _missing_docs_tooling()
    if missing:
        pytest.skip(
            f"docs tooling not installed ({', '.join(missing)}): "
            "pip install mkdocs mkdocs-material 'mkdocstrings[python]' (the dev extra has them)"
        )
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stdout}\n{built.stderr}"
    reference = (tmp_path / "reference" / "index.html").read_text()
    # The generated sync twins are documented as functions, with their own docstrings.
    for anchor in ("procfound.run.run", "procfound.shell.shell", "procfound.stream"):
        assert f'id="{anchor}"' in reference
    assert "from sync code (it blocks the caller)" in reference


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert pages, "no pages under docs/"
    missing = [page for page in pages if page not in nav]
    assert not missing, f"pages not in mkdocs.yml's nav: {missing}"


def test_python_blocks_in_the_docs_compile() -> None:
    # The site cannot run them (they start builds and servers), but they must at least parse.
    broken = []
    for page in sorted(DOCS.rglob("*.md")):
        blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)
        for number, code in enumerate(blocks, 1):
            try:
                # Snippets may show a bare `async with` / `await`, as inside a coroutine.
                compile(code, f"{page.name} block {number}", "exec", flags=TOP_LEVEL_AWAIT)
            except SyntaxError as error:
                broken.append(f"{page.relative_to(DOCS)} block {number}: {error}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("name", procfound.__all__)
def test_public_name_has_an_example(name: str) -> None:
    obj = getattr(procfound, name)
    assert inspect.isfunction(obj) or inspect.isclass(obj), f"{name} is neither"
    assert "Example" in (obj.__doc__ or ""), f"procfound.{name}'s docstring has no Example"


def test_every_public_module_is_doctested() -> None:
    defining = {getattr(procfound, name).__module__ for name in procfound.__all__}
    untested = defining - set(IN_PROCESS + FRESH_PROCESS + NO_EXAMPLES)
    assert not untested, f"public modules whose doctests no test runs: {sorted(untested)}"


def _testmod(module: ModuleType) -> doctest.TestResults:
    return doctest.testmod(module, optionflags=FLAGS)


@pytest.mark.parametrize("name", IN_PROCESS)
def test_doctests_pass(name: str) -> None:
    failed, attempted = _testmod(importlib.import_module(name))
    assert attempted > 0, f"{name} has no examples"
    assert failed == 0, f"{failed} of {attempted} examples in {name} failed (report above)"


@pytest.mark.parametrize("name", NO_EXAMPLES)
def test_modules_without_examples_have_no_failing_doctests(name: str) -> None:
    assert _testmod(importlib.import_module(name)).failed == 0


@pytest.mark.parametrize("name", FRESH_PROCESS)
def test_process_wide_doctests_pass_in_a_fresh_interpreter(name: str) -> None:
    if name == "procfound.linux.prctl" and not procfound.has_prctl():
        pytest.skip("prctl examples need Linux and python-prctl (pip install 'procfound[linux]')")
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)  # so the title helpers act instead of skipping
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _RUN_DOCTESTS, name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report, _, last = done.stdout.rstrip().rpartition("\n")
    counts = json.loads(last)
    assert counts["attempted"] > 0, f"{name} has no examples"
    assert counts["failed"] == 0, f"examples in {name} failed:\n{report}\n{done.stderr}"
