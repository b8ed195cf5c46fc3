"""The fuzz: every public entry point, every argument, every bad value, only procfound errors.

Each public callable of ``procfound.__all__`` is called once per (argument, bad value): the
argument replaced, everything else a cheap valid call (``["true"]``, a 5 s timeout). The
outcome must be a success or one of procfound's own errors (:class:`ProcfoundError`), never a
raw ``TypeError``/``ValueError``/``OverflowError``/``UnicodeError``/``MemoryError`` or an
``ExceptionGroup``; nothing may be logged as a failed portal job either (a reader that died in
the portal loses the output without raising). The arguments come from the signatures and
:class:`RunOptions`, so a new keyword is fuzzed without editing this file.

Not fuzzed here: the CLI (tests/test_cli*.py). The stop policy's keywords are fuzzed with the
other options, and :func:`procfound.stop_policy` on its own.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import python

import procfound
from procfound import (
    CompletedProcess,
    ExpectMatch,
    IgnoredArgumentWarning,
    ManagedProcess,
    Pipeline,
    ServiceGroup,
    StageResult,
    StopPolicy,
    async_run,
    async_shell,
    async_stream,
    async_stream_batches,
    check_probes,
    pipe,
    refuse_if_answered,
    run,
    run_simple,
    shell,
    stop_policy,
    stream,
    stream_batches,
    wait_for_http,
    wait_for_path,
    wait_for_port,
    wait_for_process_output,
)
from procfound.call.options import RunOptions
from procfound.errors import ProcfoundError, shorten

ROOT = Path(__file__).resolve().parents[1]

# One of each kind of bad value the fuzz used.
BAD: dict[str, Any] = {
    "none": None,
    "int": 7,
    "zero": 0,
    "negative": -1,
    "huge": 10**400,
    "2**64": 2**64,
    "true": True,
    "bytes": b"\xff\x00x",
    "float": 2.5,
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "empty": "",
    "nul": "a\x00b",
    "surrogate": "\ud800",
    "garbage": "%%\n\t\u202e\U0001f600 garbage",
    "long": "x" * 100_000,
    "object": object(),
    "list": [None, b"\x00", object(), "\ud800"],
}

OPTIONS = [field.name for field in fields(RunOptions)]

# (entry point, argument, bad value) that still raise raw exceptions (none: listed by running
# this file with FUZZ_ELSEWHERE=1 when one is added).
ELSEWHERE: frozenset[tuple[str, str, str]] = frozenset()

TIMEOUT = 5


def _parameters(fn: Callable[..., Any], *, options: bool) -> list[str]:
    """The arguments of ``fn`` by name (``**kwargs`` becomes the RunOptions keywords)."""
    names: dict[str, None] = {}  # ordered, and a named parameter that is also an option once
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            if options:
                names.update(dict.fromkeys(OPTIONS))
        elif parameter.kind is not parameter.VAR_POSITIONAL:
            names[parameter.name] = None
    return list(names)


# -- the calls: each takes the arguments to replace and consumes the whole outcome -----------


def _run(kw: dict[str, Any]) -> None:
    run(**{"cmd": ["true"], "timeout": TIMEOUT, **kw})


def _run_simple(kw: dict[str, Any]) -> None:
    run_simple(**{"cmd": ["true"], "timeout": TIMEOUT, **kw})


def _shell(kw: dict[str, Any]) -> None:
    shell(**{"cmd": "true", "timeout": TIMEOUT, **kw})


def _async_run(kw: dict[str, Any]) -> None:
    anyio.run(functools.partial(async_run, **{"cmd": ["true"], "timeout": TIMEOUT, **kw}))


def _async_shell(kw: dict[str, Any]) -> None:
    anyio.run(functools.partial(async_shell, **{"cmd": "true", "timeout": TIMEOUT, **kw}))


def _stream(kw: dict[str, Any]) -> None:
    with stream(**{"cmd": ["echo", "a"], "timeout": TIMEOUT, **kw}) as lines:
        list(lines)


def _stream_batches(kw: dict[str, Any]) -> None:
    batches = stream_batches(**{"cmd": ["echo", "a"], "timeout": TIMEOUT, **kw})
    try:
        list(batches)
    finally:
        batches.close()


def _async_stream(kw: dict[str, Any]) -> None:
    async def main() -> None:
        lines = async_stream(**{"cmd": ["echo", "a"], "timeout": TIMEOUT, **kw})
        try:
            async for _ in lines:
                pass
        finally:
            await lines.aclose()

    anyio.run(main)


def _async_stream_batches(kw: dict[str, Any]) -> None:
    async def main() -> None:
        batches = async_stream_batches(**{"cmd": ["echo", "a"], "timeout": TIMEOUT, **kw})
        try:
            async for _ in batches:
                pass
        finally:
            await batches.aclose()

    anyio.run(main)


def _managed(kw: dict[str, Any]) -> None:
    # Constructed, launched, read from and cleaned up: a bad value accepted by the constructor
    # must not kill the reader (the output lost) or make cleanup() raise.
    proc = ManagedProcess(**{"command": ["echo", "a"], "stderr_relay": False, **kw})
    try:
        proc.launch()
        if proc.capture_output:
            anyio.run(proc.read_line_async, TIMEOUT)
            anyio.run(proc.read_char_async, TIMEOUT)
            assert isinstance(proc.stdout_tail, str)
            assert isinstance(proc.stderr_tail, str)
    finally:
        proc.cleanup()


@functools.cache
def _signature_of(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def _with_process(method: Callable[[ManagedProcess, dict[str, Any]], None]) -> Callable[..., None]:
    """A call that needs a launched process: ``sh`` printing a line, then sleeping briefly."""

    def call(kw: dict[str, Any]) -> None:
        # It exits by itself soon: a wait without a deadline (timeout=None) ends with it.
        proc = ManagedProcess(["sh", "-c", "echo ready; exec sleep 0.2"], stderr_relay=False)
        with proc:
            method(proc, kw)

    return call


def _read_line(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    anyio.run(functools.partial(proc.read_line_async, **kw))


def _read_char(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    anyio.run(functools.partial(proc.read_char_async, **kw))


def _wait_ready(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    proc.wait_ready(**{"timeout": TIMEOUT, **kw})


def _talker(method: Callable[[ManagedProcess, dict[str, Any]], None], **how: Any) -> Any:
    """A call that needs a process to talk to: it prints a line, reads nothing, exits soon."""

    def call(kw: dict[str, Any]) -> None:
        command = ["sh", "-c", "echo ready; exec sleep 0.2"]
        with ManagedProcess(command, stdin=subprocess.PIPE, stderr_relay=False, **how) as proc:
            method(proc, kw)

    return call


def _write(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    proc.write(**{"data": "x\n", "timeout": TIMEOUT, **kw})


def _expect(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    proc.expect(**{"pattern": "ready", "timeout": TIMEOUT, **kw})


def _resize(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    proc.resize(**{"rows": 30, "cols": 100, **kw})


def _expect_match(kw: dict[str, Any]) -> None:
    found = ExpectMatch(**{"index": 0, "match": None, "before": "", **kw})
    repr(found)


def _terminate(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    proc.terminate_gracefully(**kw)


def _handle_wait(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    assert proc.process is not None
    proc.process.terminate()
    proc.process.wait(**{"timeout": TIMEOUT, **kw})


def _handle_signal(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    assert proc.process is not None
    proc.process.send_signal(**kw)


def _wait_output(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    given = {"process": proc, "expected_parts": ["ready"], "timeout": TIMEOUT, **kw}
    anyio.run(functools.partial(wait_for_process_output, **given))


def _wait_port(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    given = {"process": proc, "port": 1, "timeout": 0.05, **kw}
    anyio.run(functools.partial(wait_for_port, **given))


def _wait_http(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    given = {"process": proc, "url": "http://127.0.0.1:1/", "timeout": 0.05, **kw}
    anyio.run(functools.partial(wait_for_http, **given))


def _wait_path(proc: ManagedProcess, kw: dict[str, Any]) -> None:
    given = {"process": proc, "path": "/nonexistent/procfound-fuzz", "timeout": 0.05, **kw}
    anyio.run(functools.partial(wait_for_path, **given))


def _check_probes(kw: dict[str, Any]) -> None:
    check_probes(**kw)


def _refuse_if_answered(kw: dict[str, Any]) -> None:
    refuse_if_answered(**{"command": ["true"], **kw})


def _service_group(kw: dict[str, Any]) -> None:
    ServiceGroup(**kw).stop_all()


def _stop_policy(kw: dict[str, Any]) -> None:
    stop_policy(**kw)


def _stop_policy_value(kw: dict[str, Any]) -> None:
    policy = StopPolicy(**kw)  # built by hand: its own invariant refuses what cannot be done
    repr(policy)
    policy.schedule.steps()


def _completed(kw: dict[str, Any]) -> None:
    done: CompletedProcess[Any] = CompletedProcess(
        **{"args": ["false"], "returncode": 1, "stdout": "", "stderr": "", **kw}
    )
    repr(done)
    done.check_returncode()


def _pipe(kw: dict[str, Any]) -> None:
    run(pipe(["echo"], kw["command"]))  # one good command and one fuzzed


def _pipeline_value(kw: dict[str, Any]) -> None:
    pipeline = Pipeline(**kw)  # built by hand: checked like pipe()'s
    run(pipeline)


def _stage_result(kw: dict[str, Any]) -> None:
    stage: StageResult[Any] = StageResult(**{"args": ["x"], "returncode": 1, "stderr": "", **kw})
    repr(stage)
    done: CompletedProcess[Any] = CompletedProcess(["x"], 1, "", "", stages=(stage, stage))
    done.check_returncode()


# (name, call, arguments, outcomes allowed besides success and procfound's errors)
ENTRY_POINTS: list[tuple[str, Callable[[dict[str, Any]], None], list[str], tuple[type, ...]]] = [
    ("run", _run, _parameters(run, options=True), ()),
    (
        "run_simple",
        _run_simple,
        # "any other argument of run()"
        [*_parameters(run_simple, options=True), "env", "capture_output", "check", "timeout"],
        (),
    ),
    ("shell", _shell, _parameters(shell, options=True), ()),
    ("async_run", _async_run, _parameters(async_run, options=True), ()),
    ("async_shell", _async_shell, _parameters(async_shell, options=True), ()),
    ("stream", _stream, _parameters(stream, options=True), ()),
    ("stream_batches", _stream_batches, _parameters(stream_batches, options=True), ()),
    ("async_stream", _async_stream, _parameters(async_stream, options=True), ()),
    (
        "async_stream_batches",
        _async_stream_batches,
        _parameters(async_stream_batches, options=True),
        (),
    ),
    ("ManagedProcess", _managed, [*_parameters(ManagedProcess, options=True), "shell"], ()),
    # The seed's reads raise the builtin TimeoutError when nothing came in time.
    ("ManagedProcess.read_line_async", _with_process(_read_line), ["timeout"], (TimeoutError,)),
    ("ManagedProcess.read_char_async", _with_process(_read_char), ["timeout"], (TimeoutError,)),
    ("ManagedProcess.wait_ready", _with_process(_wait_ready), ["output", "timeout", "check"], ()),
    ("ManagedProcess.terminate_gracefully", _with_process(_terminate), ["timeout"], ()),
    ("ManagedProcess.write", _talker(_write), ["data", "timeout"], ()),
    ("ManagedProcess.expect", _talker(_expect), ["pattern", "timeout"], ()),
    ("ManagedProcess.resize", _talker(_resize, pty=True), ["rows", "cols"], ()),
    ("ExpectMatch", _expect_match, ["index", "match", "before"], ()),
    ("ProcessHandle.send_signal", _with_process(_handle_signal), ["sig"], ()),
    # Popen.wait's own timeout error, as the seed's process.wait raised it.
    ("ProcessHandle.wait", _with_process(_handle_wait), ["timeout"], (subprocess.TimeoutExpired,)),
    (
        "wait_for_process_output",
        _with_process(_wait_output),
        _parameters(wait_for_process_output, options=False),
        (),
    ),
    ("wait_for_port", _with_process(_wait_port), _parameters(wait_for_port, options=False), ()),
    ("wait_for_http", _with_process(_wait_http), _parameters(wait_for_http, options=False), ()),
    ("wait_for_path", _with_process(_wait_path), _parameters(wait_for_path, options=False), ()),
    ("CompletedProcess", _completed, _parameters(CompletedProcess, options=False), ()),
    ("pipe", _pipe, ["command"], ()),
    ("Pipeline", _pipeline_value, ["commands"], ()),
    ("StageResult", _stage_result, ["args", "returncode", "stderr"], ()),
    ("check_probes", _check_probes, _parameters(check_probes, options=False), ()),
    (
        "refuse_if_answered",
        _refuse_if_answered,
        _parameters(refuse_if_answered, options=False),
        (),
    ),
    ("ServiceGroup", _service_group, _parameters(ServiceGroup, options=False), ()),
    ("stop_policy", _stop_policy, _parameters(stop_policy, options=False), ()),
    ("StopPolicy", _stop_policy_value, _parameters(StopPolicy, options=False), ()),
]


def _cases() -> list[Any]:
    return [
        pytest.param(name, call, argument, allowed, id=f"{name}-{argument}")
        for name, call, arguments, allowed in ENTRY_POINTS
        for argument in arguments
    ]


class _PortalJobFailures(logging.Handler):
    """Collects what the portal logged as a failed job: a raw error nobody was told about."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None and record.exc_info[1] is not None:
            error = record.exc_info[1]
            self.failures.append(f"logged {type(error).__name__}: {error}")


