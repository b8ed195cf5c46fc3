# ruff: noqa: E501  (docstrings name seed tests by their full, greppable node ids)
"""Seed compatibility: process titles, prctl helpers and exit helpers.

Each test re-expresses one behavioural test of provide-foundation (the seed library) against
procfound; its docstring names the seed test. Calls that change process-wide state (a real
title, the kernel name, the death signal) run in a child interpreter with test mode off, so the
test runner itself is never renamed or re-armed.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import python

import procfound.linux.prctl as prctl_module
import procfound.linux.title as title_module
from procfound import (
    PlatformError,
    exit_error,
    exit_interrupted,
    exit_success,
    get_name,
    get_process_title,
    has_prctl,
    has_setproctitle,
    is_linux,
    run,
    set_death_signal,
    set_dumpable,
    set_name,
    set_no_new_privs,
    set_process_title,
    set_process_title_from_argv,
)

# Not ported: tests/cli/commands/test_process_commands.py — the seed's `provide` CLI `process` group (set-title/get-title/info); procfound's CLI is a different surface (run, wait-for).
# Not ported as such: the seed's test-mode patches (is_in_test_mode, _HAS_SETPROCTITLE, _IS_LINUX, _HAS_PRCTL) — replaced by a child without PYTEST_CURRENT_TEST and by monkeypatching procfound's is_linux/import helpers.
# No seed test exists for the exit helpers: TestExitHelpers follows seed-behaviour §8 (codes 0/1/130 and the log messages).

# A child that leaves test mode, runs the calls it is given on stdin, and prints the results.
CHILD = python(
    """
    import json, os, sys
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    import procfound
    calls = json.load(sys.stdin)
    results = {}
    for name, (argv, steps) in calls.items():
        if argv is not None:
            sys.argv = argv
        out = []
        for fn, args in steps:
            value = getattr(procfound, fn)(*args)
            out.append(value)
        results[name] = out
    print(json.dumps(results))
    """
)


def in_child(calls: dict[str, tuple[list[str] | None, list[tuple[str, list[Any]]]]]) -> Any:
    """Run ``{name: (argv or None, [(procfound function, args), ...])}`` in a fresh child."""
    result = run(CHILD, input=json.dumps(calls), timeout=30)
    return json.loads(result.stdout)


# --------------------------------------------------------------------------------------------
# tests/process/test_title.py
# --------------------------------------------------------------------------------------------

needs_setproctitle = pytest.mark.skipif(not has_setproctitle(), reason="setproctitle missing")


@pytest.fixture(scope="module")
def title_results() -> Any:
    """One child for every title call made with test mode off."""
    if not has_setproctitle():
        return {}
    return in_child(
        {
            "set": (None, [("set_process_title", ["test-process"])]),
            "get": (
                None,
                [("set_process_title", ["test-process-get"]), ("get_process_title", [])],
            ),
            "empty": (None, [("set_process_title", [""])]),
            "unicode": (
                None,
                [("set_process_title", ["test-process-🚀"]), ("get_process_title", [])],
            ),
            "long": (None, [("set_process_title", ["a" * 1000])]),
        }
    )


def _cmdline() -> bytes:
    return Path("/proc/self/cmdline").read_bytes()


class TestProcessTitle:
    def test_has_setproctitle_returns_true_when_available(self) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_has_setproctitle_returns_true_when_available"""
        assert isinstance(has_setproctitle(), bool)

    @needs_setproctitle
    def test_set_process_title_with_setproctitle_available(self, title_results: Any) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_set_process_title_with_setproctitle_available"""
        assert title_results["set"] == [True]

    @needs_setproctitle
    def test_get_process_title_with_setproctitle_available(self, title_results: Any) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_get_process_title_with_setproctitle_available"""
        ok, title = title_results["get"]
        assert ok is True
        assert isinstance(title, str)
        assert title == "test-process-get"

    def test_set_process_title_without_setproctitle(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_set_process_title_without_setproctitle"""
        monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
        monkeypatch.setattr(title_module, "_import_setproctitle", lambda: None)
        assert set_process_title("test-title") is False

    def test_get_process_title_without_setproctitle(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_get_process_title_without_setproctitle"""
        monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
        monkeypatch.setattr(title_module, "_import_setproctitle", lambda: None)
        assert get_process_title() is None

    def test_set_process_title_skips_in_test_mode(self) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_set_process_title_skips_in_test_mode"""
        before = _cmdline()
        assert set_process_title("test-title-in-test-mode") is True
        assert _cmdline() == before  # nothing was renamed

    def test_get_process_title_returns_none_in_test_mode(self) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_get_process_title_returns_none_in_test_mode"""
        assert get_process_title() is None

    @needs_setproctitle
    def test_set_process_title_with_empty_string(self, title_results: Any) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_set_process_title_with_empty_string"""
        assert title_results["empty"] == [True]

    @needs_setproctitle
    def test_set_process_title_with_unicode(self, title_results: Any) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_set_process_title_with_unicode"""
        assert title_results["unicode"] == [True, "test-process-🚀"]

    @needs_setproctitle
    def test_set_process_title_with_long_string(self, title_results: Any) -> None:
        """Seed: tests/process/test_title.py::TestProcessTitle::test_set_process_title_with_long_string"""
        assert title_results["long"] == [True]


# --------------------------------------------------------------------------------------------
# tests/process/test_title_argv.py
# --------------------------------------------------------------------------------------------

# The seed's argv cases: it re-derives each title with the formula; here procfound sets it from
# sys.argv in a child (test mode off) and the title is read back.
ARGV_CASES: dict[str, tuple[list[str], str]] = {
    "test_argv_parsing_logic_basic": (
        ["pyvider", "run", "--config", "foo.yml"],
        "pyvider run --config foo.yml",
    ),
    "test_argv_parsing_with_full_path": (["/usr/bin/pyvider", "run"], "pyvider run"),
    "test_argv_parsing_symlink": (["whatever", "run"], "whatever run"),
    "test_argv_parsing_no_args": (["pyvider"], "pyvider"),
    "test_argv_parsing_special_characters": (
        ["pyvider", "--name", "my app", "--flag"],
        "pyvider --name my app --flag",
    ),
    "test_argv_parsing_with_equals": (
        ["soup", "--config=foo.yml", "--verbose"],
        "soup --config=foo.yml --verbose",
    ),
    "test_argv_parsing_complex_path": (
        ["/opt/tools/bin/myapp", "worker", "--threads", "4"],
        "myapp worker --threads 4",
    ),
    "test_argv_parsing_unicode_command": (["my-app-✨", "run"], "my-app-✨ run"),
    "test_argv_parsing_unicode_args": (
        ["myapp", "--message", "Hello 世界"],
        "myapp --message Hello 世界",
    ),
    "test_argv_parsing_python_extension": (["script.py", "arg1"], "script.py arg1"),
    "test_argv_parsing_many_args": (
        ["app"] + [f"--arg{i}" for i in range(20)],
        "app " + " ".join(f"--arg{i}" for i in range(20)),
    ),
    "test_realistic_pyvider_scenario": (
        ["/opt/pyvider/bin/pyvider", "run", "--config", "/etc/pyvider/config.yml", "--verbose"],
        "pyvider run --config /etc/pyvider/config.yml --verbose",
    ),
    "test_realistic_soup_scenario": (
        ["soup", "serve", "--port", "8080", "--workers", "4"],
        "soup serve --port 8080 --workers 4",
    ),
}


@pytest.fixture(scope="module")
def argv_titles() -> Any:
    """One child that sets the title from each case's argv and reads it back."""
    if not has_setproctitle():
        return {}
    return in_child(
        {
            name: (argv, [("set_process_title_from_argv", []), ("get_process_title", [])])
            for name, (argv, _) in ARGV_CASES.items()
        }
    )


class TestSetProcessTitleFromArgv:
    def test_returns_true_in_test_mode(self) -> None:
        """Seed: tests/process/test_title_argv.py::TestSetProcessTitleFromArgv::test_returns_true_in_test_mode"""
        before = _cmdline()
        assert set_process_title_from_argv() is True
        assert _cmdline() == before

    @needs_setproctitle
    @pytest.mark.parametrize("case", list(ARGV_CASES))
    def test_argv_parsing(self, case: str, argv_titles: Any) -> None:
        """Seed: tests/process/test_title_argv.py::TestSetProcessTitleFromArgv::<case> (one case per seed test)"""
        assert argv_titles[case] == [True, ARGV_CASES[case][1]]


# --------------------------------------------------------------------------------------------
# tests/process/test_prctl.py
# --------------------------------------------------------------------------------------------

PRCTL_CALLS: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
    ("set_death_signal", set_death_signal, (15,)),
    ("set_dumpable", set_dumpable, (True,)),
    ("set_name", set_name, ("test",)),
    ("get_name", get_name, ()),
    ("set_no_new_privs", set_no_new_privs, (True,)),
]

