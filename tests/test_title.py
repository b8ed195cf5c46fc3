"""Process titles: visible to ps outside test mode, inert while pytest runs a test."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import python

from procfound.errors import ValidationError
from procfound.linux import title as title_helpers

ROOT = Path(__file__).resolve().parents[1]

needs_setproctitle = pytest.mark.skipif(
    not title_helpers.has_setproctitle(), reason="setproctitle is not installed"
)

# Prints the title the helper set, as setproctitle reads it back (get_process_title is what
# the library exposes, but reading through setproctitle proves the change is real).
REPORT_TITLE = """
import json, setproctitle
from procfound.linux.title import set_process_title_from_argv
ok = set_process_title_from_argv()
print(json.dumps([ok, setproctitle.getproctitle()]))
"""


def outside_test_mode() -> dict[str, str]:
    """The environment of a child that is not a pytest test, and can import procfound."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_fresh(argv: list[str], env: dict[str, str] | None = None) -> Any:
    """Run ``argv`` (a fresh interpreter) and return the JSON on the last line of its output."""
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, env=env or outside_test_mode()
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_setproctitle
@pytest.mark.skipif(shutil.which("ps") is None, reason="needs the ps command")
def test_title_set_outside_test_mode_shows_in_ps() -> None:
    code = """
        import os, sys
        from procfound.linux.title import get_process_title, set_process_title
        ok = set_process_title("x-procfound-title")
        print(ok, get_process_title(), os.getpid(), flush=True)
        sys.stdin.read()
        """
    with subprocess.Popen(
        python(code),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=outside_test_mode(),
    ) as child:
        try:
            assert child.stdout is not None
            ok, got, pid = child.stdout.readline().split()
            shown = subprocess.run(
                ["ps", "-o", "args=", "-p", pid],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)
    assert (ok, got) == ("True", "x-procfound-title")
    assert shown == "x-procfound-title"
    assert child.returncode == 0


def test_inside_pytest_set_is_a_no_op_and_get_returns_none() -> None:
    assert "PYTEST_CURRENT_TEST" in os.environ
    cmdline = Path("/proc/self/cmdline")
    before = cmdline.read_bytes() if cmdline.exists() else b""
    assert title_helpers.set_process_title("x-procfound-must-not-appear") is True
    assert title_helpers.set_process_title_from_argv() is True
    assert title_helpers.get_process_title() is None
    if cmdline.exists():
        assert cmdline.read_bytes() == before


@needs_setproctitle
def test_test_mode_is_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import setproctitle

    assert title_helpers.get_process_title() is None
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    # Reading is harmless, so this runs in the pytest process itself.
    assert title_helpers.get_process_title() == setproctitle.getproctitle()


def test_test_mode_comes_from_the_environment_of_a_fresh_interpreter() -> None:
    env = {**outside_test_mode(), "PYTEST_CURRENT_TEST": "tests/x.py::t (call)"}
    out = run_fresh(
        python(
            """
            import json, setproctitle
            from procfound.linux.title import get_process_title, set_process_title
            before = setproctitle.getproctitle()
            ok = set_process_title("x-procfound-title")
            print(json.dumps([ok, get_process_title(), setproctitle.getproctitle() == before]))
            """
        ),
        env=env,
    )
    assert out == [True, None, True]


@needs_setproctitle
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/usr/local/bin/pyvider", "run", "--config", "foo.yml"], "pyvider run --config foo.yml"),
        (["/opt/app/pyvider"], "pyvider"),
        (["pyvider", "--name", "my app", "--flag"], "pyvider --name my app --flag"),
        (["./tools/serve.py", "--port", "8000"], "serve.py --port 8000"),
    ],
)
def test_title_from_argv_is_basename_then_arguments(argv: list[str], expected: str) -> None:
    code = f"import sys\nsys.argv = {argv!r}\n" + REPORT_TITLE
    assert run_fresh([sys.executable, "-c", code]) == [True, expected]


@needs_setproctitle
@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_title_from_argv_keeps_the_symlink_name_and_py_suffix(tmp_path: Path) -> None:
    script = tmp_path / "pyvider.py"
    script.write_text(REPORT_TITLE)
    link = tmp_path / "whatever"
    link.symlink_to(script)
    assert run_fresh([sys.executable, str(link), "run", "--config", "foo.yml"]) == [
        True,
        "whatever run --config foo.yml",
    ]
    assert run_fresh([sys.executable, str(script)]) == [True, "pyvider.py"]


def test_without_setproctitle_setters_fail_and_getter_returns_none() -> None:
    setup = textwrap.dedent(
        """
        import json, os, sys
        sys.modules["setproctitle"] = None  # makes `import setproctitle` raise ImportError
        from procfound.linux import title as t
        outside = [t.has_setproctitle(), t.set_process_title("x"),
                   t.set_process_title_from_argv(), t.get_process_title()]
        os.environ["PYTEST_CURRENT_TEST"] = "x"
        inside = [t.set_process_title("x"), t.set_process_title_from_argv()]
        print(json.dumps([outside, inside]))
        """
    )
    outside, inside = run_fresh([sys.executable, "-c", setup])
    assert outside == [False, False, False, None]
    assert inside == [True, True]


def test_empty_argv_gives_false_with_a_warning() -> None:
    out = run_fresh(
        python(
            """
            import json, logging, sys
            records = []
            handler = logging.Handler()
            handler.emit = records.append
            logging.getLogger("procfound").addHandler(handler)
            from procfound.linux.title import set_process_title_from_argv
            sys.argv = []
            ok = set_process_title_from_argv()
            print(json.dumps([ok, [r.levelname for r in records]]))
            """
        )
    )
    assert out == [False, ["WARNING"]]


@needs_setproctitle
def test_a_failing_setproctitle_gives_false_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import setproctitle

    def refuse(title: str) -> None:
        raise OSError("no room for a title")

    # Patched, the real call never happens, so the pytest process keeps its title.
    monkeypatch.setattr(setproctitle, "setproctitle", refuse)
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    with caplog.at_level(logging.WARNING, logger="procfound"):
        assert title_helpers.set_process_title("x-procfound-title") is False
    assert any("no room for a title" in r.getMessage() for r in caplog.records)


def test_has_setproctitle_returns_a_bool() -> None:
    assert isinstance(title_helpers.has_setproctitle(), bool)


@pytest.mark.parametrize("title", [5, None, b"bytes", "a\x00b", "\ud800"])
def test_a_title_that_cannot_be_one_is_a_validation_error_even_in_test_mode(
    title: object,
) -> None:
    # Checked before the test-mode shortcut, so a test suite sees what production would.
    with pytest.raises(ValidationError, match="title"):
        title_helpers.set_process_title(title)  # type: ignore[arg-type]