def _outcome(
    call: Callable[[dict[str, Any]], None], argument: str, value: Any, allowed: tuple[type, ...]
) -> str:
    """ "ok", or what went wrong: a raw exception raised, or one logged by the portal."""
    logger = logging.getLogger("procfound")
    failures = _PortalJobFailures()
    logger.addHandler(failures)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IgnoredArgumentWarning)
            call({argument: value})
    except (ProcfoundError, *allowed):
        pass
    except Exception as exc:  # an ExceptionGroup too
        return f"{type(exc).__name__}: {shorten(str(exc), 300)}"
    finally:
        logger.removeHandler(failures)
    return "; ".join(failures.failures) or "ok"


@pytest.mark.parametrize(("name", "call", "argument", "allowed"), _cases())
def test_every_bad_value_is_a_success_or_a_procfound_error(
    name: str, call: Callable[[dict[str, Any]], None], argument: str, allowed: tuple[type, ...]
) -> None:
    outcomes = {
        label: _outcome(call, argument, value, allowed)
        for label, value in BAD.items()
        if (name, argument, label) not in ELSEWHERE or os.environ.get("FUZZ_ELSEWHERE")
    }
    raw = {label: outcome for label, outcome in outcomes.items() if outcome != "ok"}
    assert not raw, f"{argument}=: raw errors {raw}"


