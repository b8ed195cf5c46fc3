"""prctl helpers: each change is proved in a fresh interpreter, since it sticks to the process."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import pid_alive, python, wait_gone

from procfound.errors import PlatformError, ValidationError
from procfound.linux import prctl as prctl_helpers

ROOT = Path(__file__).resolve().parents[1]

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="prctl(2) exists only on Linux"
)
needs_prctl = pytest.mark.skipif(
    not prctl_helpers.has_prctl(), reason="python-prctl is not installed"
)


def run_fresh(code: str) -> Any:
    """Run ``code`` in a fresh interpreter that can import procfound; return its JSON output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(python(code), capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@linux_only
@needs_prctl
def test_set_name_shows_in_get_name_and_proc_comm() -> None:
    out = run_fresh(
        """
        import json
        from procfound.linux.prctl import get_name, set_name
        ok = set_name("worker-1")
        with open("/proc/self/comm") as f:
            comm = f.read().strip()
        print(json.dumps([ok, get_name(), comm]))
        """
    )
    assert out == [True, "worker-1", "worker-1"]


@linux_only
@needs_prctl
def test_set_name_cuts_a_long_name_to_15_characters_and_warns() -> None:
    out = run_fresh(
        """
        import json, logging
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger("procfound").addHandler(handler)
        from procfound.linux.prctl import get_name, set_name
        ok = set_name("abcdefghijklmnopqrstuvwxyz01")
        with open("/proc/self/comm") as f:
            comm = f.read().strip()
        warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
        print(json.dumps([ok, get_name(), comm, warnings]))
        """
    )
    ok, name, comm, warnings = out
    assert ok is True
    assert name == comm == "abcdefghijklmno"
    assert len(warnings) == 1
    assert "truncated to 15" in warnings[0]


@linux_only
@needs_prctl
def test_set_name_passes_only_15_characters_to_prctl(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel would cut the name itself; recording the call proves procfound cuts it first
    # (python-prctl and the kernel are free to reject a long name instead).
    import prctl

    calls: list[str] = []
    monkeypatch.setattr(prctl, "set_name", calls.append)
    assert prctl_helpers.set_name("abcdefghijklmnopqrstuvwxyz01") is True
    assert prctl_helpers.set_name("short") is True
    assert calls == ["abcdefghijklmno", "short"]


@linux_only
@needs_prctl
def test_no_new_privs_and_not_dumpable_are_visible_to_the_kernel() -> None:
    out = run_fresh(
        """
        import json, prctl
        from procfound.linux.prctl import set_dumpable, set_no_new_privs
        results = [set_no_new_privs(True), set_dumpable(False)]
        with open("/proc/self/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        print(json.dumps(results + [status["NoNewPrivs"].strip(), prctl.get_dumpable()]))
        """
    )
    assert out == [True, True, "1", 0]


@linux_only
@needs_prctl
def test_clearing_no_new_privs_is_refused_with_false() -> None:
    out = run_fresh(
        """
        import json
        from procfound.linux.prctl import set_no_new_privs
        print(json.dumps([set_no_new_privs(True), set_no_new_privs(False)]))
        """
    )
    assert out == [True, False]


@linux_only
@needs_prctl
def test_grandchild_with_death_signal_dies_when_its_parent_exits() -> None:
    # The parent waits for the grandchild's pid line, which is printed only after
    # set_death_signal returned, so the parent cannot exit before the request is in place.
    grandchild = textwrap.dedent(
        """
        import os, signal, sys, time
        from procfound.linux.prctl import set_death_signal
        assert set_death_signal(signal.SIGKILL)
        print(os.getpid(), flush=True)
        time.sleep(60)
        """
    )
    parent = f"""
        import subprocess, sys
        child = subprocess.Popen(
            [sys.executable, "-c", {grandchild!r}],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        print(child.stdout.readline().decode().strip(), flush=True)
        """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(python(parent), capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.strip())
    try:
        assert wait_gone(pid, timeout=5.0), f"grandchild {pid} outlived its parent"
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_is_linux_follows_sys_platform() -> None:
    assert prctl_helpers.is_linux() is sys.platform.startswith("linux")


ALL_HELPERS = """
    calls = {
        "set_name": lambda: p.set_name("x"),
        "get_name": p.get_name,
        "set_death_signal": lambda: p.set_death_signal(9),
        "set_dumpable": lambda: p.set_dumpable(False),
        "set_no_new_privs": lambda: p.set_no_new_privs(True),
    }
    codes = {}
    for name, call in calls.items():
        try:
            call()
        except PlatformError as error:
            codes[name] = [error.code, error.message]
        else:
            codes[name] = None
    print(json.dumps({"is_linux": p.is_linux(), "has_prctl": p.has_prctl(), "codes": codes}))
"""


def run_helpers(setup: str) -> Any:
    """Run ``setup`` (which binds ``p`` to the prctl module), then call every helper."""
    return run_fresh(textwrap.dedent(setup) + textwrap.dedent(ALL_HELPERS))


@linux_only
def test_every_helper_raises_dependency_missing_without_python_prctl() -> None:
    out = run_helpers(
        """
        import json, sys
        sys.modules["prctl"] = None  # makes `import prctl` raise ImportError
        from procfound.errors import PlatformError
        import procfound.linux.prctl as p
        """
    )
    assert out["is_linux"] is True
    assert out["has_prctl"] is False
    assert set(out["codes"]) == {
        "set_name",
        "get_name",
        "set_death_signal",
        "set_dumpable",
        "set_no_new_privs",
    }
    for code, message in out["codes"].values():
        assert code == "DEPENDENCY_MISSING"
        assert "python-prctl is not installed" in message
        assert "pip install 'procfound[linux]'" in message
        assert "libcap-dev" in message


def test_every_helper_raises_platform_not_supported_off_linux() -> None:
    out = run_helpers(
        """
        import json, sys
        sys.platform = "darwin"
        from procfound.errors import PlatformError
        import procfound.linux.prctl as p
        """
    )
    assert out["is_linux"] is False
    assert out["has_prctl"] is False
    assert len(out["codes"]) == 5
    for code, message in out["codes"].values():
        assert code == "PLATFORM_NOT_SUPPORTED"
        assert "only available on Linux" in message
        assert "darwin" in message


def test_platform_error_is_a_procfound_platform_error() -> None:
    # The not-Linux branch is checked first, so this holds in-process on any platform.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prctl_helpers, "is_linux", lambda: False)
        with pytest.raises(PlatformError, match="only available on Linux") as caught:
            prctl_helpers.get_name()
    assert caught.value.code == "PLATFORM_NOT_SUPPORTED"


@linux_only
@needs_prctl
@pytest.mark.parametrize(
    ("helper", "prctl_function", "argument"),
    [
        ("set_name", "set_name", "worker-1"),
        ("set_death_signal", "set_pdeathsig", signal.SIGTERM),
        ("set_dumpable", "set_dumpable", True),
        ("set_no_new_privs", "set_no_new_privs", True),
    ],
)
def test_a_failing_prctl_call_returns_false_and_warns(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    helper: str,
    prctl_function: str,
    argument: object,
) -> None:
    import prctl

    def refuse(*args: object) -> None:
        raise OSError(1, "Operation not permitted")

    # Patched, the real call never happens, so the pytest process keeps its state.
    monkeypatch.setattr(prctl, prctl_function, refuse)
    with caplog.at_level(logging.WARNING, logger="procfound"):
        assert getattr(prctl_helpers, helper)(argument) is False
    assert any("Operation not permitted" in r.getMessage() for r in caplog.records)


@linux_only
@needs_prctl
def test_a_failing_get_name_returns_none_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import prctl

    def refuse() -> str:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(prctl, "get_name", refuse)
    with caplog.at_level(logging.WARNING, logger="procfound"):
        assert prctl_helpers.get_name() is None
    assert any("Invalid argument" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_non_ascii_name_is_cut_at_a_character_boundary_and_reads_back() -> None:
    code = (
        "from procfound.linux.prctl import set_name, get_name\n"
        "print(set_name('éééééééééé'))\n"
        "print(get_name())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["True", "ééééééé"]  # 7 x 2 bytes = 14 <= 15


@pytest.mark.parametrize(
    ("helper", "value"),
    [
        ("set_name", 5),
        ("set_name", None),
        ("set_name", b"worker"),
        ("set_name", "a\x00b"),
        ("set_name", "\ud800"),
        ("set_death_signal", "SIGTERM"),
        ("set_death_signal", 2**64),
        ("set_death_signal", -1),
        ("set_death_signal", 1.5),
        ("set_death_signal", True),
        ("set_dumpable", None),
        ("set_dumpable", "no"),
        ("set_no_new_privs", 1.0),
        ("set_no_new_privs", object()),
    ],
)
def test_a_wrong_argument_is_a_validation_error_before_any_prctl_call(
    helper: str, value: object
) -> None:
    # Checked before the platform and before prctl: the test runner's state is never touched,
    # and a wrong type is an error, not a False (or a raw TypeError) from python-prctl.
    with pytest.raises(ValidationError) as info:
        getattr(prctl_helpers, helper)(value)
    assert info.value.code == "INVALID_ARGUMENT"
    assert len(str(info.value)) < 200