needs_prctl = pytest.mark.skipif(not has_prctl(), reason="python-prctl missing or not Linux")


@pytest.fixture(scope="module")
def prctl_results() -> Any:
    """One child for every prctl call that changes process state."""
    if not has_prctl():
        return {}
    return in_child(
        {
            "death_signal": (None, [("set_death_signal", [int(signal.SIGTERM)])]),
            "dumpable": (None, [("set_dumpable", [True])]),
            "name": (None, [("set_name", ["test-proc"]), ("get_name", [])]),
            "get_name": (None, [("get_name", [])]),
        }
    )


class TestPrctl:
    def test_has_prctl_returns_bool(self) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_has_prctl_returns_bool"""
        assert isinstance(has_prctl(), bool)

    def test_is_linux_returns_bool(self) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_is_linux_returns_bool"""
        assert isinstance(is_linux(), bool)

    def test_has_prctl_false_on_non_linux(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_has_prctl_false_on_non_linux"""
        monkeypatch.setattr(prctl_module, "is_linux", lambda: False)
        assert has_prctl() is False

    def test_set_death_signal_raises_on_non_linux(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_set_death_signal_raises_on_non_linux"""
        monkeypatch.setattr(prctl_module, "is_linux", lambda: False)
        with pytest.raises(PlatformError) as exc_info:
            set_death_signal(15)
        assert "only available on Linux" in str(exc_info.value)
        assert exc_info.value.code == "PLATFORM_NOT_SUPPORTED"

    def test_set_death_signal_raises_without_prctl(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_set_death_signal_raises_without_prctl"""
        monkeypatch.setattr(prctl_module, "is_linux", lambda: True)
        monkeypatch.setattr(prctl_module, "_import_prctl", lambda: None)
        with pytest.raises(PlatformError) as exc_info:
            set_death_signal(15)
        assert "not installed" in str(exc_info.value)
        assert exc_info.value.code == "DEPENDENCY_MISSING"

    @pytest.mark.parametrize(
        ("name", "fn", "args"),
        [
            pytest.param(name, fn, args, id=f"test_{name}_raises_on_non_linux")
            for name, fn, args in PRCTL_CALLS
            if name != "set_death_signal"
        ],
    )
    def test_raises_on_non_linux(
        self,
        monkeypatch: pytest.MonkeyPatch,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_<fn>_raises_on_non_linux (one case per seed test)"""
        monkeypatch.setattr(prctl_module, "is_linux", lambda: False)
        with pytest.raises(PlatformError) as exc_info:
            fn(*args)
        assert exc_info.value.code == "PLATFORM_NOT_SUPPORTED"

    @needs_prctl
    def test_set_death_signal_with_prctl_available(self, prctl_results: Any) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_set_death_signal_with_prctl_available"""
        assert prctl_results["death_signal"] == [True]

    @needs_prctl
    def test_set_dumpable_with_prctl_available(self, prctl_results: Any) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_set_dumpable_with_prctl_available"""
        assert prctl_results["dumpable"] == [True]

    @needs_prctl
    def test_set_name_with_prctl_available(self, prctl_results: Any) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_set_name_with_prctl_available"""
        assert prctl_results["name"] == [True, "test-proc"]

    @needs_prctl
    def test_get_name_with_prctl_available(self, prctl_results: Any) -> None:
        """Seed: tests/process/test_prctl.py::TestPrctl::test_get_name_with_prctl_available"""
        (name,) = prctl_results["get_name"]
        assert name is None or isinstance(name, str)


# --------------------------------------------------------------------------------------------
# src/provide/foundation/process/exit.py (seed-behaviour §8; the seed has no test file)
# --------------------------------------------------------------------------------------------


class TestExitHelpers:
    def test_exit_success(self, caplog: pytest.LogCaptureFixture) -> None:
        """Seed: src/provide/foundation/process/exit.py::exit_success (no seed test)"""
        with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exc:
            exit_success()
        assert exc.value.code == 0
        assert not [r for r in caplog.records if r.message.startswith("Exiting")]

    def test_exit_success_with_message(self, caplog: pytest.LogCaptureFixture) -> None:
        """Seed: src/provide/foundation/process/exit.py::exit_success (no seed test)"""
        with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exc:
            exit_success("all done")
        assert exc.value.code == 0
        assert [(r.levelno, r.message) for r in caplog.records] == [
            (logging.INFO, "Exiting successfully: all done")
        ]

    def test_exit_error(self, caplog: pytest.LogCaptureFixture) -> None:
        """Seed: src/provide/foundation/process/exit.py::exit_error (no seed test)"""
        with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exc:
            exit_error()
        assert exc.value.code == 1
        assert not [r for r in caplog.records if r.message.startswith("Exiting")]

    def test_exit_error_with_message_and_code(self, caplog: pytest.LogCaptureFixture) -> None:
        """Seed: src/provide/foundation/process/exit.py::exit_error (no seed test)"""
        with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exc:
            exit_error("config file not found", code=2)
        assert exc.value.code == 2
        assert [(r.levelno, r.message) for r in caplog.records] == [
            (logging.ERROR, "Exiting with error: config file not found")
        ]

    def test_exit_interrupted(self, caplog: pytest.LogCaptureFixture) -> None:
        """Seed: src/provide/foundation/process/exit.py::exit_interrupted (no seed test)"""
        with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exc:
            exit_interrupted()
        assert exc.value.code == 130
        assert [(r.levelno, r.message) for r in caplog.records] == [
            (logging.WARNING, "Exiting due to interrupt: Process interrupted")
        ]

    def test_exit_interrupted_with_message(self, caplog: pytest.LogCaptureFixture) -> None:
        """Seed: src/provide/foundation/process/exit.py::exit_interrupted (no seed test)"""
        with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exc:
            exit_interrupted("Ctrl-C")
        assert exc.value.code == 130
        assert [r.message for r in caplog.records] == ["Exiting due to interrupt: Ctrl-C"]