def test_every_public_callable_is_fuzzed() -> None:
    # A new public function fails here until it has a row above (or in HELPERS).
    fuzzed = {name.split(".")[0] for name, *_ in ENTRY_POINTS} | set(HELPERS) | NO_ARGUMENTS
    errors = {
        name
        for name in procfound.__all__
        if isinstance(getattr(procfound, name), type)
        and issubclass(getattr(procfound, name), BaseException | Warning)
    }
    # Records the library yields (a NamedTuple): built by hand they hold what they are given.
    records = {"Line"}
    assert set(procfound.__all__) - errors - records == fuzzed


# -- process-wide helpers, in a fresh interpreter ---------------------------------------------

# Helpers that change the calling process (its kernel name, its title, its death signal) are
# fuzzed in one fresh interpreter with test mode off, so the test runner keeps its own state.
HELPERS: dict[str, list[str]] = {
    "set_name": ["name"],
    "set_death_signal": ["sig"],
    "set_dumpable": ["flag"],
    "set_no_new_privs": ["enabled"],
    "set_process_title": ["title"],
    "exit_success": ["message"],
    "exit_error": ["message", "code"],
    "exit_interrupted": ["message"],
}
NO_ARGUMENTS = {
    "get_name",
    "get_process_title",
    "has_prctl",
    "has_setproctitle",
    "is_linux",
    "set_process_title_from_argv",
}

# The child gets the bad values pickled on stdin (they are the same objects, NaN and all).
_HELPER_CHILD = """
import json, os, pickle, sys
os.environ.pop("PYTEST_CURRENT_TEST", None)
import procfound
from procfound.errors import ProcfoundError
helpers, bad = pickle.load(sys.stdin.buffer)
out = {}
for name, arguments in helpers.items():
    for argument in arguments:
        for label, value in bad.items():
            try:
                getattr(procfound, name)(**{argument: value})
                outcome = "ok"
            except SystemExit as exc:
                # The exit code must be one the OS can carry: an int from 0 to 255.
                code = exc.code
                good = code is None or (type(code) is int and 0 <= code <= 255)
                outcome = "ok" if good else f"SystemExit({code!r})"
            except ProcfoundError:
                outcome = "ok"
            except BaseException as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            out[f"{name}-{argument}-{label}"] = outcome
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def helper_outcomes() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        python(_HELPER_CHILD),
        input=pickle.dumps((HELPERS, BAD)),
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    outcomes: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcomes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(2) exists only on Linux")
@pytest.mark.parametrize(
    "case",
    [
        f"{name}-{argument}-{label}"
        for name, arguments in HELPERS.items()
        for argument in arguments
        for label in BAD
    ],
)
def test_every_bad_value_to_a_process_helper_is_a_success_or_a_procfound_error(
    helper_outcomes: dict[str, str], case: str
) -> None:
    assert helper_outcomes[case] == "ok"
